//! The outbox as the relay reads it, and the claim that makes each member message go once.

use crate::Stamped;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_item, key_map, keys, to_item, written, Item, Store, StoreError, TxOutcome};
use bonus_domain::member::Undeliverable;
use bonus_domain::notify::Channel;

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
    /// The provider's error code when the address or number failed for good.
    #[serde(default)]
    pub failure: Option<String>,
    /// DynamoDB TTL: claims and the log are kept [`KEEP_DAYS`].
    #[serde(default)]
    pub expires_ttl: i64,
}

/// What claiming a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours: send it.
    Claimed,
    /// Sent (or undeliverable) before: send nothing.
    Done,
    /// Another delivery claimed it at this time and may still be sending: come back later.
    Busy(DateTime<Utc>),
}

/// How long claims, the message log and provider message ids are kept: far longer than any
/// redelivery of an event (SQS keeps messages 4 days; the outbox backstop runs every 10 min).
pub const KEEP_DAYS: i64 = 90;

/// What an outbox item carries to the queue: the item without its keys and bookkeeping.
pub fn outbox_body(mut item: Item) -> Result<serde_json::Value, StoreError> {
    for name in [keys::PK, keys::SK, crate::ENTITY, crate::SCHEMA_ATTRIBUTE] {
        item.remove(name);
    }
    from_item(item)
}

impl Store {
    /// Up to `limit` bodies of one outbox shard (ledger events, and tasks such as an offer's
    /// send), oldest first, with their keys; with `before`, only those written before that
    /// time (the relay's backstop leaves the newest to the stream).
    pub async fn outbox_page(
        &self,
        shard: u32,
        limit: i32,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<((String, String), serde_json::Value)>, StoreError> {
        let before = before
            .map(bonus_domain::clock::ts)
            .unwrap_or_else(|| "~".into());
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", AttributeValue::S(format!("OUTBOX#{shard:02}")))
            .expression_attribute_values(":before", AttributeValue::S(before))
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
                outbox_body(item).map(|e| (k, e))
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

    /// Claim the message for an event on a channel. A claim still `sending` from before
    /// `stale_before` belongs to a process that died between claim and send; it is taken
    /// over, so the message is not lost.
    pub async fn claim_delivery(
        &self,
        d: &Delivery,
        stale_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let current: Option<Delivery> = match self.try_claim(d, stale_before).await? {
            None => return Ok(Claim::Claimed),
            Some(Some(old)) => Some(from_item(old)?),
            // The store did not return the item it kept: read it.
            Some(None) => {
                self.get(keys::delivery_claim(&d.event_id, &d.channel))
                    .await?
            }
        };
        Ok(match current {
            Some(c) if c.status == "sending" => Claim::Busy(c.at),
            _ => Claim::Done,
        })
    }

    /// None: claimed. Some(item): the claim already there (when the store returns it).
    async fn try_claim(
        &self,
        d: &Delivery,
        stale_before: DateTime<Utc>,
    ) -> Result<Option<Option<Item>>, StoreError> {
        let item = to_item(keys::delivery_claim(&d.event_id, &d.channel), "delivery", d)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(PK) OR (#status = :sending AND #at < :stale)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .expression_attribute_values(
                ":stale",
                AttributeValue::S(bonus_domain::clock::ts(stale_before)),
            )
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match put {
            Ok(_) => Ok(None),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                    Ok(Some(c.item))
                }
                other => Err(StoreError::Sdk(other.to_string())),
            },
        }
    }

