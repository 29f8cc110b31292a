//! The retry policy of every optimistic cycle (read, decide, conditional write) and of every
//! request a provider asks us to repeat: how many tries, and how long to wait before each.
//! Full-jitter exponential backoff, with the jitter from the injected [`Random`]. The waiting
//! itself is the adapters' (`tokio::time::sleep(pause)`); the policy is pure.
//!
//! ```ignore
//! let mut retry = Retry::new(random);
//! while let Some(pause) = retry.next() {
//!     sleep(pause).await;
//!     let read = store.read(..).await?;
//!     let plan = plan_something(&read)?;          // pure
//!     match store.commit(&plan).await? {
//!         Committed => return Ok(plan.answer),
//!         Duplicate => retry.now(),                // the next read finds the first answer
//!         LostRace => retry.again(),               // someone wrote first: re-read soon
//!         Throttled => retry.backoff(),            // wait longer each time (the default)
//!     }
//! }
//! Err(gave_up)
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::random::{OsRandom, Random};

/// How often a read-decide-write cycle is tried before we give up (a 503 to a caller).
pub const MAX_ATTEMPTS: u32 = 12;

/// Tries of a booking (an order, a refund, a behaviour event): many orders into one account
/// lose many races to each other, and every lost race is retried after a short wait. The
/// waits together stay within [`BOOKING_WAIT_BUDGET`], well inside a shop's 5 s timeout.
pub const MAX_BOOKING_ATTEMPTS: u32 = 96;
pub const BOOKING_WAIT_BUDGET: Duration = Duration::from_millis(3_500);

const BASE_MS: u64 = 10;
const CAP_MS: u64 = 1_000;

/// Full-jitter backoff: a random wait in [0, min(1 s, 10 ms x 2^attempt)].
pub fn backoff(attempt: u32) -> Duration {
    backoff_with(&OsRandom, attempt)
}

/// [`backoff`] with the jitter from `random`.
pub fn backoff_with(random: &dyn Random, attempt: u32) -> Duration {
    let ceiling = CAP_MS.min(BASE_MS.saturating_mul(1u64 << attempt.min(16)));
    Duration::from_millis(random.up_to(ceiling))
}

/// The wait before the next try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// None: the next read finds what the last try ran into (someone else's record).
    Now,
    /// A short jittered wait: another writer won this round; spread the contenders out.
    Again,
    /// Exponential jittered backoff: we were asked to slow down.
    Backoff,
    /// Backoff that starts this many steps up (a provider that throttles per second).
    BackoffFrom(u32),
}

/// The tries of one cycle. [`Retry::next`] says whether another try is allowed and how long
/// to wait before it.
pub struct Retry {
    /// Tries begun so far.
    tries: u32,
    max: u32,
    /// The most all the waits together may add up to (None: no limit but `max`).
    budget: Option<Duration>,
    waited: Duration,
    wait: Wait,
    random: Arc<dyn Random>,
}

impl Retry {
    /// [`MAX_ATTEMPTS`] tries.
    pub fn new(random: Arc<dyn Random>) -> Self {
        Self::with_max(random, MAX_ATTEMPTS)
    }

    pub fn with_max(random: Arc<dyn Random>, max: u32) -> Self {
        Retry {
            tries: 0,
            max,
            budget: None,
            waited: Duration::ZERO,
            wait: Wait::Backoff,
            random,
        }
    }

    /// The tries of a booking: [`MAX_BOOKING_ATTEMPTS`], waiting at most
    /// [`BOOKING_WAIT_BUDGET`] in all.
    pub fn booking(random: Arc<dyn Random>) -> Self {
        Retry {
            budget: Some(BOOKING_WAIT_BUDGET),
            ..Self::with_max(random, MAX_BOOKING_ATTEMPTS)
        }
    }

