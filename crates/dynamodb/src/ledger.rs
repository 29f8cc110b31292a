//! Ledger writes: every change of a member's points is one TransactWriteItems that writes the
//! account (conditional on its version), the lot, the statement entry, the domain event
//! (outbox) and the idempotency record of the request that caused it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{account_item, from_item, key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use crate::campaigns::{give_back_item, shards_by_campaign, take_item};
use crate::lot_takes::PendingTakes;
use crate::sales::PendingSales;
use bonus_domain::account::Account;
use bonus_domain::booking::{LedgerWrite, OrderRecord};
use bonus_domain::budget::BudgetShard;
use bonus_domain::clock::ts;
use bonus_domain::events::{DomainEvent, LedgerEntry};
use bonus_domain::lot::Lot;
use bonus_domain::refund::OrderBook;

/// Keys in one BatchGetItem.
const BATCH_GET_LIMIT: usize = 100;

/// What the one read of an order webhook found.
#[derive(Debug, Default)]
pub struct OrderRead {
    pub account: Option<Account>,
    pub record: Option<OrderRecord>,
    /// The order's state: what it earned and refunds that wait for it.
    pub book: Option<OrderBook>,
    /// Budget shards of the campaigns that may apply, by campaign id.
    pub budgets: BTreeMap<String, Vec<BudgetShard>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Committed,
    /// The idempotency record exists: this event was processed before.
    Duplicate,
    /// The account changed since it was read: read again and decide again.
    Stale,
    /// Another transaction on one of the items was in flight (a lost race, as Stale): try
    /// again after a short wait.
    Conflict,
    /// Throttling: back off and try again.
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
        TxOutcome::Cancelled(reasons)
            if reasons
                .iter()
                .all(|r| r == "TransactionConflict" || r == "None") =>
        {
            Commit::Conflict
        }
        _ => Commit::Retry,
    }
}

/// A shop platform's delivery, remembered for a week so that a redelivery gets the same
/// answer without being processed again. (Processing again would change nothing either:
/// every step is idempotent on its business key. This only saves the work.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub status: u16,
    pub response: String,
    pub recorded_at: DateTime<Utc>,
    /// DynamoDB TTL (epoch seconds).
    pub expires_ttl: i64,
}

/// How long deliveries are remembered.
pub const DELIVERY_DAYS: i64 = 7;

impl Store {
    pub async fn get_delivery(
        &self,
        partner_id: &str,
        platform: &str,
        delivery_id: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        self.get(keys::delivery(partner_id, platform, delivery_id))
            .await
    }

    pub async fn put_delivery(
        &self,
        partner_id: &str,
        platform: &str,
        delivery_id: &str,
        delivery: &Delivery,
    ) -> Result<(), StoreError> {
        self.put(
            keys::delivery(partner_id, platform, delivery_id),
            "delivery",
            delivery,
        )
        .await
    }

