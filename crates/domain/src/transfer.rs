//! Points that move between two members of one programme (P2P transfers).
//!
//! A transfer is a hold on the sender's available points (oldest expiry first, any issuer)
//! that is captured into the receiver in one step: the sender's lots give up their points,
//! and the receiver gets new lots with the **same last valid day and the same issuer**, so
//! coalition clearing still charges the partner that issued them wherever they are spent.
//! The optional fee is the last part of the hold (latest expiry): it leaves the sender and
//! reaches nobody, and counts as breakage of its issuer (as expired points do).
//!
//! Invariants (unit and property tests below):
//!
//! ```text
//! sender loses points + fee; receiver gains points; nothing else changes
//! received, by (issuer, last valid day) = taken from the sender, less the fee
//! transfers out = transfers in, per issuer and month (clearing's check)
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountError};
use crate::error::Error;
use crate::events::{DomainEvent, EntryKind, EventKind, LedgerEntry};
use crate::hold::{settle, Hold, HoldStatus, Settlement};
use crate::lot::{start_of_day, Lot};
use crate::money::Points;
use crate::programme::Programme;

/// The partner id of a transfer's hold: it may take any lot (a transfer is not a spend at
/// a partner, so a closed programme's "spent only where issued" does not apply).
pub const TRANSFER_PARTNER: &str = "_transfer";

/// A programme's transfer settings (`transfers:` in the config file). Off unless enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSettings {
    #[serde(default)]
    pub enabled: bool,
    /// Smallest transfer, in points.
    #[serde(default = "default_min")]
    pub min_points: Points,
    /// Largest transfer, in points.
    #[serde(default = "default_max")]
    pub max_points: Points,
    /// Points one member may send per local day (programme time zone), fees not counted.
    #[serde(default = "default_daily")]
    pub daily_limit: Points,
    /// Fee in percent of the points sent, rounded down, paid by the sender on top.
    #[serde(default, with = "rust_decimal::serde::str")]
    pub fee_percent: Decimal,
}

fn default_min() -> Points {
    100
}
fn default_max() -> Points {
    100_000
}
fn default_daily() -> Points {
    100_000
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            enabled: false,
            min_points: default_min(),
            max_points: default_max(),
            daily_limit: default_daily(),
            fee_percent: Decimal::ZERO,
        }
    }
}

/// What a transfer of `points` costs the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// What the receiver gets.
    pub points: Points,
    /// Kept by the operator (breakage).
    pub fee: Points,
    /// points + fee: what the sender's hold reserves.
    pub total: Points,
}

/// The fee of a transfer: `fee_percent` of the points, rounded down (2% of 1,500 = 30).
pub fn fee(settings: &TransferSettings, points: Points) -> Points {
    let exact = Decimal::from(points) * settings.fee_percent / Decimal::ONE_HUNDRED;
    i64::try_from(exact.floor()).unwrap_or(Points::MAX)
}

/// Check a transfer against the programme's settings and the sender's account, and price
/// it. `sent_today`: points the sender already sent this local day.
pub fn quote(
    settings: &TransferSettings,
    sender: &Account,
    receiver_id: &str,
    points: Points,
    sent_today: Points,
) -> Result<Quote, Error> {
    if !settings.enabled {
        return Err(Error::conflict(
            "transfers_disabled",
            "this programme does not allow transfers between members",
        ));
    }
    if points < settings.min_points || points > settings.max_points {
        return Err(Error::invalid(
            "invalid_points",
            format!(
                "points: {} to {} per transfer",
                settings.min_points, settings.max_points
            ),
        ));
    }
    if receiver_id == sender.member_id {
        return Err(Error::invalid(
            "invalid_recipient",
            "a member cannot send points to themself",
        ));
    }
    if sender.debt > 0 {
        return Err(Error::conflict(
            "member_has_debt",
            format!(
                "the member owes {} points from returns and cannot send points until they are paid off",
                sender.debt
            ),
        ));
    }
    if sent_today.saturating_add(points) > settings.daily_limit {
        return Err(Error::conflict(
            "daily_transfer_limit",
            format!(
                "{} points may be sent a day; {} were sent today",
                settings.daily_limit, sent_today
            ),
        ));
    }
    let fee = fee(settings, points);
    Ok(Quote {
        points,
        fee,
        total: points + fee,
    })
}

/// The id of a transfer: the id of its hold (sender and the client's reference).
pub fn transfer_id(sender_id: &str, reference: &str) -> String {
    crate::hold::hold_id(TRANSFER_PARTNER, sender_id, &hold_reference(reference))
}

/// The reference of a transfer's hold.
pub fn hold_reference(reference: &str) -> String {
    format!("transfer/{reference}")
}