    /// Give a claim back after a send that may succeed later (throttling, an outage), so the
    /// event's next delivery sends it.
    pub async fn release_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::delivery_claim(
                &d.event_id,
                &d.channel,
            ))))
            .condition_expression("#status = :sending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", AttributeValue::S("sending".into()))
            .send()
            .await;
        written(out).map(|_| ())
    }

    /// Record that a channel failed for good (a bounced address, an invalid number), on the
    /// member's profile, only while the profile still has that address: a member who gave a
    /// new one is reachable again. False when the profile has another address by now.
    pub async fn mark_undeliverable(
        &self,
        programme_id: &str,
        member_id: &str,
        channel: Channel,
        address: &str,
        failure: &Undeliverable,
    ) -> Result<bool, StoreError> {
        let (field, flag) = match channel {
            Channel::Email => ("email", "email_undeliverable"),
            Channel::Sms => ("phone", "sms_undeliverable"),
        };
        let value = serde_dynamo::to_attribute_value(failure)
            .map_err(|e| StoreError::Sdk(e.to_string()))?;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::profile(programme_id, member_id))))
            .update_expression("SET #flag = :f")
            .condition_expression("#addr = :addr")
            .expression_attribute_names("#flag", flag)
            .expression_attribute_names("#addr", field)
            .expression_attribute_values(":f", value)
            .expression_attribute_values(":addr", AttributeValue::S(address.into()))
            .send()
            .await;
        written(update)
    }

    /// Withdraw a member's e-mail consent (a complaint: they marked a message as spam).
    pub async fn withdraw_email_consent(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::profile(programme_id, member_id))))
            .update_expression("SET consents.email = :no")
            .condition_expression("attribute_exists(consents)")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        written(out).map(|_| ())
    }

    /// Record how the send went (and index it by day for `bonus notifications list`, and by
    /// the provider's message id for bounces and complaints).
    pub async fn finish_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        self.put(keys::delivery_claim(&d.event_id, &d.channel), "delivery", d)
            .await?;
        if let Some(id) = &d.provider_id {
            self.put(keys::provider_message(id), "delivery", d).await?;
        }
        self.put(
            keys::delivery_log(d.at, &d.event_id, &d.channel),
            "delivery_log",
            d,
        )
        .await
    }

    /// The message a provider's message id belongs to (for its bounce or complaint).
    pub async fn delivery_by_provider_id(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.get(keys::provider_message(id)).await
    }

    /// Messages recorded on a day (UTC), oldest first.
    pub async fn deliveries_on(&self, day: chrono::NaiveDate) -> Result<Vec<Delivery>, StoreError> {
        self.query_prefix(&keys::delivery_log_pk(day), "").await
    }
}

/// A member's daily digest of points earned: what it holds so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    #[serde(default)]
    pub points: i64,
    #[serde(default)]
    pub orders: i64,
    /// When the first of its points become available.
    #[serde(default)]
    pub first_available: Option<DateTime<Utc>>,
    #[serde(default)]
    pub closed: bool,
}

/// Where a points-earned event went in a member's digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAdd {
    /// Added to the digest of the slot asked for.
    Added,
    /// Added before (a duplicate delivery), to the digest of this slot.
    AlreadyIn(DateTime<Utc>),
    /// That slot's digest went out already: try a later one.
    Closed,
}

#[derive(Deserialize)]
struct DigestMember {
    slot: DateTime<Utc>,
}

impl Store {
    /// Add a points-earned event to the digest that goes out at `slot`: one transaction of
    /// "this event is in a digest" (put-if-absent) and the digest's sums (only while it is
    /// not closed), so an event is counted once, in exactly one digest.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_to_digest(
        &self,
        programme_id: &str,
        member_id: &str,
        event_id: &str,
        slot: DateTime<Utc>,
        points: i64,
        available_at: DateTime<Utc>,
    ) -> Result<DigestAdd, StoreError> {
        let ttl = (slot + chrono::Duration::days(KEEP_DAYS)).timestamp();
        let member_key = keys::digest_member(programme_id, member_id, event_id);
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let mut membership = to_item(
                member_key.clone(),
                "digest_member",
                &serde_json::json!({ "slot": bonus_domain::clock::ts(slot) }),
            )?;
            membership.insert(
                super::schema::TTL_ATTRIBUTE.into(),
                AttributeValue::N(ttl.to_string()),
            );
            let sums = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::digest(programme_id, member_id, slot))))
                .stamped_expression(
                    "ADD points :p, orders :one \
                     SET first_available = if_not_exists(first_available, :a), #ttl = :ttl",
                )
                .condition_expression("attribute_not_exists(closed)")
                .expression_attribute_names("#ttl", super::schema::TTL_ATTRIBUTE)
                .expression_attribute_values(":p", AttributeValue::N(points.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(
                    ":a",
                    AttributeValue::S(bonus_domain::clock::ts(available_at)),
                )
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
                .build()?;
            let outcome = self
                .transact(vec![
                    self.put_new(membership)?,
                    TransactWriteItem::builder().update(sums).build(),
                ])
                .await?;
            match outcome {
                TxOutcome::Committed => return Ok(DigestAdd::Added),
                o if o.failed_condition(0) => {
                    let m: Option<DigestMember> = self.get(member_key.clone()).await?;
                    if let Some(m) = m {
                        return Ok(DigestAdd::AlreadyIn(m.slot));
                    }
                }
                o if o.failed_condition(1) => return Ok(DigestAdd::Closed),
                _ => retry.backoff(),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// Close the digest of a slot (nothing more goes in) and return its sums.
    pub async fn close_digest(
        &self,
        programme_id: &str,
        member_id: &str,
        slot: DateTime<Utc>,
    ) -> Result<Digest, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::digest(programme_id, member_id, slot))))
            .update_expression("SET closed = :yes")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        from_item(out.attributes.unwrap_or_default())
    }
}
