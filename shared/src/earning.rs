//! **Where the points for one order line are computed.**
//!
//! Rule (documented in README "Earning rules"):
//!
//! ```text
//! line net   = quantity x unit price - line discount          (integer minor units, exact)
//! line points = floor( line net in currency units x points_per_unit )
//! ```
//!
//! Everything is computed exactly with `rust_decimal` and rounded down **once per line**, at
//! the end. The order total is the sum of the line points, so a line never earns a fraction
//! that a later line could "pick up". Tax and shipping are not part of the net line amount.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::{Money, Points};
use crate::programme::Programme;

/// One order line after validation: what earning needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarnLine {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    /// Net line amount: quantity x unit price - discount, tax and shipping excluded.
    pub net: Money,
}

/// The explanation of one line's points, returned to the webshop and stored on the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEarning {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    /// Net amount the points were computed on, as a decimal string ("99.90").
    pub net_amount: String,
    /// Base rate: points per unit of currency.
    pub points_per_unit: String,
    /// Exact, unrounded points before the single round-down ("99.9").
    pub exact_points: String,
    pub points: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEarning {
    pub lines: Vec<LineEarning>,
    pub total: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EarnError {
    #[error("line {0}: points would overflow")]
    Overflow(String),
    #[error("line {0}: currency {1} is not the programme currency {2}")]
    Currency(String, &'static str, &'static str),
}

/// Exact (unrounded) points for a net amount under a programme's base rate.
pub fn exact_points(programme: &Programme, net: Money) -> Option<Decimal> {
    net.to_decimal().checked_mul(programme.points_per_unit)
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

/// Points for one order line.
pub fn points_for_line(programme: &Programme, line: &EarnLine) -> Result<LineEarning, EarnError> {
    if line.net.currency != programme.currency {
        return Err(EarnError::Currency(
            line.line_id.clone(),
            line.net.currency.code(),
            programme.currency.code(),
        ));
    }
    let exact = exact_points(programme, line.net)
        .ok_or_else(|| EarnError::Overflow(line.line_id.clone()))?;
    let points = round_points(exact).ok_or_else(|| EarnError::Overflow(line.line_id.clone()))?;
    Ok(LineEarning {
        line_id: line.line_id.clone(),
        sku: line.sku.clone(),
        quantity: line.quantity,
        net_amount: line.net.amount_string(),
        points_per_unit: programme.points_per_unit.normalize().to_string(),
        exact_points: exact.normalize().to_string(),
        points,
    })
}

/// Points for a whole order: the sum of its lines.
pub fn earn_order(programme: &Programme, lines: &[EarnLine]) -> Result<OrderEarning, EarnError> {
    let lines = lines
        .iter()
        .map(|l| points_for_line(programme, l))
        .collect::<Result<Vec<_>, _>>()?;
    let total = lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(l.points))
        .ok_or_else(|| EarnError::Overflow("total".into()))?;
    Ok(OrderEarning { lines, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, MAX_MINOR};
    use crate::programme::ProgrammeKind;
    use proptest::prelude::*;

    fn programme(rate: &str) -> Programme {
        let mut p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Closed,
            Currency::parse("EUR").unwrap(),
        );
        p.points_per_unit = rate.parse().unwrap();
        p
    }

    fn line(id: &str, net_minor: i64) -> EarnLine {
        EarnLine {
            line_id: id.into(),
            sku: format!("SKU-{id}"),
            quantity: 1,
            net: Money::new(net_minor, Currency::parse("EUR").unwrap()),
        }
    }

    #[test]
    fn two_times_49_95_at_one_point_per_euro_is_99() {
        let p = programme("1");
        let l = EarnLine {
            quantity: 2,
            ..line("1", 2 * 4995)
        };
        let e = points_for_line(&p, &l).unwrap();
        assert_eq!(e.points, 99);
        assert_eq!(e.exact_points, "99.9");
        assert_eq!(e.net_amount, "99.90");
    }

    #[test]
    fn rounding_is_once_per_line_not_per_order() {
        // Two lines of 0.60 EUR each: 0 + 0 points, not floor(1.20) = 1.
        let p = programme("1");
        let e = earn_order(&p, &[line("a", 60), line("b", 60)]).unwrap();
        assert_eq!(e.total, 0);
        // Ten points per euro on 0.99 EUR: 9.9 -> 9.
        assert_eq!(
            points_for_line(&programme("10"), &line("c", 99))
                .unwrap()
                .points,
            9
        );
        // Fractional rates are exact: 0.5 points per euro on 3.00 EUR is 1.5 -> 1.
        assert_eq!(
            points_for_line(&programme("0.5"), &line("d", 300))
                .unwrap()
                .points,
            1
        );
    }

    #[test]
    fn zero_decimal_currencies_earn_per_whole_unit() {
        let mut p = programme("0.01");
        p.currency = Currency::parse("JPY").unwrap();
        let l = EarnLine {
            net: Money::new(1550, p.currency),
            ..line("1", 0)
        };
        assert_eq!(points_for_line(&p, &l).unwrap().points, 15);
    }

    #[test]
    fn another_currency_is_refused() {
        let p = programme("1");
        let l = EarnLine {
            net: Money::new(100, Currency::parse("SEK").unwrap()),
            ..line("1", 0)
        };
        assert!(matches!(
            points_for_line(&p, &l),
            Err(EarnError::Currency(..))
        ));
    }

    proptest! {
        #[test]
        fn points_are_never_negative_and_total_is_sum_of_lines(
            nets in proptest::collection::vec(-1_000_000i64..MAX_MINOR, 1..25),
            rate_hundredths in 0i64..100_000,
        ) {
            let p = programme(&Decimal::new(rate_hundredths, 2).to_string());
            let lines: Vec<_> = nets.iter().enumerate().map(|(i, n)| line(&i.to_string(), *n)).collect();
            let e = earn_order(&p, &lines).unwrap();
            prop_assert!(e.lines.iter().all(|l| l.points >= 0));
            prop_assert_eq!(e.total, e.lines.iter().map(|l| l.points).sum::<i64>());
        }

        #[test]
        fn a_line_earns_the_exact_amount_rounded_down(net in 0i64..MAX_MINOR, rate_hundredths in 0i64..100_000) {
            // floor(net/100 * rate/100) computed in integers: the rule, independently.
            let p = programme(&Decimal::new(rate_hundredths, 2).to_string());
            let expected = (i128::from(net) * i128::from(rate_hundredths)) / 10_000;
            let got = points_for_line(&p, &line("x", net)).unwrap().points;
            prop_assert_eq!(i128::from(got), expected);
        }
    }
}
