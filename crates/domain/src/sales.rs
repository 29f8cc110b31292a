//! An order's sales for campaign reports, pure: each SKU's turnover, quantity and points,
//! and the buyer as a short hash (no personal data is stored).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One SKU's part of an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    pub sku: String,
    pub turnover_minor: i64,
    pub quantity: i64,
    pub points: i64,
    /// Points each campaign paid on it.
    pub campaigns: BTreeMap<String, i64>,
}

/// An order's sales, as aggregated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    pub partner_id: String,
    /// Local day of the order (partner time zone).
    pub day: NaiveDate,
    /// Hashed buyer: see [`buyer_key`].
    pub buyer: String,
    pub member: bool,
    /// One per SKU.
    pub lines: Vec<SaleLine>,
}

/// A buyer as stored: 16 hex characters of SHA-256 over the partner and the id.
pub fn buyer_key(partner_id: &str, kind: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("{partner_id}\u{1f}{kind}\u{1f}{id}").as_bytes());
    hex::encode(&digest[..8])
}

/// Sum an order's lines per SKU (an order may list a SKU on several lines).
pub fn by_sku(lines: impl IntoIterator<Item = SaleLine>) -> Vec<SaleLine> {
    let mut out: BTreeMap<String, SaleLine> = BTreeMap::new();
    for l in lines {
        let e = out.entry(l.sku.clone()).or_insert_with(|| SaleLine {
            sku: l.sku.clone(),
            ..SaleLine::default()
        });
        e.turnover_minor += l.turnover_minor;
        e.quantity += l.quantity;
        e.points += l.points;
        for (c, p) in l.campaigns {
            *e.campaigns.entry(c).or_default() += p;
        }
    }
    out.into_values().collect()
}
