//! Retries against DynamoDB: transaction conflicts, throttling and unprocessed keys. The SDK's
//! standard retry covers plain throttling of single requests; a cancelled transaction needs
//! the whole read-decide-write cycle again, under the domain's [`Retry`] policy.

use std::time::Duration;

pub use bonus_domain::retry::{backoff, Retry, MAX_ATTEMPTS};

/// Wait out a pause the [`Retry`] policy asked for.
pub async fn pause(pause: Duration) {
    if !pause.is_zero() {
        bonus_metrics::count(bonus_metrics::name::RETRIES, &[], 1);
        tokio::time::sleep(pause).await;
    }
}

/// A jittered wait for loops that are not retries of one cycle (a claim held by another
/// consumer, the next page after a throttled batch).
pub async fn sleep_backoff(attempt: u32) {
    tokio::time::sleep(backoff(attempt)).await;
}
