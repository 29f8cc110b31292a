//! How long to wait before trying again: full-jitter exponential backoff, for transaction
//! conflicts and throttling (DynamoDB) and throttled sends (SES, SNS).

use std::time::Duration;

use rand::Rng;

/// Full-jitter backoff: a random wait in [0, min(cap, base * 2^attempt)].
pub fn backoff(attempt: u32) -> Duration {
    let base_ms: u64 = 10;
    let cap_ms: u64 = 1_000;
    let ceiling = cap_ms.min(base_ms.saturating_mul(1u64 << attempt.min(16)));
    Duration::from_millis(rand::rng().random_range(0..=ceiling))
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
