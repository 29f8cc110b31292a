//! Coalition clearing, pure: from one month's per-partner counters to each partner's
//! statement, the partner x partner matrix, and the checks that must hold before anything
//! is written.
//!
//! The model is "the issuer pays": points partner A issued and a member spent at partner B
//! make A owe B their money value. Points spent where they were issued move no money.
//! A returned gift-shop claim takes its redemption back in the month of the return: the
//! statement's and the matrix's redemptions are net of returns (a cell may go below 0).
//!
//! Invariants, checked by [`clear`] (a failure stops the job):
//! 1. issued - reversed = redeemed + expired + change of outstanding member balances;
//! 2. the net amounts of all partners sum to exactly zero;
//! 3. the matrix's row sums are each issuer's redeemed points, its column sums each
//!    partner's redemptions accepted.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::events::{EntryKind, LedgerEntry};
use crate::month::Month;

/// The e-mail of one partner's statement of a closed month, a task on the notifications
/// queue (body `{"clearing_statement": {...}}`): the clearing worker sends it, the
/// notifications consumer delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementMail {
    pub programme_id: String,
    /// `YYYY-MM`.
    pub month: String,
    pub partner_id: String,
}

/// One partner's counters for one month (the sum of its shards).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerCounters {
    /// Points it issued (earned by members at it).
    pub issued: i64,
    /// Of its points, taken back by returns.
    pub reversed: i64,
    /// Of its points, expired unspent (breakage).
    pub expired: i64,
    /// Of its points, redeemed at each partner (itself included).
    pub redeemed_at: BTreeMap<String, i64>,
    /// Of its points, given back at each partner by returned gift-shop claims: redemptions
    /// taken back in the month of the return (a closed month is never rewritten). The
    /// statement's redemptions are net of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub returned_at: BTreeMap<String, i64>,
    /// Of its points, sent from one member to another, as the senders' statements and as
    /// the receivers' say: the two must agree (a transfer moves liability, never makes it).
    #[serde(default)]
    pub transferred_out: i64,
    #[serde(default)]
    pub transferred_in: i64,
}

impl PartnerCounters {
    /// Add another set of counters (zero redemptions are dropped).
    pub fn add(&mut self, c: &PartnerCounters) {
        self.issued += c.issued;
        self.reversed += c.reversed;
        self.expired += c.expired;
        self.transferred_out += c.transferred_out;
        self.transferred_in += c.transferred_in;
        for (at, p) in &c.redeemed_at {
            *self.redeemed_at.entry(at.clone()).or_default() += p;
        }
        for (at, p) in &c.returned_at {
            *self.returned_at.entry(at.clone()).or_default() += p;
        }
        self.redeemed_at.retain(|_, p| *p != 0);
        self.returned_at.retain(|_, p| *p != 0);
    }
}

/// What the month's clearing starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearingInput {
    pub programme_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Money value of a point, in minor units of the programme currency.
    pub point_value_minor: i64,
    /// The operator's fee on breakage, in percent (0 = none).
    pub breakage_fee_percent: Decimal,
    pub partners: BTreeMap<String, PartnerCounters>,
    /// Change of all members' outstanding balances over the month (pending + available +
    /// held - debt), from the accounts' own counters, not from the partners'.
    pub outstanding_change: i64,
}

/// One partner's monthly statement; values in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerStatement {
    pub partner_id: String,
    pub issued: i64,
    pub reversed: i64,
    /// Its points redeemed at itself (no money moves).
    pub redeemed_at_self: i64,
    /// Its points redeemed at other partners (it pays for these).
    pub redeemed_at_others: i64,
    /// Other partners' points redeemed at it (it is paid for these).
    pub redeemed_from_others: i64,
    /// Its points that expired: its liability lapses (breakage).
    pub expired: i64,
    pub issued_value: i64,
    pub reversed_value: i64,
    pub redeemed_at_self_value: i64,
    pub redeemed_at_others_value: i64,
    pub redeemed_from_others_value: i64,
    pub expired_value: i64,
    /// The operator's fee on its breakage (rounded down to a minor unit).
    pub breakage_fee: i64,
    /// redeemed_from_others_value - redeemed_at_others_value: > 0 it is paid, < 0 it pays.
    pub net: i64,
}

