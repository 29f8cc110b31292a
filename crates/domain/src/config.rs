//! Config as code: the file format of `bonus apply` (documented in docs/config.md).
//! Parsing and validation are pure; the CLI writes the validated plan through the store.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::campaign::{BehaviourCampaign, Campaign, CampaignRule};
use crate::ids::{valid_external_id, valid_id, ID_RULE};
use crate::member::{api_key_well_formed, hash_api_key, ApiKeyRecord, MemberProfile, Scope};
use crate::money::Currency;
use crate::programme::{Coefficient, Partner, PlatformLink, Programme, ProgrammeKind, Tier};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub programmes: Vec<ProgrammeIn>,
    #[serde(default)]
    pub partners: Vec<PartnerIn>,
    #[serde(default)]
    pub members: Vec<MemberIn>,
    #[serde(default)]
    pub campaigns: Vec<CampaignIn>,
    #[serde(default)]
    pub behaviour_campaigns: Vec<BehaviourCampaignIn>,
    #[serde(default)]
    pub rewards: Vec<RewardIn>,
    #[serde(default)]
    pub companies: Vec<CompanyIn>,
}

/// A company (a member whose buyers' orders earn for it) and its users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyIn {
    pub id: String,
    pub programme: String,
    pub name: String,
    #[serde(default)]
    pub vat_id: Option<String>,
    /// The partner that enrolled it (absent: the whole programme).
    #[serde(default)]
    pub partner: Option<String>,
    /// Under `company_rewards: both`: false keeps the employees' share for the company.
    #[serde(default = "yes")]
    pub employee_share: bool,
    #[serde(default)]
    pub users: Vec<CompanyUserIn>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyUserIn {
    /// A member declared under `members:` in the same programme.
    pub member: String,
    pub role: crate::company::Role,
    /// The person's orders earn for this company when they name none (absent: if it is
    /// their first company; false: never).
    #[serde(default)]
    pub default: Option<bool>,
}

/// A company as planned: its profile, its account's mark, and its users (with whether it
/// becomes their default company).
#[derive(Debug, Clone)]
pub struct CompanyPlan {
    pub profile: MemberProfile,
    pub company: crate::company::CompanyAccount,
    pub users: Vec<(crate::company::CompanyUser, Option<bool>)>,
}

/// A gift-shop reward.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardIn {
    pub id: String,
    pub programme: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Price in points.
    pub points: i64,
    /// Units put into stock so far; raise it to top up.
    pub stock: i64,
    #[serde(default)]
    pub per_member_limit: Option<i64>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourCampaignIn {
    pub id: String,
    pub partner: String,
    pub name: String,
    /// webinar.attended, elearning.completed, event.attended, or a custom noun.verb.
    pub event_type: String,
    pub points: i64,
    pub per_member_cap: Option<u32>,
    pub starts_on: chrono::NaiveDate,
    pub ends_on: chrono::NaiveDate,
    /// Points budget (absent: unlimited); raise it to top up.
    #[serde(default)]
    pub budget: Option<i64>,
}

/// An order campaign, as `bonus apply` reads it and the partner API takes it (there the
/// partner is the caller's and `partner` must be left out).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignIn {
    pub id: String,
    #[serde(default)]
    pub partner: Option<String>,
    pub name: String,
    /// What it pays on: SKUs, or product groups, or every product.
    #[serde(default)]
    pub skus: Vec<String>,
    #[serde(default)]
    pub product_groups: Vec<String>,
    #[serde(default)]
    pub all_products: bool,
    /// First and last day, inclusive, partner time zone.
    pub starts_on: chrono::NaiveDate,
    pub ends_on: chrono::NaiveDate,
    /// e.g. [mon, tue, wed, thu, fri]; absent = every day.
    #[serde(default)]
    pub weekdays: Vec<chrono::Weekday>,
    /// Local hours `{from: 17, to: 19}`; absent = all day.
    #[serde(default)]
    pub hours: Option<crate::campaign::HourWindow>,
    /// Tier names; absent = all tiers.
    #[serde(default)]
    pub tiers: Vec<String>,
    pub rule: RuleIn,
    /// Points budget; the campaign stops awarding when it is spent. Packs: 150000, 200000,
    /// 370000, 580000.
    pub budget: i64,
    pub budget_shards: Option<u32>,
}

