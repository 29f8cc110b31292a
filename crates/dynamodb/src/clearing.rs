//! The clearing counters: per programme, month and partner, spread over shards so that no
//! item is hot. Ledger transactions ADD to one shard (picked by the member), the monthly job
//! sums a partner's shards with one Query: its reads grow with partners x shards, never with
//! the number of ledger entries.

use crate::Stamped;
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{from_item, key_map, keys, shard_of, to_item, Store, StoreError, TxOutcome};
use bonus_domain::account::Account;
use bonus_domain::clearing::{movements, Clearing, PartnerCounters, PartnerStatement};
use bonus_domain::events::LedgerEntry;
use bonus_domain::month::Month;

/// Shards per partner and month: a busy partner's orders spread over 16 items, so
/// concurrent transactions seldom meet on one.
pub const CLEARING_SHARDS: u32 = 16;
/// Shards of a programme's outstanding-change counter: every ledger transaction of the
/// programme adds to one, so it is spread wider.
pub const OUTSTANDING_SHARDS: u32 = 64;

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
/// Counter attributes of points returned at a partner (returned claims): `ret:{partner}`.
const RETURNED_PREFIX: &str = "ret:";
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
            ("transferred_out", c.transferred_out),
            ("transferred_in", c.transferred_in),
        ];
        let redeemed = c
            .redeemed_at
            .iter()
            .map(|(at, p)| (format!("{REDEEMED_PREFIX}{at}"), *p));
        let returned = c
            .returned_at
            .iter()
            .map(|(at, p)| (format!("{RETURNED_PREFIX}{at}"), *p));
        for (i, (name, points)) in fixed
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .chain(redeemed)
            .chain(returned)
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
            .stamped_expression(&format!("ADD {}", adds.join(", ")))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The counter updates for a member's new statement entries (one per month and issuer)
    /// and for the change of the member's outstanding points.
    pub fn clearing_items(
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
            let month = Month::of(at, account.time_zone).to_string();
            let shard = shard_of(member_id, OUTSTANDING_SHARDS);
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::clearing_outstanding(
                    programme_id,
                    &month,
                    shard,
                ))))
                .stamped_expression("ADD #c :c")
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
                    "transferred_out" => sum.transferred_out += points,
                    "transferred_in" => sum.transferred_in += points,
                    other => {
                        if let Some(at) = other.strip_prefix(REDEEMED_PREFIX) {
                            *sum.redeemed_at.entry(at.to_string()).or_default() += points;
                        } else if let Some(at) = other.strip_prefix(RETURNED_PREFIX) {
                            *sum.returned_at.entry(at.to_string()).or_default() += points;
                        }
                    }
                }
            }
        }
        Ok(sum)
    }
}

/// The summary item of a closed month. It is written last and only once: while it exists
/// the month's statements are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedMonth {
    pub programme_id: String,
    pub month: String,
    pub point_value_minor: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub breakage_fee_percent: Decimal,
    pub outstanding_change: i64,
    pub partners: usize,
    pub closed_at: DateTime<Utc>,
}

/// One partner's stored statement with its row of the matrix (its points, spent where).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredStatement {
    #[serde(flatten)]
    statement: PartnerStatement,
    spent_at: BTreeMap<String, i64>,
}

/// What closing a month did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// The month was open: its statements are now written and final.
    Written,
    /// The month was closed already with exactly these figures: nothing written.
    Reproduced,
    /// The month was closed with other figures (the stored ones stand): a loud error for
    /// the job, since the counters changed after the close.
    Differs { stored: Box<Clearing> },
}

const SUMMARY_SK: &str = "SUMMARY";

impl Store {
    /// Close a month with a checked clearing: the partner statements, then the summary
    /// (put-if-absent). A month already closed is compared, never rewritten.
    pub async fn close_month(
        &self,
        clearing: &Clearing,
        breakage_fee_percent: Decimal,
        now: DateTime<Utc>,
    ) -> Result<Closing, StoreError> {
        if let Some((_, stored)) = self
            .closed_month(&clearing.programme_id, &clearing.month)
            .await?
        {
            return Ok(compare(stored, clearing));
        }
        let pk = keys::cleared_pk(&clearing.programme_id, &clearing.month);
        let mut items = Vec::new();
        for s in &clearing.statements {
            let stored = StoredStatement {
                statement: s.clone(),
                spent_at: clearing
                    .matrix
                    .get(&s.partner_id)
                    .cloned()
                    .unwrap_or_default(),
            };
            let item = to_item(
                (pk.clone(), format!("PARTNER#{}", s.partner_id)),
                "clearing_statement",
                &stored,
            )?;
            // Until the summary exists nothing is final: a half-finished earlier run is
            // simply overwritten with the same figures.
            items.push(self.put_item(item, None)?);
        }
        for chunk in items.chunks(100) {
            self.transact_all(chunk.to_vec()).await?;
        }
        let summary = ClosedMonth {
            programme_id: clearing.programme_id.clone(),
            month: clearing.month.clone(),
            point_value_minor: clearing.point_value_minor,
            breakage_fee_percent,
            outstanding_change: clearing.outstanding_change,
            partners: clearing.statements.len(),
            closed_at: now,
        };
        let item = to_item((pk, SUMMARY_SK.into()), "clearing_summary", &summary)?;
        match self.transact(vec![self.put_new(item)?]).await? {
            TxOutcome::Committed => Ok(Closing::Written),
            // Another run closed it first: compare with what it wrote.
            _ => match self
                .closed_month(&clearing.programme_id, &clearing.month)
                .await?
            {
                Some((_, stored)) => Ok(compare(stored, clearing)),
                None => Err(StoreError::Contention(1)),
            },
        }
    }

    /// A closed month as stored: its summary and the clearing rebuilt from its statements.
    /// None while the month is not closed.
    pub async fn closed_month(
        &self,
        programme_id: &str,
        month: &str,
    ) -> Result<Option<(ClosedMonth, Clearing)>, StoreError> {
        let items = self
            .query_items(&keys::cleared_pk(programme_id, month), "")
            .await?;
        let mut summary: Option<ClosedMonth> = None;
        let mut statements = Vec::new();
        let mut matrix = BTreeMap::new();
        for item in items {
            let sk = match item.get(keys::SK) {
                Some(AttributeValue::S(s)) => s.clone(),
                _ => continue,
            };
            if sk == SUMMARY_SK {
                summary = Some(from_item(item)?);
            } else {
                let s: StoredStatement = from_item(item)?;
                if !s.spent_at.is_empty() {
                    matrix.insert(s.statement.partner_id.clone(), s.spent_at);
                }
                statements.push(s.statement);
            }
        }
        let Some(summary) = summary else {
            return Ok(None);
        };
        statements.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
        let clearing = Clearing {
            programme_id: summary.programme_id.clone(),
            month: summary.month.clone(),
            point_value_minor: summary.point_value_minor,
            statements,
            matrix,
            outstanding_change: summary.outstanding_change,
        };
        Ok(Some((summary, clearing)))
    }

    /// A transaction that must go through: conflicts and throttling are retried.
    async fn transact_all(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            match self.transact(items.clone()).await? {
                TxOutcome::Committed => return Ok(()),
                o if o.conflicted() => retry.backoff(),
                TxOutcome::Cancelled(r) => {
                    return Err(StoreError::Sdk(format!("transaction cancelled: {r:?}")))
                }
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }
}

fn compare(stored: Clearing, computed: &Clearing) -> Closing {
    if &stored == computed {
        Closing::Reproduced
    } else {
        Closing::Differs {
            stored: Box::new(stored),
        }
    }
}
