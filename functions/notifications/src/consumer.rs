//! The notifications queue's consumer. Each body is parsed on its own, so one bad body never
//! fails the rest of a batch. A body is one of:
//! - a ledger event (from the outbox relay),
//! - an SES event, raw or in its SNS envelope (bounces and complaints),
//! - a statement task (`{"statement": ...}`, from the monthly scheduler),
//! - a partner's clearing statement (`{"clearing_statement": ...}`, from the clearing worker),
//! - an offer's send (`{"offer": ...}`, from the outbox: the send, its shards, its members).
//!
//! A message that cannot be parsed or keeps failing is left on the queue and, after the
//! queue's maxReceiveCount, lands in the dead-letter queue (alarmed).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use tracing::{error, warn};

use bonus_domain::events::DomainEvent;
use bonus_lambda::app::Ctx;
use bonus_sqs::{self as queue, QueueError};

use crate::feedback::{self, SesEvent};
use crate::offers::{self, OfferTask};
use crate::partner_statement::{self, PartnerStatementTask};
use crate::statement::{self, StatementTask};
use crate::{events, NotifyError, Outcome, Senders};

/// SQS will not hide a message longer than 12 hours; a longer wait takes two rounds.
const MAX_VISIBILITY_SECONDS: i64 = 43_200;

#[derive(Debug, Clone)]
pub enum Work {
    Event(Box<DomainEvent>),
    Feedback(Box<SesEvent>),
    Statement(StatementTask),
    PartnerStatement(PartnerStatementTask),
    Offer(OfferTask),
}

/// What a body is.
pub fn parse(body: &str) -> Result<Work, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    // An SNS envelope (a subscription without raw message delivery).
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner = v.get("Message").and_then(Value::as_str).unwrap_or("");
        return parse(inner);
    }
    if let Some(task) = v.get("statement") {
        return serde_json::from_value(task.clone())
            .map(Work::Statement)
            .map_err(|e| format!("statement task: {e}"));
    }
    if let Some(task) = v.get("clearing_statement") {
        return serde_json::from_value(task.clone())
            .map(Work::PartnerStatement)
            .map_err(|e| format!("clearing statement task: {e}"));
    }
    if let Some(task) = v.get("offer") {
        return serde_json::from_value(task.clone())
            .map(Work::Offer)
            .map_err(|e| format!("offer task: {e}"));
    }
    if v.get("eventType").is_some() || v.get("notificationType").is_some() {
        return serde_json::from_value(v)
            .map(|e| Work::Feedback(Box::new(e)))
            .map_err(|e| format!("SES event: {e}"));
    }
    serde_json::from_value(v)
        .map(|e| Work::Event(Box::new(e)))
        .map_err(|e| format!("event: {e}"))
}

/// Do one piece of work.
pub async fn process(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    work: &Work,
) -> Result<Outcome, NotifyError> {
    // Boxed: the futures are deep, and a Lambda handler nests them further.
    match work {
        Work::Event(e) => Box::pin(events::deliver(ctx, senders, e)).await,
        Work::Feedback(e) => Box::pin(feedback::apply(ctx, e)).await,
        Work::Statement(t) => Box::pin(statement::run(ctx, senders, sqs, queue_url, t)).await,
        Work::PartnerStatement(t) => Box::pin(partner_statement::run(ctx, senders, t)).await,
        Work::Offer(t) => Box::pin(offers::run(ctx, senders, sqs, queue_url, t)).await,
    }
}

/// What to do with a queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Done (sent, or nothing to send): delete it.
    Done(usize),
    /// Not yet: hide it this many seconds.
    Wait(i32),
    /// Failed: leave it, it comes back (and ends in the DLQ if it keeps failing).
    Retry,
}

pub async fn step(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    message_id: &str,
    body: &str,
) -> Step {
    let work = match parse(body) {
        Ok(w) => w,
        Err(e) => {
            warn!(message_id, error = %e, "unreadable message; left for the dead-letter queue");
            return Step::Retry;
        }
    };
    match process(ctx, senders, sqs, queue_url, &work).await {
        Ok(Outcome::Sent(n)) => Step::Done(n),
        Ok(Outcome::Deferred(at)) => {
            let wait = (at - ctx.now())
                .num_seconds()
                .clamp(1, MAX_VISIBILITY_SECONDS);
            Step::Wait(i32::try_from(wait).unwrap_or(43_200))
        }
        Err(e) => {
            error!(message_id, error = %e, "message failed; it will be retried");
            Step::Retry
        }
    }
}

