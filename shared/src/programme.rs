//! Programme and partner settings. Every number in DESIGN.md is a per-programme setting with
//! the default given there.

use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Points};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgrammeKind {
    /// Points earned at a partner are spent at that partner only.
    Closed,
    /// Points earned at any partner are spent at any partner; partners settle monthly.
    Coalition,
}

/// A loyalty programme. Stored as one item; cached by the functions for a short time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Programme {
    pub id: String,
    pub name: String,
    pub kind: ProgrammeKind,
    pub currency: Currency,
    /// Money value of one point in minor units of `currency` (1 = one cent).
    pub point_value_minor: i64,
    /// Base points per one unit of currency (1 EUR) of net line amount.
    #[serde(with = "rust_decimal::serde::str")]
    pub points_per_unit: Decimal,
    /// Points stay pending this many days (the return window).
    pub release_days: u32,
    /// Points expire this many calendar months after they were earned.
    pub expiry_months: u32,
    pub min_balance_to_redeem: Points,
    /// Time zone for calendar rules (expiry dates, "the next 30 days").
    pub time_zone: Tz,
}

impl Programme {
    /// A programme with every setting at the DESIGN.md default.
    pub fn with_defaults(id: &str, name: &str, kind: ProgrammeKind, currency: Currency) -> Self {
        Programme {
            id: id.to_string(),
            name: name.to_string(),
            kind,
            currency,
            point_value_minor: 1,
            points_per_unit: Decimal::ONE,
            release_days: 14,
            expiry_months: 12,
            min_balance_to_redeem: 1000,
            time_zone: chrono_tz::UTC,
        }
    }

    /// Check the settings hang together; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::ids::valid_id(&self.id) {
            return Err(format!("id: '{}' {}", self.id, crate::ids::ID_RULE));
        }
        if self.point_value_minor <= 0 {
            return Err("point_value_minor: must be a positive integer".into());
        }
        if self.points_per_unit < Decimal::ZERO || self.points_per_unit > Decimal::from(1000) {
            return Err("points_per_unit: must be between 0 and 1000".into());
        }
        if self.expiry_months == 0 || self.expiry_months > 120 {
            return Err("expiry_months: must be between 1 and 120".into());
        }
        if self.release_days > 365
            || i64::from(self.release_days) >= i64::from(self.expiry_months) * 28
        {
            return Err(
                "release_days: must be shorter than the expiry period and at most 365".into(),
            );
        }
        if self.min_balance_to_redeem < 0 {
            return Err("min_balance_to_redeem: must not be negative".into());
        }
        Ok(())
    }
}

/// A partner (webshop) of a programme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: String,
    pub programme_id: String,
    pub name: String,
    /// Partner's time zone (campaign weekdays and dates).
    pub time_zone: Tz,
    /// Standard Webhooks secrets (`whsec_...`). More than one during a rotation.
    pub webhook_secrets: Vec<String>,
}
