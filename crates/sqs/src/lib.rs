//! SQS adapter: the nightly job's work queue (and, later, notifications). Real
//! `aws-sdk-sqs`; locally and in tests against moto.
//!
//! Every queue has a dead-letter queue: a message received `max_receive` times without being
//! deleted moves there, so a poison message can never block the queue.

pub mod dead_letters;

use std::collections::HashMap;
use std::sync::Arc;

use bonus_domain::random::OsRandom;
use bonus_domain::retry::Retry;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("sqs: {0}")]
    Sqs(String),
    #[error("sqs: {0} message(s) could not be sent")]
    NotSent(usize),
}

fn sqs<E: std::fmt::Debug>(e: E) -> QueueError {
    QueueError::Sqs(format!("{e:?}"))
}

/// SDK configuration for a local SQS (moto): dummy credentials, a region, the endpoint.
pub fn local_config(endpoint: &str) -> aws_sdk_sqs::Config {
    let creds = aws_sdk_sqs::config::Credentials::new("local", "local", None, None, "bonus-local");
    aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("eu-west-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build()
}

/// A queue and its dead-letter queue, created if missing. Returns the queue's URL.
pub async fn ensure_queue(
    client: &Client,
    name: &str,
    visibility_timeout_secs: u32,
    max_receive: u32,
) -> Result<String, QueueError> {
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(sqs)?;
    let dlq_url = dlq.queue_url.unwrap_or_default();
    let attrs = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sqs)?;
    let dlq_arn = attrs
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive.to_string(),
    })
    .to_string();
    let out = client
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(sqs)?;
    Ok(out.queue_url.unwrap_or_default())
}

/// Send messages in batches of 10; entries SQS refuses are sent again (a few times).
pub async fn send_all(client: &Client, url: &str, bodies: &[String]) -> Result<(), QueueError> {
    for chunk in bodies.chunks(10) {
        let mut pending: HashMap<String, &String> = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| (i.to_string(), b))
            .collect();
        let mut retry = Retry::with_max(Arc::new(OsRandom), 5);
        while let Some(pause) = retry.next() {
            if pending.is_empty() {
                break;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body.as_str())
                        .build()
                        .map_err(sqs)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs)?;
            for ok in out.successful {
                pending.remove(&ok.id);
            }
        }
        if !pending.is_empty() {
            return Err(QueueError::NotSent(pending.len()));
        }
    }
    Ok(())
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How often it was received, this time included (SQS's ApproximateReceiveCount).
    pub receive_count: u32,
}

/// Up to 10 messages, waiting up to `wait_secs` for the first.
pub async fn receive(
    client: &Client,
    url: &str,
    wait_secs: i32,
) -> Result<Vec<Received>, QueueError> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .map_err(sqs)?;
    Ok(out
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| Received {
            receive_count: m
                .attributes
                .as_ref()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            message_id: m.message_id.unwrap_or_default(),
            receipt_handle: m.receipt_handle.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect())
}

pub async fn delete(client: &Client, url: &str, receipt_handle: &str) -> Result<(), QueueError> {
    client
        .delete_message()
        .queue_url(url)
        .receipt_handle(receipt_handle)
        .send()
        .await
        .map_err(sqs)?;
    Ok(())
}

/// Approximate number of messages waiting in a queue (tests and the CLI's summary).
pub async fn depth(client: &Client, url: &str) -> Result<i64, QueueError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(sqs)?;
    Ok(out
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0))
}