/// A name for the other party on a statement: the display name the member chose, or their
/// id masked (`M-1001` -> `M-•••01`). Never an e-mail address or a phone number.
pub fn counterparty_label(member_id: &str, display_name: Option<&str>) -> String {
    if let Some(name) = display_name.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    let chars: Vec<char> = member_id.chars().collect();
    if chars.len() <= 4 {
        return "•••".to_string();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}•••{tail}")
}

/// Points that moved with their last valid day and issuer: one lot of the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedPoints {
    pub issuer: String,
    pub expires_on: NaiveDate,
    pub expires_at: DateTime<Utc>,
    pub points: Points,
    /// What the receiver's lot kept after paying off the receiver's debt.
    pub remaining: Points,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    Completed,
}

/// A completed transfer, as stored (one item, keyed by its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub transfer_id: String,
    pub programme_id: String,
    pub from_member: String,
    pub to_member: String,
    pub reference: String,
    pub points: Points,
    pub fee: Points,
    pub status: TransferStatus,
    pub at: DateTime<Utc>,
    /// What the receiver got, by issuer and last valid day.
    pub moved: Vec<MovedPoints>,
    /// How the statements name each side (display name or masked id).
    pub from_label: String,
    pub to_label: String,
    /// Who asked: a partner id, or `member` (the member site).
    pub initiated_by: String,
    /// Of the request (the same reference with another request is a conflict).
    pub request_sha256: String,
    /// While the receiver's lots (more than one transaction holds) are still being written:
    /// how many of `moved` are written. The accounts already have it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited_lots: Option<usize>,
}

impl Transfer {
    /// The receiver's lot for `moved[i]`: available from the transfer on, with the sender's
    /// last valid day and issuer. Its id is derived from the transfer, so it is written once.
    pub fn receiver_lot(&self, i: usize) -> Option<Lot> {
        let m = self.moved.get(i)?;
        let order_id = format!("transfer-{}-{}", self.transfer_id, m.expires_on);
        Some(Lot {
            lot_id: format!("{}:{order_id}", m.issuer),
            programme_id: self.programme_id.clone(),
            member_id: self.to_member.clone(),
            partner_id: m.issuer.clone(),
            order_id,
            points: m.points,
            remaining: m.remaining,
            held: 0,
            earned_at: self.at,
            available_at: self.at,
            expires_on: m.expires_on,
            expires_at: m.expires_at,
        })
    }

    /// All the receiver's lots, in `moved` order.
    pub fn receiver_lots(&self) -> Vec<Lot> {
        (0..self.moved.len())
            .filter_map(|i| self.receiver_lot(i))
            .collect()
    }
}

/// What a transfer writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferPlan {
    /// The sender's side: the hold captured, its lots' changes, the account.
    pub sender: Settlement,
    /// The sender's statement: the transfer, and the fee if any.
    pub sender_entries: Vec<LedgerEntry>,
    pub receiver: Account,
    /// The receiver's new lots, one per (issuer, last valid day).
    pub receiver_lots: Vec<Lot>,
    pub receiver_entry: LedgerEntry,
    pub receiver_outstanding_change: Points,
    pub transfer: Transfer,
    /// PointsSent (sender) and PointsReceived (receiver).
    pub events: Vec<DomainEvent>,
}

/// The parts of a transfer not taken from the hold.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub reference: String,
    pub quote: Quote,
    pub from_label: String,
    pub to_label: String,
    pub initiated_by: String,
    pub request_sha256: String,
}

