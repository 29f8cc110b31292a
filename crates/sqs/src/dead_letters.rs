//! Dead-letter queues for ops (`bonus dlq list|show|redrive`): what waits in each, and moving
//! it back to the queue it came from once the cause is fixed.
//!
//! A redrive receives a batch, sends it to the source queue, then deletes it from the
//! dead-letter queue. A crash between the send and the delete leaves a copy in both; every
//! consumer is idempotent (the same booking, night task or message is done once), so a copy
//! too many costs a read, never a point.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use crate::{sqs, QueueError};

/// Queues that collect failures but are not a queue's redrive target: failed stream batches
/// and failed scheduled runs. Their messages describe an invocation; they are looked at and
/// the run repeated (docs/operations.md), never redriven.
pub const FAILURE_QUEUE_SUFFIXES: [&str; 2] = ["-outbox-relay-failures", "-scheduled-failures"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQueue {
    pub name: String,
    pub url: String,
    /// Messages waiting (approximate, as SQS counts).
    pub messages: i64,
    /// The queue its messages came from (`X` for `X-dlq`), when it exists.
    pub source: Option<String>,
}

fn name_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The dead-letter and failure queues whose names start with `prefix` (e.g. `bonus-prod-`).
pub async fn dead_letter_queues(
    client: &Client,
    prefix: &str,
) -> Result<Vec<DeadLetterQueue>, QueueError> {
    let mut urls = Vec::new();
    let mut next = None;
    loop {
        let out = client
            .list_queues()
            .queue_name_prefix(prefix)
            .set_next_token(next)
            .max_results(1000)
            .send()
            .await
            .map_err(sqs)?;
        urls.extend(out.queue_urls.unwrap_or_default());
        next = out.next_token;
        if next.is_none() {
            break;
        }
    }
    let mut found = Vec::new();
    for url in &urls {
        let name = name_of(url);
        let is_dlq = name.ends_with("-dlq");
        if !is_dlq && !FAILURE_QUEUE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            continue;
        }
        let source = name
            .strip_suffix("-dlq")
            .and_then(|s| urls.iter().find(|u| name_of(u) == s))
            .cloned();
        found.push(DeadLetterQueue {
            name: name.to_string(),
            url: url.clone(),
            messages: crate::depth(client, url).await?,
            source,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Up to `max` messages of a queue, left where they are (received with no visibility
/// timeout, so they are visible again at once).
pub async fn peek(client: &Client, url: &str, max: usize) -> Result<Vec<String>, QueueError> {
    let mut bodies = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while bodies.len() < max {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10.min((max - bodies.len()) as i32))
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(sqs)?;
        let messages = out.messages.unwrap_or_default();
        let mut new = 0;
        for m in messages {
            if seen.insert(m.message_id.clone().unwrap_or_default()) {
                bodies.push(m.body.unwrap_or_default());
                new += 1;
            }
        }
        if new == 0 {
            break;
        }
    }
    Ok(bodies)
}

/// Move up to `max` messages from `from` to `to`, batch by batch: sent, then deleted.
/// Returns how many moved.
pub async fn redrive(
    client: &Client,
    from: &str,
    to: &str,
    max: usize,
) -> Result<usize, QueueError> {
    let mut moved = 0;
    while moved < max {
        let out = client
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10.min((max - moved) as i32))
            .visibility_timeout(120)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(sqs)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .build()
                    .map_err(sqs)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = client
            .send_message_batch()
            .queue_url(to)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sqs)?;
        // Only what arrived at the source leaves the dead-letter queue; the rest shows again
        // after the visibility timeout.
        let deletes = sent
            .successful
            .iter()
            .filter_map(|ok| ok.id.parse::<usize>().ok())
            .filter_map(|i| messages.get(i))
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
                    .map_err(sqs)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if deletes.is_empty() {
            return Err(QueueError::NotSent(messages.len()));
        }
        let count = deletes.len();
        client
            .delete_message_batch()
            .queue_url(from)
            .set_entries(Some(deletes))
            .send()
            .await
            .map_err(sqs)?;
        moved += count;
    }
    Ok(moved)
}

/// The URL of the queue `name` (for a redrive target given by name).
pub async fn queue_url(client: &Client, name: &str) -> Result<String, QueueError> {
    let out = client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(sqs)?;
    Ok(out.queue_url.unwrap_or_default())
}
