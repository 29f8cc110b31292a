//! Ledger writes: every change of a member's points is one TransactWriteItems that writes the
//! account (conditional on its version), the lot, the statement entry, the domain event
//! (outbox) and the idempotency record of the request that caused it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_item, key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use crate::account::Account;
use crate::clock::ts;
use crate::events::{DomainEvent, LedgerEntry};
use crate::ledger::OrderPlan;
use crate::lot::Lot;
use crate::store::campaigns::{shards_by_campaign, take_item, BudgetShard, BudgetTake};
use crate::store::config::MemberProfile;

/// The stored outcome of one webhook event (partner + order id + event type). It makes the
/// webhook idempotent: a repeat with the same body gets `response` back; a different body
/// is a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub partner_id: String,
    pub order_id: String,
    pub event: String,
    pub body_sha256: String,
    pub member_id: Option<String>,
    pub points: i64,
    pub lot_id: Option<String>,
    /// Points each campaign paid for this order (given back on refunds).
    #[serde(default)]
    pub campaign_points: std::collections::BTreeMap<String, i64>,
    /// HTTP status and JSON body of the first answer.
    pub status: u16,
    pub response: String,
    pub recorded_at: DateTime<Utc>,
}

/// Everything one order writes, decided in pure code before the write.
#[derive(Debug, Clone)]
pub struct OrderWrite {
    pub record: OrderRecord,
    /// Account version read before the decision; the write fails if it moved.
    pub expected_version: u64,
    pub plan: OrderPlan,
    /// Conditional takes from campaign budget shards.
    pub takes: Vec<BudgetTake>,
    /// A member enrolled by this very order (auto-enrolment): the account and this profile
    /// are created, conditional on not existing yet.
    pub enrol: Option<MemberProfile>,
}

/// What the one read of an order webhook found.
#[derive(Debug, Default)]
pub struct OrderRead {
    pub account: Option<Account>,
    pub record: Option<OrderRecord>,
    /// Budget shards of the campaigns that may apply, by campaign id.
    pub budgets: BTreeMap<String, Vec<BudgetShard>>,
}

