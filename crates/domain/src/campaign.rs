//! Campaigns of a partner: bonus points on top of the base points for listed SKUs, product
//! groups or every product, in a date window, on chosen weekdays and hours (partner time
//! zone), optionally for some tiers only, paid from a points budget that is never overspent.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::line::EarnLine;
use crate::money::Points;
use crate::programme::Programme;

/// How a campaign computes its bonus for one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CampaignRule {
    /// A fixed number of points per unit bought.
    FixedPerUnit { points: Points },
    /// A percentage of the unit cost price, converted at the point value
    /// (1.3% of 100.00 EUR = 1.30 EUR = 130 points at 1 cent a point).
    CostPercent {
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
    },
    /// Points per unit of currency of the net line amount ("10 points per euro on cocktails").
    PerCurrencyUnit {
        #[serde(with = "rust_decimal::serde::str")]
        points: Decimal,
    },
}

/// Hours of the day a campaign runs, in the partner's time zone: from `from` (inclusive) to
/// `to` (exclusive), whole hours 0-24 ("happy hour" 17-19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourWindow {
    pub from: u32,
    pub to: u32,
}

/// Weekdays without repeats and an hour window that is one (campaigns, redemption limits).
pub fn check_days_and_hours(weekdays: &[Weekday], hours: Option<HourWindow>) -> Result<(), String> {
    if let Some(h) = hours {
        if h.from >= h.to || h.to > 24 {
            return Err("hours: from 0-23 and to 1-24, from before to".into());
        }
    }
    let mut days = weekdays.to_vec();
    days.sort_by_key(|d| d.num_days_from_monday());
    days.dedup();
    if days.len() != weekdays.len() {
        return Err("weekdays: a day appears twice".into());
    }
    Ok(())
}

/// Is `local` on one of `weekdays` (empty: any) and within `hours` (none: all day)?
pub fn open_at(weekdays: &[Weekday], hours: Option<HourWindow>, local: NaiveDateTime) -> bool {
    (weekdays.is_empty() || weekdays.contains(&local.date().weekday()))
        && hours.is_none_or(|h| (h.from..h.to).contains(&local.hour()))
}

/// At most this many SKUs or product groups in one campaign (its item stays far below
/// DynamoDB's 400 KB, and the order's read fetches its budget once whatever it lists).
pub const MAX_TARGETS: usize = 1_000;

/// The largest budget (a trillion points): far above any pack, far below overflow.
pub const MAX_BUDGET: Points = 1_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    /// What it pays on: exactly one of `skus`, `product_groups` and `all_products`.
    #[serde(default)]
    pub skus: BTreeSet<String>,
    #[serde(default)]
    pub product_groups: BTreeSet<String>,
    #[serde(default)]
    pub all_products: bool,
    /// First and last day (inclusive), in the partner's time zone.
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Days of the week it runs on (partner time zone); empty = every day.
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
    /// Hours of the day it runs (partner time zone); absent = all day.
    #[serde(default)]
    pub hours: Option<HourWindow>,
    /// Tiers it is for; empty = all tiers.
    #[serde(default)]
    pub tiers: Vec<String>,
    pub rule: CampaignRule,
    /// Points budget; the campaign stops awarding when it is spent.
    pub budget: Points,
    /// Number of budget counter items (spreads the writes of a busy campaign).
    pub budget_shards: u32,
}

impl Campaign {
    /// Does the campaign run at this local time (window, weekdays and hours)?
    pub fn runs_at(&self, local: NaiveDateTime) -> bool {
        let day = local.date();
        day >= self.starts_on && day <= self.ends_on && open_at(&self.weekdays, self.hours, local)
    }

    /// Does it pay on a line of this SKU and product group?
    pub fn targets(&self, sku: &str, group: Option<&str>) -> bool {
        self.all_products
            || self.skus.contains(sku)
            || group.is_some_and(|g| self.product_groups.contains(g))
    }

    /// Does the campaign pay on this line, for this tier, at this local time?
    pub fn applies(&self, line: &EarnLine, tier: &str, local: NaiveDateTime) -> bool {
        self.targets(&line.sku, line.product_group.as_deref())
            && self.runs_at(local)
            && (self.tiers.is_empty() || self.tiers.iter().any(|t| t == tier))
    }

    /// Whether it can pay on any line of an order at this time, whatever the member's tier
    /// (known only after the read): decides which budgets the read fetches.
    pub fn may_apply(&self, lines: &[EarnLine], local: NaiveDateTime) -> bool {
        self.runs_at(local)
            && lines
                .iter()
                .any(|l| self.targets(&l.sku, l.product_group.as_deref()))
    }

    /// Is it still to run or running on this local date (not ended)?
    pub fn ended_before(&self, local_date: NaiveDate) -> bool {
        self.ends_on < local_date
    }

