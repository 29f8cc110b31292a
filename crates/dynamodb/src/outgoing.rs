//! The delivery log of partners' outgoing webhooks: one record per attempt, kept 30 days.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use bonus_domain::clock::ts;

use crate::{from_item, keys, to_item, Store, StoreError};

pub const LOG_KEEP_DAYS: i64 = 30;

/// One attempt to deliver a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub partner_id: String,
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// `delivered`, `failed` (tried again later) or `dropped` (the subscription changed).
    pub outcome: String,
    /// The receiver's HTTP status, if it answered.
    #[serde(default)]
    pub status: Option<u16>,
    /// Why it failed, without the receiver's body: `timeout`, `connect`, `http_500`, ...
    #[serde(default)]
    pub error: Option<String>,
    pub duration_ms: u64,
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub expires_ttl: i64,
}

impl WebhookAttempt {
    pub fn ttl(at: DateTime<Utc>) -> i64 {
        (at + Duration::days(LOG_KEEP_DAYS)).timestamp()
    }
}

impl Store {
    pub async fn log_webhook_attempt(&self, a: &WebhookAttempt) -> Result<(), StoreError> {
        let item = to_item(
            keys::webhook_log(&a.partner_id, &ts(a.at), &a.webhook_id, a.attempt),
            "webhook_attempt",
            a,
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// A partner's delivery log, newest first: up to `limit` attempts before `before` (a
    /// sort key from the last page), and the sort key to go on from.
    pub async fn webhook_log(
        &self,
        partner_id: &str,
        limit: i32,
        before: Option<&str>,
    ) -> Result<(Vec<WebhookAttempt>, Option<String>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", AttributeValue::S(format!("WHLOG#{partner_id}")))
            .expression_attribute_values(":before", AttributeValue::S(before.unwrap_or("~").into()))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let items = out.items.unwrap_or_default();
        let last = items.last().and_then(|i| match i.get(keys::SK) {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            _ => None,
        });
        let attempts = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((attempts, out.last_evaluated_key.and(last)))
    }
}
