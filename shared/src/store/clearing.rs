//! The clearing counters: per programme, month and partner, spread over shards so that no
//! item is hot. Ledger transactions ADD to one shard (picked by the member), the monthly job
//! sums a partner's shards with one Query: its reads grow with partners x shards, never with
//! the number of ledger entries.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{key_map, keys, shard_of, Store, StoreError};
use crate::account::Account;
use crate::clearing::{month_of, movements, PartnerCounters};
use crate::events::LedgerEntry;

/// Shards per partner and month.
pub const CLEARING_SHARDS: u32 = 8;

/// A change to one partner's counters of one month (what one ledger transaction adds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterDelta {
    pub programme_id: String,
    pub month: String,
    /// The issuer whose points moved.
    pub partner_id: String,
    pub counters: PartnerCounters,
}

/// Counter attributes: fixed names, and `at:{partner}` per accepting partner.
const REDEEMED_PREFIX: &str = "at:";
/// The outstanding-change counter's attribute.
const OUTSTANDING: &str = "change";

fn number(item: &super::Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Sdk(format!("counter {name} is not an integer"))),
        _ => Ok(0),
    }
}

impl Store {
    /// The update that adds a delta to one shard of the issuer's counters; `spread_key` (the
    /// member id) picks the shard.
    pub fn counter_update(
        &self,
        d: &CounterDelta,
        spread_key: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let shard = shard_of(spread_key, CLEARING_SHARDS);
        let mut adds = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::clearing_counter(
                &d.programme_id,
                &d.month,
                &d.partner_id,
                shard,
            ))));
        let c = &d.counters;
        let fixed = [
            ("issued", c.issued),
            ("reversed", c.reversed),
            ("expired", c.expired),
        ];
        let redeemed = c
            .redeemed_at
            .iter()
            .map(|(at, p)| (format!("{REDEEMED_PREFIX}{at}"), *p));
        for (i, (name, points)) in fixed
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .chain(redeemed)
            .enumerate()
        {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(
                    format!(":a{i}"),
                    AttributeValue::N(points.to_string()),
                );
        }
        let update = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The counter updates for a member's new statement entries (one per month and issuer)
    /// and for the change of the member's outstanding points.
    pub(crate) fn clearing_items(
        &self,
        account: &Account,
        entries: &[LedgerEntry],
        outstanding_change: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let (programme_id, member_id) = (&account.programme_id, &account.member_id);
        let mut items = Vec::new();
        for ((month, partner_id), counters) in movements(entries, account.time_zone) {
            let delta = CounterDelta {
                programme_id: programme_id.clone(),
                month,
                partner_id,
                counters,
            };
            items.push(self.counter_update(&delta, member_id)?);
        }
        if outstanding_change != 0 {
            let at = entries.iter().map(|e| e.at).max().ok_or_else(|| {
                StoreError::Build(format!(
                    "member {member_id}: outstanding points change by {outstanding_change} without a statement entry"
                ))
            })?;
            let month = month_of(at, account.time_zone);
            let shard = shard_of(member_id, CLEARING_SHARDS);
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::clearing_outstanding(
                    programme_id,
                    &month,
                    shard,
                ))))
                .update_expression("ADD #c :c")
                .expression_attribute_names("#c", OUTSTANDING)
                .expression_attribute_values(
                    ":c",
                    AttributeValue::N(outstanding_change.to_string()),
                )
                .build()?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(items)
    }

    /// The change of all members' outstanding points in a month (its shards summed).
    pub async fn outstanding_change(
        &self,
        programme_id: &str,
        month: &str,
    ) -> Result<i64, StoreError> {
        let pk = keys::clearing_outstanding(programme_id, month, 0).0;
        let mut sum = 0i64;
        for item in self.query_items(&pk, "OUTSTANDING#").await? {
            sum += number(&item, OUTSTANDING)?;
        }
        Ok(sum)
    }

    /// A partner's counters of a month: its shards summed (one Query).
    pub async fn partner_counters(
        &self,
        programme_id: &str,
        month: &str,
        partner_id: &str,
    ) -> Result<PartnerCounters, StoreError> {
        let pk = keys::clearing_counter(programme_id, month, partner_id, 0).0;
        let mut sum = PartnerCounters::default();
        for item in self.query_items(&pk, "SHARD#").await? {
            for name in item.keys() {
                if !matches!(item.get(name), Some(AttributeValue::N(_))) {
                    continue;
                }
                let points = number(&item, name)?;
                match name.as_str() {
                    "issued" => sum.issued += points,
                    "reversed" => sum.reversed += points,
                    "expired" => sum.expired += points,
                    other => {
                        if let Some(at) = other.strip_prefix(REDEEMED_PREFIX) {
                            *sum.redeemed_at.entry(at.to_string()).or_default() += points;
                        }
                    }
                }
            }
        }
        Ok(sum)
    }
}
