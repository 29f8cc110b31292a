//! Returns and cancellations, line by line: how much of an order a refund takes back.
//!
//! An order that earned is kept as an [`OrderBook`]: per line, what it earned (points, each
//! campaign's points, tier volume) and how much of it has been refunded so far. A refund
//! raises the refunded share of the lines it names; the points taken back are recomputed from
//! the cumulative share, so rounding never drifts:
//!
//! ```text
//! share(line)     = refunded quantity / quantity + refunded amount / net amount   (<= 1)
//! reversed(line)  = floor(points x share)      -- exactly `points` once share reaches 1
//! this refund     = reversed(after) - reversed(before)
//! ```
//!
//! The same rule gives back each campaign's budget and the tier volume. Invariants (checked by
//! property tests): nothing is ever reversed twice, a line never gives back more than it
//! earned, and refunding everything (in any number of steps, or by cancelling) gives back
//! exactly what was earned.
//!
//! An order-level `amount` (what WooCommerce reports) reverses the same share of every line:
//! `amount / order total`, spread over the lines' net amounts by largest remainder.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::earning::{EarnLine, OrderEarning};
use crate::money::Points;
use crate::order::{Order, SHIPPING_SKU};

/// Line id of the shipping pseudo-line (refunds of shipping are refunds of this line).
pub const SHIPPING_LINE: &str = "shipping";

/// How many refunds may wait for an order that has not arrived yet.
pub const MAX_WAITING: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineBook {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    /// Net amount of the line in minor units (what line refund amounts are measured against).
    pub net_minor: i64,
    pub points: Points,
    /// Points each campaign paid on this line.
    #[serde(default)]
    pub campaigns: BTreeMap<String, Points>,
    /// What the line added to the member's tier volume.
    pub volume_minor: i64,
    pub refunded_quantity: i64,
    pub refunded_minor: i64,
    /// Refunded in full (a cancellation, or the whole order refunded by amount).
    pub full: bool,
    pub reversed_points: Points,
    #[serde(default)]
    pub reversed_campaigns: BTreeMap<String, Points>,
    pub reversed_volume: i64,
    /// Of `points`, the employee's share of a company order (crate::company): the rest
    /// went to the company. Reversed in the same proportion as the line.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub employee_points: Points,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reversed_employee: Points,
}

fn is_zero(n: &Points) -> bool {
    *n == 0
}

/// The employee who got a share of a company order's points, and their lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeShare {
    pub member_id: String,
    pub lot_id: Option<String>,
}

/// What the order earned and how much of it has been refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidOrder {
    /// None for a non-member's order (nothing to reverse).
    pub member_id: Option<String>,
    pub lot_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// What the customer paid (minor units): the base of order-level refund amounts.
    pub total_minor: i64,
    /// Sum of order-level refund amounts so far.
    pub refunded_amount_minor: i64,
    pub lines: Vec<LineBook>,
    /// A company order whose employee got a share: `member_id` above is the company.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee: Option<EmployeeShare>,
}

/// The order's state item: what it earned, what was refunded, and refunds that came before
/// the order itself (shops do not guarantee delivery order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBook {
    pub partner_id: String,
    pub order_id: String,
    /// Incremented by every change; written with `version = expected`.
    pub version: u64,
    pub paid: Option<PaidOrder>,
    #[serde(default)]
    pub waiting: Vec<RefundRequest>,
    #[serde(default)]
    pub cancelled: bool,
}

