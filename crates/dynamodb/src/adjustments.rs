//! Adjustments in DynamoDB (`bonus_domain::adjustment`): the adjustment item lives in its
//! partner's `ADJUST#` partition (a partner can only ever name its own); each step of
//! applying one is one transaction of the account (versioned), the credit's new lot or the
//! debit's lot takes (conditional deltas), the statement entries with their clearing
//! counters, and the adjustment with its progress (versioned).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{account_item, from_item, key_map, keys, to_item, Store, StoreError, TxOutcome};
use bonus_domain::adjustment::{Adjustment, AdjustmentStep, Status};
use bonus_domain::changes::Change;

impl Store {
    pub async fn get_adjustment(
        &self,
        partner_id: &str,
        adjustment_id: &str,
    ) -> Result<Option<Adjustment>, StoreError> {
        self.get(keys::adjustment(partner_id, adjustment_id)).await
    }

    fn adjustment_item(&self, a: &Adjustment) -> Result<super::Item, StoreError> {
        to_item(
            keys::adjustment(&a.partner_id, &a.adjustment_id),
            "adjustment",
            a,
        )
    }

    /// Record a new adjustment, with its change in the partner's audit trail; false when
    /// one exists under its id (a repeat, or a race).
    pub async fn create_adjustment(
        &self,
        a: &Adjustment,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let items = vec![
            self.put_new(self.adjustment_item(a)?)?,
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// Save a decision over the version read, with its change in the partner's audit
    /// trail; false when it moved meanwhile.
    pub async fn save_adjustment(
        &self,
        a: &Adjustment,
        expected: u64,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let items = vec![
            self.put_versioned(self.adjustment_item(a)?, Some(expected))?,
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// Write one step; false when the account or the adjustment moved (read and plan again).
    pub async fn commit_adjustment_step(
        &self,
        step: &AdjustmentStep,
        account_version: u64,
        adjustment_version: u64,
    ) -> Result<bool, StoreError> {
        let a = &step.account;
        let mut items = vec![
            self.put_versioned(account_item(a)?, Some(account_version))?,
            self.put_versioned(
                self.adjustment_item(&step.adjustment)?,
                Some(adjustment_version),
            )?,
        ];
        if let Some(lot) = &step.new_lot {
            let k = keys::lot(&a.programme_id, &a.member_id, &lot.lot_id);
            items.push(self.put_new(to_item(k, "lot", lot)?)?);
        }
        for (lot_id, points) in &step.taken {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::lot(
                    &a.programme_id,
                    &a.member_id,
                    lot_id,
                ))))
                .update_expression("SET remaining = remaining - :p")
                .condition_expression("remaining >= :p")
                .expression_attribute_values(":p", AttributeValue::N(points.to_string()))
                .build()?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        items.extend(self.entry_items(a, &step.entries, step.outstanding_change)?);
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// A partner's adjustments in a status (all pages of its partition, filtered), newest
    /// first, at most `limit`.
    pub async fn adjustments(
        &self,
        partner_id: &str,
        status: Option<Status>,
        limit: usize,
    ) -> Result<Vec<Adjustment>, StoreError> {
        let (pk, _) = keys::adjustment(partner_id, "");
        let mut out: Vec<Adjustment> = Vec::new();
        for item in self.query_items(&pk, "").await? {
            let a: Adjustment = from_item(item)?;
            if status.is_none_or(|s| a.status == s) {
                out.push(a);
            }
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.requested_at));
        out.truncate(limit);
        Ok(out)
    }
}