    /// Several items (at most 100) as of one instant: a TransactGetItems, so that items
    /// written together are never seen half old, half new. None for a missing item.
    pub async fn snapshot(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        let gets = wanted
            .iter()
            .map(|k| {
                aws_sdk_dynamodb::types::Get::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(k)))
                    .build()
                    .map(|g| {
                        aws_sdk_dynamodb::types::TransactGetItem::builder()
                            .get(g)
                            .build()
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            match self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets.clone()))
                .send()
                .await
            {
                Ok(out) => {
                    return Ok(out
                        .responses
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| r.item)
                        .collect())
                }
                // A write in flight on one of the items: read again shortly.
                Err(e) if format!("{e:?}").contains("TransactionConflict") => retry.backoff(),
                Err(e) => return Err(StoreError::sdk(e)),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// Several items by key, strongly consistent, by key: one BatchGetItem per 100 keys
    /// (DynamoDB's limit; a typical read is one request). Unprocessed keys are fetched again
    /// after a backoff.
    pub async fn batch_get(
        &self,
        wanted: &[(String, String)],
    ) -> Result<BTreeMap<(String, String), Item>, StoreError> {
        let mut found = BTreeMap::new();
        for chunk in wanted.chunks(BATCH_GET_LIMIT) {
            found.extend(self.batch_get_100(chunk).await?);
        }
        Ok(found)
    }

    async fn batch_get_100(
        &self,
        wanted: &[(String, String)],
    ) -> Result<BTreeMap<(String, String), Item>, StoreError> {
        let mut found = BTreeMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(wanted.iter().map(key_map).collect()))
            .consistent_read(true)
            .build()?;
        let text = |item: &Item, name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request.clone())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            if let Some(mut items) = out.responses {
                for item in items.remove(&self.table).unwrap_or_default() {
                    found.insert((text(&item, keys::PK), text(&item, keys::SK)), item);
                }
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    request = rest;
                    retry.backoff();
                }
                _ => return Ok(found),
            }
        }
        Err(StoreError::Sdk(
            "BatchGetItem kept leaving keys unprocessed".into(),
        ))
    }

    /// The one read of an order webhook: the member's account, any earlier record of this
    /// event, the order's state and the budget shards of campaigns that may apply, in a
    /// single strongly consistent BatchGetItem.
    pub async fn read_for_order(
        &self,
        account_keys: Option<(String, String)>,
        record_keys: (String, String),
        book_keys: Option<(String, String)>,
        budget_keys: &[(String, String)],
    ) -> Result<OrderRead, StoreError> {
        let mut wanted = vec![record_keys.clone()];
        wanted.extend(account_keys.iter().cloned());
        wanted.extend(book_keys.iter().cloned());
        wanted.extend(budget_keys.iter().cloned());
        let mut found = self.batch_get(&wanted).await?;
        let mut take = |k: &Option<(String, String)>| k.as_ref().and_then(|k| found.remove(k));
        let record = take(&Some(record_keys));
        let account = take(&account_keys);
        let book = take(&book_keys);
        Ok(OrderRead {
            record: record.map(from_item).transpose()?,
            account: account.map(from_item).transpose()?,
            book: book.map(from_item).transpose()?,
            budgets: shards_by_campaign(found.into_values().collect())?,
        })
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

    /// Put-if-absent items for a member's new statement entries, and the clearing counter
    /// updates they make (in the same transaction, so the counters never disagree with the
    /// entries). `outstanding_change` is the account's own before/after difference.
    pub(crate) fn entry_items(
        &self,
        account: &Account,
        entries: &[LedgerEntry],
        outstanding_change: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = self.entry_puts(account, entries)?;
        items.extend(self.clearing_items(account, entries, outstanding_change)?);
        Ok(items)
    }

    /// Put-if-absent items for a member's statement entries (without their counters).
    pub(crate) fn entry_puts(
        &self,
        account: &Account,
        entries: &[LedgerEntry],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let (programme_id, member_id) = (&account.programme_id, &account.member_id);
        entries
            .iter()
            .map(|e| {
                self.put_new(to_item(
                    keys::entry(programme_id, member_id, e.seq),
                    "entry",
                    e,
                )?)
            })
            .collect()
    }

    /// Put-if-absent items for domain events (the transactional outbox).
    pub(crate) fn outbox_items(
        &self,
        events: &[DomainEvent],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        events
            .iter()
            .map(|e| {
                self.put_new(to_item(
                    keys::outbox(&e.event_id, &ts(e.occurred_at)),
                    "event",
                    e,
                )?)
            })
            .collect()
    }

    /// Write everything a webhook decided, all or nothing.
    pub async fn commit_booking(&self, w: &LedgerWrite) -> Result<Commit, StoreError> {
        let r = &w.record;
        let record = |r: &OrderRecord| {
            to_item(
                keys::order_event(&r.partner_id, &r.order_id, &r.event),
                "order_event",
                r,
            )
        };
        let mut items = vec![self.put_new(record(r)?)?];
        // Records of refunds that waited replace their "waiting" answer (the order state's
        // version guards them).
        for r in &w.records {
            items.push(self.put_item(record(r)?, None)?);
        }
        if let Some((book, expected)) = &w.book {
            let item = to_item(
                keys::order_book(&book.partner_id, &book.order_id),
                "order",
                book,
            )?;
            items.push(self.put_versioned(item, *expected)?);
        }
        if let Some((a, expected)) = &w.account {
            let item = account_item(a)?;
            items.push(self.put_versioned(item, *expected)?);
            if let Some(profile) = &w.enrol {
                items.push(self.put_new(self.profile_item(profile)?)?);
                items.push(self.member_list_item(profile)?);
            }
            let member = |lot: &Lot| keys::lot(&a.programme_id, &a.member_id, &lot.lot_id);
            for lot in &w.new_lots {
                items.push(self.put_new(to_item(member(lot), "lot", lot)?)?);
            }
            match &w.companion {
                None => items.extend(self.entry_items(a, &w.entries, w.outstanding_change)?),
                Some(c) => {
                    // A company order's employee share: their account, lots and entries in
                    // the same transaction; the clearing counters once for both (the two
                    // could meet on one counter shard, and a transaction names an item once).
                    let e = &c.account;
                    items.push(self.put_versioned(account_item(e)?, Some(c.expected_version))?);
                    for lot in &c.new_lots {
                        let k = keys::lot(&e.programme_id, &e.member_id, &lot.lot_id);
                        items.push(self.put_new(to_item(k, "lot", lot)?)?);
                    }
                    for (id, t) in &c.lot_takes {
                        items.push(self.lot_take(&e.programme_id, &e.member_id, id, *t)?);
                    }
                    items.extend(self.entry_puts(a, &w.entries)?);
                    items.extend(self.entry_puts(e, &c.entries)?);
                    let mut all = w.entries.clone();
                    all.extend(c.entries.iter().cloned());
                    items.extend(self.clearing_items(
                        a,
                        &all,
                        w.outstanding_change + c.outstanding_change,
                    )?);
                    items.extend(self.outbox_items(&c.events)?);
                }
            }
        }
        for take in &w.takes {
            items.push(take_item(self, take)?);
        }
        for give in &w.give_backs {
            items.push(give_back_item(self, give)?);
        }
        items.extend(self.outbox_items(&w.events)?);
        // What refunds take out of existing lots, as deltas: with the rest when they fit;
        // otherwise staged on the lots first (module lot_takes), and the commit below
        // removes the staging record.
        let mut staged = None;
        if let Some((a, _)) = &w.account {
            let takes: Vec<TransactWriteItem> = w
                .lot_takes
                .iter()
                .map(|(id, t)| self.lot_take(&a.programme_id, &a.member_id, id, *t))
                .collect::<Result<_, _>>()?;
            if items.len() + takes.len() < 100 {
                items.extend(takes);
            } else {
                let pending = PendingTakes {
                    id: format!("{}#{}#{}", r.partner_id, r.order_id, r.event),
                    programme_id: a.programme_id.clone(),
                    member_id: a.member_id.clone(),
                    takes: w.lot_takes.clone(),
                    staged: 0,
                };
                match self.stage_takes(&pending, &r.recorded_at).await? {
                    true => {
                        items.push(self.staged_takes_done(&pending)?);
                        staged = Some(pending);
                    }
                    // A lot has less than was read: read again and decide again.
                    false => return Ok(Commit::Stale),
                }
            }
        }
        if items.len() > 100 {
            return Err(StoreError::Build(format!(
                "{} items in one transaction (limit 100)",
                items.len()
            )));
        }
        // The sales go with the order when they fit (nearly always). An order with more
        // SKUs than fit writes, in its own transaction, a pending-sales item holding the
        // whole sale; the sales are then added in chunks right after, and whatever a crash or
        // a failure leaves is finished by the hold sweeper (`complete_pending_sales`). So a
        // booked order's sales are never lost, and never answered with a 500.
        let sales = match &w.sale {
            Some(sale) => self.sales_items(sale)?,
            None => Vec::new(),
        };
        let pending = if items.len() + sales.len() <= 100 {
            items.extend(sales);
            None
        } else if let Some(sale) = &w.sale {
            if items.len() >= 100 {
                return Err(StoreError::Build(format!(
                    "{} items and the pending sales in one transaction (limit 100)",
                    items.len()
                )));
            }
            let pending = PendingSales {
                partner_id: r.partner_id.clone(),
                order_id: r.order_id.clone(),
                sale: sale.clone(),
            };
            items.push(self.put_new(self.pending_sales_item(&pending, &r.recorded_at)?)?);
            Some(pending)
        } else {
            None
        };
        let outcome = classify(self.transact(items).await?);
        if let (false, Some(takes)) = (outcome == Commit::Committed, &staged) {
            // Not booked: the lots get their points back.
            self.roll_back_takes(&takes.id).await?;
        }
        if let (Commit::Committed, Some(p)) = (&outcome, pending) {
            if let Err(e) = self.complete_sales(&p).await {
                tracing::warn!(
                    partner_id = %p.partner_id,
                    order_id = %p.order_id,
                    error = %e,
                    "sales left for the hold sweeper"
                );
            }
        }
        Ok(outcome)
    }

    /// A put conditional on the item's version: `expected` as read, or absent when None.
    pub(crate) fn put_versioned(
        &self,
        item: Item,
        expected: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        match expected {
            None => self.put_new(item),
            Some(v) => {
                let put = aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("#v = :expected")
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_values(":expected", AttributeValue::N(v.to_string()))
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            }
        }
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

    /// One page of a member's statement, newest first: at most `limit` entries older than
    /// `before` (a sequence number), and whether older ones remain.
    /// One page of a member's statement, newest first, before entry `before`. With
    /// `only_partner`, only the entries that partner caused (a filter: the page is filled
    /// from as many Query pages as it takes).
    pub async fn entries_page(
        &self,
        programme_id: &str,
        member_id: &str,
        limit: i32,
        before: Option<u64>,
        only_partner: Option<&str>,
    ) -> Result<(Vec<LedgerEntry>, bool), StoreError> {
        let pk = keys::member_pk(programme_id, member_id);
        let low = keys::ENTRY_PREFIX.to_string();
        let high = match before {
            Some(0) => return Ok((Vec::new(), false)),
            Some(seq) => keys::entry(programme_id, member_id, seq - 1).1,
            None => format!("{}~", keys::ENTRY_PREFIX),
        };
        let want = usize::try_from(limit).unwrap_or(0);
        let mut entries: Vec<LedgerEntry> = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                .expression_attribute_values(":high", AttributeValue::S(high.clone()))
                .scan_index_forward(false)
                .limit(limit + 1)
                .set_exclusive_start_key(start);
            if let Some(partner) = only_partner {
                query = query
                    .filter_expression("#partner = :partner")
                    .expression_attribute_names("#partner", "partner_id")
                    .expression_attribute_values(":partner", AttributeValue::S(partner.into()));
            }
            let out = query.send().await.map_err(StoreError::sdk)?;
            for item in out.items.unwrap_or_default() {
                entries.push(from_item(item)?);
            }
            start = out.last_evaluated_key;
            if entries.len() > want || start.is_none() {
                break;
            }
        }
        let more = entries.len() > want;
        entries.truncate(want);
        Ok((entries, more))
    }

    /// Outbox events of one shard, oldest first.
    /// The ledger events waiting in one outbox shard (not the tasks beside them).
    pub async fn outbox_shard(&self, shard: u32) -> Result<Vec<DomainEvent>, StoreError> {
        self.query_items(&format!("OUTBOX#{shard:02}"), "")
            .await?
            .into_iter()
            .filter(|i| matches!(i.get(crate::ENTITY), Some(AttributeValue::S(e)) if e == "event"))
            .map(from_item)
            .collect()
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
    pub async fn query_items(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
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
