//! Transfers between members in DynamoDB.
//!
//! A transfer commits in **one** TransactWriteItems: the sender's hold (captured) and
//! account, the receiver's account, both statements with their clearing counters, the two
//! events, the transfer item, the day's sent counter (conditional on the daily limit), and
//! the lot items: the sender's lots give up what the hold reserved, the receiver gets new
//! lots. A transfer over more lots than fit is a durable plan, as a hold's resolution is:
//! the accounts, statements and counters commit together (the commit point), and the lot
//! items that did not fit follow in chunks guarded by progress fields (`settled_lots` on
//! the hold, `credited_lots` on the transfer); the sweeper finishes any left behind (both
//! items sit in a sparse index until then). Until then only the lot items lag; the
//! accounts, which decide every spend, are already right.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::holds::TX_LIMIT;
use super::{key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use bonus_domain::clock::ts;
use bonus_domain::transfer::{Transfer, TransferPlan};

/// The sparse index (GSI1) partition of transfers whose receiver lots are not all written.
pub const UNCREDITED_TRANSFERS_INDEX: &str = "TRANSFERS_UNCREDITED";

/// Receiver lots in one chunk of a staged credit (with the transfer's guard).
const LOT_CHUNK: usize = TX_LIMIT - 1;

/// How a transfer's commit came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferCommit {
    Committed,
    /// The sender already sent their daily limit (counted at commit, so racing transfers
    /// cannot pass it together).
    DailyLimit,
    /// Something moved (a version, a conflict): re-read and decide again.
    Retry,
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Store {
    pub async fn get_transfer(&self, transfer_id: &str) -> Result<Option<Transfer>, StoreError> {
        self.get(keys::transfer(transfer_id)).await
    }

    /// Points the member sent on a local day.
    pub async fn sent_on(
        &self,
        programme_id: &str,
        member_id: &str,
        day: chrono::NaiveDate,
    ) -> Result<i64, StoreError> {
        #[derive(serde::Deserialize)]
        struct Sent {
            #[serde(default)]
            sent: i64,
        }
        let item: Option<Sent> = self
            .get(keys::transfers_sent(programme_id, member_id, day))
            .await?;
        Ok(item.map_or(0, |s| s.sent))
    }

    fn transfer_item(&self, t: &Transfer) -> Result<Item, StoreError> {
        let mut item = to_item(keys::transfer(&t.transfer_id), "transfer", t)?;
        if t.credited_lots.is_some() {
            item.insert(
                keys::GSI1PK.into(),
                AttributeValue::S(UNCREDITED_TRANSFERS_INDEX.into()),
            );
            item.insert(
                keys::GSI1SK.into(),
                AttributeValue::S(t.transfer_id.clone()),
            );
        }
        Ok(item)
    }

    /// Write a transfer (module documentation): conditional on the hold's and both
    /// accounts' versions as read, and on the day's sent points staying within `daily_limit`.
    pub async fn commit_transfer(
        &self,
        plan: &TransferPlan,
        hold_version: u64,
        sender_version: u64,
        receiver_version: u64,
        daily_limit: i64,
    ) -> Result<TransferCommit, StoreError> {
        let s = &plan.sender;
        let (sender, receiver) = (&s.account, &plan.receiver);
        let t = &plan.transfer;
        let day = t.at.with_timezone(&sender.time_zone).date_naive();
        let sent = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::transfers_sent(
                &sender.programme_id,
                &sender.member_id,
                day,
            ))))
            .update_expression("ADD sent :p SET updated_at = :at")
            .condition_expression("attribute_not_exists(sent) OR sent <= :room")
            .expression_attribute_values(":p", n(t.points))
            .expression_attribute_values(":room", n(daily_limit - t.points))
            .expression_attribute_values(":at", AttributeValue::S(ts(t.at)))
            .build()?;
        // Both statements' entries; their clearing counters in one set of updates (the
        // sender's and the receiver's could meet on one counter shard, and a transaction
        // may touch an item once).
        let mut rest = self.entry_puts(sender, &plan.sender_entries)?;
        rest.extend(self.entry_puts(receiver, std::slice::from_ref(&plan.receiver_entry))?);
        let mut all_entries = plan.sender_entries.clone();
        all_entries.push(plan.receiver_entry.clone());
        rest.extend(self.clearing_items(
            sender,
            &all_entries,
            s.outstanding_change + plan.receiver_outstanding_change,
        )?);
        rest.extend(self.outbox_items(&plan.events)?);

        // The lots: the sender's changes first, then the receiver's new lots, as many as fit.
        let fixed = 5 + rest.len();
        let room = TX_LIMIT.saturating_sub(fixed);
        let first_changes = s.lot_changes.len().min(room);
        let first_lots = if first_changes < s.lot_changes.len() {
            0
        } else {
            plan.receiver_lots.len().min(room - first_changes)
        };
        let mut hold = s.hold.clone();
        if first_changes < s.lot_changes.len() {
            hold.settled_lots = Some(first_changes);
        }
        let mut transfer = t.clone();
        if first_lots < plan.receiver_lots.len() {
            transfer.credited_lots = Some(first_lots);
        }
        let mut items = vec![
            self.put_versioned(self.hold_item(&hold)?, Some(hold_version))?,
            self.put_versioned(super::account_item(sender)?, Some(sender_version))?,
            self.put_versioned(super::account_item(receiver)?, Some(receiver_version))?,
            TransactWriteItem::builder().update(sent).build(),
            self.put_new(self.transfer_item(&transfer)?)?,
        ];
        const SENT_INDEX: usize = 3;
        for c in &s.lot_changes[..first_changes] {
            items.push(self.lot_change(&hold, c)?);
        }
        for lot in &plan.receiver_lots[..first_lots] {
            items.push(self.put_new(to_item(
                keys::lot(&lot.programme_id, &lot.member_id, &lot.lot_id),
                "lot",
                lot,
            )?)?);
        }
        items.extend(rest);
        match self.transact(items).await? {
            TxOutcome::Committed => {}
            o if o.failed_condition(SENT_INDEX) => return Ok(TransferCommit::DailyLimit),
            o if o.conflicted() => {
                super::retry::sleep_backoff(1).await;
                return Ok(TransferCommit::Retry);
            }
            _ => return Ok(TransferCommit::Retry),
        }
        // Committed: what is left only mirrors it on the lot items. Should this fail, the
        // sweeper finishes it.
        if hold.settled_lots.is_some() {
            if let Err(e) = self.finish_settlement(&hold).await {
                tracing::warn!(hold_id = %hold.hold_id, error = %e, "transfer's lots left for the sweeper");
            }
        }
        if transfer.credited_lots.is_some() {
            if let Err(e) = self.finish_credit(&transfer).await {
                tracing::warn!(transfer_id = %transfer.transfer_id, error = %e, "receiver's lots left for the sweeper");
            }
        }
        Ok(TransferCommit::Committed)
    }

    /// Write the rest of a transfer's receiver lots, in chunks guarded by the transfer's
    /// `credited_lots`. Idempotent: a chunk written before is not written again.
    pub async fn finish_credit(&self, transfer: &Transfer) -> Result<(), StoreError> {
        let mut transfer = transfer.clone();
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let Some(from) = transfer.credited_lots else {
                return Ok(());
            };
            let total = transfer.moved.len();
            let end = total.min(from + LOT_CHUNK);
            let to = (end < total).then_some(end);
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::transfer(&transfer.transfer_id))))
                .condition_expression("credited_lots = :from")
                .expression_attribute_values(":from", n(from as i64));
            update = match to {
                Some(to) => update
                    .update_expression("SET credited_lots = :to")
                    .expression_attribute_values(":to", n(to as i64)),
                None => update
                    .update_expression("REMOVE credited_lots, #gpk, #gsk")
                    .expression_attribute_names("#gpk", keys::GSI1PK)
                    .expression_attribute_names("#gsk", keys::GSI1SK),
            };
            let mut items = vec![TransactWriteItem::builder().update(update.build()?).build()];
            for lot in (from..end).filter_map(|i| transfer.receiver_lot(i)) {
                items.push(self.put_new(to_item(
                    keys::lot(&lot.programme_id, &lot.member_id, &lot.lot_id),
                    "lot",
                    &lot,
                )?)?);
            }
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    transfer.credited_lots = to;
                    retry = self.retry();
                }
                o if o.conflicted() => retry.backoff(),
                _ => {
                    // Someone else wrote this chunk: read how far it is.
                    match self.get_transfer(&transfer.transfer_id).await? {
                        Some(t) => transfer = t,
                        None => return Ok(()),
                    }
                    retry.now();
                }
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// Transfers whose receiver lots are not all written (left behind by a crash).
    pub async fn uncredited_transfers(&self, limit: i32) -> Result<Vec<Transfer>, StoreError> {
        self.sparse_index(UNCREDITED_TRANSFERS_INDEX, limit).await
    }
}