impl OrderBook {
    pub fn new(partner_id: &str, order_id: &str) -> Self {
        OrderBook {
            partner_id: partner_id.to_string(),
            order_id: order_id.to_string(),
            version: 0,
            paid: None,
            waiting: Vec::new(),
            cancelled: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundItem {
    pub line_id: String,
    /// Units returned, or
    #[serde(default)]
    pub quantity: Option<i64>,
    /// a net amount refunded on the line (minor units).
    #[serde(default)]
    pub amount_minor: Option<i64>,
}

/// A validated refund or cancellation, in the form every webhook dialect is mapped to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The refund's id at the shop; [`CANCEL_ID`] for a cancellation.
    pub refund_id: String,
    /// Reverse everything not reversed yet (a cancellation, or a full refund).
    pub full: bool,
    #[serde(default)]
    pub lines: Vec<RefundItem>,
    /// Order-level amount (minor units), spread over all lines.
    #[serde(default)]
    pub amount_minor: i64,
    pub occurred_at: DateTime<Utc>,
    /// Of the body that carried it (a repeat with another body is a conflict).
    pub body_sha256: String,
    /// Do not keep it for an order that has not arrived: if the order was never booked,
    /// there is nothing to reverse (a WooCommerce order cancelled before it was paid).
    #[serde(default)]
    pub only_if_booked: bool,
}

pub const CANCEL_ID: &str = "cancel";

impl RefundRequest {
    /// The idempotency record name of this refund on its order.
    pub fn record_event(&self) -> String {
        if self.refund_id == CANCEL_ID {
            "order.cancelled".to_string()
        } else {
            format!("order.refunded#{}", self.refund_id)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("lines[{0}]: line '{1}' is not on the order")]
    UnknownLine(usize, String),
    #[error("lines[{0}]: refunds more of line '{1}' than was ordered")]
    LineExceeded(usize, String),
    #[error("amount: refunds more than the order total")]
    AmountExceeded,
    #[error("the refund amounts are out of range")]
    Overflow,
}

impl RefundError {
    pub fn code(&self) -> &'static str {
        match self {
            RefundError::UnknownLine(..) => "unknown_line",
            RefundError::LineExceeded(..) | RefundError::AmountExceeded => "refund_exceeds_order",
            RefundError::Overflow => "invalid_amount",
        }
    }
}

/// What one refund takes back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    pub points: Points,
    /// Of `points`, the employee's share (a company order); the rest is the company's.
    #[serde(default)]
    pub employee_points: Points,
    pub campaigns: BTreeMap<String, Points>,
    pub volume_minor: i64,
    /// Points taken back per line (lines that gave back nothing are left out).
    pub lines: Vec<LineReversal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineReversal {
    pub line_id: String,
    pub points: Points,
}

impl LineBook {
    /// Refunded quantity and amounts as a fraction `num / den` of the line (may exceed 1).
    fn raw_share(&self) -> (i128, i128) {
        let q = i128::from(self.quantity.max(1));
        if self.net_minor > 0 {
            let n = i128::from(self.net_minor);
            (
                i128::from(self.refunded_quantity) * n + i128::from(self.refunded_minor) * q,
                q * n,
            )
        } else {
            (i128::from(self.refunded_quantity), q)
        }
    }

    /// Refunded share, capped at 1.
    fn share(&self) -> (i128, i128) {
        if self.full {
            return (1, 1);
        }
        let (num, den) = self.raw_share();
        (num.min(den), den)
    }

    /// Net amount not refunded yet (rounded down).
    fn open_minor(&self) -> i64 {
        let (num, den) = self.share();
        let refunded = (i128::from(self.net_minor) * num).div_euclid(den);
        self.net_minor - i64::try_from(refunded).unwrap_or(self.net_minor)
    }

    /// Recompute what is reversed from the share; returns this step's reversal.
    fn settle(&mut self, out: &mut Reversal) {
        let (num, den) = self.share();
        let part = |total: i64| -> i64 {
            if num >= den {
                total
            } else {
                i64::try_from((i128::from(total) * num).div_euclid(den)).unwrap_or(total)
            }
        };
        let points = part(self.points) - self.reversed_points;
        self.reversed_points += points;
        let employee = part(self.employee_points) - self.reversed_employee;
        self.reversed_employee += employee;
        out.employee_points += employee;
        let volume = part(self.volume_minor) - self.reversed_volume;
        self.reversed_volume += volume;
        out.volume_minor += volume;
        for (campaign, earned) in &self.campaigns {
            let done = self.reversed_campaigns.entry(campaign.clone()).or_insert(0);
            let delta = part(*earned) - *done;
            *done += delta;
            if delta != 0 {
                *out.campaigns.entry(campaign.clone()).or_insert(0) += delta;
            }
        }
        if points != 0 {
            out.points += points;
            out.lines.push(LineReversal {
                line_id: self.line_id.clone(),
                points,
            });
        }
    }
}

/// Split `amount` over `weights` in proportion, by largest remainder: the parts add up to
/// exactly `amount` (when the weights are not all zero).
pub fn spread(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if total == 0 || amount <= 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(i128, i128)> = weights
        .iter()
        .map(|w| {
            let p = i128::from(amount) * i128::from((*w).max(0));
            (p.div_euclid(total), p.rem_euclid(total))
        })
        .collect();
    let mut parts: Vec<i64> = exact
        .iter()
        .map(|(q, _)| i64::try_from(*q).unwrap_or(0))
        .collect();
    let mut left = amount - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        if weights[i] > 0 {
            parts[i] += 1;
            left -= 1;
        }
    }
    parts
}

impl PaidOrder {
    /// Book what an order earned, line by line.
    pub fn new(
        member_id: Option<String>,
        lot_id: Option<String>,
        order: &Order,
        earn_lines: &[EarnLine],
        earning: &OrderEarning,
    ) -> PaidOrder {
        let mut lines: Vec<LineBook> = order
            .lines
            .iter()
            .map(|l| (l.line_id.as_str(), l.sku.as_str(), l.quantity, l.net.minor))
            .chain((order.shipping.minor > 0).then_some((
                SHIPPING_LINE,
                SHIPPING_SKU,
                1,
                order.shipping.minor,
            )))
            .map(|(line_id, sku, quantity, net_minor)| {
                let earned = earning.lines.iter().find(|e| e.line_id == line_id);
                let volume = earn_lines.iter().find(|e| e.line_id == line_id);
                LineBook {
                    line_id: line_id.to_string(),
                    sku: sku.to_string(),
                    quantity,
                    net_minor,
                    points: earned.map_or(0, |e| e.points),
                    campaigns: earned
                        .map(|e| {
                            e.campaigns
                                .iter()
                                .filter(|c| c.points > 0)
                                .map(|c| (c.campaign_id.clone(), c.points))
                                .collect()
                        })
                        .unwrap_or_default(),
                    volume_minor: volume.map_or(0, |v| v.net.minor),
                    refunded_quantity: 0,
                    refunded_minor: 0,
                    full: false,
                    reversed_points: 0,
                    reversed_campaigns: BTreeMap::new(),
                    reversed_volume: 0,
                    employee_points: 0,
                    reversed_employee: 0,
                }
            })
            .collect();
        lines.shrink_to_fit();
        PaidOrder {
            member_id,
            lot_id,
            occurred_at: order.occurred_at,
            total_minor: order.total_minor(),
            refunded_amount_minor: 0,
            lines,
            employee: None,
        }
    }

