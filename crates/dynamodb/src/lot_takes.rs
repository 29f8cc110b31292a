//! Points a refund takes out of more existing lots than fit in its booking transaction (a
//! daily customer's refund may draw on hundreds): a durable plan in a staging item.
//!
//! 1. The staging item is written with every take and `staged = 0`.
//! 2. The takes are applied to the lots in chunks, each chunk in one transaction with the
//!    staging item's progress (`staged`, conditional on the progress read): a retry never
//!    takes twice. A lot with less than the take (a hold took it meanwhile) stops this:
//!    the chunks are rolled back the same way, and the webhook reads and decides again.
//! 3. The booking commits with the staging item's delete (conditional on every take staged)
//!    in its transaction: the commit point. If it does not commit, the chunks are rolled back.
//!
//! Until the commit, the lots show less than the member has (never more), so nothing can be
//! spent twice. A staging item left by a crash is rolled back by the hold sweeper after
//! [`STALE_AFTER_MINUTES`] (its webhook is retried and books again).

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_item, key_map, keys, to_item, Store, StoreError, TxOutcome};

/// The sparse index (GSI1) partition of staging items.
pub const STAGED_TAKES_INDEX: &str = "LOTTAKES";
/// A staging item older than this belongs to a request that died: the sweeper rolls it back.
pub const STALE_AFTER_MINUTES: i64 = 5;
/// Takes per chunk (with the staging item's progress).
const CHUNK: usize = 98;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTakes {
    /// `{partner}#{order}#{event}` of the booking.
    pub id: String,
    pub programme_id: String,
    pub member_id: String,
    /// (lot id, points) in the order they are applied.
    pub takes: Vec<(String, i64)>,
    /// How many of `takes` (from the start) are applied to their lots.
    pub staged: usize,
}

fn staging_key(id: &str) -> (String, String) {
    (format!("LOTTAKES#{id}"), "TAKES".to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Store {
    /// `points` out of a lot's free `remaining` (`add` negative: given back).
    pub(crate) fn lot_take(
        &self,
        programme_id: &str,
        member_id: &str,
        lot_id: &str,
        points: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::lot(programme_id, member_id, lot_id))))
            .update_expression("SET remaining = remaining - :t")
            .condition_expression("remaining >= :t")
            .expression_attribute_values(":t", n(points))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn lot_give_back(
        &self,
        p: &PendingTakes,
        lot_id: &str,
        points: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::lot(
                &p.programme_id,
                &p.member_id,
                lot_id,
            ))))
            .update_expression("SET remaining = remaining + :t")
            .expression_attribute_values(":t", n(points))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn staging_progress(
        &self,
        id: &str,
        from: usize,
        to: usize,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&staging_key(id))))
            .update_expression("SET staged = :to")
            .condition_expression("staged = :from")
            .expression_attribute_values(":from", n(from as i64))
            .expression_attribute_values(":to", n(to as i64))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The booking's part of the commit: the staging item goes, if every take is staged.
    pub(crate) fn staged_takes_done(
        &self,
        p: &PendingTakes,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&staging_key(&p.id))))
            .condition_expression("staged = :all")
            .expression_attribute_values(":all", n(p.takes.len() as i64))
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Steps 1 and 2. True when every take is staged; false when a lot had less than its
    /// take (everything staged is rolled back).
    pub(crate) async fn stage_takes(
        &self,
        p: &PendingTakes,
        recorded_at: &DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = bonus_domain::clock::ts(*recorded_at);
        let item = super::with_gsi1(
            to_item(staging_key(&p.id), "lot_takes", p)?,
            STAGED_TAKES_INDEX.into(),
            format!("{at}#{}", p.id),
        );
        // A staging item of an earlier try that died: undo it first.
        self.roll_back_takes(&p.id).await?;
        if !super::written(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)")
                .send()
                .await,
        )? {
            return Ok(false);
        }
        let mut done = 0;
        let mut retry = self.retry();
        while done < p.takes.len() {
            let Some(pause) = retry.next() else {
                self.roll_back_takes(&p.id).await?;
                return Err(StoreError::Contention(super::retry::MAX_ATTEMPTS));
            };
            super::retry::pause(pause).await;
            let end = p.takes.len().min(done + CHUNK);
            let mut items = vec![self.staging_progress(&p.id, done, end)?];
            for (lot_id, t) in &p.takes[done..end] {
                items.push(self.lot_take(&p.programme_id, &p.member_id, lot_id, *t)?);
            }
            match self.transact(items).await? {
                TxOutcome::Committed => {
                    done = end;
                    retry = self.retry();
                }
                o if o.conflicted() => retry.backoff(),
                _ => {
                    self.roll_back_takes(&p.id).await?;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Give the staged takes back, newest chunk first, then delete the staging item.
    /// Idempotent; nothing to do when the item is gone (committed, or rolled back before).
    pub async fn roll_back_takes(&self, id: &str) -> Result<(), StoreError> {
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let Some(p) = self.get::<PendingTakes>(staging_key(id)).await? else {
                return Ok(());
            };
            let staged = p.staged.min(p.takes.len());
            if staged == 0 {
                let gone = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(&staging_key(id))))
                    .condition_expression("staged = :zero")
                    .expression_attribute_values(":zero", n(0))
                    .send()
                    .await;
                if super::written(gone)? {
                    return Ok(());
                }
                continue;
            }
            let start = staged.saturating_sub(CHUNK);
            let mut items = vec![self.staging_progress(id, staged, start)?];
            for (lot_id, t) in &p.takes[start..staged] {
                items.push(self.lot_give_back(&p, lot_id, *t)?);
            }
            match self.transact(items).await? {
                TxOutcome::Committed => retry = self.retry(),
                o if o.conflicted() => retry.backoff(),
                _ => retry.now(),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// Roll back staging items older than [`STALE_AFTER_MINUTES`] (their requests died):
    /// (rolled back, failed).
    pub async fn roll_back_stale_takes(
        &self,
        now: DateTime<Utc>,
        limit: i32,
    ) -> Result<(usize, usize), StoreError> {
        let before = bonus_domain::clock::ts(now - chrono::Duration::minutes(STALE_AFTER_MINUTES));
        let page = self
            .gsi1_query(STAGED_TAKES_INDEX.to_string())
            .key_condition_expression("#pk = :pk AND #sk < :before")
            .expression_attribute_names("#sk", keys::GSI1SK)
            .expression_attribute_values(":before", AttributeValue::S(before))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let (mut done, mut failed) = (0, 0);
        for item in page.items.unwrap_or_default() {
            let p: PendingTakes = from_item(item)?;
            match self.roll_back_takes(&p.id).await {
                Ok(()) => done += 1,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(staging = %p.id, error = %e, "staged lot takes not rolled back");
                }
            }
        }
        Ok((done, failed))
    }
}
