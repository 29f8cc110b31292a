//! The clearing counters: per programme, month and partner, spread over shards so that no
//! item is hot. Ledger transactions ADD to one shard (picked by the member), the monthly job
//! sums a partner's shards with one Query: its reads grow with partners x shards, never with
//! the number of ledger entries.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{key_map, keys, shard_of, Store, StoreError};
use crate::clearing::PartnerCounters;

/// Shards per partner and month.
pub const CLEARING_SHARDS: u32 = 8;

/// A change to one partner's counters of one month (what one ledger transaction adds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterDelta {
    pub programme_id: String,
    pub month: String,
    /// The issuer whose points moved.
    pub partner_id: String,
    pub issued: i64,
    pub reversed: i64,
    pub expired: i64,
    /// Points of this issuer redeemed at each partner.
    pub redeemed_at: BTreeMap<String, i64>,
}

/// Counter attributes: fixed names, and `at:{partner}` per accepting partner.
const REDEEMED_PREFIX: &str = "at:";

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
        let fixed = [
            ("issued", d.issued),
            ("reversed", d.reversed),
            ("expired", d.expired),
        ];
        let redeemed = d
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
            for (name, v) in item {
                let AttributeValue::N(n) = v else { continue };
                let points: i64 = n
                    .parse()
                    .map_err(|_| StoreError::Sdk(format!("counter {name} is not an integer")))?;
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