    /// The exact, unrounded bonus for a line, before the budget.
    pub fn exact_bonus(&self, programme: &Programme, line: &EarnLine) -> Option<Decimal> {
        let qty = Decimal::from(line.quantity);
        match &self.rule {
            CampaignRule::FixedPerUnit { points } => Decimal::from(*points).checked_mul(qty),
            CampaignRule::CostPercent { percent } => {
                let cost = line.cost_price?;
                Decimal::from(cost.minor)
                    .checked_mul(qty)?
                    .checked_mul(*percent)?
                    .checked_div(Decimal::from(100))?
                    .checked_div(Decimal::from(programme.point_value_minor))
            }
            CampaignRule::PerCurrencyUnit { points } => line.net.to_decimal().checked_mul(*points),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !crate::ids::valid_id(&self.id) {
            return Err(format!("id: '{}' {}", self.id, crate::ids::ID_RULE));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("name: 1 to 200 characters".into());
        }
        let targets = usize::from(!self.skus.is_empty())
            + usize::from(!self.product_groups.is_empty())
            + usize::from(self.all_products);
        if targets != 1 {
            return Err(
                "skus: list SKUs, or product_groups, or set all_products (exactly one of them)"
                    .into(),
            );
        }
        for (field, list) in [
            ("skus", &self.skus),
            ("product_groups", &self.product_groups),
        ] {
            if list.len() > MAX_TARGETS {
                return Err(format!("{field}: at most {MAX_TARGETS}"));
            }
            if let Some(bad) = list.iter().find(|s| !crate::ids::valid_external_id(s)) {
                return Err(format!("{field}: '{bad}' is not a valid code"));
            }
        }
        if self.ends_on < self.starts_on {
            return Err("ends_on: must not be before starts_on".into());
        }
        check_days_and_hours(&self.weekdays, self.hours)?;
        if self.budget <= 0 || self.budget > MAX_BUDGET {
            return Err(format!(
                "budget: must be a positive number of points, at most {MAX_BUDGET}"
            ));
        }
        if self.budget_shards == 0 || self.budget_shards > 64 {
            return Err("budget_shards: must be between 1 and 64".into());
        }
        match &self.rule {
            CampaignRule::FixedPerUnit { points } if *points <= 0 || *points > 1_000_000 => {
                Err("rule.points: must be above 0 and at most 1000000".into())
            }
            CampaignRule::CostPercent { percent }
                if *percent <= Decimal::ZERO || *percent > Decimal::from(100) =>
            {
                Err("rule.percent: must be above 0 and at most 100".into())
            }
            CampaignRule::PerCurrencyUnit { points }
                if *points <= Decimal::ZERO || *points > Decimal::from(1000) =>
            {
                Err("rule.points: must be above 0 and at most 1000".into())
            }
            _ => Ok(()),
        }
    }
}

/// A behaviour campaign: fixed points for a non-purchase event (webinar attended, e-learning
/// completed, event attended, or a custom type), at most `per_member_cap` times per member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehaviourCampaign {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    /// `webinar.attended`, `elearning.completed`, `event.attended`, or a custom `noun.verb`.
    pub event_type: String,
    pub points: Points,
    #[serde(default)]
    pub per_member_cap: Option<u32>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Points budget (none: unlimited); when what is left does not cover an event's points,
    /// the event earns nothing (`budget_exhausted`). Grows only.
    #[serde(default)]
    pub budget: Option<Points>,
}

/// Event types: lower-case `noun.verb` with letters, digits, `_` and `-`.
pub fn valid_event_type(t: &str) -> bool {
    let mut parts = t.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
    };
    t.len() <= 64 && ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

impl BehaviourCampaign {
    pub fn active_on(&self, local_date: NaiveDate) -> bool {
        local_date >= self.starts_on && local_date <= self.ends_on
    }

    /// The name of its budget among the partner's budgets ('#' keeps it apart from every
    /// order campaign's, whose ids cannot hold one).
    pub fn budget_id(&self) -> String {
        format!("{}#behaviour", self.id)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !crate::ids::valid_id(&self.id) {
            return Err(format!("id: '{}' {}", self.id, crate::ids::ID_RULE));
        }
        if !valid_event_type(&self.event_type) {
            return Err(format!(
                "event_type: '{}' must look like webinar.attended",
                self.event_type
            ));
        }
        if self.points <= 0 {
            return Err("points: must be positive".into());
        }
        if self.per_member_cap == Some(0) {
            return Err("per_member_cap: must be at least 1 (or left out)".into());
        }
        if self.budget.is_some_and(|b| b <= 0 || b > MAX_BUDGET) {
            return Err(format!(
                "budget: a positive number of points, at most {MAX_BUDGET} (or left out)"
            ));
        }
        if self.ends_on < self.starts_on {
            return Err("ends_on: must not be before starts_on".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_noun_dot_verb() {
        for ok in [
            "webinar.attended",
            "elearning.completed",
            "event.attended",
            "store-visit.checked_in",
        ] {
            assert!(valid_event_type(ok), "{ok}");
        }
        for bad in [
            "webinar",
            "Webinar.Attended",
            "a.b.c",
            ".x",
            "x.",
            "a b.c",
            "",
        ] {
            assert!(!valid_event_type(bad), "{bad}");
        }
    }
}
