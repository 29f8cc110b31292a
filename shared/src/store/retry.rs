//! Jittered exponential backoff for what DynamoDB asks us to retry: transaction conflicts,
//! throttling, and its own internal errors. The SDK's standard retry already covers plain
//! throttling of single requests; this covers the cancelled-transaction case too, where the
//! whole read-decide-write cycle has to run again.

use std::time::Duration;

use rand::Rng;

/// How often a read-decide-write cycle is tried before we give up with a 503.
pub const MAX_ATTEMPTS: u32 = 12;

/// Full-jitter backoff: a random wait in [0, min(cap, base * 2^attempt)].
pub fn backoff(attempt: u32) -> Duration {
    let base_ms: u64 = 10;
    let cap_ms: u64 = 1_000;
    let ceiling = cap_ms.min(base_ms.saturating_mul(1u64 << attempt.min(16)));
    Duration::from_millis(rand::rng().random_range(0..=ceiling))
}

pub async fn sleep_backoff(attempt: u32) {
    tokio::time::sleep(backoff(attempt)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let cap = 1_000u64.min(10 * (1u64 << attempt.min(16)));
            assert!(backoff(attempt) <= Duration::from_millis(cap));
        }
    }
}
