//! Member messages from the ledger's events.
//!
//! - [`relay`]: outbox events to the notifications queue (DynamoDB stream on AWS, a poll
//!   locally and as a backstop), never lost, possibly twice.
//! - [`consumer`]: the queue's consumer: each body is a ledger event, an SES bounce or
//!   complaint, or a monthly statement task.
//! - [`events`]: which message an event becomes (per order or in a daily digest).
//! - [`deliver`]: one message to one member: channels, rendering, quiet hours, the claim per
//!   message and channel that makes a duplicate send nothing, providers, failures.
//! - [`statement`]: the monthly statement e-mail; [`feedback`]: bounces and complaints.
//! - [`outgoing`]: partners' outgoing webhooks (queued per event, posted by the webhook
//!   sender, retried with backoff, logged).
//! - [`offers`]: an offer's send fanned out to its segment, under the frequency cap; and
//!   the segment facts each ledger event refreshes.

pub mod consumer;
pub mod deliver;
pub mod events;
pub mod feedback;
pub mod offers;
pub mod outgoing;
pub mod partner_statement;
pub mod relay;
pub mod statement;

use chrono::{DateTime, Utc};

pub use consumer::{consume_all, consume_once, handle_sqs};
pub use events::deliver;
pub use relay::{relay_once, relay_stream};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("store: {0}")]
    Store(#[from] bonus_dynamodb::StoreError),
    #[error("queue: {0}")]
    Queue(#[from] bonus_sqs::QueueError),
    #[error("render: {0}")]
    Render(#[from] bonus_messages::RenderError),
    #[error("provider: {0}")]
    Provider(String),
    #[error("bad task: {0}")]
    BadTask(String),
}

/// What happened to one piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Messages sent now (0 when the member hears about nothing, or all was sent before).
    Sent(usize),
    /// Not yet: an SMS in the member's quiet hours, or a daily digest before its hour.
    Deferred(DateTime<Utc>),
}

pub use bonus_messages::send::{first_use, Senders};