impl CampaignIn {
    /// The campaign of `partner_id` in `programme`, validated (the message names the field).
    /// Without a programme (an unknown partner, already reported), tiers are not checked.
    pub fn to_campaign(
        &self,
        partner_id: &str,
        programme: Option<&Programme>,
    ) -> Result<Campaign, String> {
        if let Some(tier) = self
            .tiers
            .iter()
            .find(|t| programme.is_some_and(|p| p.tier(t).is_none()))
        {
            return Err(format!(
                "tiers: '{tier}' is not a tier of the partner's programme"
            ));
        }
        let rule = match &self.rule {
            RuleIn::FixedPerUnit { points } => CampaignRule::FixedPerUnit { points: *points },
            RuleIn::CostPercent { percent } => CampaignRule::CostPercent {
                percent: percent.map_or(Decimal::new(13, 1), |p| p.0),
            },
            RuleIn::PerCurrencyUnit { points } => {
                CampaignRule::PerCurrencyUnit { points: points.0 }
            }
        };
        let campaign = Campaign {
            id: self.id.clone(),
            partner_id: partner_id.to_string(),
            name: self.name.trim().to_string(),
            skus: self.skus.iter().cloned().collect(),
            product_groups: self.product_groups.iter().cloned().collect(),
            all_products: self.all_products,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            weekdays: self.weekdays.clone(),
            hours: self.hours,
            tiers: self.tiers.clone(),
            rule,
            budget: self.budget,
            budget_shards: self.budget_shards.unwrap_or(DEFAULT_BUDGET_SHARDS),
        };
        if self.skus.len() != campaign.skus.len() {
            return Err("skus: a SKU appears twice".into());
        }
        campaign.validate()?;
        Ok(campaign)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackIn {
    pub id: String,
    pub points: i64,
    /// In the programme currency: "2500.00".
    pub price: String,
    #[serde(default)]
    pub period: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentsIn {
    pub approval_threshold: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum RuleIn {
    FixedPerUnit { points: i64 },
    CostPercent { percent: Option<ExactDecimal> },
    PerCurrencyUnit { points: ExactDecimal },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeIn {
    pub id: String,
    pub name: String,
    pub kind: ProgrammeKind,
    pub currency: String,
    pub point_value_minor: Option<i64>,
    #[serde(default, deserialize_with = "opt_exact")]
    pub points_per_unit: Option<Decimal>,
    pub release_days: Option<u32>,
    pub expiry_months: Option<u32>,
    pub min_balance_to_redeem: Option<i64>,
    pub time_zone: Option<String>,
    /// Product group -> coefficient (e.g. `cocktails: 10`).
    #[serde(default)]
    pub product_groups: BTreeMap<String, ExactDecimal>,
    /// Replaces the default tiers when given, lowest first.
    pub tiers: Option<Vec<TierIn>>,
    pub include_tax: Option<bool>,
    pub include_shipping: Option<bool>,
    /// Member messages: `earned: per_order | daily_digest | off`, `digest_hour`,
    /// `monthly_statement`.
    pub messages: Option<MessagesIn>,
    /// Coalition clearing: the operator's fee on breakage, in percent ("2.5").
    #[serde(default, deserialize_with = "opt_exact")]
    pub breakage_fee_percent: Option<Decimal>,
    /// Points members send each other: `enabled`, `min_points`, `max_points`,
    /// `daily_limit`, `fee_percent` ("2").
    pub transfers: Option<TransfersIn>,
    /// Who earns for orders bought for a company: `company` (default), `both` or
    /// `employee`.
    pub company_rewards: Option<crate::company::CompanyRewards>,
    /// Under `both`: the employee's share in percent (default 20).
    pub company_employee_percent: Option<u32>,
    /// `{approval_threshold: 10000}`: adjustments of more points wait for a second person.
    #[serde(default)]
    pub adjustments: Option<AdjustmentsIn>,
    /// The point packs vendors buy (default: ALSO's four, in EUR).
    #[serde(default)]
    pub point_packs: Option<Vec<PackIn>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransfersIn {
    pub enabled: Option<bool>,
    pub min_points: Option<i64>,
    pub max_points: Option<i64>,
    pub daily_limit: Option<i64>,
    #[serde(default, deserialize_with = "opt_exact")]
    pub fee_percent: Option<Decimal>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesIn {
    pub earned: Option<crate::programme::EarnedMessages>,
    pub digest_hour: Option<u32>,
    pub monthly_statement: Option<bool>,
    /// Offers a member gets at most per month (default 4).
    pub marketing_per_month: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierIn {
    pub name: String,
    /// Rolling 12-month net purchase volume, in units of the programme currency.
    pub threshold: ExactDecimal,
    pub multiplier: ExactDecimal,
}

/// A decimal written as a quoted YAML string ("1.3") or a whole number, taken exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactDecimal(pub Decimal);

impl<'de> Deserialize<'de> for ExactDecimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Exact;
        impl serde::de::Visitor<'_> for Exact {
            type Value = ExactDecimal;
            // An unquoted YAML fraction (1.25) lands in the default float handler, which
            // refuses it with this text: a binary float is never an exact decimal.
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number or a decimal in quotes, e.g. \"1.25\" (quoted so it is read exactly)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExactDecimal, E> {
                v.trim()
                    .parse::<Decimal>()
                    .map(ExactDecimal)
                    .map_err(|_| E::custom(format!("'{v}' is not a decimal number")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ExactDecimal, E> {
                Ok(ExactDecimal(Decimal::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ExactDecimal, E> {
                Ok(ExactDecimal(Decimal::from(v)))
            }
        }
        d.deserialize_any(Exact)
    }
}

fn opt_exact<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    Ok(Option::<ExactDecimal>::deserialize(d)?.map(|e| e.0))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerIn {
    pub id: String,
    pub programme: String,
    pub name: String,
    pub time_zone: Option<String>,
    /// Left out: the stored ones are kept (the partner may rotate them over the partner API).
    #[serde(default)]
    pub webhook_secrets: Option<Vec<String>>,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyIn>,
    /// Enrol unknown member ids from their first order (default false: record as non-member).
    #[serde(default)]
    pub auto_enrol: bool,
    /// Native Shopify webhooks: `{secrets: [..], accept_test_orders: false}`.
    #[serde(default)]
    pub shopify: Option<PlatformLinkIn>,
    /// Native WooCommerce webhooks: `{secrets: [..]}`.
    #[serde(default)]
    pub woocommerce: Option<PlatformLinkIn>,
    /// The monthly clearing statement is e-mailed here (coalitions).
    #[serde(default)]
    pub finance_email: Option<String>,
    /// The partner's own base rate and coefficients: `{points_per_unit: 5, product_groups:
    /// {bread: 1}}`. These two settings can also be changed by the partner itself (partner
    /// API); left out of the file, the stored ones are kept.
    #[serde(default)]
    pub rates: Option<PartnerRatesIn>,
    /// Redemption limits: `{max_points_per_transaction, max_points_per_member_day, weekdays,
    /// hours: {from, to}}`.
    #[serde(default)]
    pub redemption: Option<crate::programme::RedemptionLimits>,
    /// Sandbox mode: orders are answered, never booked (the partner can switch it too).
    #[serde(default)]
    pub sandbox: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerRatesIn {
    #[serde(default)]
    pub points_per_unit: Option<ExactDecimal>,
    #[serde(default)]
    pub product_groups: Option<BTreeMap<String, ExactDecimal>>,
}

impl PartnerRatesIn {
    pub fn to_rates(&self) -> crate::programme::PartnerRates {
        crate::programme::PartnerRates {
            points_per_unit: self.points_per_unit.map(|d| d.0),
            product_groups: self.product_groups.as_ref().map(|g| {
                g.iter()
                    .map(|(k, v)| (k.clone(), Coefficient(v.0)))
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformLinkIn {
    pub secrets: Vec<String>,
    #[serde(default)]
    pub accept_test_orders: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    pub label: String,
    /// The key in plain text (demo and tests), as `bonus keys new` made it. Prefer
    /// `key_sha256` for real keys.
    pub key: Option<String>,
    pub key_sha256: Option<String>,
    /// What the key may do: `read_balance` (default), `hold`, `enrol`.
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    /// Refuse this key from now on (rotation).
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberIn {
    pub id: String,
    pub programme: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub locale: Option<String>,
    /// The member's customer id at partners' shops: `{partner_id: customer_id}`.
    #[serde(default)]
    pub external_ids: std::collections::BTreeMap<String, String>,
    /// The partner the member enrolled with; in a closed programme only it sees the member.
    /// Absent: the whole programme.
    #[serde(default)]
    pub partner: Option<String>,
    #[serde(default)]
    pub email_consent: bool,
    #[serde(default)]
    pub sms_consent: bool,
}

/// What a config file amounts to, validated.
#[derive(Debug, Clone, Default)]
pub struct ConfigPlan {
    pub programmes: Vec<Programme>,
    pub partners: Vec<Partner>,
    pub api_keys: Vec<(String, ApiKeyRecord)>,
    pub members: Vec<MemberProfile>,
    pub campaigns: Vec<Campaign>,
    pub behaviour: Vec<BehaviourCampaign>,
    pub rewards: Vec<crate::reward::Reward>,
    pub companies: Vec<CompanyPlan>,
    /// Partners whose file leaves out `rates` and `redemption`: the stored ones are kept
    /// (the partner may have set them over the partner API).
    pub partner_settings_kept: HashSet<String>,
    /// Partners whose file leaves out `webhook_secrets`: the stored ones are kept.
    pub partner_secrets_kept: HashSet<String>,
}

/// Budget shards of a campaign unless the file says otherwise.
pub const DEFAULT_BUDGET_SHARDS: u32 = 4;

fn tz(field: &str, text: Option<&str>) -> Result<Tz, String> {
    match text {
        None => Ok(chrono_tz::UTC),
        Some(t) => t.parse().map_err(|_| {
            format!("{field}: '{t}' is not an IANA time zone (e.g. Europe/Amsterdam)")
        }),
    }
}

pub fn parse(text: &str) -> Result<ConfigFile, String> {
    serde_yaml::from_str(text).map_err(|e| format!("config file: {e}"))
}

impl ConfigFile {
    /// Validate everything; every problem is reported with the field it is about.
    pub fn plan(&self, now: DateTime<Utc>) -> Result<ConfigPlan, Vec<String>> {
        let mut errors = Vec::new();
        let mut plan = ConfigPlan::default();
        self.plan_programmes(&mut plan, &mut errors);
        let programme_ids: HashSet<&str> = self.programmes.iter().map(|p| p.id.as_str()).collect();
        let partner_ids = self.plan_partners(&programme_ids, now, &mut plan, &mut errors);
        self.plan_members(&programme_ids, &partner_ids, now, &mut plan, &mut errors);
        self.plan_campaigns(&partner_ids, &mut plan, &mut errors);
        self.plan_behaviour_campaigns(&partner_ids, &mut plan, &mut errors);
        self.plan_rewards(&programme_ids, &mut plan, &mut errors);
        self.plan_companies(&programme_ids, &partner_ids, now, &mut plan, &mut errors);
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }
    /// Programmes: currency, rates, tiers, product groups.
    fn plan_programmes(&self, plan: &mut ConfigPlan, errors: &mut Vec<String>) {
        let mut seen = HashSet::new();
        for (i, p) in self.programmes.iter().enumerate() {
            let f = |name: &str| format!("programmes[{i}].{name}");
            if !seen.insert(p.id.clone()) {
                errors.push(format!("{}: '{}' is declared twice", f("id"), p.id));
            }
            let currency = match Currency::parse(&p.currency) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(format!("{}: {e}", f("currency")));
                    continue;
                }
            };
            let mut prog = Programme::with_defaults(&p.id, &p.name, p.kind, currency);
            prog.point_value_minor = p.point_value_minor.unwrap_or(prog.point_value_minor);
            prog.points_per_unit = p.points_per_unit.unwrap_or(prog.points_per_unit);
            prog.release_days = p.release_days.unwrap_or(prog.release_days);
            prog.expiry_months = p.expiry_months.unwrap_or(prog.expiry_months);
            prog.min_balance_to_redeem = p
                .min_balance_to_redeem
                .unwrap_or(prog.min_balance_to_redeem);
            prog.include_tax = p.include_tax.unwrap_or(false);
            prog.include_shipping = p.include_shipping.unwrap_or(false);
            match p.breakage_fee_percent {
                Some(fee) if fee < Decimal::ZERO || fee > Decimal::ONE_HUNDRED => errors.push(
                    format!("{}: a percentage, 0-100", f("breakage_fee_percent")),
                ),
                Some(fee) => prog.breakage_fee_percent = fee,
                None => {}
            }
            prog.company_rewards = p.company_rewards.unwrap_or_default();
            match p.company_employee_percent {
                Some(e) if e > 100 => errors.push(format!(
                    "{}: a percentage, 0-100",
                    f("company_employee_percent")
                )),
                Some(e) => prog.company_employee_percent = e,
                None => {}
            }
            if let Some(packs) = &p.point_packs {
                let mut parsed = Vec::new();
                for (j, pk) in packs.iter().enumerate() {
                    match crate::money::Money::parse(&pk.price, prog.currency) {
                        Ok(m) => parsed.push(crate::packs::PointPack {
                            id: pk.id.clone(),
                            points: pk.points,
                            price_minor: m.minor,
                            period: pk.period.clone(),
                        }),
                        Err(e) => errors.push(format!("{}[{j}].price: {e}", f("point_packs"))),
                    }
                }
                if let Err(e) = crate::packs::validate_packs(&parsed) {
                    errors.push(format!("programmes[{i}].{e}"));
                }
                prog.point_packs = parsed;
            }
            if let Some(a) = &p.adjustments {
                match a.approval_threshold {
                    Some(t) if t < 0 => errors.push(format!(
                        "{}: 0 or more points",
                        f("adjustments.approval_threshold")
                    )),
                    Some(t) => prog.adjustments.approval_threshold = t,
                    None => {}
                }
            }
            if let Some(t) = &p.transfers {
                let d = &mut prog.transfers;
                d.enabled = t.enabled.unwrap_or(d.enabled);
                d.min_points = t.min_points.unwrap_or(d.min_points);
                d.max_points = t.max_points.unwrap_or(d.max_points);
                d.daily_limit = t.daily_limit.unwrap_or(d.daily_limit);
                d.fee_percent = t.fee_percent.unwrap_or(d.fee_percent);
                if d.min_points < 1 || d.max_points < d.min_points {
                    errors.push(format!(
                        "{}: min_points at least 1, max_points at least min_points",
                        f("transfers")
                    ));
                }
                if d.daily_limit < d.min_points {
                    errors.push(format!(
                        "{}: at least min_points",
                        f("transfers.daily_limit")
                    ));
                }
                if d.fee_percent < Decimal::ZERO || d.fee_percent >= Decimal::ONE_HUNDRED {
                    errors.push(format!(
                        "{}: a percentage, 0 to under 100",
                        f("transfers.fee_percent")
                    ));
                }
            }
            if let Some(m) = &p.messages {
                let d = &mut prog.messages;
                d.earned = m.earned.unwrap_or(d.earned);
                d.monthly_statement = m.monthly_statement.unwrap_or(d.monthly_statement);
                match m.marketing_per_month {
                    Some(n) if n > 31 => errors.push(format!(
                        "{}: 0 to 31 a month",
                        f("messages.marketing_per_month")
                    )),
                    Some(n) => d.marketing_per_month = n,
                    None => {}
                }
                match m.digest_hour {
                    Some(h) if h > 23 => {
                        errors.push(format!("{}: an hour, 0-23", f("messages.digest_hour")));
                    }
                    Some(h) => d.digest_hour = h,
                    None => {}
                }
            }
            prog.product_groups = p
                .product_groups
                .iter()
                .map(|(g, c)| (g.clone(), Coefficient(c.0)))
                .collect();
            if let Some(tiers) = &p.tiers {
                let unit = Decimal::from(10i64.pow(currency.exponent()));
                prog.tiers = Vec::new();
                for (j, t) in tiers.iter().enumerate() {
                    let minor = t
                        .threshold
                        .0
                        .checked_mul(unit)
                        .filter(|m| m.fract().is_zero())
                        .and_then(|m| i64::try_from(m).ok());
                    match minor {
                        Some(threshold_minor) => prog.tiers.push(Tier {
                            name: t.name.clone(),
                            threshold_minor,
                            multiplier: t.multiplier.0,
                        }),
                        None => errors.push(format!(
                            "{}[{j}].threshold: not an amount in {}",
                            f("tiers"),
                            currency
                        )),
                    }
                }
            }
            match tz(&f("time_zone"), p.time_zone.as_deref()) {
                Ok(t) => prog.time_zone = t,
                Err(e) => errors.push(e),
            }
            if let Err(e) = prog.validate() {
                errors.push(format!("programmes[{i}].{e}"));
            }
            plan.programmes.push(prog);
        }
    }

    /// Partners: their programme, webhook secrets, API keys, platform links. Returns their ids.
    fn plan_partners(
        &self,
        programme_ids: &HashSet<&str>,
        now: DateTime<Utc>,
        plan: &mut ConfigPlan,
        errors: &mut Vec<String>,
    ) -> HashSet<String> {
        let mut partner_ids = HashSet::new();
        for (i, p) in self.partners.iter().enumerate() {
            let f = |name: &str| format!("partners[{i}].{name}");
            if !valid_id(&p.id) {
                errors.push(format!("{}: '{}' {ID_RULE}", f("id"), p.id));
            }
            if !partner_ids.insert(p.id.clone()) {
                errors.push(format!("{}: '{}' is declared twice", f("id"), p.id));
            }
            if !programme_ids.contains(p.programme.as_str()) {
                errors.push(format!(
                    "{}: no programme '{}' in this file",
                    f("programme"),
                    p.programme
                ));
            }
            if p.webhook_secrets.is_none() {
                plan.partner_secrets_kept.insert(p.id.clone());
            }
            for (j, s) in p.webhook_secrets.iter().flatten().enumerate() {
                use crate::webhook_sig::{decode_secret, MIN_SECRET_BYTES};
                match decode_secret(s) {
                    Ok(key) if s.starts_with("whsec_") && key.len() >= MIN_SECRET_BYTES => {}
                    Ok(_) if s.starts_with("whsec_") => errors.push(format!(
                        "{}[{j}]: the key must be at least {MIN_SECRET_BYTES} bytes",
                        f("webhook_secrets")
                    )),
                    _ => errors.push(format!(
                        "{}[{j}]: must be 'whsec_' followed by base64",
                        f("webhook_secrets")
                    )),
                }
            }
            let time_zone = tz(&f("time_zone"), p.time_zone.as_deref()).unwrap_or_else(|e| {
                errors.push(e);
                chrono_tz::UTC
            });
            for (j, k) in p.api_keys.iter().enumerate() {
                let field = format!("{}[{j}]", f("api_keys"));
                let hash = match (&k.key, &k.key_sha256) {
                    (Some(key), None) if api_key_well_formed(key) => hash_api_key(key),
                    (Some(_), None) => {
                        errors.push(format!(
                            "{field}.key: not a key made by `bonus keys new` (bk_ + 40 hex digits + _ + an 8-digit checksum)"
                        ));
                        continue;
                    }
                    (None, Some(h))
                        if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        h.to_lowercase()
                    }
                    (None, Some(_)) => {
                        errors.push(format!("{field}.key_sha256: must be 64 hex characters"));
                        continue;
                    }
                    _ => {
                        errors.push(format!("{field}: give exactly one of key or key_sha256"));
                        continue;
                    }
                };
                plan.api_keys.push((
                    hash,
                    ApiKeyRecord {
                        partner_id: p.id.clone(),
                        label: k.label.clone(),
                        scopes: k.scopes.clone().unwrap_or_else(|| vec![Scope::ReadBalance]),
                        created_at: now,
                        revoked: k.revoked,
                    },
                ));
            }
            if p.finance_email
                .as_deref()
                .is_some_and(|e| crate::pii::normalize_email(e).is_none())
            {
                errors.push(format!("{}: not an e-mail address", f("finance_email")));
            }
            let mut link = |name: &str, l: &Option<PlatformLinkIn>| {
                let l = l.as_ref()?;
                if l.secrets.is_empty() || l.secrets.len() > 2 {
                    errors.push(format!(
                        "partners[{i}].{name}.secrets: one secret, or two during a rotation"
                    ));
                }
                if l.secrets.iter().any(|s| s.trim().len() < 16) {
                    errors.push(format!(
                        "partners[{i}].{name}.secrets: a secret needs at least 16 characters"
                    ));
                }
                Some(PlatformLink {
                    secrets: l.secrets.iter().map(|s| s.trim().to_string()).collect(),
                    accept_test_orders: l.accept_test_orders,
                })
            };
            let shopify = link("shopify", &p.shopify);
            let woocommerce = link("woocommerce", &p.woocommerce);
            let rates = p
                .rates
                .as_ref()
                .map(PartnerRatesIn::to_rates)
                .unwrap_or_default();
            if let Err(e) = rates.validate() {
                errors.push(format!("{}.{e}", f("rates")));
            }
            let redemption = p.redemption.clone().unwrap_or_default();
            if let Err(e) = redemption.validate() {
                errors.push(format!("{}.{e}", f("redemption")));
            }
            if p.rates.is_none() && p.redemption.is_none() && p.sandbox.is_none() {
                plan.partner_settings_kept.insert(p.id.clone());
            }
            plan.partners.push(Partner {
                id: p.id.clone(),
                programme_id: p.programme.clone(),
                name: p.name.clone(),
                time_zone,
                webhook_secrets: p.webhook_secrets.clone().unwrap_or_default(),
                auto_enrol: p.auto_enrol,
                shopify,
                woocommerce,
                finance_email: p.finance_email.clone(),
                rates,
                redemption,
                settings_version: 0,
                sandbox: p.sandbox.unwrap_or(false),
                webhooks: None,
            });
        }
        partner_ids
    }

    /// Members enrolled by the file: ids, contact data, consents, external ids.
    fn plan_members(
        &self,
        programme_ids: &HashSet<&str>,
        partner_ids: &HashSet<String>,
        now: DateTime<Utc>,
        plan: &mut ConfigPlan,
        errors: &mut Vec<String>,
    ) {
        let mut member_ids = HashSet::new();
        for (i, m) in self.members.iter().enumerate() {
            let f = |name: &str| format!("members[{i}].{name}");
            if !valid_id(&m.id) {
                errors.push(format!("{}: '{}' {ID_RULE}", f("id"), m.id));
            }
            if !programme_ids.contains(m.programme.as_str()) {
                errors.push(format!(
                    "{}: no programme '{}' in this file",
                    f("programme"),
                    m.programme
                ));
            }
            if !member_ids.insert((m.programme.clone(), m.id.clone())) {
                errors.push(format!("{}: '{}' is declared twice", f("id"), m.id));
            }
            for (partner, customer) in &m.external_ids {
                if !partner_ids.contains(partner) {
                    errors.push(format!(
                        "{}: no partner '{partner}' in this file",
                        f("external_ids")
                    ));
                }
                if !valid_external_id(customer) {
                    errors.push(format!(
                        "{}.{partner}: 1-128 characters, no '#' or control characters",
                        f("external_ids")
                    ));
                }
            }
            if let Some(p) = &m.partner {
                if !partner_ids.contains(p) {
                    errors.push(format!("{}: no partner '{p}' in this file", f("partner")));
                }
            }
            if let Some(e) = &m.email {
                if crate::pii::normalize_email(e).is_none() {
                    errors.push(format!("{}: not an e-mail address", f("email")));
                }
            }
            plan.members.push(MemberProfile {
                external_ids: m.external_ids.clone(),
                member_id: m.id.clone(),
                programme_id: m.programme.clone(),
                email: m.email.clone(),
                phone: m.phone.clone(),
                name: m.name.clone(),
                locale: m.locale.clone().unwrap_or_else(|| "en".into()),
                enrolled_at: now,
                enrolled_with: m.partner.iter().cloned().collect(),
                consents: crate::member::Consents {
                    email: m.email_consent,
                    sms: m.sms_consent,
                },
                ..Default::default()
            });
        }
    }

    /// Companies: their programme, enrolling partner, and users (persons of this file).
    fn plan_companies(
        &self,
        programme_ids: &HashSet<&str>,
        partner_ids: &HashSet<String>,
        now: DateTime<Utc>,
        plan: &mut ConfigPlan,
        errors: &mut Vec<String>,
    ) {
        for (i, c) in self.companies.iter().enumerate() {
            let f = |name: &str| format!("companies[{i}].{name}");
            if !valid_id(&c.id) {
                errors.push(format!("{}: '{}' {ID_RULE}", f("id"), c.id));
            }
            if !programme_ids.contains(c.programme.as_str()) {
                errors.push(format!(
                    "{}: no programme '{}' in this file",
                    f("programme"),
                    c.programme
                ));
            }
            if self
                .members
                .iter()
                .any(|m| m.id == c.id && m.programme == c.programme)
                || self.companies[..i]
                    .iter()
                    .any(|o| o.id == c.id && o.programme == c.programme)
            {
                errors.push(format!("{}: '{}' is declared twice", f("id"), c.id));
            }
            if c.name.trim().is_empty() || c.name.chars().count() > 200 {
                errors.push(format!("{}: 1 to 200 characters", f("name")));
            }
            if let Some(p) = &c.partner {
                if !partner_ids.contains(p) {
                    errors.push(format!("{}: no partner '{p}' in this file", f("partner")));
                }
            }
            let mut users = Vec::new();
            for (j, u) in c.users.iter().enumerate() {
                if !self
                    .members
                    .iter()
                    .any(|m| m.id == u.member && m.programme == c.programme)
                {
                    errors.push(format!(
                        "{}: no member '{}' of programme '{}' in this file",
                        f(&format!("users[{j}].member")),
                        u.member,
                        c.programme
                    ));
                }
                users.push((
                    crate::company::CompanyUser {
                        programme_id: c.programme.clone(),
                        company_id: c.id.clone(),
                        member_id: u.member.clone(),
                        role: u.role,
                    },
                    u.default,
                ));
            }
            let vat_id = c.vat_id.clone().filter(|v| !v.trim().is_empty());
            plan.companies.push(CompanyPlan {
                profile: MemberProfile {
                    member_id: c.id.clone(),
                    programme_id: c.programme.clone(),
                    name: Some(c.name.clone()),
                    locale: "en".into(),
                    enrolled_at: now,
                    enrolled_with: c.partner.iter().cloned().collect(),
                    company: Some(crate::member::Company {
                        name: c.name.clone(),
                        vat_id: vat_id.clone(),
                    }),
                    ..Default::default()
                },
                company: crate::company::CompanyAccount {
                    name: c.name.clone(),
                    vat_id,
                    no_employee_share: !c.employee_share,
                },
                users,
            });
        }
    }

    /// Order campaigns: their partner, SKUs, dates, rule and budget.
    fn plan_campaigns(
        &self,
        partner_ids: &HashSet<String>,
        plan: &mut ConfigPlan,
        errors: &mut Vec<String>,
    ) {
        let mut campaign_ids = HashSet::new();
        for (i, c) in self.campaigns.iter().enumerate() {
            let f = |name: &str| format!("campaigns[{i}].{name}");
            let Some(partner) = c.partner.as_deref() else {
                errors.push(format!("{}: missing", f("partner")));
                continue;
            };
            if !partner_ids.contains(partner) {
                errors.push(format!(
                    "{}: no partner '{partner}' in this file",
                    f("partner")
                ));
            }
            if !campaign_ids.insert((partner.to_string(), c.id.clone())) {
                errors.push(format!("{}: '{}' is declared twice", f("id"), c.id));
            }
            let programme = self
                .partners
                .iter()
                .find(|p| p.id == partner)
                .and_then(|p| plan.programmes.iter().find(|g| g.id == p.programme));
            match c.to_campaign(partner, programme) {
                Ok(campaign) => plan.campaigns.push(campaign),
                Err(e) => errors.push(format!("campaigns[{i}].{e}")),
            }
        }
    }

    /// Behaviour campaigns: their partner, event type, points and cap.
    fn plan_behaviour_campaigns(
        &self,
        partner_ids: &HashSet<String>,
        plan: &mut ConfigPlan,
        errors: &mut Vec<String>,
    ) {
        let mut behaviour_ids = HashSet::new();
        for (i, b) in self.behaviour_campaigns.iter().enumerate() {
            if !partner_ids.contains(&b.partner) {
                errors.push(format!(
                    "behaviour_campaigns[{i}].partner: no partner '{}' in this file",
                    b.partner
                ));
            }
            if !behaviour_ids.insert((b.partner.clone(), b.id.clone())) {
                errors.push(format!(
                    "behaviour_campaigns[{i}].id: '{}' is declared twice",
                    b.id
                ));
            }
            let c = BehaviourCampaign {
                id: b.id.clone(),
                partner_id: b.partner.clone(),
                name: b.name.clone(),
                event_type: b.event_type.clone(),
                points: b.points,
                per_member_cap: b.per_member_cap,
                starts_on: b.starts_on,
                ends_on: b.ends_on,
                budget: b.budget,
            };
            if let Err(e) = c.validate() {
                errors.push(format!("behaviour_campaigns[{i}].{e}"));
            }
            plan.behaviour.push(c);
        }
    }

    /// Gift-shop rewards: their programme, points, stock and limits.
    fn plan_rewards(
        &self,
        programme_ids: &HashSet<&str>,
        plan: &mut ConfigPlan,
        errors: &mut Vec<String>,
    ) {
        let mut reward_ids = HashSet::new();
        for (i, r) in self.rewards.iter().enumerate() {
            let f = |name: &str| format!("rewards[{i}].{name}");
            if !valid_id(&r.id) {
                errors.push(format!("{}: '{}' {ID_RULE}", f("id"), r.id));
            }
            if !programme_ids.contains(r.programme.as_str()) {
                errors.push(format!(
                    "{}: no programme '{}' in this file",
                    f("programme"),
                    r.programme
                ));
            }
            if !reward_ids.insert((r.programme.clone(), r.id.clone())) {
                errors.push(format!("{}: '{}' is declared twice", f("id"), r.id));
            }
            if r.points <= 0 {
                errors.push(format!("{}: a whole number above 0", f("points")));
            }
            if r.stock < 0 {
                errors.push(format!("{}: 0 or more", f("stock")));
            }
            if r.per_member_limit.is_some_and(|l| l <= 0) {
                errors.push(format!("{}: a whole number above 0", f("per_member_limit")));
            }
            plan.rewards.push(crate::reward::Reward {
                programme_id: r.programme.clone(),
                reward_id: r.id.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                points: r.points,
                granted: r.stock,
                stock: r.stock,
                per_member_limit: r.per_member_limit,
                category: r.category.clone(),
                image_url: r.image_url.clone(),
                partner_id: None,
            });
            if let Some(last) = plan.rewards.last() {
                if let Err(e) = last.validate() {
                    if e.starts_with("category") || e.starts_with("image_url") {
                        errors.push(format!("rewards[{i}].{e}"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: closed
    currency: EUR
    time_zone: Europe/Amsterdam
    points_per_unit: 10
    product_groups: {cocktails: "1.3", bread: 5}
    tiers:
      - {name: Basic, threshold: 0, multiplier: 1}
      - {name: VIP, threshold: "1000.50", multiplier: 2}
partners:
  - id: velo-shop
    programme: velo
    name: Velo webshop
    webhook_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]
    api_keys:
      - label: widget
        key: bk_507636717dd889c4aca6e55fac6880c0e096f016_85f21972
members:
  - id: M-1
    programme: velo
campaigns:
  - id: helmets
    partner: velo-shop
    name: Helmets at 1.3% of cost
    skus: [HELMET-1, HELMET-2]
    starts_on: 2026-11-01
    ends_on: 2026-11-30
    weekdays: [mon, tue, wed, thu, fri]
    rule: {kind: cost_percent}
    budget: 150000
"#;

    #[test]
    fn a_good_file_plans() {
        let plan = parse(GOOD).unwrap().plan(Utc::now()).unwrap();
        let p = &plan.programmes[0];
        assert_eq!(p.points_per_unit, Decimal::TEN);
        assert_eq!(p.coefficient(Some("cocktails")).to_string(), "1.3");
        assert_eq!(p.coefficient(Some("bread")), Decimal::from(5));
        assert_eq!(p.tiers[1].threshold_minor, 100_050);
        assert_eq!(p.tiers[1].multiplier, Decimal::TWO);
        assert_eq!(plan.programmes[0].release_days, 14);
        assert_eq!(plan.partners[0].programme_id, "velo");
        assert_eq!(
            plan.api_keys[0].0,
            hash_api_key("bk_507636717dd889c4aca6e55fac6880c0e096f016_85f21972")
        );
        assert_eq!(plan.members[0].locale, "en");
        let c = &plan.campaigns[0];
        assert_eq!(
            c.rule,
            CampaignRule::CostPercent {
                percent: Decimal::new(13, 1)
            }
        );
        assert_eq!(
            (c.weekdays.len(), c.budget, c.budget_shards),
            (5, 150_000, DEFAULT_BUDGET_SHARDS)
        );
    }

    #[test]
    fn a_one_byte_webhook_secret_is_refused() {
        // "whsec_YQ==" is the key "a": any MAC over it is guessable.
        let secret = GOOD
            .lines()
            .find_map(|l| l.split("whsec_").nth(1))
            .map(|rest| format!("whsec_{}", rest.trim_end_matches([']', ' '])))
            .unwrap();
        let bad = GOOD.replace(&secret, "whsec_YQ==");
        let errors = parse(&bad).unwrap().plan(Utc::now()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e == "partners[0].webhook_secrets[0]: the key must be at least 16 bytes"),
            "{errors:?}"
        );
        assert!(parse(GOOD).unwrap().plan(Utc::now()).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let bad = GOOD
            .replace("currency: EUR", "currency: EURO")
            .replace("programme: velo\n    name", "programme: nope\n    name");
        let errors = parse(&bad).unwrap().plan(Utc::now()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("programmes[0].currency")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("partners[0].programme: no programme 'nope'")),
            "{errors:?}"
        );
        let typo = GOOD.replace("kind: closed", "kind: closed\n    pointz: 3");
        assert!(parse(&typo).unwrap_err().contains("pointz"));
        let float = GOOD.replace(r#"cocktails: "1.3""#, "cocktails: 1.3");
        assert!(
            parse(&float)
                .unwrap_err()
                .contains(r#"decimal in quotes, e.g. "1.25""#),
            "{}",
            parse(&float).unwrap_err()
        );
        let campaign = GOOD
            .replace(
                "partner: velo-shop\n    name: Helmets",
                "partner: nope\n    name: Helmets",
            )
            .replace("budget: 150000", "budget: 0");
        let errors = parse(&campaign).unwrap().plan(Utc::now()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e == "campaigns[0].partner: no partner 'nope' in this file"),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("campaigns[0].budget")),
            "{errors:?}"
        );
        let tiers = GOOD.replace("threshold: 0,", "threshold: 5,");
        assert!(
            parse(&tiers).unwrap().plan(Utc::now()).unwrap_err()[0].contains("tiers[0].threshold")
        );
        let secret = GOOD.replace("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret");
        assert!(parse(&secret).unwrap().plan(Utc::now()).unwrap_err()[0]
            .starts_with("partners[0].webhook_secrets[0]"));
    }
}