/// Capture the sender's hold into the receiver. The hold (open, reserving `quote.total`
/// on the sender) is taken in its order, oldest expiry first: the first `points` go to the
/// receiver, the last `fee` are the fee.
pub fn plan_transfer(
    programme: &Programme,
    hold: &Hold,
    sender: &Account,
    receiver: &Account,
    req: &TransferRequest,
    now: DateTime<Utc>,
) -> Result<TransferPlan, AccountError> {
    let q = req.quote;
    if hold.points != q.total || q.points <= 0 || q.fee < 0 {
        return Err(AccountError::Invariant(
            "the transfer's hold does not match its quote".into(),
        ));
    }
    if receiver.member_id == sender.member_id || receiver.programme_id != sender.programme_id {
        return Err(AccountError::Invariant(
            "not a transfer between two members".into(),
        ));
    }
    let mut s = settle(hold, sender, &[], q.total, HoldStatus::Captured, now)?;
    // Split what was captured into what the receiver gets and the fee, in the hold's order.
    let mut moved: BTreeMap<(NaiveDate, String), Points> = BTreeMap::new();
    let mut fee_by_issuer: BTreeMap<String, Points> = BTreeMap::new();
    let mut to_receiver = q.points;
    for l in &s.hold.lots {
        let expires_on = l
            .expires_on
            .ok_or_else(|| AccountError::Invariant(format!("lot {} has no expiry", l.lot_id)))?;
        let give = to_receiver.min(l.captured);
        to_receiver -= give;
        if give > 0 {
            *moved.entry((expires_on, l.issuer.clone())).or_default() += give;
        }
        if l.captured > give {
            *fee_by_issuer.entry(l.issuer.clone()).or_default() += l.captured - give;
        }
    }
    let transfer_id = hold.hold_id.clone();
    let sent_by_issuer: BTreeMap<String, Points> =
        moved.iter().fold(BTreeMap::new(), |mut m, ((_, i), p)| {
            *m.entry(i.clone()).or_default() += p;
            m
        });

    // The sender's statement: settle numbered one entry; the fee takes the next number.
    let first_seq = s.account.entry_seq;
    let mut sender_entries = vec![LedgerEntry {
        seq: first_seq,
        at: now,
        kind: EntryKind::TransferOut,
        points: -q.points,
        reason: format!("sent to {}", req.to_label),
        partner_id: None,
        order_id: Some(req.reference.clone()),
        lot_id: None,
        event_id: format!("sent:{}:{transfer_id}", programme.id),
        counterparty: Some(req.to_label.clone()),
        issuers: sent_by_issuer.clone(),
    }];
    if q.fee > 0 {
        s.account.entry_seq += 1;
        sender_entries.push(LedgerEntry {
            seq: s.account.entry_seq,
            at: now,
            kind: EntryKind::TransferFee,
            points: -q.fee,
            reason: format!(
                "transfer fee ({}%)",
                programme.transfers.fee_percent.normalize()
            ),
            partner_id: None,
            order_id: Some(req.reference.clone()),
            lot_id: None,
            event_id: format!("fee:{}:{transfer_id}", programme.id),
            counterparty: Some(req.to_label.clone()),
            issuers: fee_by_issuer,
        });
    }
    s.entries.clear();
    s.events.clear();

    // The receiver: new lots, available now, with the sender's last valid days and issuers.
    let mut next = receiver.clone();
    next.fold_due(now);
    next.version += 1;
    let mut debt_left = next.debt;
    let mut moved_points = Vec::new();
    for ((expires_on, issuer), points) in &moved {
        // Debt from the receiver's returns is paid off first, as by any accrual.
        let repaid = debt_left.min(*points);
        debt_left -= repaid;
        moved_points.push(MovedPoints {
            issuer: issuer.clone(),
            expires_on: *expires_on,
            expires_at: start_of_day(
                programme.time_zone,
                expires_on.succ_opt().unwrap_or(NaiveDate::MAX),
            ),
            points: *points,
            remaining: points - repaid,
        });
    }
    next.debt = debt_left;
    next.entry_seq += 1;
    let repaid = receiver.debt - debt_left;
    let receiver_entry = LedgerEntry {
        seq: next.entry_seq,
        at: now,
        kind: EntryKind::TransferIn,
        points: q.points,
        reason: if repaid > 0 {
            format!("from {} ({repaid} paid off debt)", req.from_label)
        } else {
            format!("from {}", req.from_label)
        },
        partner_id: None,
        order_id: Some(req.reference.clone()),
        lot_id: None,
        event_id: format!("received:{}:{transfer_id}", programme.id),
        counterparty: Some(req.from_label.clone()),
        issuers: sent_by_issuer,
    };
    let transfer = Transfer {
        transfer_id: transfer_id.clone(),
        programme_id: programme.id.clone(),
        from_member: sender.member_id.clone(),
        to_member: receiver.member_id.clone(),
        reference: req.reference.clone(),
        points: q.points,
        fee: q.fee,
        status: TransferStatus::Completed,
        at: now,
        moved: moved_points,
        from_label: req.from_label.clone(),
        to_label: req.to_label.clone(),
        initiated_by: req.initiated_by.clone(),
        request_sha256: req.request_sha256.clone(),
        credited_lots: None,
    };
    let receiver_lots = transfer.receiver_lots();
    for lot in &receiver_lots {
        next.book_received(lot)?;
    }
    next.check()?;
    s.account.check()?;
    s.outstanding_change = s.account.outstanding() - sender.outstanding();
    let events = vec![
        DomainEvent {
            event_id: format!("sent:{}:{transfer_id}", programme.id),
            occurred_at: now,
            programme_id: programme.id.clone(),
            member_id: sender.member_id.clone(),
            kind: EventKind::PointsSent {
                transfer_id: transfer_id.clone(),
                points: q.points,
                fee: q.fee,
                to: req.to_label.clone(),
            },
        },
        DomainEvent {
            event_id: format!("received:{}:{transfer_id}", programme.id),
            occurred_at: now,
            programme_id: programme.id.clone(),
            member_id: receiver.member_id.clone(),
            kind: EventKind::PointsReceived {
                transfer_id: transfer_id.clone(),
                points: q.points,
                from: req.from_label.clone(),
            },
        },
    ];
    Ok(TransferPlan {
        receiver_outstanding_change: next.outstanding() - receiver.outstanding(),
        sender: s,
        sender_entries,
        receiver: next,
        receiver_lots,
        receiver_entry,
        transfer,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::{plan_hold, HoldRequest};
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;
    use chrono::Duration;
    use proptest::prelude::*;

    fn programme(fee: &str) -> Programme {
        let mut p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Coalition,
            Currency::parse("EUR").unwrap(),
        );
        p.min_balance_to_redeem = 0;
        p.transfers = TransferSettings {
            enabled: true,
            min_points: 1,
            max_points: 1_000_000,
            daily_limit: 1_000_000,
            fee_percent: fee.parse().unwrap(),
        };
        p
    }

    use crate::testing::t0;
    fn now() -> DateTime<Utc> {
        t0() + Duration::days(40)
    }

    fn account(p: &Programme, id: &str, lots: &[(&str, Points, i64)]) -> (Account, Vec<Lot>) {
        crate::testing::earned(p, id, &format!("O-{id}-"), lots, now())
    }

    /// The hold as the store leaves it after reserving it.
    fn reserved(p: &Programme, a: &mut Account, lots: &[Lot], total: Points) -> Hold {
        let req = HoldRequest {
            points: total,
            reference: hold_reference("r1"),
            minutes: None,
            request_sha256: String::new(),
            reward: None,
        };
        let hold = plan_hold(p, a, lots, TRANSFER_PARTNER, &req, now()).unwrap();
        a.available -= total;
        a.held += total;
        a.open_holds.insert(
            hold.hold_id.clone(),
            crate::hold::OpenHold {
                points: total,
                expires_at: hold.expires_at,
            },
        );
        hold
    }

    fn request(q: Quote) -> TransferRequest {
        TransferRequest {
            reference: "r1".into(),
            quote: q,
            from_label: "Anna".into(),
            to_label: "M-•••02".into(),
            initiated_by: "member".into(),
            request_sha256: "sha".into(),
        }
    }

    #[test]
    fn a_transfer_of_1500_with_a_2_percent_fee_costs_1530_and_keeps_expiry_and_issuer() {
        let p = programme("2");
        let (mut a, lots) = account(&p, "M-01", &[("bakery", 1_000, 0), ("cafe", 1_000, 3)]);
        let (b, _) = account(&p, "M-02", &[]);
        let q = quote(&p.transfers, &a, "M-02", 1_500, 0).unwrap();
        assert_eq!(
            q,
            Quote {
                points: 1_500,
                fee: 30,
                total: 1_530
            }
        );
        let hold = reserved(&p, &mut a, &lots, q.total);
        let plan = plan_transfer(&p, &hold, &a, &b, &request(q), now()).unwrap();
        assert_eq!(plan.sender.account.available, 2_000 - 1_530);
        assert_eq!(plan.receiver.available, 1_500);
        // The bakery's 1,000 (oldest) and 500 of the cafe's move; the fee is the cafe's.
        let moved: Vec<(&str, Points, NaiveDate)> = plan
            .receiver_lots
            .iter()
            .map(|l| (l.partner_id.as_str(), l.points, l.expires_on))
            .collect();
        assert_eq!(
            moved,
            vec![
                ("bakery", 1_000, lots[0].expires_on),
                ("cafe", 500, lots[1].expires_on)
            ]
        );
        let kinds: Vec<(EntryKind, Points)> = plan
            .sender_entries
            .iter()
            .map(|e| (e.kind, e.points))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EntryKind::TransferOut, -1_500),
                (EntryKind::TransferFee, -30)
            ]
        );
        assert_eq!(
            plan.sender_entries[1].issuers,
            [("cafe".to_string(), 30)].into()
        );
        assert_eq!(plan.receiver_entry.points, 1_500);
        assert_eq!(plan.receiver_entry.reason, "from Anna");
        assert_eq!(plan.sender.outstanding_change, -1_530);
        assert_eq!(plan.receiver_outstanding_change, 1_500);
        assert_eq!(plan.sender.account.entry_seq, a.entry_seq + 2);
    }

    #[test]
    fn the_rules_refuse_with_their_codes() {
        let p = programme("0");
        let (mut a, _) = account(&p, "M-01", &[("bakery", 5_000, 0)]);
        let code = |r: Result<Quote, Error>| r.unwrap_err().code;
        let mut off = p.transfers.clone();
        off.enabled = false;
        assert_eq!(code(quote(&off, &a, "M-02", 500, 0)), "transfers_disabled");
        assert_eq!(
            code(quote(&p.transfers, &a, "M-01", 500, 0)),
            "invalid_recipient"
        );
        assert_eq!(
            code(quote(&p.transfers, &a, "M-02", 0, 0)),
            "invalid_points"
        );
        let mut limited = p.transfers.clone();
        limited.daily_limit = 1_000;
        assert_eq!(
            code(quote(&limited, &a, "M-02", 600, 500)),
            "daily_transfer_limit"
        );
        assert!(quote(&limited, &a, "M-02", 500, 500).is_ok());
        a.debt = 1;
        assert_eq!(
            code(quote(&p.transfers, &a, "M-02", 500, 0)),
            "member_has_debt"
        );
    }

    #[test]
    fn a_receivers_debt_is_paid_off_first() {
        let p = programme("0");
        let (mut a, lots) = account(&p, "M-01", &[("bakery", 1_000, 0)]);
        let (mut b, _) = account(&p, "M-02", &[]);
        b.debt = 300;
        let q = quote(&p.transfers, &a, "M-02", 1_000, 0).unwrap();
        let hold = reserved(&p, &mut a, &lots, q.total);
        let plan = plan_transfer(&p, &hold, &a, &b, &request(q), now()).unwrap();
        assert_eq!((plan.receiver.available, plan.receiver.debt), (700, 0));
        assert_eq!(plan.receiver_entry.reason, "from Anna (300 paid off debt)");
        // Outstanding is unexpired minus debt: the whole 1,000 counts.
        assert_eq!(plan.receiver_outstanding_change, 1_000);
    }

    #[test]
    fn labels_never_show_more_than_the_ends_of_an_id() {
        assert_eq!(counterparty_label("M-1001", None), "M-•••01");
        assert_eq!(counterparty_label("M-1001", Some("  ")), "M-•••01");
        assert_eq!(counterparty_label("M-1001", Some("Anna B.")), "Anna B.");
        assert_eq!(counterparty_label("abc", None), "•••");
    }

    proptest! {
        /// Whatever the lots and the fee: the sender loses points + fee, the receiver gains
        /// the points, by issuer and day exactly what the sender's lots gave.
        #[test]
        fn transfers_conserve_points_by_issuer_and_day(
            spec in prop::collection::vec((0usize..3, 1i64..3_000, 0i64..25), 1..8),
            want in 1i64..10_000,
            fee_tenths in 0i64..100,
        ) {
            let p = programme(&format!("{}.{}", fee_tenths / 10, fee_tenths % 10));
            let lots_spec: Vec<(&str, Points, i64)> =
                spec.iter().map(|(i, pts, d)| (["a", "b", "c"][*i], *pts, *d)).collect();
            let (mut a, lots) = account(&p, "M-01", &lots_spec);
            let (b, _) = account(&p, "M-02", &[]);
            let q = quote(&p.transfers, &a, "M-02", want, 0).unwrap();
            if q.total > a.available {
                return Ok(());
            }
            let before = a.outstanding();
            let hold = reserved(&p, &mut a, &lots, q.total);
            let plan = plan_transfer(&p, &hold, &a, &b, &request(q), now()).unwrap();
            prop_assert_eq!(plan.sender.account.outstanding(), before - q.total);
            prop_assert_eq!(plan.receiver.outstanding(), q.points);
            let got: Points = plan.receiver_lots.iter().map(|l| l.remaining).sum();
            prop_assert_eq!(got, q.points);
            // What each issuer gave = what the receiver holds of it + its share of the fee.
            let mut given: BTreeMap<String, Points> = BTreeMap::new();
            for l in &plan.sender.hold.lots {
                *given.entry(l.issuer.clone()).or_default() += l.captured;
            }
            let mut back: BTreeMap<String, Points> = BTreeMap::new();
            for e in plan.sender_entries.iter() {
                for (i, p) in &e.issuers {
                    *back.entry(i.clone()).or_default() += p;
                }
            }
            prop_assert_eq!(given, back);
            for l in &plan.receiver_lots {
                prop_assert!(lots.iter().any(|s| s.expires_on == l.expires_on && s.partner_id == l.partner_id));
            }
        }
    }
}
