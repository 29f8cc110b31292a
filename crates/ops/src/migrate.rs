//! `bonus migrate`: upgrade items written by earlier versions in place, so that local data
//! (and a deployed table) survive an upgrade. Idempotent: a second run finds nothing to do,
//! and a run that stops half-way is finished by the next.
//!
//! Upgrades: accounts from before the coalition clearing (issue 8) lack the expiry buckets
//! split by issuer; the split is rebuilt from the member's lots.

use aws_sdk_dynamodb::types::AttributeValue;
use bonus_domain::account::{split_expiry_by_issuer, Account};
use bonus_dynamodb::{from_item, Store, StoreError, ENTITY};

/// What a migration run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrateSummary {
    /// Accounts read.
    pub accounts: usize,
    /// Of those, upgraded by this run.
    pub upgraded: usize,
    /// Of those, left as they are: their lots do not add up to their buckets (`bonus audit`
    /// reports them), or they changed while being upgraded (run again).
    pub left: usize,
}

/// Upgrade every account that needs it (a Scan of the account items: an offline job, never
/// on a request path).
pub async fn migrate(store: &Store) -> Result<MigrateSummary, StoreError> {
    let mut summary = MigrateSummary::default();
    let mut start = None;
    loop {
        let page = store
            .client
            .scan()
            .table_name(&store.table)
            .filter_expression("#e = :account")
            .expression_attribute_names("#e", ENTITY)
            .expression_attribute_values(":account", AttributeValue::S("account".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        for item in page.items.unwrap_or_default() {
            let account: Account = from_item(item)?;
            summary.accounts += 1;
            let lots = store
                .lots(&account.programme_id, &account.member_id)
                .await?;
            match split_expiry_by_issuer(&account, &lots) {
                Ok(None) => {}
                Ok(Some(upgraded)) => {
                    if store.save_account(&upgraded, account.version).await? {
                        summary.upgraded += 1;
                    } else {
                        summary.left += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(member_id = %account.member_id, error = %e, "account not upgraded");
                    summary.left += 1;
                }
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(summary);
        }
    }
}
