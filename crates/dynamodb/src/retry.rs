//! Jittered exponential backoff for what DynamoDB asks us to retry: transaction conflicts,
//! throttling, and its own internal errors. The SDK's standard retry already covers plain
//! throttling of single requests; this covers the cancelled-transaction case too, where the
//! whole read-decide-write cycle has to run again.

/// How often a read-decide-write cycle is tried before we give up with a 503.
pub const MAX_ATTEMPTS: u32 = 12;

pub use bonus_domain::retry::backoff;

pub async fn sleep_backoff(attempt: u32) {
    tokio::time::sleep(backoff(attempt)).await;
}