    /// Begin the next try: None when every try is used, else the pause to wait first (zero
    /// before the first try; after that as the previous try asked, backoff unless it said
    /// otherwise).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Duration> {
        if self.tries >= self.max {
            return None;
        }
        let pause = if self.tries == 0 {
            Duration::ZERO
        } else {
            self.pause()
        };
        if let Some(budget) = self.budget {
            if self.waited + pause > budget {
                return None;
            }
        }
        self.waited += pause;
        self.tries += 1;
        self.wait = Wait::Backoff;
        Some(pause)
    }

    /// The number of this try, from 0.
    pub fn attempt(&self) -> u32 {
        self.tries.saturating_sub(1)
    }

    /// Try again at once (what stopped this try is gone on the next read).
    pub fn now(&mut self) {
        self.wait = Wait::Now;
    }

    /// Another writer won: try again after a short jittered wait.
    pub fn again(&mut self) {
        self.wait = Wait::Again;
    }

    /// Asked to slow down: try again after a growing jittered wait (the default).
    pub fn backoff(&mut self) {
        self.wait = Wait::Backoff;
    }

    /// Asked to slow down by a service that counts per second: the waits start `steps` up
    /// (4: 160 ms) and grow from there.
    pub fn backoff_from(&mut self, steps: u32) {
        self.wait = Wait::BackoffFrom(steps);
    }

    fn pause(&self) -> Duration {
        let previous = self.tries.saturating_sub(1);
        match self.wait {
            Wait::Now => Duration::ZERO,
            // Capped low: a lost race is settled quickly, and many concurrent orders on one
            // account must not drift into long waits.
            Wait::Again => backoff_with(self.random.as_ref(), previous.min(3)),
            Wait::Backoff => backoff_with(self.random.as_ref(), previous),
            Wait::BackoffFrom(steps) => backoff_with(self.random.as_ref(), previous + steps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let cap = 1_000u64.min(10 * (1u64 << attempt.min(16)));
            assert!(backoff(attempt) <= Duration::from_millis(cap));
        }
    }

    #[test]
    fn tries_are_counted_and_capped() {
        let mut retry = Retry::with_max(Arc::new(SeededRandom::new(1)), 3);
        let mut seen = Vec::new();
        while let Some(pause) = retry.next() {
            if seen.is_empty() {
                assert_eq!(pause, Duration::ZERO, "the first try does not wait");
            }
            seen.push(retry.attempt());
            retry.now();
        }
        assert_eq!(seen, vec![0, 1, 2]);
        assert_eq!(retry.next(), None, "no try after the last");
    }

    #[test]
    fn a_booking_retries_lost_races_long_but_waits_within_its_budget() {
        let mut retry = Retry::booking(Arc::new(SeededRandom::new(7)));
        let mut tries = 0;
        while retry.next().is_some() {
            tries += 1;
            retry.again();
        }
        // Lost races wait at most 80 ms each (40 on average): far more tries than the 12 of
        // an ordinary cycle, and never more waiting than the budget.
        assert!((60..=MAX_BOOKING_ATTEMPTS).contains(&tries), "{tries}");
        assert!(retry.waited <= BOOKING_WAIT_BUDGET);
        // Throttled, the waits grow to 1 s: the budget ends the tries long before 96.
        let mut retry = Retry::booking(Arc::new(SeededRandom::new(7)));
        let mut tries = 0;
        while retry.next().is_some() {
            tries += 1;
            retry.backoff();
        }
        assert!(tries < 20, "{tries}");
        assert!(retry.waited <= BOOKING_WAIT_BUDGET);
    }

    #[test]
    fn waits_follow_what_the_try_asked_for_and_replay_from_a_seed() {
        let waits = |seed| {
            let mut retry = Retry::with_max(Arc::new(SeededRandom::new(seed)), 40);
            let mut out = Vec::new();
            for i in 0..39 {
                match i % 3 {
                    0 => retry.now(),
                    1 => retry.again(),
                    _ => retry.backoff(),
                }
                out.push((i % 3, retry.next().unwrap()));
            }
            out
        };
        let run = waits(42);
        assert_eq!(run, waits(42), "a seed replays the waits");
        for (i, (kind, pause)) in run.iter().enumerate().skip(1) {
            match kind {
                0 => assert_eq!(*pause, Duration::ZERO),
                // A lost race waits at most the fourth step (80 ms).
                1 => assert!(*pause <= Duration::from_millis(80), "{i}: {pause:?}"),
                _ => assert!(*pause <= Duration::from_millis(1_000)),
            }
        }
        assert!(run
            .iter()
            .any(|(k, p)| *k == 2 && *p > Duration::from_millis(80)));
    }
}
