//! **Where the points for one order line are computed.**
//!
//! Rule (also in README "Earning rules"):
//!
//! ```text
//! line net     = quantity x unit price - line discount [+ line tax if the programme counts tax]
//! base (exact) = line net in currency units x points_per_unit x group coefficient x tier multiplier
//! bonus_c      = campaign c's exact bonus for the line (fixed per unit, % of cost price, per unit of currency)
//! line points  = floor( base + sum of bonus_c )                 -- rounded down once per line
//! ```
//!
//! Each campaign is credited `floor(bonus_c)`, cut to what its budget has left; the base part
//! is the line points minus the campaigns' floors, so the fractions of all parts add up
//! before the single round-down. When a budget runs short the line gets what is left and the
//! campaign is exhausted. The order's points are the sum of its lines.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::campaign::Campaign;
pub use crate::line::EarnLine;
use crate::money::Points;
use crate::programme::{Programme, Tier};

/// Everything about the member and the moment that earning depends on.
#[derive(Debug, Clone, Copy)]
pub struct EarnContext<'a> {
    pub programme: &'a Programme,
    /// The tier the order earns at (after any upgrade the order itself causes).
    pub tier: &'a Tier,
    /// The order's time in the partner's time zone (campaign windows, weekdays and hours).
    pub local_time: NaiveDateTime,
    /// The partner's campaigns; those that do not apply are ignored.
    pub campaigns: &'a [Campaign],
}

/// One campaign's share of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignBonus {
    pub campaign_id: String,
    /// Exact bonus before rounding and budget ("130").
    pub exact: String,
    pub points: Points,
    /// True when the budget could not pay the full bonus.
    pub budget_exhausted: bool,
}