impl PartnerStatement {
    /// The point columns in statement order: issued, reversed, redeemed at self, at others,
    /// from others, expired.
    pub fn points(&self) -> [i64; 6] {
        [
            self.issued,
            self.reversed,
            self.redeemed_at_self,
            self.redeemed_at_others,
            self.redeemed_from_others,
            self.expired,
        ]
    }

    /// Their money values, in the same order.
    pub fn values(&self) -> [i64; 6] {
        [
            self.issued_value,
            self.reversed_value,
            self.redeemed_at_self_value,
            self.redeemed_at_others_value,
            self.redeemed_from_others_value,
            self.expired_value,
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearing {
    pub programme_id: String,
    pub month: String,
    pub point_value_minor: i64,
    pub statements: Vec<PartnerStatement>,
    /// (issuer, redeemed at) -> points.
    pub matrix: BTreeMap<String, BTreeMap<String, i64>>,
    pub outstanding_change: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConservationError {
    #[error(
        "ledger identity broken: issued {issued} - reversed {reversed} != redeemed {redeemed} \
         + expired {expired} + outstanding change {outstanding}"
    )]
    Identity {
        issued: i64,
        reversed: i64,
        redeemed: i64,
        expired: i64,
        outstanding: i64,
    },
    #[error("{0}'s points: sent {1} and received {2} by members differ")]
    Transfers(String, i64, i64),
    #[error("net amounts sum to {0}, not 0")]
    NetNotZero(i64),
    #[error("matrix and statements disagree for {0}")]
    Matrix(String),
    #[error("a counter overflowed")]
    Overflow,
    #[error("negative counter for {0}")]
    Negative(String),
}

fn value(points: i64, point_value_minor: i64) -> Result<i64, ConservationError> {
    points
        .checked_mul(point_value_minor)
        .ok_or(ConservationError::Overflow)
}

/// Clear one month. Every partner that appears anywhere (as issuer or where points were
/// spent) gets a statement, in partner id order.
pub fn clear(input: &ClearingInput) -> Result<Clearing, ConservationError> {
    let pv = input.point_value_minor;
    let mut ids: BTreeSet<String> = input.partners.keys().cloned().collect();
    for c in input.partners.values() {
        ids.extend(c.redeemed_at.keys().cloned());
        ids.extend(c.returned_at.keys().cloned());
    }
    // Redemptions net of returns: a cell may be below 0 in a month whose returns exceed
    // what was spent (the partner where they were spent pays the issuer back).
    let mut matrix: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (issuer, c) in &input.partners {
        let mut row: BTreeMap<String, i64> = BTreeMap::new();
        for (at, points) in &c.redeemed_at {
            *row.entry(at.clone()).or_default() += points;
        }
        for (at, points) in &c.returned_at {
            *row.entry(at.clone()).or_default() -= points;
        }
        row.retain(|_, p| *p != 0);
        if !row.is_empty() {
            matrix.insert(issuer.clone(), row);
        }
    }
    let empty = PartnerCounters::default();
    let mut statements = Vec::new();
    for id in &ids {
        let c = input.partners.get(id).unwrap_or(&empty);
        if c.issued < 0
            || c.reversed < 0
            || c.expired < 0
            || c.redeemed_at
                .values()
                .chain(c.returned_at.values())
                .any(|p| *p < 0)
        {
            return Err(ConservationError::Negative(id.clone()));
        }
        if c.transferred_out != c.transferred_in {
            return Err(ConservationError::Transfers(
                id.clone(),
                c.transferred_out,
                c.transferred_in,
            ));
        }
        let empty_row = BTreeMap::new();
        let row = matrix.get(id).unwrap_or(&empty_row);
        let at_self = row.get(id).copied().unwrap_or(0);
        let mut at_others = 0i64;
        for (at, p) in row {
            if at != id {
                at_others = at_others
                    .checked_add(*p)
                    .ok_or(ConservationError::Overflow)?;
            }
        }
        let mut from_others = 0i64;
        for (issuer, row) in &matrix {
            if issuer != id {
                from_others = from_others
                    .checked_add(row.get(id).copied().unwrap_or(0))
                    .ok_or(ConservationError::Overflow)?;
            }
        }
        let expired_value = value(c.expired, pv)?;
        let fee = (Decimal::from(expired_value) * input.breakage_fee_percent
            / Decimal::ONE_HUNDRED)
            .floor()
            .to_i64()
            .ok_or(ConservationError::Overflow)?;
        let (from_value, others_value) = (value(from_others, pv)?, value(at_others, pv)?);
        statements.push(PartnerStatement {
            partner_id: id.clone(),
            issued: c.issued,
            reversed: c.reversed,
            redeemed_at_self: at_self,
            redeemed_at_others: at_others,
            redeemed_from_others: from_others,
            expired: c.expired,
            issued_value: value(c.issued, pv)?,
            reversed_value: value(c.reversed, pv)?,
            redeemed_at_self_value: value(at_self, pv)?,
            redeemed_at_others_value: others_value,
            redeemed_from_others_value: from_value,
            expired_value,
            breakage_fee: fee,
            net: from_value - others_value,
        });
    }
    let clearing = Clearing {
        programme_id: input.programme_id.clone(),
        month: input.month.clone(),
        point_value_minor: pv,
        statements,
        matrix,
        outstanding_change: input.outstanding_change,
    };
    check(&clearing)?;
    Ok(clearing)
}

/// The three invariants, on a finished clearing (also run on a stored one when re-read).
pub fn check(c: &Clearing) -> Result<(), ConservationError> {
    let sum = |f: fn(&PartnerStatement) -> i64| c.statements.iter().map(f).sum::<i64>();
    let (issued, reversed, expired) = (sum(|s| s.issued), sum(|s| s.reversed), sum(|s| s.expired));
    let redeemed = sum(|s| s.redeemed_at_self + s.redeemed_at_others);
    if issued - reversed != redeemed + expired + c.outstanding_change {
        return Err(ConservationError::Identity {
            issued,
            reversed,
            redeemed,
            expired,
            outstanding: c.outstanding_change,
        });
    }
    let net = sum(|s| s.net);
    if net != 0 {
        return Err(ConservationError::NetNotZero(net));
    }
    for s in &c.statements {
        let row: i64 = c.matrix.get(&s.partner_id).map_or(0, |r| r.values().sum());
        let column: i64 = c
            .matrix
            .values()
            .map(|r| r.get(&s.partner_id).copied().unwrap_or(0))
            .sum();
        if row != s.redeemed_at_self + s.redeemed_at_others
            || column != s.redeemed_at_self + s.redeemed_from_others
        {
            return Err(ConservationError::Matrix(s.partner_id.clone()));
        }
    }
    Ok(())
}

/// What statement entries add to the clearing counters: (month, issuer) -> counters. The
/// month is the entry's, in the programme's time zone. Every write path derives its counter
/// updates from its entries with this, and `bonus audit` recomputes them with it from all
/// entries.
pub fn movements(
    entries: &[LedgerEntry],
    time_zone: chrono_tz::Tz,
) -> BTreeMap<(String, String), PartnerCounters> {
    let mut out: BTreeMap<(String, String), PartnerCounters> = BTreeMap::new();
    for e in entries {
        let month = Month::of(e.at, time_zone).to_string();
        for (issuer, points) in &e.issuers {
            if e.kind == EntryKind::Merge && issuer.starts_with('_') {
                continue; // a moved debt: no partner's points move with it
            }
            let c = out.entry((month.clone(), issuer.clone())).or_default();
            match e.kind {
                EntryKind::Earn => c.issued += points,
                EntryKind::Reversal | EntryKind::Debt => c.reversed += points,
                // A transfer's fee is breakage of the points' issuer, as expiry is.
                EntryKind::Expire | EntryKind::TransferFee => c.expired += points,
                EntryKind::TransferOut => c.transferred_out += points,
                EntryKind::TransferIn => c.transferred_in += points,
                // A merge moves points like a transfer.
                EntryKind::Merge if e.points < 0 => c.transferred_out += points,
                EntryKind::Merge => c.transferred_in += points,
                // A credit is issued by the adjusting partner; a debit reverses the issuers'.
                EntryKind::Adjustment if e.points > 0 => c.issued += points,
                EntryKind::Adjustment => c.reversed += points,
                EntryKind::Redeem => {
                    let at = e.partner_id.clone().unwrap_or_default();
                    *c.redeemed_at.entry(at).or_default() += points;
                }
                EntryKind::ClaimReturn => {
                    let at = e.partner_id.clone().unwrap_or_default();
                    *c.returned_at.entry(at).or_default() += points;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counters(issued: i64, reversed: i64, expired: i64, at: &[(&str, i64)]) -> PartnerCounters {
        PartnerCounters {
            issued,
            reversed,
            expired,
            redeemed_at: at.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..PartnerCounters::default()
        }
    }

    #[test]
    fn the_issuer_pays_the_partner_where_its_points_were_spent() {
        // Bakery issued 1,500 (100 back by a return); 1,000 spent at the cafe, 200 at
        // itself; 50 expired. Cafe issued 300; 100 spent at the bakery. 1 point = 1 cent.
        let input = ClearingInput {
            programme_id: "bonvito".into(),
            month: "2026-11".into(),
            point_value_minor: 1,
            breakage_fee_percent: Decimal::new(10, 0),
            partners: [
                (
                    "bakery".to_string(),
                    counters(1500, 100, 50, &[("cafe", 1000), ("bakery", 200)]),
                ),
                ("cafe".to_string(), counters(300, 0, 0, &[("bakery", 100)])),
            ]
            .into_iter()
            .collect(),
            // 1,800 - 100 - 1,300 - 50 = 350 still in members' balances.
            outstanding_change: 350,
        };
        let c = clear(&input).unwrap();
        let bakery = &c.statements[0];
        assert_eq!(
            (
                bakery.redeemed_at_self,
                bakery.redeemed_at_others,
                bakery.redeemed_from_others
            ),
            (200, 1000, 100)
        );
        assert_eq!(
            (bakery.net, bakery.expired_value, bakery.breakage_fee),
            (-900, 50, 5)
        );
        let cafe = &c.statements[1];
        assert_eq!(
            (cafe.redeemed_from_others, cafe.redeemed_at_others, cafe.net),
            (1000, 100, 900)
        );
        assert_eq!(c.matrix["bakery"]["cafe"], 1000);
    }

    #[test]
    fn a_month_of_returns_pays_the_issuer_back() {
        // November: 300 of the bakery's points, spent at the cafe in October, come back
        // with a returned gift; 100 more are spent there. The cafe pays the bakery 200.
        let mut bakery = counters(0, 0, 0, &[("cafe", 100)]);
        bakery.returned_at.insert("cafe".into(), 300);
        let input = ClearingInput {
            programme_id: "bonvito".into(),
            month: "2026-11".into(),
            point_value_minor: 1,
            breakage_fee_percent: Decimal::ZERO,
            partners: [("bakery".to_string(), bakery)].into_iter().collect(),
            outstanding_change: 200,
        };
        let c = clear(&input).unwrap();
        assert_eq!(c.matrix["bakery"]["cafe"], -200);
        let (b, cafe) = (&c.statements[0], &c.statements[1]);
        assert_eq!((b.redeemed_at_others, b.net), (-200, 200));
        assert_eq!((cafe.redeemed_from_others, cafe.net), (-200, -200));
        // A negative counter is still refused: only the net may go below 0.
        let mut broken = input.clone();
        broken
            .partners
            .get_mut("bakery")
            .unwrap()
            .returned_at
            .insert("cafe".into(), -1);
        assert!(matches!(
            clear(&broken),
            Err(ConservationError::Negative(_))
        ));
    }

    #[test]
    fn a_broken_identity_stops_the_clearing() {
        let input = ClearingInput {
            programme_id: "p".into(),
            month: "2026-11".into(),
            point_value_minor: 1,
            breakage_fee_percent: Decimal::ZERO,
            partners: [("a".to_string(), counters(100, 0, 0, &[("a", 10)]))]
                .into_iter()
                .collect(),
            outstanding_change: 80, // should be 90
        };
        assert!(matches!(
            clear(&input),
            Err(ConservationError::Identity { .. })
        ));
    }

    #[test]
    fn entries_move_counters_by_month_in_the_programme_time_zone_and_issuer() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let e =
            |t: &str, kind, points, partner: Option<&str>, issuers: &[(&str, i64)]| LedgerEntry {
                seq: 0,
                at: at(t),
                kind,
                points,
                reason: String::new(),
                partner_id: partner.map(str::to_string),
                order_id: None,
                lot_id: None,
                event_id: String::new(),
                counterparty: None,
                issuers: issuers.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            };
        let entries = [
            // 31 Oct 23:30 in Amsterdam is still October there.
            e(
                "2026-10-31T22:30:00Z",
                EntryKind::Earn,
                100,
                Some("bakery"),
                &[("bakery", 100)],
            ),
            e(
                "2026-10-31T23:30:00Z",
                EntryKind::Earn,
                50,
                Some("cafe"),
                &[("cafe", 50)],
            ),
            e(
                "2026-11-02T10:00:00Z",
                EntryKind::Redeem,
                -120,
                Some("cafe"),
                &[("bakery", 100), ("cafe", 20)],
            ),
            e(
                "2026-11-03T10:00:00Z",
                EntryKind::Reversal,
                -10,
                Some("cafe"),
                &[("cafe", 10)],
            ),
            e(
                "2026-11-03T10:00:00Z",
                EntryKind::Debt,
                -5,
                Some("cafe"),
                &[("cafe", 5)],
            ),
            e(
                "2026-11-30T23:00:00Z",
                EntryKind::Expire,
                -7,
                None,
                &[("cafe", 7)],
            ),
        ];
        let m = movements(&entries, chrono_tz::Europe::Amsterdam);
        let get = |month: &str, p: &str| m[&(month.to_string(), p.to_string())].clone();
        assert_eq!(get("2026-10", "bakery").issued, 100);
        assert_eq!(get("2026-11", "cafe").issued, 50);
        assert_eq!(get("2026-11", "bakery").redeemed_at["cafe"], 100);
        let cafe = get("2026-11", "cafe");
        assert_eq!((cafe.redeemed_at["cafe"], cafe.reversed), (20, 15));
        // 30 Nov 23:00 UTC is 1 Dec in Amsterdam.
        assert_eq!(get("2026-12", "cafe").expired, 7);
        assert_eq!(m.len(), 4);
    }

    proptest! {
        #[test]
        fn nets_sum_to_zero_and_the_matrix_agrees(
            spend in proptest::collection::vec((0usize..5, 0usize..5, 0i64..100_000), 0..40),
            issued_extra in proptest::collection::vec(0i64..100_000, 5),
            point_value in 1i64..100,
        ) {
            let ids = ["a", "b", "c", "d", "e"];
            let mut partners: BTreeMap<String, PartnerCounters> = BTreeMap::new();
            for (issuer, at, points) in &spend {
                let c = partners.entry(ids[*issuer].to_string()).or_default();
                *c.redeemed_at.entry(ids[*at].to_string()).or_default() += points;
                c.issued += points;
            }
            let mut outstanding = 0;
            for (i, extra) in issued_extra.iter().enumerate() {
                partners.entry(ids[i].to_string()).or_default().issued += extra;
                outstanding += extra;
            }
            let input = ClearingInput {
                programme_id: "p".into(),
                month: "2026-11".into(),
                point_value_minor: point_value,
                breakage_fee_percent: Decimal::ZERO,
                partners,
                outstanding_change: outstanding,
            };
            let c = clear(&input).unwrap();
            prop_assert_eq!(c.statements.iter().map(|s| s.net).sum::<i64>(), 0);
        }
    }
}
