//! Holds in DynamoDB.
//!
//! Reserving is one TransactWriteItems of conditional **updates**, not read-modify-write:
//! the hold put-if-absent, the account `available -= p, held += p` on condition
//! `available >= need`, and each chosen lot `remaining -= t, held += t` on condition
//! `remaining >= t`. Concurrent holds therefore never invalidate each other while points are
//! left (no version to race on), and can never together reserve more than there is: the
//! conditions are checked against the item as it is at commit.
//!
//! Resolving (capture, void, expiry) is read-modify-write on the hold (`version`) and the
//! account (`version`), with each lot's change as a conditional delta (`held >= release`), in
//! one transaction.
//!
//! **Holds on more lots than one transaction holds** (a daily customer has hundreds) are
//! durable plans whose progress lives in the hold item, so every step is retried without
//! losing or doubling anything:
//! - Placing: the hold is written as `Reserving`; its lots are reserved in chunks, each
//!   chunk in one transaction with the hold's progress (`staged_lots`, conditional on the
//!   progress read); then the account and the hold (now `Open`) in one transaction: the
//!   commit point. A lot taken meanwhile, or an account short of points, rolls the chunks
//!   back the same way, and the hold item goes. A placement left behind by a crash is
//!   rolled back by the sweeper once the hold's time has run out.
//! - Resolving: the hold, the account, the statement and as many lot deltas as fit commit
//!   together; the remaining lots follow in chunks guarded by `settled_lots`, and the
//!   sweeper finishes a resolution left behind (its hold is in the `HOLDS_UNSETTLED`
//!   index until then). Until then only the lots' mirror of the hold lags; the account,
//!   which decides every spend, is already right.
//! - Returning a claim (a captured hold, `Returned`): the same write as a resolution, whose
//!   lot deltas put back what each lot's `returned` says (`held` untouched).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use bonus_domain::account::Account;
use bonus_domain::clock::ts;
use bonus_domain::hold::{
    HeldLot, Hold, HoldStatus, LotChange, OpenHold, Settlement, MAX_OPEN_HOLDS,
};
use bonus_domain::money::Points;

/// Items in one TransactWriteItems (DynamoDB's limit).
pub(crate) const TX_LIMIT: usize = 100;
/// Lot updates in one chunk of a staged placement or resolution (with the hold's guard).
const LOT_CHUNK: usize = TX_LIMIT - 1;
/// The sparse index (GSI1) partition of resolved holds whose lots are not all updated yet.
pub const UNSETTLED_HOLDS_INDEX: &str = "HOLDS_UNSETTLED";

/// Shards of the open-hold index (GSI1), so that no index partition takes every hold.
pub const OPEN_HOLD_SHARDS: u32 = 8;

