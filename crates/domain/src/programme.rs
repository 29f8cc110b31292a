//! Programme and partner settings. Every number in DESIGN.md is a per-programme setting with
//! the default given there.

use std::collections::BTreeMap;

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
    /// Time zone for calendar rules (expiry dates, "the next 30 days", volume months).
    pub time_zone: Tz,
    /// Product-group coefficients (margin groups): a line of group `g` earns `x coefficient`.
    /// Groups not listed earn x1.
    #[serde(default)]
    pub product_groups: BTreeMap<String, Coefficient>,
    /// Tiers by rolling 12-month net purchase volume, lowest threshold first.
    pub tiers: Vec<Tier>,
    /// Whether the line's tax counts towards points and volume (default: no).
    #[serde(default)]
    pub include_tax: bool,
    /// Whether the order's shipping amount earns points as an extra line (default: no).
    #[serde(default)]
    pub include_shipping: bool,
    /// What members are told, and when.
    #[serde(default)]
    pub messages: MessageSettings,
    /// Coalition clearing: the operator's fee on each partner's breakage (expired points),
    /// in percent of their value; 0 = none.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub breakage_fee_percent: Decimal,
    /// Points members send each other (off unless enabled).
    #[serde(default)]
    pub transfers: crate::transfer::TransferSettings,
    /// Who earns for orders placed for a company: the company or the employee.
    #[serde(default)]
    pub company_rewards: crate::company::CompanyRewards,
    /// Under `company_rewards: both`: the employee's share of each line, in percent.
    #[serde(default = "default_employee_percent")]
    pub company_employee_percent: u32,
    /// Credits and debits by customer service (crate::adjustment).
    #[serde(default)]
    pub adjustments: crate::adjustment::AdjustmentSettings,
    /// The point packs vendors buy for their campaigns (crate::packs).
    #[serde(default = "crate::packs::default_packs")]
    pub point_packs: Vec<crate::packs::PointPack>,
}

fn default_employee_percent() -> u32 {
    20
}

/// Member messages of a programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSettings {
    /// Points-earned messages; a member's own `preferences.earned_messages` overrides it.
    #[serde(default)]
    pub earned: EarnedMessages,
    /// The member's local hour at which the daily digest goes out (0-23).
    #[serde(default = "default_digest_hour")]
    pub digest_hour: u32,
    /// A monthly statement e-mail on the 1st.
    #[serde(default = "default_true")]
    pub monthly_statement: bool,
    /// Marketing messages (offers) a member gets at most per month; messages about their
    /// own points are not counted.
    #[serde(default = "default_marketing_cap")]
    pub marketing_per_month: u32,
}

fn default_marketing_cap() -> u32 {
    crate::offer::MARKETING_PER_MONTH
}

impl Default for MessageSettings {
    fn default() -> Self {
        MessageSettings {
            earned: EarnedMessages::PerOrder,
            digest_hour: default_digest_hour(),
            monthly_statement: true,
            marketing_per_month: default_marketing_cap(),
        }
    }
}

fn default_digest_hour() -> u32 {
    18
}

fn default_true() -> bool {
    true
}

/// Points-earned messages: one per order, one a day with the day's orders, or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarnedMessages {
    #[default]
    PerOrder,
    DailyDigest,
    Off,
}

impl EarnedMessages {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "per_order" => Some(EarnedMessages::PerOrder),
            "daily_digest" => Some(EarnedMessages::DailyDigest),
            "off" => Some(EarnedMessages::Off),
            _ => None,
        }
    }
}

/// An exact decimal factor, stored as a string ("1.25").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Coefficient(#[serde(with = "rust_decimal::serde::str")] pub Decimal);

/// A tier: reached when the rolling 12-month net purchase volume is at least `threshold_minor`
/// (programme currency minor units); every point of a member in it is multiplied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub threshold_minor: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub multiplier: Decimal,
}