/// The explanation of one line's points, returned to the webshop and stored on the order:
/// enough for support to answer "why did I get 130 points".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEarning {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    /// Net amount the points were computed on ("99.90").
    pub net_amount: String,
    pub points_per_unit: String,
    pub product_group: Option<String>,
    pub coefficient: String,
    pub tier: String,
    pub tier_multiplier: String,
    /// Exact points of the line, base and campaigns, before the single round-down.
    pub exact_points: String,
    pub base_points: Points,
    pub campaigns: Vec<CampaignBonus>,
    pub points: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEarning {
    pub lines: Vec<LineEarning>,
    pub total: Points,
    /// Points each campaign pays for this order (to be taken from its budget).
    pub campaign_points: BTreeMap<String, Points>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EarnError {
    #[error("line {0}: points would overflow")]
    Overflow(String),
    #[error("line {0}: currency {1} is not the programme currency {2}")]
    Currency(String, &'static str, &'static str),
}

/// Round down once. Negative amounts never earn (they are refused before they get here).
pub fn round_points(exact: Decimal) -> Option<Points> {
    if exact <= Decimal::ZERO {
        return Some(0);
    }
    exact
        .round_dp_with_strategy(0, RoundingStrategy::ToZero)
        .to_i64()
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Points for one order line. `budgets` holds what each campaign has left and is reduced by
/// what this line takes.
pub fn points_for_line(
    ctx: &EarnContext<'_>,
    line: &EarnLine,
    budgets: &mut BTreeMap<String, Points>,
) -> Result<LineEarning, EarnError> {
    let p = ctx.programme;
    let overflow = || EarnError::Overflow(line.line_id.clone());
    if line.net.currency != p.currency {
        return Err(EarnError::Currency(
            line.line_id.clone(),
            line.net.currency.code(),
            p.currency.code(),
        ));
    }
    let coefficient = p.coefficient(line.product_group.as_deref());
    let base_exact = line
        .net
        .to_decimal()
        .checked_mul(p.points_per_unit)
        .and_then(|d| d.checked_mul(coefficient))
        .and_then(|d| d.checked_mul(ctx.tier.multiplier))
        .ok_or_else(overflow)?;

    let mut exact_total = base_exact.max(Decimal::ZERO);
    let mut floors = Vec::new();
    for c in ctx
        .campaigns
        .iter()
        .filter(|c| c.applies(line, &ctx.tier.name, ctx.local_time))
    {
        let Some(exact) = c.exact_bonus(p, line) else {
            continue;
        };
        if exact <= Decimal::ZERO {
            continue;
        }
        exact_total = exact_total.checked_add(exact).ok_or_else(overflow)?;
        floors.push((c, exact, round_points(exact).ok_or_else(overflow)?));
    }
    let line_floor = round_points(exact_total).ok_or_else(overflow)?;
    let base_points = line_floor - floors.iter().map(|(_, _, f)| *f).sum::<Points>();

    let mut campaigns = Vec::new();
    for (c, exact, full) in floors {
        let left = budgets.entry(c.id.clone()).or_insert(0);
        let take = full.min(*left).max(0);
        *left -= take;
        campaigns.push(CampaignBonus {
            campaign_id: c.id.clone(),
            exact: text(exact),
            points: take,
            budget_exhausted: take < full,
        });
    }
    let points = base_points + campaigns.iter().map(|c| c.points).sum::<Points>();
    Ok(LineEarning {
        line_id: line.line_id.clone(),
        sku: line.sku.clone(),
        quantity: line.quantity,
        net_amount: line.net.amount_string(),
        points_per_unit: text(p.points_per_unit),
        product_group: line.product_group.clone(),
        coefficient: text(coefficient),
        tier: ctx.tier.name.clone(),
        tier_multiplier: text(ctx.tier.multiplier),
        exact_points: text(exact_total),
        base_points,
        campaigns,
        points,
    })
}

/// Points for a whole order: the sum of its lines. `budgets` is what each campaign has left
/// (campaigns missing from it have nothing left).
pub fn earn_order(
    ctx: &EarnContext<'_>,
    lines: &[EarnLine],
    budgets: &BTreeMap<String, Points>,
) -> Result<OrderEarning, EarnError> {
    let mut left = budgets.clone();
    let lines = lines
        .iter()
        .map(|l| points_for_line(ctx, l, &mut left))
        .collect::<Result<Vec<_>, _>>()?;
    let total = lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(l.points))
        .ok_or_else(|| EarnError::Overflow("total".into()))?;
    let mut campaign_points = BTreeMap::new();
    for b in lines
        .iter()
        .flat_map(|l| &l.campaigns)
        .filter(|b| b.points > 0)
    {
        *campaign_points.entry(b.campaign_id.clone()).or_insert(0) += b.points;
    }
    Ok(OrderEarning {
        lines,
        total,
        campaign_points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::CampaignRule;
    use crate::money::{Currency, Money, MAX_MINOR};
    use crate::programme::{Coefficient, ProgrammeKind};
    use chrono::Weekday;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn programme(rate: &str) -> Programme {
        let mut p = Programme::with_defaults("p", "P", ProgrammeKind::Closed, eur());
        p.points_per_unit = rate.parse().unwrap();
        p
    }

    fn line(id: &str, net_minor: i64) -> EarnLine {
        EarnLine {
            line_id: id.into(),
            sku: format!("SKU-{id}"),
            quantity: 1,
            net: Money::new(net_minor, eur()),
            cost_price: None,
            product_group: None,
        }
    }

    fn date(s: &str) -> chrono::NaiveDate {
        s.parse().unwrap()
    }

    fn noon(s: &str) -> NaiveDateTime {
        date(s).and_hms_opt(12, 0, 0).unwrap()
    }

    /// Earn with the programme's lowest tier (or `tier`), no campaigns.
    fn earn(p: &Programme, tier: Option<&str>, lines: &[EarnLine]) -> OrderEarning {
        let tier = p.tier(tier.unwrap_or(p.base_tier())).unwrap();
        let ctx = EarnContext {
            programme: p,
            tier,
            local_time: noon("2026-11-23"),
            campaigns: &[],
        };
        earn_order(&ctx, lines, &BTreeMap::new()).unwrap()
    }

    fn silver_with<'a>(p: &'a Programme, c: &'a Campaign) -> EarnContext<'a> {
        EarnContext {
            programme: p,
            tier: p.tier("Silver").unwrap(),
            local_time: noon("2026-11-23"),
            campaigns: std::slice::from_ref(c),
        }
    }

    fn campaign(rule: CampaignRule, budget: Points) -> Campaign {
        Campaign {
            id: "c1".into(),
            partner_id: "shop".into(),
            name: "C".into(),
            skus: ["SKU-1".to_string()].into_iter().collect(),
            product_groups: Default::default(),
            all_products: false,
            starts_on: date("2026-11-01"),
            ends_on: date("2026-11-30"),
            weekdays: vec![],
            hours: None,
            tiers: vec![],
            rule,
            budget,
            budget_shards: 1,
        }
    }

    #[test]
    fn two_times_49_95_at_one_point_per_euro_is_99() {
        let p = programme("1");
        let e = earn(
            &p,
            None,
            &[EarnLine {
                quantity: 2,
                ..line("1", 2 * 4995)
            }],
        );
        assert_eq!(
            (
                e.total,
                e.lines[0].exact_points.as_str(),
                e.lines[0].net_amount.as_str()
            ),
            (99, "99.9", "99.90")
        );
    }

    #[test]
    fn rounding_is_once_per_line_not_per_order() {
        let p = programme("1");
        // Two lines of 0.60 EUR: 0 + 0 points, not floor(1.20) = 1.
        assert_eq!(earn(&p, None, &[line("a", 60), line("b", 60)]).total, 0);
        assert_eq!(earn(&programme("10"), None, &[line("c", 99)]).total, 9);
        assert_eq!(earn(&programme("0.5"), None, &[line("d", 300)]).total, 1);
    }

    #[test]
    fn ten_points_per_euro_on_a_product_group() {
        let mut p = programme("1");
        p.product_groups
            .insert("cocktails".into(), Coefficient(Decimal::from(10)));
        let cocktail = EarnLine {
            product_group: Some("cocktails".into()),
            ..line("1", 1250)
        };
        let bread = EarnLine {
            product_group: Some("bread".into()),
            ..line("2", 1250)
        };
        let e = earn(&p, None, &[cocktail, bread]);
        assert_eq!(
            (e.lines[0].points, e.lines[0].coefficient.as_str()),
            (125, "10")
        );
        assert_eq!(
            (e.lines[1].points, e.lines[1].coefficient.as_str()),
            (12, "1")
        );
    }

    #[test]
    fn a_vip_member_earns_twenty_points_per_euro() {
        // bonVito: 10 points per euro, VIP doubles it.
        let p = programme("10");
        let e = earn(&p, Some("VIP"), &[line("1", 3000)]);
        assert_eq!(
            (
                e.total,
                e.lines[0].tier.as_str(),
                e.lines[0].tier_multiplier.as_str()
            ),
            (600, "VIP", "2")
        );
        assert_eq!(earn(&p, Some("Gold"), &[line("1", 3000)]).total, 375);
    }

    #[test]
    fn cost_price_campaign_at_1_3_percent_gives_130_points_per_unit() {
        let p = programme("1");
        let c = campaign(
            CampaignRule::CostPercent {
                percent: "1.3".parse().unwrap(),
            },
            150_000,
        );
        let ctx = silver_with(&p, &c);
        let l = EarnLine {
            quantity: 2,
            cost_price: Some(Money::new(10_000, eur())),
            ..line("1", 2 * 15_000)
        };
        let budgets = BTreeMap::from([("c1".to_string(), 150_000)]);
        let e = earn_order(&ctx, &[l], &budgets).unwrap();
        assert_eq!(e.lines[0].campaigns[0].points, 260);
        assert_eq!(e.lines[0].campaigns[0].exact, "260");
        assert_eq!(e.lines[0].base_points, 300);
        assert_eq!(e.total, 560);
        assert_eq!(e.campaign_points, BTreeMap::from([("c1".to_string(), 260)]));
    }

    #[test]
    fn a_short_budget_pays_what_is_left_and_then_nothing() {
        let p = programme("1");
        let c = campaign(CampaignRule::FixedPerUnit { points: 100 }, 150);
        let ctx = silver_with(&p, &c);
        let l = EarnLine {
            quantity: 1,
            ..line("1", 1000)
        };
        let mut budgets = BTreeMap::from([("c1".to_string(), 150)]);
        let first = points_for_line(&ctx, &l, &mut budgets).unwrap();
        let second = points_for_line(&ctx, &l, &mut budgets).unwrap();
        let third = points_for_line(&ctx, &l, &mut budgets).unwrap();
        assert_eq!(
            (
                first.campaigns[0].points,
                first.campaigns[0].budget_exhausted
            ),
            (100, false)
        );
        assert_eq!(
            (
                second.campaigns[0].points,
                second.campaigns[0].budget_exhausted
            ),
            (50, true)
        );
        assert_eq!((third.campaigns[0].points, third.points), (0, 10));
        assert_eq!(budgets["c1"], 0);
    }

    #[test]
    fn weekday_campaigns_use_the_local_date() {
        let p = programme("1");
        let mut c = campaign(CampaignRule::FixedPerUnit { points: 100 }, 1_000);
        c.weekdays = vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        // 2026-11-21 is a Saturday, 2026-11-20 a Friday.
        let sku1 = line("1", 100);
        let sku2 = EarnLine {
            sku: "SKU-2".into(),
            ..line("2", 100)
        };
        assert!(!c.applies(&sku1, "Silver", noon("2026-11-21")));
        assert!(c.applies(&sku1, "Silver", noon("2026-11-20")));
        assert!(!c.applies(&sku2, "Silver", noon("2026-11-20")));
        assert!(!c.applies(&sku1, "Silver", noon("2026-12-01")));
        c.tiers = vec!["Gold".into()];
        assert!(!c.applies(&sku1, "Silver", noon("2026-11-20")));
        assert!(c.applies(&sku1, "Gold", noon("2026-11-20")));
        assert!(c.may_apply(std::slice::from_ref(&sku1), noon("2026-11-20")));
        let _ = p;
    }

    #[test]
    fn campaigns_target_groups_every_product_and_hours() {
        let mut c = campaign(CampaignRule::FixedPerUnit { points: 10 }, 1_000);
        let bread = EarnLine {
            sku: "LOAF".into(),
            product_group: Some("bread".into()),
            ..line("1", 100)
        };
        let wine = EarnLine {
            sku: "WINE".into(),
            product_group: Some("wine".into()),
            ..line("2", 100)
        };
        assert!(!c.applies(&bread, "Silver", noon("2026-11-20")));
        c.skus.clear();
        c.product_groups = ["bread".to_string()].into_iter().collect();
        assert!(c.applies(&bread, "Silver", noon("2026-11-20")));
        assert!(!c.applies(&wine, "Silver", noon("2026-11-20")));
        assert!(c.may_apply(&[wine.clone(), bread.clone()], noon("2026-11-20")));
        assert!(!c.may_apply(std::slice::from_ref(&wine), noon("2026-11-20")));
        c.product_groups.clear();
        c.all_products = true;
        assert!(c.applies(&wine, "Silver", noon("2026-11-20")));
        // Happy hour, 17:00 to 19:00 local: 16:59 and 19:00 are outside.
        c.hours = Some(crate::campaign::HourWindow { from: 17, to: 19 });
        let at = |h, m| date("2026-11-20").and_hms_opt(h, m, 0).unwrap();
        assert!(!c.applies(&wine, "Silver", at(16, 59)));
        assert!(c.applies(&wine, "Silver", at(17, 0)));
        assert!(c.applies(&wine, "Silver", at(18, 59)));
        assert!(!c.applies(&wine, "Silver", at(19, 0)));
        assert_eq!(c.validate(), Ok(()));
        c.skus.insert("X".into());
        assert!(c.validate().unwrap_err().starts_with("skus:"));
        c.skus.clear();
        c.hours = Some(crate::campaign::HourWindow { from: 19, to: 17 });
        assert!(c.validate().unwrap_err().starts_with("hours:"));
    }

    proptest! {
        #[test]
        fn points_are_never_negative_and_total_is_sum_of_lines(
            nets in proptest::collection::vec(-1_000_000i64..MAX_MINOR, 1..25),
            rate_hundredths in 0i64..100_000,
        ) {
            let p = programme(&Decimal::new(rate_hundredths, 2).to_string());
            let lines: Vec<_> = nets.iter().enumerate().map(|(i, n)| line(&i.to_string(), *n)).collect();
            let e = earn(&p, None, &lines);
            prop_assert!(e.lines.iter().all(|l| l.points >= 0));
            prop_assert_eq!(e.total, e.lines.iter().map(|l| l.points).sum::<i64>());
        }

        #[test]
        fn a_line_earns_the_exact_amount_rounded_down(net in 0i64..MAX_MINOR, rate_hundredths in 0i64..100_000) {
            // floor(net/100 * rate/100), in integers: the rule, computed independently.
            let p = programme(&Decimal::new(rate_hundredths, 2).to_string());
            let expected = (i128::from(net) * i128::from(rate_hundredths)) / 10_000;
            prop_assert_eq!(i128::from(earn(&p, None, &[line("x", net)]).total), expected);
        }

        #[test]
        fn campaigns_never_pay_more_than_their_budget_and_lines_round_once(
            qtys in proptest::collection::vec(1i64..50, 1..20),
            per_unit in 1i64..500,
            budget in 0i64..20_000,
            mult_hundredths in 100i64..300,
        ) {
            let mut p = programme("1");
            p.tiers[0].multiplier = Decimal::new(mult_hundredths, 2);
            let c = campaign(CampaignRule::FixedPerUnit { points: per_unit }, budget);
            let ctx = EarnContext { programme: &p, tier: &p.tiers[0], local_time: noon("2026-11-23"), campaigns: std::slice::from_ref(&c) };
            let lines: Vec<_> = qtys.iter().map(|q| EarnLine { sku: "SKU-1".into(), quantity: *q, ..line("1", q * 333) }).collect();
            let e = earn_order(&ctx, &lines, &BTreeMap::from([("c1".to_string(), budget)])).unwrap();
            let paid: i64 = e.campaign_points.values().sum();
            prop_assert!(paid <= budget);
            prop_assert_eq!(paid, budget.min(qtys.iter().map(|q| q * per_unit).sum()));
            for l in &e.lines {
                let exact: Decimal = l.exact_points.parse().unwrap();
                prop_assert!(l.points >= 0);
                prop_assert!(Decimal::from(l.points) <= exact);
                if l.campaigns.iter().all(|c| !c.budget_exhausted) {
                    prop_assert_eq!(Decimal::from(l.points), exact.floor());
                }
            }
            prop_assert_eq!(e.total, e.lines.iter().map(|l| l.points).sum::<i64>());
        }
    }
}