    /// Give `employee` `percent` of each line's points, rounded down once per line (the
    /// company keeps the rest). Returns the employee's total.
    pub fn share_with(&mut self, employee: EmployeeShare, percent: u32) -> Points {
        let mut total = 0;
        for l in &mut self.lines {
            l.employee_points = crate::company::employee_share(l.points, percent);
            total += l.employee_points;
        }
        self.employee = Some(employee);
        total
    }

    pub fn earned_points(&self) -> Points {
        self.lines.iter().map(|l| l.points).sum()
    }

    pub fn reversed_points(&self) -> Points {
        self.lines.iter().map(|l| l.reversed_points).sum()
    }

    /// Campaign points earned minus reversed, per campaign.
    pub fn net_campaign_points(&self) -> BTreeMap<String, Points> {
        let mut out = BTreeMap::new();
        for l in &self.lines {
            for (c, p) in &l.campaigns {
                let back = l.reversed_campaigns.get(c).copied().unwrap_or(0);
                *out.entry(c.clone()).or_insert(0) += p - back;
            }
        }
        out.retain(|_, p| *p != 0);
        out
    }

    /// Apply a refund. `strict` refuses one that names an unknown line or refunds more than
    /// was ordered (the sender's request is wrong); otherwise unknown lines are skipped and
    /// everything is capped at what is left (a refund that waited for its order, or a shop
    /// platform whose word is final). On error nothing changes.
    pub fn apply(&mut self, req: &RefundRequest, strict: bool) -> Result<Reversal, RefundError> {
        let mut next = self.clone();
        let mut out = Reversal::default();
        if req.full {
            for l in &mut next.lines {
                l.full = true;
            }
        }
        for (i, item) in req.lines.iter().enumerate() {
            let Some(line) = next.lines.iter_mut().find(|l| l.line_id == item.line_id) else {
                if strict {
                    return Err(RefundError::UnknownLine(i, item.line_id.clone()));
                }
                continue; // a line added after the order was booked earned nothing
            };
            let exceeded = || RefundError::LineExceeded(i, item.line_id.clone());
            if line.full {
                if strict {
                    return Err(exceeded());
                }
                continue;
            }
            if let Some(q) = item.quantity {
                line.refunded_quantity = line
                    .refunded_quantity
                    .checked_add(q.max(0))
                    .ok_or(RefundError::Overflow)?;
            }
            if let Some(a) = item.amount_minor {
                if line.net_minor == 0 && a > 0 && strict {
                    return Err(exceeded());
                }
                line.refunded_minor = line
                    .refunded_minor
                    .checked_add(a.max(0))
                    .ok_or(RefundError::Overflow)?;
            }
            let (num, den) = line.raw_share();
            if num > den && strict {
                return Err(exceeded());
            }
            if num >= den {
                line.full = true;
            }
        }
        if req.amount_minor > 0 {
            let after = next
                .refunded_amount_minor
                .checked_add(req.amount_minor)
                .ok_or(RefundError::Overflow)?;
            if after > next.total_minor && strict {
                return Err(RefundError::AmountExceeded);
            }
            next.refunded_amount_minor = after.min(next.total_minor);
            if next.refunded_amount_minor >= next.total_minor {
                for l in &mut next.lines {
                    l.full = true;
                }
            } else {
                // The same share of every line: amount / total of each line's net amount.
                let weights: Vec<i64> = next.lines.iter().map(|l| l.net_minor).collect();
                let target = i64::try_from(
                    i128::from(req.amount_minor)
                        * weights.iter().map(|w| i128::from(*w)).sum::<i128>()
                        / i128::from(next.total_minor.max(1)),
                )
                .map_err(|_| RefundError::Overflow)?;
                for (line, part) in next.lines.iter_mut().zip(spread(target, &weights)) {
                    if !line.full {
                        line.refunded_minor += part.min(line.open_minor());
                    }
                }
            }
        }
        for l in &mut next.lines {
            l.settle(&mut out);
        }
        *self = next;
        Ok(out)
    }
}

/// A refund the order cannot carry (more than was ordered, an unknown line, nothing in it).
impl From<RefundError> for crate::error::Error {
    fn from(e: RefundError) -> Self {
        crate::error::Error::invalid(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(id: &str, quantity: i64, net: i64, points: Points, campaign: Points) -> LineBook {
        LineBook {
            line_id: id.into(),
            sku: id.into(),
            quantity,
            net_minor: net,
            points,
            campaigns: if campaign > 0 {
                [("C".to_string(), campaign)].into_iter().collect()
            } else {
                BTreeMap::new()
            },
            volume_minor: net,
            refunded_quantity: 0,
            refunded_minor: 0,
            full: false,
            reversed_points: 0,
            reversed_campaigns: BTreeMap::new(),
            reversed_volume: 0,
            employee_points: 0,
            reversed_employee: 0,
        }
    }

    fn order(lines: Vec<LineBook>) -> PaidOrder {
        let total = lines.iter().map(|l| l.net_minor).sum();
        PaidOrder {
            member_id: Some("M".into()),
            lot_id: Some("shop:A".into()),
            occurred_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            total_minor: total,
            refunded_amount_minor: 0,
            lines,
            employee: None,
        }
    }

    fn refund(id: &str, lines: &[(&str, Option<i64>, Option<i64>)]) -> RefundRequest {
        RefundRequest {
            refund_id: id.into(),
            full: false,
            lines: lines
                .iter()
                .map(|(l, q, a)| RefundItem {
                    line_id: l.to_string(),
                    quantity: *q,
                    amount_minor: *a,
                })
                .collect(),
            amount_minor: 0,
            occurred_at: "2026-11-24T10:00:00Z".parse().unwrap(),
            body_sha256: String::new(),
            only_if_booked: false,
        }
    }

    #[test]
    fn refunding_one_of_two_lines_takes_back_exactly_that_line() {
        let mut o = order(vec![
            line("1", 1, 60_000, 600, 0),
            line("2", 2, 40_000, 400, 0),
        ]);
        let r = o
            .apply(&refund("R1", &[("1", Some(1), None)]), true)
            .unwrap();
        assert_eq!((r.points, r.volume_minor), (600, 60_000));
        assert_eq!(o.reversed_points(), 600);
    }

    #[test]
    fn one_unit_out_of_three_rounds_down_and_the_last_unit_takes_the_rest() {
        let mut o = order(vec![line("1", 3, 3_000, 100, 10)]);
        let steps: Vec<Points> = (0..3)
            .map(|i| {
                o.apply(&refund(&format!("R{i}"), &[("1", Some(1), None)]), true)
                    .unwrap()
                    .points
            })
            .collect();
        assert_eq!(steps, vec![33, 33, 34]);
        assert_eq!(o.lines[0].reversed_campaigns["C"], 10);
        let err = o.apply(&refund("R4", &[("1", Some(1), None)]), true);
        assert_eq!(err.unwrap_err(), RefundError::LineExceeded(0, "1".into()));
    }

    #[test]
    fn refusals_change_nothing() {
        let mut o = order(vec![line("1", 2, 2_000, 20, 0)]);
        let before = o.clone();
        let cases = [
            (refund("R", &[("9", Some(1), None)]), "unknown_line"),
            (refund("R", &[("1", Some(3), None)]), "refund_exceeds_order"),
            (
                refund("R", &[("1", Some(1), None), ("1", None, Some(1_001))]),
                "refund_exceeds_order",
            ),
        ];
        for (r, code) in cases {
            assert_eq!(o.apply(&r, true).unwrap_err().code(), code);
            assert_eq!(o, before);
        }
        // Capped instead of refused when not strict.
        assert_eq!(
            o.apply(&refund("R", &[("1", Some(5), None)]), false)
                .unwrap()
                .points,
            20
        );
    }

    #[test]
    fn an_amount_on_a_line_reverses_its_share() {
        let mut o = order(vec![line("1", 1, 10_000, 100, 0)]);
        assert_eq!(
            o.apply(&refund("R", &[("1", None, Some(2_550))]), true)
                .unwrap()
                .points,
            25
        );
    }

    #[test]
    fn a_free_line_gives_back_its_campaign_points_by_quantity() {
        // A 100%-discounted line earned 50 campaign points (fixed per unit).
        let mut o = order(vec![line("1", 2, 0, 50, 50), line("2", 1, 1_000, 10, 0)]);
        assert_eq!(
            o.apply(&refund("R", &[("1", None, Some(100))]), true)
                .unwrap_err()
                .code(),
            "refund_exceeds_order"
        );
        let r = o
            .apply(&refund("R", &[("1", Some(1), None)]), true)
            .unwrap();
        assert_eq!((r.points, r.campaigns["C"]), (25, 25));
    }

    #[test]
    fn an_order_level_amount_reverses_the_same_share_of_every_line() {
        let mut o = order(vec![line("1", 1, 7_500, 75, 0), line("2", 1, 2_500, 25, 0)]);
        o.total_minor = 10_000;
        let mut r = refund("R", &[]);
        r.amount_minor = 4_000;
        assert_eq!(o.apply(&r, true).unwrap().points, 40);
        r.amount_minor = 6_001;
        assert_eq!(o.apply(&r, true).unwrap_err(), RefundError::AmountExceeded);
        r.amount_minor = 6_000;
        assert_eq!(o.apply(&r, true).unwrap().points, 60);
        assert!(o
            .lines
            .iter()
            .all(|l| l.full && l.reversed_points == l.points));
    }

    #[test]
    fn a_cancellation_after_a_partial_refund_takes_back_the_rest() {
        let mut o = order(vec![line("1", 3, 3_000, 100, 0), line("2", 1, 500, 5, 0)]);
        o.apply(&refund("R", &[("1", Some(1), None)]), true)
            .unwrap();
        let mut cancel = refund(CANCEL_ID, &[]);
        cancel.full = true;
        assert_eq!(o.apply(&cancel, true).unwrap().points, 72);
        assert_eq!(o.apply(&cancel, true).unwrap().points, 0);
    }

    #[test]
    fn spread_adds_up() {
        assert_eq!(spread(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(spread(5, &[0, 10, 0]), vec![0, 5, 0]);
        assert_eq!(spread(5, &[0, 0]), vec![0, 0]);
    }

    proptest! {
        /// Whatever refunds come, in whatever steps: nothing is reversed twice, no line gives
        /// back more than it earned, and a final cancellation gives back exactly the rest.
        #[test]
        fn reversals_add_up_to_what_was_earned(
            lines in prop::collection::vec((1i64..6, 0i64..50_000, 0i64..2_000, 0i64..300), 1..6),
            steps in prop::collection::vec((0usize..6, 0i64..4, 0i64..30_000, 0i64..20_000), 0..10),
        ) {
            let books: Vec<LineBook> = lines.iter().enumerate()
                .map(|(i, (q, net, p, c))| line(&i.to_string(), *q, *net, p + c, *c))
                .collect();
            let mut o = order(books);
            let earned = o.earned_points();
            let campaign: Points = o.lines.iter().map(|l| l.campaigns.values().sum::<Points>()).sum();
            let mut back = 0;
            let mut back_campaign = 0;
            for (i, (li, q, a, amount)) in steps.iter().enumerate() {
                let id = (li % lines.len()).to_string();
                let mut r = refund(&format!("R{i}"), &[(id.as_str(), (*q > 0).then_some(*q), (*a > 0).then_some(*a))]);
                r.amount_minor = *amount;
                let before = o.clone();
                match o.apply(&r, i % 2 == 0) {
                    Ok(rev) => {
                        prop_assert!(rev.points >= 0);
                        back += rev.points;
                        back_campaign += rev.campaigns.values().sum::<Points>();
                    }
                    Err(_) => prop_assert_eq!(&o, &before),
                }
                prop_assert!(o.lines.iter().all(|l| l.reversed_points <= l.points && l.reversed_volume <= l.volume_minor));
            }
            let mut cancel = refund(CANCEL_ID, &[]);
            cancel.full = true;
            let rest = o.apply(&cancel, true).unwrap();
            prop_assert_eq!(back + rest.points, earned);
            prop_assert_eq!(back_campaign + rest.campaigns.values().sum::<Points>(), campaign);
            prop_assert_eq!(o.reversed_points(), earned);
            prop_assert!(o.net_campaign_points().is_empty());
        }
    }
}