/// Silver (0, x1.0), Gold (5,000, x1.25), Platinum (20,000, x1.5), VIP (50,000, x2.0), in
/// units of the programme currency.
pub fn default_tiers(currency: Currency) -> Vec<Tier> {
    let unit = 10i64.pow(currency.exponent());
    let tier = |name: &str, units: i64, mult: Decimal| Tier {
        name: name.into(),
        threshold_minor: units * unit,
        multiplier: mult,
    };
    vec![
        tier("Silver", 0, Decimal::ONE),
        tier("Gold", 5_000, Decimal::new(125, 2)),
        tier("Platinum", 20_000, Decimal::new(15, 1)),
        tier("VIP", 50_000, Decimal::TWO),
    ]
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
            product_groups: BTreeMap::new(),
            tiers: default_tiers(currency),
            include_tax: false,
            include_shipping: false,
            messages: MessageSettings::default(),
            breakage_fee_percent: Decimal::ZERO,
            transfers: crate::transfer::TransferSettings::default(),
            company_rewards: crate::company::CompanyRewards::default(),
            company_employee_percent: default_employee_percent(),
            adjustments: crate::adjustment::AdjustmentSettings::default(),
            point_packs: crate::packs::default_packs(),
        }
    }

    /// The programme as it earns at `partner`: the partner's own base rate, where it set
    /// one, replaces the programme's, and its own product-group coefficients replace the
    /// programme's for those groups (the others stay).
    pub fn with_partner_rates(&self, partner: &Partner) -> std::borrow::Cow<'_, Programme> {
        let r = &partner.rates;
        if r.points_per_unit.is_none() && r.product_groups.is_none() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut p = self.clone();
        if let Some(rate) = r.points_per_unit {
            p.points_per_unit = rate;
        }
        if let Some(groups) = &r.product_groups {
            p.product_groups.extend(groups.clone());
        }
        std::borrow::Cow::Owned(p)
    }

    /// The coefficient of a product group (x1 when the group is absent or unknown).
    pub fn coefficient(&self, group: Option<&str>) -> Decimal {
        group
            .and_then(|g| self.product_groups.get(g))
            .map_or(Decimal::ONE, |c| c.0)
    }

    /// The tier a rolling volume reaches.
    pub fn tier_for_volume(&self, volume_minor: i64) -> Option<&Tier> {
        self.tiers
            .iter()
            .rev()
            .find(|t| volume_minor >= t.threshold_minor)
    }

    /// The tier a rolling volume supports (the lowest when it reaches none).
    pub fn supported_tier(&self, volume_minor: i64) -> &str {
        self.tier_for_volume(volume_minor)
            .map_or(self.base_tier(), |t| t.name.as_str())
    }

    /// Rank of a tier by name (0 = lowest); unknown names rank lowest.
    pub fn tier_rank(&self, name: &str) -> usize {
        self.tiers.iter().position(|t| t.name == name).unwrap_or(0)
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }

    /// The lowest tier's name, where new members start.
    pub fn base_tier(&self) -> &str {
        self.tiers.first().map_or("", |t| t.name.as_str())
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
        for (group, c) in &self.product_groups {
            if c.0 < Decimal::ZERO || c.0 > Decimal::from(100) {
                return Err(format!(
                    "product_groups.{group}: coefficient must be between 0 and 100"
                ));
            }
        }
        if self.tiers.is_empty() {
            return Err("tiers: at least one tier is needed".into());
        }
        if self.tiers[0].threshold_minor != 0 {
            return Err("tiers[0].threshold: the lowest tier must start at 0".into());
        }
        for (i, t) in self.tiers.iter().enumerate() {
            if t.name.is_empty() || t.name.len() > 32 {
                return Err(format!("tiers[{i}].name: 1-32 characters"));
            }
            if t.multiplier < Decimal::ZERO || t.multiplier > Decimal::from(100) {
                return Err(format!("tiers[{i}].multiplier: must be between 0 and 100"));
            }
            if i > 0 && t.threshold_minor <= self.tiers[i - 1].threshold_minor {
                return Err(format!(
                    "tiers[{i}].threshold: must be above the tier before it"
                ));
            }
            if self.tiers[..i].iter().any(|o| o.name == t.name) {
                return Err(format!("tiers[{i}].name: '{}' appears twice", t.name));
            }
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
    /// Enrol an unknown member id from its first order (instead of recording a non-member).
    #[serde(default)]
    pub auto_enrol: bool,
    /// Shopify's own webhooks, if this partner is a Shopify store.
    #[serde(default)]
    pub shopify: Option<PlatformLink>,
    /// WooCommerce's own webhooks, if this partner is a WooCommerce store.
    #[serde(default)]
    pub woocommerce: Option<PlatformLink>,
    /// Where the monthly clearing statement is e-mailed (none: not e-mailed).
    #[serde(default)]
    pub finance_email: Option<String>,
    /// The partner's own base rate and coefficients (none: the programme's).
    #[serde(default)]
    pub rates: PartnerRates,
    /// When and how much members may spend at this partner (none: no limit).
    #[serde(default)]
    pub redemption: RedemptionLimits,
    /// Bumped by every change of `rates`, `redemption` and `sandbox` (changes are made over
    /// the version read).
    #[serde(default)]
    pub settings_version: u64,
    /// Sandbox mode: its orders, refunds and events are checked and answered as they would
    /// be booked (with `"sandbox": true`), and nothing is written: no balance changes.
    #[serde(default)]
    pub sandbox: bool,
    /// Its subscription to its members' events (outgoing webhooks, crate::outgoing); set over
    /// the partner API only, kept by `bonus apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<crate::outgoing::Subscription>,
}

/// A partner's own earning rates: they replace the programme's for orders at the partner
/// (coefficients group by group), which is the issuer of those points and pays for them in
/// clearing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRates {
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub points_per_unit: Option<Decimal>,
    #[serde(default)]
    pub product_groups: Option<BTreeMap<String, Coefficient>>,
}

