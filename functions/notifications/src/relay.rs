//! Publishing: outbox events to the notifications queue, without a dual write.
//!
//! The ledger writes each event to the outbox in the same transaction as the change. Two
//! ways take it from there, both send first and delete the outbox item after SQS took it, so
//! a process that dies in between sends the event again later, never loses it (the consumer
//! sends one message per event id and channel, whatever arrives twice):
//! - on AWS, [`relay_stream`]: the table's DynamoDB stream (INSERTs of `OUTBOX#` items only,
//!   by an event-source filter) invokes the relay Lambda;
//! - [`relay_once`]: polls the outbox. `bonus dev` runs it every 2 s; on AWS the relay Lambda
//!   runs it every 10 minutes for events older than 10 minutes, a backstop for records the
//!   stream could not deliver within its 24 hours.

use aws_lambda_events::event::dynamodb;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use bonus_lambda::app::Ctx;
use bonus_sqs as queue;

use crate::NotifyError;

/// Move up to `limit` events per outbox shard (written before `before`, if given) to the
/// notifications queue. Returns how many.
pub async fn relay_once(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    limit: i32,
    before: Option<DateTime<Utc>>,
) -> Result<usize, NotifyError> {
    let mut moved = 0;
    for shard in 0..bonus_dynamodb::keys::OUTBOX_SHARDS {
        let page = ctx.store.outbox_page(shard, limit, before).await?;
        if page.is_empty() {
            continue;
        }
        let bodies = page
            .iter()
            .map(|(_, e)| serde_json::to_string(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NotifyError::Provider(e.to_string()))?;
        queue::send_all(sqs, queue_url, &bodies).await?;
        for (k, _) in &page {
            ctx.store.delete_outbox(k).await?;
        }
        moved += page.len();
    }
    if moved > 0 {
        info!(moved, "outbox events relayed");
    }
    Ok(moved)
}

/// The body a stream record carries to the queue, if it is an outbox item (an INSERT of an
/// `OUTBOX#` item): a ledger event, or a task such as an offer's send.
fn outbox_event(record: &dynamodb::EventRecord) -> Option<Result<serde_json::Value, String>> {
    let is_outbox = matches!(
        record.change.keys.get(bonus_dynamodb::keys::PK),
        Some(serde_dynamo::AttributeValue::S(pk)) if pk.starts_with("OUTBOX#")
    );
    if record.event_name != "INSERT" || !is_outbox {
        return None;
    }
    let image: bonus_dynamodb::Item = record.change.new_image.clone().into();
    Some(bonus_dynamodb::notify::outbox_body(image).map_err(|e| e.to_string()))
}

fn outbox_key(record: &dynamodb::EventRecord) -> Option<(String, String)> {
    let text = |name| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    Some((
        text(bonus_dynamodb::keys::PK)?,
        text(bonus_dynamodb::keys::SK)?,
    ))
}

/// The relay Lambda on a DynamoDB stream batch. Records are sent in stream order; when a send
/// fails, the first record not sent is reported (the stream resumes there), so nothing after
/// a failure is skipped.
pub async fn relay_stream(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: dynamodb::Event,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut batch: Vec<(&dynamodb::EventRecord, String)> = Vec::new();
    for record in &event.records {
        match outbox_event(record) {
            None => {}
            Some(Ok(body)) => batch.push((record, body.to_string())),
            // Our own write, so this is a bug, not input: logged loudly, and the outbox item
            // stays in the table for inspection.
            Some(Err(e)) => error!(error = %e, "outbox record is not an event"),
        }
    }
    // SQS takes 10 per call: send chunk by chunk, stop at the first failure.
    for chunk in batch.chunks(10) {
        let bodies: Vec<String> = chunk.iter().map(|(_, b)| b.clone()).collect();
        if let Err(e) = queue::send_all(sqs, queue_url, &bodies).await {
            warn!(error = %e, "relay send failed; the stream retries from here");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = chunk[0].0.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            return response;
        }
        for (record, _) in chunk {
            if let Some(k) = outbox_key(record) {
                if let Err(e) = ctx.store.delete_outbox(&k).await {
                    // Sent but not deleted: the backstop sends it again, the consumer's claim
                    // makes that harmless.
                    warn!(error = %e, "outbox item not deleted");
                }
            }
        }
    }
    info!(relayed = batch.len(), "stream batch relayed");
    response
}
