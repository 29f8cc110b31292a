//! Point packs (ALSO): a vendor buys a pack of points for a campaign; the campaign's budget
//! grows by the pack and an invoice line is recorded for the vendor's month. A planner
//! estimates what a campaign will pay out (the cost-price percentage x cost price x the
//! units expected on the days it runs) and says which pack covers it.

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, Points};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointPack {
    /// `150k`, `200k`, ...
    pub id: String,
    pub points: Points,
    /// The price in minor units of the programme currency.
    pub price_minor: i64,
    /// How long a pack of this size usually lasts ("1-2 weeks").
    #[serde(default)]
    pub period: String,
}

/// ALSO's four packs (EUR): 150,000 points for 2,500.00 (1-2 weeks), 200,000 for 3,200.00
/// (2 weeks), 370,000 for 5,700.00 (3 weeks), 580,000 for 8,700.00 (4 weeks).
pub fn default_packs() -> Vec<PointPack> {
    [
        ("150k", 150_000, 250_000, "1-2 weeks"),
        ("200k", 200_000, 320_000, "2 weeks"),
        ("370k", 370_000, 570_000, "3 weeks"),
        ("580k", 580_000, 870_000, "4 weeks"),
    ]
    .into_iter()
    .map(|(id, points, price_minor, period)| PointPack {
        id: id.into(),
        points,
        price_minor,
        period: period.into(),
    })
    .collect()
}

/// Check a programme's pack catalogue.
pub fn validate_packs(packs: &[PointPack]) -> Result<(), String> {
    for (i, p) in packs.iter().enumerate() {
        if !crate::ids::valid_id(&p.id) || p.id.contains('/') {
            return Err(format!("point_packs[{i}].id: {}", crate::ids::ID_RULE));
        }
        if p.points <= 0 || p.points > crate::campaign::MAX_BUDGET {
            return Err(format!("point_packs[{i}].points: a whole number above 0"));
        }
        if p.price_minor < 0 {
            return Err(format!("point_packs[{i}].price: 0 or more"));
        }
        if packs[..i].iter().any(|o| o.id == p.id) {
            return Err(format!("point_packs[{i}].id: '{}' appears twice", p.id));
        }
    }
    Ok(())
}

