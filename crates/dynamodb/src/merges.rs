//! Merging members in DynamoDB (`bonus_domain::merge`): each step is one transaction of
//! both accounts (versioned), the survivor's new lots, the duplicate's emptied lots (as
//! conditional deltas), both statements' entries and their clearing counters.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{account_item, key_map, keys, to_item, Store, StoreError, TxOutcome};
use bonus_domain::merge::MergeStep;

impl Store {
    /// Write one merge step; false when an account moved meanwhile (read and plan again).
    pub async fn commit_merge_step(
        &self,
        step: &MergeStep,
        survivor_version: u64,
        duplicate_version: u64,
    ) -> Result<bool, StoreError> {
        let (s, d) = (&step.survivor, &step.duplicate);
        let mut items = vec![
            self.put_versioned(account_item(s)?, Some(survivor_version))?,
            self.put_versioned(account_item(d)?, Some(duplicate_version))?,
        ];
        for lot in &step.moved {
            let k = keys::lot(&s.programme_id, &s.member_id, &lot.lot_id);
            items.push(self.put_new(to_item(k, "lot", lot)?)?);
        }
        for (lot_id, points) in &step.emptied {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::lot(
                    &d.programme_id,
                    &d.member_id,
                    lot_id,
                ))))
                .update_expression("SET remaining = remaining - :p")
                .condition_expression("remaining >= :p")
                .expression_attribute_values(":p", AttributeValue::N(points.to_string()))
                .build()?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        items.extend(self.entry_puts(s, &step.survivor_entries)?);
        items.extend(self.entry_puts(d, &step.duplicate_entries)?);
        let mut all = step.survivor_entries.clone();
        all.extend(step.duplicate_entries.iter().cloned());
        let change = step.outstanding_change.0 + step.outstanding_change.1;
        if !all.is_empty() || change != 0 {
            items.extend(self.clearing_items(s, &all, change)?);
        }
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }
}
