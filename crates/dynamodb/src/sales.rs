//! Sales aggregates for campaign reports: per partner, SKU and local day (spread over a few
//! shards by buyer), written in the order's own ledger transaction, so an order counts once
//! however often its webhook is retried. A report reads O(SKUs x days x shards) items,
//! never the orders.
//!
//! Each item holds the day's turnover (net line amounts, minor units), quantity, points,
//! points per campaign (`c:{campaign}`), and the buyers as string sets of short hashes
//! (members, and non-members by the shop's customer id, else by order): adding a buyer twice
//! changes nothing, so distinct buyers over a period are the union of the days' sets. No
//! personal data is stored: ids are hashed with the partner id.

use crate::Stamped;
use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::NaiveDate;

use super::{key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use bonus_domain::ids::shard_of;
use bonus_domain::sales::Sale;

/// The sparse index (GSI1) partition of orders whose sales are not all written yet.
pub const PENDING_SALES_INDEX: &str = "SALESDUE";

/// An order whose sales did not fit its booking transaction: written in that transaction,
/// cleared from the index once every chunk of its sales is in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingSales {
    pub partner_id: String,
    pub order_id: String,
    pub sale: Sale,
}

fn pending_keys(partner_id: &str, order_id: &str) -> (String, String) {
    (
        format!("SALESDUE#{partner_id}#{order_id}"),
        "SALES".to_string(),
    )
}

/// Shards per partner, SKU and day (by buyer): spreads a best-seller's writes.
pub const SALES_SHARDS: u32 = 4;

pub fn sales_pk(partner_id: &str, sku: &str) -> String {
    format!("SALES#{partner_id}#{sku}")
}

/// One day of one SKU, the shards summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesDay {
    pub day: Option<NaiveDate>,
    pub turnover_minor: i64,
    pub quantity: i64,
    pub points: i64,
    pub campaigns: BTreeMap<String, i64>,
    pub members: BTreeSet<String>,
    pub others: BTreeSet<String>,
}