/// What a webhook writes: a ledger change, or only its idempotency record (non-members,
/// capped behaviour events).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // built once per request and consumed at once
pub enum Booking {
    Ledger(OrderWrite),
    RecordOnly(OrderRecord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Committed,
    /// The idempotency record exists: this event was processed before.
    Duplicate,
    /// The account changed since it was read: read again and decide again.
    Stale,
    /// A transaction conflict or throttling: back off and try again.
    Retry,
}

fn classify(outcome: TxOutcome) -> Commit {
    match outcome {
        TxOutcome::Committed => Commit::Committed,
        o if o.failed_condition(0) => Commit::Duplicate,
        // The account moved, or a budget shard has less left than we read: decide again.
        TxOutcome::Cancelled(reasons) if reasons.iter().any(|r| r == "ConditionalCheckFailed") => {
            Commit::Stale
        }
        _ => Commit::Retry,
    }
}

impl Store {
    /// The one read of an order webhook: the member's account, any earlier record of this
    /// event and the budget shards of campaigns that may apply, in a single strongly
    /// consistent BatchGetItem.
    pub async fn read_for_order(
        &self,
        account_keys: Option<(String, String)>,
        record_keys: (String, String),
        budget_keys: &[(String, String)],
    ) -> Result<OrderRead, StoreError> {
        let mut wanted = vec![key_map(&record_keys)];
        wanted.extend(account_keys.iter().map(key_map));
        wanted.extend(budget_keys.iter().map(key_map));
        if wanted.len() > 100 {
            return Err(StoreError::Build(format!(
                "{} keys in one BatchGetItem (limit 100)",
                wanted.len()
            )));
        }
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(wanted))
            .consistent_read(true)
            .build()?;
        let mut found: Vec<Item> = Vec::new();
        for attempt in 0..super::retry::MAX_ATTEMPTS {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request.clone())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            if let Some(mut items) = out.responses {
                found.extend(items.remove(&self.table).unwrap_or_default());
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    request = rest;
                    super::retry::sleep_backoff(attempt).await;
                }
                _ => break,
            }
        }
        let text = |item: &Item, name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        let mut read = OrderRead::default();
        let mut shards = Vec::new();
        for item in found {
            let (pk, sk) = (text(&item, keys::PK), text(&item, keys::SK));
            if (pk.as_str(), sk.as_str()) == (record_keys.0.as_str(), record_keys.1.as_str()) {
                read.record = Some(from_item(item)?);
            } else if account_keys
                .as_ref()
                .is_some_and(|k| k.0 == pk && k.1 == sk)
            {
                read.account = Some(from_item(item)?);
            } else {
                shards.push(item);
            }
        }
        read.budgets = shards_by_campaign(shards)?;
        Ok(read)
    }

    pub async fn get_order_record(
        &self,
        partner_id: &str,
        order_id: &str,
        event: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.get(keys::order_event(partner_id, order_id, event))
            .await
    }

    pub async fn commit_booking(&self, b: &Booking) -> Result<Commit, StoreError> {
        match b {
            Booking::Ledger(w) => self.commit_order(w).await,
            Booking::RecordOnly(r) => self.commit_record_only(r).await,
        }
    }

    /// Write an order: idempotency record, account (if the version is still the one read),
    /// lot, entry and events, all or nothing.
    pub async fn commit_order(&self, w: &OrderWrite) -> Result<Commit, StoreError> {
        let r = &w.record;
        let a = &w.plan.account;
        let account_item = to_item(keys::account(&a.programme_id, &a.member_id), "account", a)?;
        let account_put = if w.enrol.is_some() {
            self.put_new(account_item)?
        } else {
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(account_item))
                .condition_expression("#v = :expected")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(w.expected_version.to_string()),
                )
                .build()?;
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build()
        };
        let mut items = vec![
            self.put_new(to_item(
                keys::order_event(&r.partner_id, &r.order_id, &r.event),
                "order_event",
                r,
            )?)?,
            account_put,
        ];
        if let Some(profile) = &w.enrol {
            items.push(self.put_new(to_item(
                keys::profile(&a.programme_id, &a.member_id),
                "profile",
                profile,
            )?)?);
        }
        if let Some(lot) = &w.plan.lot {
            items.push(self.put_new(to_item(
                keys::lot(&a.programme_id, &a.member_id, &lot.lot_id),
                "lot",
                lot,
            )?)?);
        }
        if let Some(entry) = &w.plan.entry {
            items.push(self.put_new(to_item(
                keys::entry(&a.programme_id, &a.member_id, entry.seq),
                "entry",
                entry,
            )?)?);
        }
        for take in &w.takes {
            items.push(take_item(self, take)?);
        }
        for event in &w.plan.events {
            items.push(self.put_new(to_item(
                keys::outbox(&event.event_id, &ts(event.occurred_at)),
                "event",
                event,
            )?)?);
        }
        Ok(classify(self.transact(items).await?))
    }

    /// Record an order event that moves no points (a non-member's order, or one that earned 0).
    pub async fn commit_record_only(&self, r: &OrderRecord) -> Result<Commit, StoreError> {
        let item = self.put_new(to_item(
            keys::order_event(&r.partner_id, &r.order_id, &r.event),
            "order_event",
            r,
        )?)?;
        Ok(classify(self.transact(vec![item]).await?))
    }

    /// A member's lots (for tests, audit and support; not on a request path).
    pub async fn lots(&self, programme_id: &str, member_id: &str) -> Result<Vec<Lot>, StoreError> {
        self.query_prefix(&keys::member_pk(programme_id, member_id), "LOT#")
            .await
    }

    /// A member's statement entries in order (for tests and audit; the paged API comes later).
    pub async fn entries(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.query_prefix(
            &keys::member_pk(programme_id, member_id),
            keys::ENTRY_PREFIX,
        )
        .await
    }

    /// Outbox events of one shard, oldest first.
    pub async fn outbox_shard(&self, shard: u32) -> Result<Vec<DomainEvent>, StoreError> {
        self.query_prefix(&format!("OUTBOX#{shard:02}"), "").await
    }

    pub(crate) async fn query_prefix<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query_items(pk, prefix)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Every item of a partition whose sort key starts with `prefix` (all pages, consistent).
    pub(crate) async fn query_items(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .set_exclusive_start_key(start.take());
            q = if prefix.is_empty() {
                q.key_condition_expression("#pk = :pk")
            } else {
                q.key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", keys::SK)
                    .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_string()))
            };
            let page = q.send().await.map_err(StoreError::sdk)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}