/// A line of the vendor's invoice for its month: a pack bought for a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub partner_id: String,
    /// `YYYY-MM` in the partner's time zone.
    pub month: String,
    pub reference: String,
    pub pack_id: String,
    pub campaign_id: String,
    pub points: Points,
    pub price_minor: i64,
    pub currency: Currency,
    pub bought_by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One SKU the planner counts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSku {
    pub sku: String,
    pub cost_price: Money,
    /// Units expected per day the campaign runs.
    pub units_per_day: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    pub sku: String,
    /// Points per unit, exact ("130").
    pub points_per_unit: String,
    pub units: i64,
    pub points: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackFit {
    pub pack_id: String,
    pub points: Points,
    pub price_minor: i64,
    pub covers: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignPlan {
    /// Days in the window on the chosen weekdays.
    pub days: i64,
    pub lines: Vec<PlanLine>,
    pub points_needed: Points,
    pub packs: Vec<PackFit>,
    /// The smallest pack that covers the estimate (None: none does).
    pub smallest_covering_pack: Option<String>,
    /// Warnings: the chosen pack (or the budget) is too small, nothing runs on those days.
    pub warnings: Vec<String>,
}

/// Days from `from` to `to` (inclusive) on `weekdays` (empty: every day).
pub fn campaign_days(from: NaiveDate, to: NaiveDate, weekdays: &[Weekday]) -> i64 {
    from.iter_days()
        .take_while(|d| *d <= to)
        .filter(|d| weekdays.is_empty() || weekdays.contains(&d.weekday()))
        .count() as i64
}

/// The planner: `percent` (1.3) of each SKU's cost price, at the point value, per unit,
/// times the units expected on the days it runs, rounded down per line as earning does; which
/// pack covers it, and a warning when `chosen` (a pack id or a budget in points) is short.
#[allow(clippy::too_many_arguments)]
pub fn plan_campaign(
    skus: &[PlannedSku],
    percent: Decimal,
    point_value_minor: i64,
    from: NaiveDate,
    to: NaiveDate,
    weekdays: &[Weekday],
    packs: &[PointPack],
    chosen: Option<Points>,
) -> Result<CampaignPlan, String> {
    if to < from {
        return Err("ends_on: must not be before starts_on".into());
    }
    if percent <= Decimal::ZERO || percent > Decimal::from(100) {
        return Err("percent: above 0 and at most 100".into());
    }
    if skus.is_empty() || skus.len() > crate::campaign::MAX_TARGETS {
        return Err(format!("skus: 1 to {} SKUs", crate::campaign::MAX_TARGETS));
    }
    let days = campaign_days(from, to, weekdays);
    let mut lines = Vec::new();
    for s in skus {
        if s.units_per_day < 0 || s.units_per_day > 1_000_000 {
            return Err(format!("skus.{}: units_per_day 0 to 1000000", s.sku));
        }
        if s.cost_price.minor < 0 {
            return Err(format!("skus.{}: cost_price must not be negative", s.sku));
        }
        let per_unit = Decimal::from(s.cost_price.minor)
            .checked_mul(percent)
            .and_then(|d| d.checked_div(Decimal::from(100)))
            .and_then(|d| d.checked_div(Decimal::from(point_value_minor.max(1))))
            .ok_or_else(|| format!("skus.{}: out of range", s.sku))?;
        let units = s.units_per_day.saturating_mul(days);
        let points = per_unit
            .checked_mul(Decimal::from(units))
            .map(|d| d.round_dp_with_strategy(0, RoundingStrategy::ToZero))
            .and_then(|d| d.to_i64())
            .ok_or_else(|| format!("skus.{}: out of range", s.sku))?;
        lines.push(PlanLine {
            sku: s.sku.clone(),
            points_per_unit: per_unit.normalize().to_string(),
            units,
            points,
        });
    }
    let points_needed: Points = lines.iter().map(|l| l.points).sum();
    let mut sorted: Vec<&PointPack> = packs.iter().collect();
    sorted.sort_by_key(|p| p.points);
    let fits: Vec<PackFit> = sorted
        .iter()
        .map(|p| PackFit {
            pack_id: p.id.clone(),
            points: p.points,
            price_minor: p.price_minor,
            covers: p.points >= points_needed,
        })
        .collect();
    let smallest_covering_pack = fits.iter().find(|f| f.covers).map(|f| f.pack_id.clone());
    let mut warnings = Vec::new();
    if days == 0 {
        warnings.push("the campaign runs on no day of its window".to_string());
    }
    if let Some(have) = chosen {
        if have < points_needed {
            warnings.push(format!(
                "the pack or budget of {have} points is too small: about {points_needed} points will be paid out (it runs out after about {} of {days} days)",
                if points_needed > 0 { have.saturating_mul(days) / points_needed } else { days }
            ));
        }
    }
    if smallest_covering_pack.is_none() && points_needed > 0 {
        warnings.push("no single pack covers the estimate: buy several".to_string());
    }
    Ok(CampaignPlan {
        days,
        lines,
        points_needed,
        packs: fits,
        smallest_covering_pack,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").unwrap())
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_plan_is_1_3_percent_of_cost_times_units_on_the_chosen_days() {
        use Weekday::*;
        // 2 weeks of weekdays in November 2026: 2-13 Nov = 10 days.
        assert_eq!(
            campaign_days(
                day("2026-11-02"),
                day("2026-11-15"),
                &[Mon, Tue, Wed, Thu, Fri]
            ),
            10
        );
        let skus = [
            PlannedSku {
                sku: "HELMET".into(),
                cost_price: eur(10_000),
                units_per_day: 50,
            },
            PlannedSku {
                sku: "LAMP".into(),
                cost_price: eur(2_550),
                units_per_day: 40,
            },
        ];
        let plan = plan_campaign(
            &skus,
            Decimal::new(13, 1),
            1,
            day("2026-11-02"),
            day("2026-11-15"),
            &[Mon, Tue, Wed, Thu, Fri],
            &default_packs(),
            Some(150_000),
        )
        .unwrap();
        // 130 x 500 = 65,000; 33.15 x 400 = 13,260.
        assert_eq!(plan.lines[0].points, 65_000);
        assert_eq!(plan.lines[0].points_per_unit, "130");
        assert_eq!(plan.lines[1].points, 13_260);
        assert_eq!(plan.points_needed, 78_260);
        assert_eq!(plan.smallest_covering_pack.as_deref(), Some("150k"));
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        // Three times the helmets: 195,000 + 13,260 needs the 370k pack; 150k is short.
        let busy = [
            PlannedSku {
                units_per_day: 150,
                ..skus[0].clone()
            },
            skus[1].clone(),
        ];
        let plan = plan_campaign(
            &busy,
            Decimal::new(13, 1),
            1,
            day("2026-11-02"),
            day("2026-11-15"),
            &[Mon, Tue, Wed, Thu, Fri],
            &default_packs(),
            Some(150_000),
        )
        .unwrap();
        assert_eq!(plan.points_needed, 208_260);
        assert_eq!(plan.smallest_covering_pack.as_deref(), Some("370k"));
        assert_eq!(plan.packs.iter().filter(|p| p.covers).count(), 2);
        assert!(
            plan.warnings[0].starts_with(
                "the pack or budget of 150000 points is too small: about 208260 points"
            ),
            "{:?}",
            plan.warnings
        );
        assert!(
            plan.warnings[0].ends_with("(it runs out after about 7 of 10 days)"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn packs_are_checked() {
        assert_eq!(validate_packs(&default_packs()), Ok(()));
        let mut twice = default_packs();
        twice[1].id = "150k".into();
        assert!(validate_packs(&twice)
            .unwrap_err()
            .contains("appears twice"));
    }
}