impl Store {
    /// The updates that add an order's sales (one per SKU).
    pub fn sales_items(&self, sale: &Sale) -> Result<Vec<TransactWriteItem>, StoreError> {
        let shard = shard_of(&sale.buyer, SALES_SHARDS);
        let buyers = if sale.member { "members" } else { "others" };
        let mut items = Vec::new();
        for l in &sale.lines {
            let mut names = vec![
                ("turnover".to_string(), l.turnover_minor),
                ("quantity".to_string(), l.quantity),
                ("points".to_string(), l.points),
            ];
            names.extend(l.campaigns.iter().map(|(c, p)| (format!("c:{c}"), *p)));
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&(
                    sales_pk(&sale.partner_id, &l.sku),
                    format!("{}#{shard:02}", sale.day),
                ))))
                .expression_attribute_names("#b", buyers)
                .expression_attribute_values(":b", AttributeValue::Ss(vec![sale.buyer.clone()]));
            let mut adds = vec!["#b :b".to_string()];
            for (i, (name, n)) in names.into_iter().enumerate() {
                adds.push(format!("#a{i} :a{i}"));
                update = update
                    .expression_attribute_names(format!("#a{i}"), name)
                    .expression_attribute_values(
                        format!(":a{i}"),
                        AttributeValue::N(n.to_string()),
                    );
            }
            let update = update
                .stamped_expression(&format!("ADD {}", adds.join(", ")))
                .build()?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(items)
    }

    /// A SKU's sales per day from `from` to `to` (inclusive): one Query.
    pub async fn sales(
        &self,
        partner_id: &str,
        sku: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, SalesDay>, StoreError> {
        let mut out: BTreeMap<NaiveDate, SalesDay> = BTreeMap::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", super::keys::PK)
                .expression_attribute_names("#sk", super::keys::SK)
                .expression_attribute_values(":pk", AttributeValue::S(sales_pk(partner_id, sku)))
                .expression_attribute_values(":from", AttributeValue::S(format!("{from}#")))
                .expression_attribute_values(":to", AttributeValue::S(format!("{to}#~")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in page.items.unwrap_or_default() {
                let Some(AttributeValue::S(sk)) = item.get(super::keys::SK) else {
                    continue;
                };
                let Some(day) = sk.split('#').next().and_then(|d| d.parse().ok()) else {
                    continue;
                };
                let e = out.entry(day).or_default();
                e.day = Some(day);
                for (name, v) in &item {
                    match (name.as_str(), v) {
                        ("members", AttributeValue::Ss(s)) => e.members.extend(s.iter().cloned()),
                        ("others", AttributeValue::Ss(s)) => e.others.extend(s.iter().cloned()),
                        (name, AttributeValue::N(n)) => {
                            let n: i64 = n.parse().map_err(|_| {
                                StoreError::Mapping(format!("sales {name} is not an integer"))
                            })?;
                            match name {
                                "turnover" => e.turnover_minor += n,
                                "quantity" => e.quantity += n,
                                "points" => e.points += n,
                                other => {
                                    if let Some(c) = other.strip_prefix("c:") {
                                        *e.campaigns.entry(c.to_string()).or_default() += n;
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    pub(crate) fn pending_sales_item(
        &self,
        p: &PendingSales,
        recorded_at: &chrono::DateTime<chrono::Utc>,
    ) -> Result<Item, StoreError> {
        let item = to_item(pending_keys(&p.partner_id, &p.order_id), "pending_sales", p)?;
        let at = bonus_domain::clock::ts(*recorded_at);
        Ok(super::with_gsi1(
            item,
            PENDING_SALES_INDEX.into(),
            format!("{at}#{}#{}", p.partner_id, p.order_id),
        ))
    }

    /// Add an order's sales in transactions of 99 updates plus a put-if-absent marker each
    /// (a retry adds nothing twice), then take the order out of the pending index.
    pub async fn complete_sales(&self, p: &PendingSales) -> Result<(), StoreError> {
        let updates = self.sales_items(&p.sale)?;
        for (n, chunk) in updates.chunks(99).enumerate() {
            let marker = to_item(
                (
                    format!("SALESDONE#{}#{}", p.partner_id, p.order_id),
                    format!("CHUNK#{n:04}"),
                ),
                "sales_marker",
                &serde_json::json!({}),
            )?;
            let mut items = vec![self.put_new(marker)?];
            items.extend(chunk.iter().cloned());
            let mut retry = self.retry();
            loop {
                let Some(pause) = retry.next() else {
                    return Err(StoreError::Contention(super::retry::MAX_ATTEMPTS));
                };
                super::retry::pause(pause).await;
                match self.transact(items.clone()).await? {
                    TxOutcome::Committed => break,
                    o if o.failed_condition(0) => break, // written before
                    _ => retry.backoff(),
                }
            }
        }
        // Done: out of the index (kept a while for support, then removed by TTL).
        let ttl = (chrono::Utc::now() + chrono::Duration::days(30)).timestamp();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&pending_keys(&p.partner_id, &p.order_id))))
            .update_expression("REMOVE #gpk, #gsk SET #ttl = :ttl")
            .expression_attribute_names("#gpk", keys::GSI1PK)
            .expression_attribute_names("#gsk", keys::GSI1SK)
            .expression_attribute_names("#ttl", super::schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Finish up to `limit` orders whose sales are still pending (oldest first). Returns
    /// (finished, failed); a failed one stays for the next run.
    pub async fn complete_pending_sales(&self, limit: i32) -> Result<(usize, usize), StoreError> {
        let page = self
            .gsi1_query(PENDING_SALES_INDEX.to_string())
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let (mut done, mut failed) = (0, 0);
        for item in page.items.unwrap_or_default() {
            let p: PendingSales = super::from_item(item)?;
            match self.complete_sales(&p).await {
                Ok(()) => done += 1,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(partner_id = %p.partner_id, order_id = %p.order_id, error = %e, "pending sales not finished");
                }
            }
        }
        Ok((done, failed))
    }
}
