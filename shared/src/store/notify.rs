//! The outbox as the relay reads it, and the claim that makes each member message go once.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_item, key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use crate::events::DomainEvent;

/// A message sent (or being sent) for an event on a channel: written before the send, so a
/// duplicate delivery of the event finds it and sends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub channel: String,
    pub programme_id: String,
    pub member_id: String,
    pub message: String,
    pub locale: String,
    pub status: String,
    #[serde(default)]
    pub provider_id: Option<String>,
    pub at: DateTime<Utc>,
    /// The subject (e-mail) or the text (SMS), for `bonus notifications list`.
    pub summary: String,
}

impl Store {
    /// Up to `limit` events of one outbox shard, oldest first, with their keys.
    pub async fn outbox_page(
        &self,
        shard: u32,
        limit: i32,
    ) -> Result<Vec<((String, String), DomainEvent)>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":pk", AttributeValue::S(format!("OUTBOX#{shard:02}")))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let text = |item: &Item, name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let k = (text(&item, keys::PK), text(&item, keys::SK));
                from_item(item).map(|e| (k, e))
            })
            .collect()
    }

    pub async fn delete_outbox(&self, k: &(String, String)) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(k)))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Claim the message for an event on a channel. False: it was claimed before (a
    /// duplicate delivery of the event), send nothing.
    pub async fn claim_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
        let item = to_item(keys::delivery_claim(&d.event_id, &d.channel), "delivery", d)?;
        match self.transact(vec![self.put_new(item)?]).await? {
            TxOutcome::Committed => Ok(true),
            o if o.failed_condition(0) => Ok(false),
            other => Err(StoreError::Sdk(format!("claim not written: {other:?}"))),
        }
    }

    /// Record how the send went (and index it by day for `bonus notifications list`).
    pub async fn finish_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        self.put(keys::delivery_claim(&d.event_id, &d.channel), "delivery", d)
            .await?;
        self.put(
            keys::delivery_log(d.at, &d.event_id, &d.channel),
            "delivery_log",
            d,
        )
        .await
    }

    /// Messages recorded on a day (UTC), oldest first.
    pub async fn deliveries_on(&self, day: chrono::NaiveDate) -> Result<Vec<Delivery>, StoreError> {
        self.query_prefix(&keys::delivery_log_pk(day), "").await
    }
}