/// The outcome of a reservation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    Reserved,
    /// A hold with this id exists (a repeat of the request): read it and answer with it.
    Duplicate,
    /// The account no longer has the points (or the open-hold limit was reached): re-read
    /// and decide (usually: refuse).
    AccountShort,
    /// A lot was taken meanwhile: re-read and choose again.
    Stale,
    /// Conflict or throttling: back off and try again.
    Retry,
    /// A condition of the caller's extra items failed (a reward's stock or limit).
    ExtraRefused,
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Store {
    /// Points the member reserved at the partner on a local day (0 when none).
    pub async fn redeemed_on(
        &self,
        partner_id: &str,
        member_id: &str,
        day: &str,
    ) -> Result<Points, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::redeemed_day(
                partner_id, member_id, day,
            ))))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out
            .item
            .and_then(|i| match i.get("points") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Count `points` into the member's day at the partner, only while the day stays within
    /// `max` (the condition that makes racing holds unable to pass the daily limit). The
    /// item lives 3 days (TTL).
    pub fn redeem_day_item(
        &self,
        partner_id: &str,
        member_id: &str,
        day: &str,
        points: Points,
        max: Points,
        expires_epoch: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::redeemed_day(
                partner_id, member_id, day,
            ))))
            .update_expression("ADD points :p SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(points) OR points <= :room")
            .expression_attribute_names("#ttl", super::schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":p", AttributeValue::N(points.to_string()))
            .expression_attribute_values(":room", AttributeValue::N((max - points).to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires_epoch.to_string()))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Give `points` back to the member's day at the partner (a released hold).
    pub fn unredeem_day_item(
        &self,
        partner_id: &str,
        member_id: &str,
        day: &str,
        points: Points,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::redeemed_day(
                partner_id, member_id, day,
            ))))
            .update_expression("ADD points :minus")
            .expression_attribute_values(":minus", AttributeValue::N((-points).to_string()))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub async fn get_hold(&self, hold_id: &str) -> Result<Option<Hold>, StoreError> {
        self.get(keys::hold(hold_id)).await
    }

    pub(crate) fn hold_item(&self, hold: &Hold) -> Result<Item, StoreError> {
        let mut item = to_item(keys::hold(&hold.hold_id), "hold", hold)?;
        if hold.settled_lots.is_some() {
            // Resolved, with lots still to update: for the sweeper, should this stop here.
            item.insert(
                keys::GSI1PK.into(),
                AttributeValue::S(UNSETTLED_HOLDS_INDEX.into()),
            );
            item.insert(keys::GSI1SK.into(), AttributeValue::S(hold.hold_id.clone()));
        } else if matches!(hold.status, HoldStatus::Open | HoldStatus::Reserving) {
            // Sparse index of open holds by expiry, for the sweeper; gone once resolved.
            let shard = super::shard_of(&hold.hold_id, OPEN_HOLD_SHARDS);
            item.insert(
                keys::GSI1PK.into(),
                AttributeValue::S(keys::open_holds_index(shard)),
            );
            item.insert(
                keys::GSI1SK.into(),
                AttributeValue::S(format!("{}#{}", ts(hold.expires_at), hold.hold_id)),
            );
        }
        Ok(item)
    }

    /// The account's side of a reservation: `available -= p, held += p` and the open hold,
    /// on condition that `need` points are available and the open-hold limit allows it.
    fn account_reservation(&self, hold: &Hold, need: i64) -> Result<TransactWriteItem, StoreError> {
        let open = OpenHold {
            points: hold.points,
            expires_at: hold.expires_at,
        };
        let account = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::account(
                &hold.programme_id,
                &hold.member_id,
            ))))
            .update_expression(
                "SET available = available - :p, held = held + :p, #v = #v + :one, open_holds.#h = :open",
            )
            .condition_expression(
                "attribute_exists(PK) AND available >= :need AND size(open_holds) < :max",
            )
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#h", &hold.hold_id)
            .expression_attribute_values(":p", n(hold.points))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":need", n(need))
            .expression_attribute_values(":max", n(MAX_OPEN_HOLDS as i64))
            .expression_attribute_values(":open", serde_dynamo::to_attribute_value(&open)?)
            .build()?;
        Ok(TransactWriteItem::builder().update(account).build())
    }

    fn lot_key(hold: &Hold, lot_id: &str) -> Item {
        key_map(&keys::lot(&hold.programme_id, &hold.member_id, lot_id))
    }

    /// A lot's side of a reservation: free `remaining` to `held`, if it has them.
    fn lot_reservation(&self, hold: &Hold, l: &HeldLot) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::lot_key(hold, &l.lot_id)))
            .update_expression(
                "SET remaining = remaining - :t, held = if_not_exists(held, :zero) + :t",
            )
            .condition_expression("remaining >= :t")
            .expression_attribute_values(":t", n(l.points))
            .expression_attribute_values(":zero", n(0))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Undo [`Store::lot_reservation`] (a placement rolled back).
    fn lot_unreservation(&self, hold: &Hold, l: &HeldLot) -> Result<TransactWriteItem, StoreError> {
        self.lot_change(
            hold,
            &LotChange {
                lot_id: l.lot_id.clone(),
                release: l.points,
                back: l.points,
            },
        )
    }

    /// A lot's side of a resolution: `held` down, the part not captured back to `remaining`.
    pub(crate) fn lot_change(
        &self,
        hold: &Hold,
        c: &LotChange,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::lot_key(hold, &c.lot_id)))
            .update_expression("SET held = held - :r, remaining = remaining + :b")
            .condition_expression("held >= :r")
            .expression_attribute_values(":r", n(c.release))
            .expression_attribute_values(":b", n(c.back))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The hold's progress through a staged step: `field` from `from` to `to` (None: the
    /// step is done and the field goes), only if it is at `from` (and, if given, the hold
    /// has `status`).
    fn hold_progress(
        &self,
        hold_id: &str,
        field: &str,
        from: usize,
        to: Option<usize>,
        status: Option<HoldStatus>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::hold(hold_id))))
            .expression_attribute_names("#f", field)
            .expression_attribute_values(":from", n(from as i64));
        update = match to {
            Some(to) => update
                .update_expression("SET #f = :to")
                .expression_attribute_values(":to", n(to as i64)),
            None => update
                .update_expression("REMOVE #f, #gpk, #gsk")
                .expression_attribute_names("#gpk", keys::GSI1PK)
                .expression_attribute_names("#gsk", keys::GSI1SK),
        };
        update = match status {
            Some(st) => update
                .condition_expression("#f = :from AND #s = :status")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":status", serde_dynamo::to_attribute_value(st)?),
            None => update.condition_expression("#f = :from"),
        };
        Ok(TransactWriteItem::builder().update(update.build()?).build())
    }

    /// Reserve a hold's points: see the module documentation. `need` is what the account's
    /// available points must be at least (the points, or the programme's minimum balance if
    /// that is higher).
    pub async fn reserve(
        &self,
        hold: &Hold,
        need: i64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Reserve, StoreError> {
        if hold.lots.len() + 2 + extra.len() > TX_LIMIT {
            return self.reserve_staged(hold, need, extra).await;
        }
        let mut items = vec![
            self.put_new(self.hold_item(hold)?)?,
            self.account_reservation(hold, need)?,
        ];
        for l in &hold.lots {
            items.push(self.lot_reservation(hold, l)?);
        }
        let first_extra = items.len();
        let extras = extra.len();
        items.extend(extra);
        Ok(match self.transact(items).await? {
            TxOutcome::Committed => Reserve::Reserved,
            o if o.failed_condition(0) => Reserve::Duplicate,
            o if o.failed_condition(1) => Reserve::AccountShort,
            o if (first_extra..first_extra + extras).any(|i| o.failed_condition(i)) => {
                Reserve::ExtraRefused
            }
            TxOutcome::Cancelled(r) if r.iter().any(|c| c == "ConditionalCheckFailed") => {
                Reserve::Stale
            }
            _ => Reserve::Retry,
        })
    }

    /// A hold on more lots than one transaction holds: the lots chunk by chunk, then the
    /// account and the hold at once (module documentation).
    async fn reserve_staged(
        &self,
        hold: &Hold,
        need: i64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Reserve, StoreError> {
        let mut staged = hold.clone();
        staged.status = HoldStatus::Reserving;
        staged.staged_lots = Some(0);
        match self
            .transact(vec![self.put_new(self.hold_item(&staged)?)?])
            .await?
        {
            TxOutcome::Committed => {}
            o if o.failed_condition(0) => return Ok(Reserve::Duplicate),
            _ => return Ok(Reserve::Retry),
        }
        let total = hold.lots.len();
        let mut done = 0;
        while done < total {
            let end = total.min(done + LOT_CHUNK - 1);
            let mut items = vec![self.hold_progress(
                &hold.hold_id,
                "staged_lots",
                done,
                Some(end),
                Some(HoldStatus::Reserving),
            )?];
            for l in &hold.lots[done..end] {
                items.push(self.lot_reservation(hold, l)?);
            }
            match self.transact_patiently(items).await? {
                TxOutcome::Committed => done = end,
                // Rolled back by someone else (a repeat of the request, the sweeper).
                o if o.failed_condition(0) => return Ok(Reserve::Stale),
                _ => {
                    // A lot was taken meanwhile: undo, and choose again.
                    self.roll_back_reservation(&hold.hold_id).await?;
                    return Ok(Reserve::Stale);
                }
            }
        }
        let mut open = hold.clone();
        open.staged_lots = None;
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.hold_item(&open)?))
            .condition_expression("#s = :reserving AND staged_lots = :n")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(
                ":reserving",
                serde_dynamo::to_attribute_value(HoldStatus::Reserving)?,
            )
            .expression_attribute_values(":n", n(total as i64))
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.account_reservation(hold, need)?,
        ];
        let extras = extra.len();
        items.extend(extra);
        let outcome = match self.transact_patiently(items).await? {
            TxOutcome::Committed => return Ok(Reserve::Reserved),
            o if o.failed_condition(0) => return Ok(Reserve::Stale),
            o if o.failed_condition(1) => Reserve::AccountShort,
            o if (2..2 + extras).any(|i| o.failed_condition(i)) => Reserve::ExtraRefused,
            o if o.conflicted() => Reserve::Retry,
            _ => Reserve::Stale,
        };
        self.roll_back_reservation(&hold.hold_id).await?;
        Ok(outcome)
    }

    /// A transaction retried (with backoff) while it only conflicts; its last outcome.
    async fn transact_patiently(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome, StoreError> {
        let mut retry = self.retry();
        let mut last = TxOutcome::Cancelled(vec!["TransactionConflict".into()]);
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            last = self.transact(items.clone()).await?;
            if !last.conflicted() {
                return Ok(last);
            }
            retry.backoff();
        }
        Ok(last)
    }

    /// Roll back a placement that did not finish (`Reserving`): its reserved lots in chunks,
    /// newest first, then the hold item. Idempotent; true when this call removed the hold.
    pub async fn roll_back_reservation(&self, hold_id: &str) -> Result<bool, StoreError> {
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let Some(h) = self.get_hold(hold_id).await? else {
                return Ok(false);
            };
            if h.status != HoldStatus::Reserving {
                return Ok(false);
            }
            let staged = h.staged_lots.unwrap_or(0).min(h.lots.len());
            if staged == 0 {
                let gone = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(&keys::hold(hold_id))))
                    .condition_expression("#s = :reserving AND staged_lots = :zero")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(
                        ":reserving",
                        serde_dynamo::to_attribute_value(HoldStatus::Reserving)?,
                    )
                    .expression_attribute_values(":zero", n(0))
                    .send()
                    .await;
                if super::written(gone)? {
                    return Ok(true);
                }
                continue;
            }
            let start = staged.saturating_sub(LOT_CHUNK - 1);
            let mut items = vec![self.hold_progress(
                hold_id,
                "staged_lots",
                staged,
                Some(start),
                Some(HoldStatus::Reserving),
            )?];
            for l in &h.lots[start..staged] {
                items.push(self.lot_unreservation(&h, l)?);
            }
            match self.transact(items).await? {
                // Progress: every chunk gets a fresh set of tries.
                TxOutcome::Committed => retry = self.retry(),
                o if o.conflicted() => retry.backoff(),
                // Moved meanwhile: read again.
                _ => retry.now(),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// Write a resolution: the hold (if still at the version read and open), the account
    /// (if still at the version read), the statement entry, the events, and the lots' deltas:
    /// as many as fit; the rest right after, in chunks (module documentation). True when
    /// written; false when something moved (re-read and decide again).
    pub async fn settle(
        &self,
        s: &Settlement,
        hold_version: u64,
        account_version: u64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let a = &s.account;
        let mut rest = self.entry_items(a, &s.entries, s.outstanding_change)?;
        rest.extend(self.outbox_items(&s.events)?);
        rest.extend(extra);
        let room = TX_LIMIT.saturating_sub(2 + rest.len());
        let first = s.lot_changes.len().min(room);
        let mut hold = s.hold.clone();
        if first < s.lot_changes.len() {
            hold.settled_lots = Some(first);
        }
        let mut items = vec![
            self.put_versioned(self.hold_item(&hold)?, Some(hold_version))?,
            self.put_versioned(super::account_item(a)?, Some(account_version))?,
        ];
        for c in s.lot_changes[..first].iter().filter(|c| !c.is_nothing()) {
            items.push(self.lot_change(&hold, c)?);
        }
        items.extend(rest);
        if !self.try_commit(items).await? {
            return Ok(false);
        }
        if hold.settled_lots.is_some() {
            // Committed: what is left only mirrors it on the lots. Should this fail, the
            // sweeper finishes it.
            if let Err(e) = self.finish_settlement(&hold).await {
                tracing::warn!(hold_id = %hold.hold_id, error = %e, "hold's lots left for the sweeper");
            }
        }
        Ok(true)
    }

    /// Apply the rest of a resolution to the hold's lots, in chunks guarded by the hold's
    /// `settled_lots`. Idempotent: a chunk written before is not written again.
    pub async fn finish_settlement(&self, hold: &Hold) -> Result<(), StoreError> {
        let mut hold = hold.clone();
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let Some(from) = hold.settled_lots else {
                return Ok(());
            };
            let total = hold.lots.len();
            let end = total.min(from + LOT_CHUNK - 1);
            let to = (end < total).then_some(end);
            let mut items =
                vec![self.hold_progress(&hold.hold_id, "settled_lots", from, to, None)?];
            for l in &hold.lots[from..end] {
                let change = hold.lot_change(l);
                if !change.is_nothing() {
                    items.push(self.lot_change(&hold, &change)?);
                }
            }
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    hold.settled_lots = to;
                    // Progress: every chunk gets a fresh set of tries.
                    retry = self.retry();
                }
                o if o.conflicted() => retry.backoff(),
                _ => {
                    // Someone else wrote this chunk: read how far it is.
                    match self.get_hold(&hold.hold_id).await? {
                        Some(h) => hold = h,
                        None => return Ok(()),
                    }
                    retry.now();
                }
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// Resolved holds whose lots are not all updated (left behind by a crash), at most
    /// `limit`.
    pub async fn unsettled_holds(&self, limit: i32) -> Result<Vec<Hold>, StoreError> {
        self.sparse_index(UNSETTLED_HOLDS_INDEX, limit).await
    }

    /// At most `limit` items of a sparse GSI1 partition (work left behind for the sweeper).
    pub(crate) async fn sparse_index<T: serde::de::DeserializeOwned>(
        &self,
        partition: &str,
        limit: i32,
    ) -> Result<Vec<T>, StoreError> {
        let page = self
            .gsi1_query(partition.to_string())
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        page.items
            .unwrap_or_default()
            .into_iter()
            .map(super::from_item)
            .collect()
    }

    /// Save an account as read plus changes that need no other item (due releases folded in).
    pub async fn save_account(&self, a: &Account, expected: u64) -> Result<bool, StoreError> {
        let item = self.put_versioned(super::account_item(a)?, Some(expected))?;
        Ok(matches!(
            self.transact(vec![item]).await?,
            TxOutcome::Committed
        ))
    }

    /// Open holds whose time ran out by `now`, from the sparse index (oldest first, at most
    /// `limit` per shard).
    pub async fn lapsed_holds(
        &self,
        now: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..OPEN_HOLD_SHARDS {
            let page = self
                .gsi1_query(keys::open_holds_index(shard))
                .key_condition_expression("#pk = :pk AND #sk <= :now")
                .expression_attribute_names("#sk", keys::GSI1SK)
                .expression_attribute_values(":now", AttributeValue::S(format!("{}#~", ts(now))))
                .limit(limit)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in page.items.unwrap_or_default() {
                if let Some(AttributeValue::S(id)) = item.get("hold_id") {
                    out.push(id.clone());
                }
            }
        }
        Ok(out)
    }
}
