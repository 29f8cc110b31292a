//! The campaign report, pure: the campaign period against the three equal periods before
//! it, from figures summed out of per-partner, per-SKU, per-day aggregates. Definitions in
//! `docs/reports.md`; every figure is an integer or an exact decimal.

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One period's figures for the campaign's SKUs at its partner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodFigures {
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    /// Net line amounts, minor units.
    pub turnover_minor: i64,
    pub quantity: i64,
    /// Distinct members who bought a campaign SKU in the period.
    pub member_buyers: i64,
    /// Distinct non-member customers (by the shop's customer id or e-mail hash).
    pub non_member_buyers: i64,
    /// Points the campaign issued in the period (0 outside it).
    pub points_issued: i64,
    /// Their money value (points x point value), minor units: the marketing money.
    pub points_cost_minor: i64,
}

impl PeriodFigures {
    pub fn buyers(&self) -> i64 {
        self.member_buyers + self.non_member_buyers
    }
}

/// A change against the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uplift {
    pub baseline: Decimal,
    pub campaign: Decimal,
    pub absolute: Decimal,
    /// None when the baseline is 0.
    pub percent: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReport {
    pub campaign_id: String,
    pub currency: String,
    /// The three periods before, oldest first, then the campaign period.
    pub periods: Vec<PeriodFigures>,
    pub turnover: Uplift,
    pub quantity: Uplift,
    pub buyers: Uplift,
    /// (uplift in turnover - marketing money) / marketing money x 100; None without cost.
    pub roi_percent: Option<Decimal>,
}

/// The campaign period `[start, end]` and the three equal periods before it, oldest first.
pub fn periods(start: NaiveDate, end: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let days = (end - start).num_days().max(0) + 1;
    (0..4)
        .rev()
        .map(|k| {
            let from = start - Duration::days(days * k);
            (from, from + Duration::days(days - 1))
        })
        .collect()
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven)
        .normalize()
}

fn uplift(before: [i64; 3], campaign: i64) -> Uplift {
    let baseline = Decimal::from(before.iter().sum::<i64>()) / Decimal::from(3);
    let campaign = Decimal::from(campaign);
    let absolute = campaign - baseline;
    let percent = (!baseline.is_zero()).then(|| round2(absolute / baseline * Decimal::ONE_HUNDRED));
    Uplift {
        baseline: round2(baseline),
        campaign,
        absolute: round2(absolute),
        percent,
    }
}

/// The report from four periods' figures (three before, oldest first, then the campaign).
pub fn build(campaign_id: &str, currency: &str, periods: [PeriodFigures; 4]) -> CampaignReport {
    let before = |f: fn(&PeriodFigures) -> i64| [f(&periods[0]), f(&periods[1]), f(&periods[2])];
    let turnover = uplift(before(|p| p.turnover_minor), periods[3].turnover_minor);
    let quantity = uplift(before(|p| p.quantity), periods[3].quantity);
    let buyers = uplift(before(PeriodFigures::buyers), periods[3].buyers());
    let cost = Decimal::from(periods[3].points_cost_minor);
    let roi_percent = (!cost.is_zero()).then(|| {
        let uplift_exact = Decimal::from(periods[3].turnover_minor)
            - Decimal::from(before(|p| p.turnover_minor).iter().sum::<i64>()) / Decimal::from(3);
        round2((uplift_exact - cost) / cost * Decimal::ONE_HUNDRED)
    });
    CampaignReport {
        campaign_id: campaign_id.to_string(),
        currency: currency.to_string(),
        periods: periods.to_vec(),
        turnover,
        quantity,
        buyers,
        roi_percent,
    }
}