impl PartnerRates {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = self.points_per_unit {
            if r < Decimal::ZERO || r > Decimal::from(1000) {
                return Err("points_per_unit: must be between 0 and 1000".into());
            }
        }
        for (group, c) in self.product_groups.iter().flatten() {
            if !crate::ids::valid_external_id(group) {
                return Err(format!(
                    "product_groups: '{group}' is not a valid group code"
                ));
            }
            if c.0 < Decimal::ZERO || c.0 > Decimal::from(100) {
                return Err(format!(
                    "product_groups.{group}: coefficient must be between 0 and 100"
                ));
            }
        }
        if self.product_groups.as_ref().is_some_and(|g| g.len() > 500) {
            return Err("product_groups: at most 500".into());
        }
        Ok(())
    }
}

/// Redemption limits of a partner (bonVito): members spend at most so much per
/// transaction and per day, and only on these weekdays and hours (partner time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedemptionLimits {
    #[serde(default)]
    pub max_points_per_transaction: Option<Points>,
    #[serde(default)]
    pub max_points_per_member_day: Option<Points>,
    /// Empty: every day.
    #[serde(default)]
    pub weekdays: Vec<chrono::Weekday>,
    #[serde(default)]
    pub hours: Option<crate::campaign::HourWindow>,
}

impl RedemptionLimits {
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            (
                "max_points_per_transaction",
                self.max_points_per_transaction,
            ),
            ("max_points_per_member_day", self.max_points_per_member_day),
        ] {
            if v.is_some_and(|v| v <= 0) {
                return Err(format!("{field}: a whole number above 0 (or left out)"));
            }
        }
        crate::campaign::check_days_and_hours(&self.weekdays, self.hours)
    }

    pub fn is_empty(&self) -> bool {
        *self == RedemptionLimits::default()
    }

    /// May a member spend `points` here at local time `local`, having reserved `today` at
    /// this partner on that day already? Each limit refuses with its own 409 code.
    pub fn check(
        &self,
        points: Points,
        local: chrono::NaiveDateTime,
        today: Points,
    ) -> Result<(), crate::error::Error> {
        use crate::error::Error;
        use chrono::{Datelike, Timelike};
        let day_open = self.weekdays.is_empty() || self.weekdays.contains(&local.weekday());
        let hour_open = self
            .hours
            .is_none_or(|h| (h.from..h.to).contains(&local.hour()));
        if !day_open || !hour_open {
            return Err(Error::conflict(
                "redemption_closed",
                "points cannot be spent at this partner at this time (its redemption days and hours)",
            ));
        }
        if let Some(max) = self.max_points_per_transaction {
            if points > max {
                return Err(Error::conflict(
                    "redemption_limit_per_transaction",
                    format!("at most {max} points per transaction at this partner"),
                ));
            }
        }
        if let Some(max) = self.max_points_per_member_day {
            if today.saturating_add(points) > max {
                return Err(Error::conflict(
                    "redemption_limit_per_day",
                    format!(
                        "at most {max} points per member and day at this partner ({} left today)",
                        (max - today).max(0)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How a shop platform's native webhooks are verified and treated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformLink {
    /// Signing secrets (HMAC-SHA256). Two during a rotation: the new one and the old one.
    pub secrets: Vec<String>,
    /// Book test orders (Shopify `test: true`) as real ones. Off by default.
    #[serde(default)]
    pub accept_test_orders: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str, hour: u32) -> chrono::NaiveDateTime {
        day.parse::<chrono::NaiveDate>()
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
    }

    #[test]
    fn redemption_limits_refuse_each_with_its_code() {
        let limits = RedemptionLimits {
            max_points_per_transaction: Some(500),
            max_points_per_member_day: Some(800),
            weekdays: vec![chrono::Weekday::Mon, chrono::Weekday::Sat],
            hours: Some(crate::campaign::HourWindow { from: 8, to: 18 }),
        };
        // 2026-11-23 is a Monday, 2026-11-24 a Tuesday.
        assert_eq!(limits.check(500, at("2026-11-23", 8), 300), Ok(()));
        let code = |r: Result<(), crate::error::Error>| r.unwrap_err().code;
        assert_eq!(
            code(limits.check(1, at("2026-11-24", 10), 0)),
            "redemption_closed"
        );
        assert_eq!(
            code(limits.check(1, at("2026-11-23", 18), 0)),
            "redemption_closed"
        );
        assert_eq!(
            code(limits.check(1, at("2026-11-23", 7), 0)),
            "redemption_closed"
        );
        assert_eq!(
            code(limits.check(501, at("2026-11-23", 10), 0)),
            "redemption_limit_per_transaction"
        );
        assert_eq!(
            code(limits.check(301, at("2026-11-23", 10), 500)),
            "redemption_limit_per_day"
        );
        assert_eq!(
            RedemptionLimits::default().check(1_000_000, at("2026-11-24", 3), 9_999_999),
            Ok(())
        );
        assert!(limits.validate().is_ok());
        let bad = RedemptionLimits {
            max_points_per_transaction: Some(0),
            ..RedemptionLimits::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("max_points_per_transaction"));
    }

    #[test]
    fn a_partners_own_rates_replace_the_programmes_group_by_group() {
        let mut p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Coalition,
            Currency::parse("EUR").unwrap(),
        );
        p.product_groups
            .insert("cocktails".into(), Coefficient(Decimal::TEN));
        let mut partner: Partner = serde_json::from_value(serde_json::json!({
            "id": "bakery", "programme_id": "p", "name": "Bakery", "time_zone": "Europe/Berlin",
            "webhook_secrets": []
        }))
        .unwrap();
        assert_eq!(p.with_partner_rates(&partner).points_per_unit, Decimal::ONE);
        partner.rates.product_groups = Some(BTreeMap::from([(
            "bread".to_string(),
            Coefficient(Decimal::from(5)),
        )]));
        partner.rates.points_per_unit = Some(Decimal::TWO);
        let at_bakery = p.with_partner_rates(&partner);
        assert_eq!(at_bakery.points_per_unit, Decimal::TWO);
        assert_eq!(at_bakery.coefficient(Some("bread")), Decimal::from(5));
        assert_eq!(at_bakery.coefficient(Some("cocktails")), Decimal::TEN);
        assert_eq!(p.coefficient(Some("bread")), Decimal::ONE);
    }
}