async fn hide(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
    seconds: i32,
) -> Result<(), QueueError> {
    sqs.change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(seconds)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| QueueError::Sqs(format!("{e:?}")))
}

/// The notifications Lambda (SQS event source with `ReportBatchItemFailures`). A message that
/// must wait (quiet hours, a digest) is hidden until its time and reported as not done, so
/// SQS keeps it.
pub async fn handle_sqs(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or("");
        match step(ctx, senders, sqs, queue_url, &id, body).await {
            Step::Done(_) => {}
            Step::Wait(seconds) => {
                if let Some(handle) = &record.receipt_handle {
                    if let Err(e) = hide(sqs, queue_url, handle, seconds).await {
                        warn!(message_id = %id, error = %e, "could not defer; retried sooner");
                    }
                }
                response.add_failure(id);
            }
            Step::Retry => response.add_failure(id),
        }
    }
    response
}

/// Consume one batch (up to 10) of the notifications queue (locally; on AWS the Lambda event
/// source does the receiving). Returns (messages sent, messages waiting).
pub async fn consume_once(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<(usize, usize), NotifyError> {
    consume_batch(ctx, senders, sqs, queue_url)
        .await
        .map(|(_, sent, waiting)| (sent, waiting))
}

/// Consume batches until the queue has nothing visible (or `max_batches`). Returns (sent,
/// waiting).
pub async fn consume_all(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max_batches: usize,
) -> Result<(usize, usize), NotifyError> {
    let (mut sent, mut waiting) = (0, 0);
    for _ in 0..max_batches {
        let (received, s, w) = consume_batch(ctx, senders, sqs, queue_url).await?;
        sent += s;
        waiting += w;
        if received == 0 {
            break;
        }
    }
    Ok((sent, waiting))
}

async fn consume_batch(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<(usize, usize, usize), NotifyError> {
    let (mut sent, mut waiting) = (0, 0);
    let batch = queue::receive(sqs, queue_url, 0).await?;
    let received = batch.len();
    for m in batch {
        match step(ctx, senders, sqs, queue_url, &m.message_id, &m.body).await {
            Step::Done(n) => {
                sent += n;
                queue::delete(sqs, queue_url, &m.receipt_handle).await?;
            }
            Step::Wait(seconds) => {
                waiting += 1;
                hide(sqs, queue_url, &m.receipt_handle, seconds).await?;
            }
            Step::Retry => {}
        }
    }
    Ok((received, sent, waiting))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_told_apart() {
        let event = r#"{"event_id":"e1","occurred_at":"2026-11-23T10:00:00Z","programme_id":"velo",
            "member_id":"M-1","type":"TierChanged","from":"Silver","to":"Gold","reason":"volume"}"#;
        assert!(
            matches!(parse(event), Ok(Work::Event(_))),
            "{:?}",
            parse(event)
        );
        let bounce = r#"{"eventType":"Bounce","mail":{"messageId":"abc"},
            "bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@b.example"}]}}"#;
        assert!(matches!(parse(bounce), Ok(Work::Feedback(_))));
        let wrapped = serde_json::json!({"Type": "Notification", "Message": bounce}).to_string();
        assert!(matches!(parse(&wrapped), Ok(Work::Feedback(_))));
        let task = r#"{"statement":{"programme_id":"velo","month":"2026-10","shard":3}}"#;
        assert!(matches!(parse(task), Ok(Work::Statement(t)) if t.shard == Some(3)));
        let mail = r#"{"clearing_statement":{"programme_id":"coal","month":"2026-11","partner_id":"bakery"}}"#;
        assert!(matches!(parse(mail), Ok(Work::PartnerStatement(t)) if t.partner_id == "bakery"));
        assert!(parse(r#"{"clearing_statement":{"month":"2026-11"}}"#).is_err());
        let offer = r#"{"offer":{"programme_id":"velo","partner_id":"velo-shop","offer_id":"gold","shard":2}}"#;
        assert!(matches!(parse(offer), Ok(Work::Offer(t)) if t.shard == Some(2)));
        assert!(parse(r#"{"offer":{"offer_id":"gold"}}"#).is_err());
        assert!(parse("{not json").is_err());
        assert!(parse(r#"{"hello":"world"}"#).is_err());
    }
}