/// The report as CSV: one row per period, then the baseline and uplift rows. Money in minor
/// units (the header names the currency).
pub fn csv(r: &CampaignReport) -> String {
    let mut out = format!(
        "period,from,to,turnover_minor_{c},quantity,member_buyers,non_member_buyers,points_issued,points_cost_minor_{c}\n",
        c = r.currency
    );
    for (i, p) in r.periods.iter().enumerate() {
        let name = if i == 3 {
            "campaign".to_string()
        } else {
            format!("before_{}", 3 - i)
        };
        out.push_str(&format!(
            "{name},{},{},{},{},{},{},{},{}\n",
            p.from,
            p.to,
            p.turnover_minor,
            p.quantity,
            p.member_buyers,
            p.non_member_buyers,
            p.points_issued,
            p.points_cost_minor
        ));
    }
    let opt = |d: &Option<Decimal>| d.map_or(String::new(), |d| d.to_string());
    out.push_str(&format!(
        "baseline,,,{},{},,,,\n",
        r.turnover.baseline, r.quantity.baseline
    ));
    out.push_str(&format!(
        "uplift,,,{},{},,,,\n",
        r.turnover.absolute, r.quantity.absolute
    ));
    out.push_str(&format!(
        "uplift_percent,,,{},{},,,,\n",
        opt(&r.turnover.percent),
        opt(&r.quantity.percent)
    ));
    out.push_str(&format!(
        "buyers_uplift_percent,,,,,{},,,\nroi_percent,,,,,,,,{}\n",
        opt(&r.buyers.percent),
        opt(&r.roi_percent)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn period(
        from: &str,
        to: &str,
        turnover: i64,
        quantity: i64,
        buyers: (i64, i64),
        cost: i64,
    ) -> PeriodFigures {
        PeriodFigures {
            from: d(from),
            to: d(to),
            turnover_minor: turnover,
            quantity,
            member_buyers: buyers.0,
            non_member_buyers: buyers.1,
            points_issued: cost,
            points_cost_minor: cost,
        }
    }

    #[test]
    fn three_equal_periods_come_before_the_campaign() {
        assert_eq!(
            periods(d("2026-11-15"), d("2026-11-28")),
            vec![
                (d("2026-10-04"), d("2026-10-17")),
                (d("2026-10-18"), d("2026-10-31")),
                (d("2026-11-01"), d("2026-11-14")),
                (d("2026-11-15"), d("2026-11-28")),
            ]
        );
    }

    #[test]
    fn uplift_and_roi_by_hand() {
        // Before: 1,000.00, 1,100.00, 1,200.00 EUR -> baseline 1,100.00; campaign 1,650.00
        // with 200.00 of points: uplift 550.00 (50 %), ROI (550 - 200) / 200 = 175 %.
        let r = build(
            "helmets",
            "EUR",
            [
                period("2026-10-04", "2026-10-17", 100_000, 10, (4, 6), 0),
                period("2026-10-18", "2026-10-31", 110_000, 11, (5, 5), 0),
                period("2026-11-01", "2026-11-14", 120_000, 12, (6, 6), 0),
                period("2026-11-15", "2026-11-28", 165_000, 18, (12, 6), 20_000),
            ],
        );
        assert_eq!(r.turnover.baseline, Decimal::from(110_000));
        assert_eq!(r.turnover.absolute, Decimal::from(55_000));
        assert_eq!(r.turnover.percent, Some(Decimal::from(50)));
        assert_eq!(r.quantity.percent, Some(Decimal::new(6364, 2))); // 18 vs 11: 63.64 %
        assert_eq!(r.buyers.baseline, Decimal::new(1067, 2)); // 32 / 3
        assert_eq!(r.roi_percent, Some(Decimal::from(175)));
        let csv = csv(&r);
        assert!(csv.starts_with("period,from,to,turnover_minor_EUR,"));
        assert!(csv.contains("\ncampaign,2026-11-15,2026-11-28,165000,18,12,6,20000,20000\n"));
        assert!(csv.contains("\nuplift_percent,,,50,63.64,,,,\n"), "{csv}");
        assert!(csv.ends_with("roi_percent,,,,,,,,175\n"), "{csv}");
    }

    #[test]
    fn no_baseline_no_percent_and_no_cost_no_roi() {
        let r = build(
            "new",
            "EUR",
            [
                PeriodFigures::default(),
                PeriodFigures::default(),
                PeriodFigures::default(),
                period("2026-11-15", "2026-11-28", 5_000, 1, (1, 0), 0),
            ],
        );
        assert_eq!((r.turnover.percent, r.roi_percent), (None, None));
        assert_eq!(r.turnover.absolute, Decimal::from(5_000));
    }
}
