//! Randomness is injected, as the clock is: member ids, voucher codes, claim references and
//! retry jitter all come from a [`Random`] the handler context carries. Production uses the
//! operating system's generator; tests and simulations use [`SeededRandom`], so that a seed
//! replays a run.

use std::sync::Mutex;

use rand::{Rng, RngCore, SeedableRng};

pub trait Random: Send + Sync + std::fmt::Debug {
    /// Fill `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A uniformly random number in `0..=max`.
    fn up_to(&self, max: u64) -> u64;
}

impl dyn Random + '_ {
    /// `n` random bytes as lower-case hex.
    pub fn hex(&self, n: usize) -> String {
        let mut buf = vec![0u8; n];
        self.fill(&mut buf);
        hex::encode(buf)
    }
}

/// The operating system's generator (through `rand`'s thread-local generator).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }

    fn up_to(&self, max: u64) -> u64 {
        rand::rng().random_range(0..=max)
    }
}

/// A generator from a seed: the same seed gives the same ids and waits.
#[derive(Debug)]
pub struct SeededRandom(Mutex<rand::rngs::StdRng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        SeededRandom(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, rand::rngs::StdRng> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        self.rng().fill_bytes(buf);
    }

    fn up_to(&self, max: u64) -> u64 {
        self.rng().random_range(0..=max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_another_seed_differs() {
        let (a, b, c) = (
            SeededRandom::new(7),
            SeededRandom::new(7),
            SeededRandom::new(8),
        );
        let (a, b, c): (&dyn Random, &dyn Random, &dyn Random) = (&a, &b, &c);
        let first = (a.hex(8), a.up_to(1_000));
        assert_eq!(first, (b.hex(8), b.up_to(1_000)));
        assert_ne!(first.0, c.hex(8));
        assert_eq!(first.0.len(), 16);
        assert!((0..100).all(|_| a.up_to(5) <= 5));
    }
}
