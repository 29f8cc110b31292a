//! Adjustments: customer service credits or debits a member's points with a reason code and
//! a note, idempotent on the caller's reference.
//!
//! - A credit is a new lot issued by the adjusting partner (it pays for those points in
//!   clearing, as for any it issues), available at once, expiring as earned points do; it
//!   pays off a debt first, as an order does.
//! - A debit takes unexpired points that no hold reserves, the adjusting partner's own lots
//!   first, then those expiring soonest; each taken lot's issuer has those points reversed.
//!   It never goes below zero unless the reason allows a debt (`chargeback`, `fraud`): then
//!   what is missing becomes a debt, as after a refund of points already spent.
//! - Above the programme's `adjustments.approval_threshold` (points either way) it waits for
//!   approval by a second person: the approver must not be the requester.
//! - A debit over more lots than one transaction holds is a durable plan of steps of
//!   [`LOTS_PER_STEP`] lots, each one consistent, the adjustment's progress (`applied`) in
//!   the same transaction: sent again after a crash, it goes on from there.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::error::Error;
use crate::events::{EntryKind, LedgerEntry};
use crate::lot::{Lot, LotStatus};
use crate::money::Points;
use crate::programme::Programme;

/// Lots taken per step: with the account, the entries, one clearing counter per issuer and
/// the adjustment, a step stays under DynamoDB's 100 items per transaction.
pub const LOTS_PER_STEP: usize = 30;

/// The largest adjustment either way.
pub const MAX_POINTS: Points = 100_000_000;

/// Why points are adjusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A gesture: credits only.
    Goodwill,
    /// Compensation for a fault (a late delivery): credits only.
    Compensation,
    /// A mistake put right, either way.
    Correction,
    /// Points brought over from an earlier system, either way.
    Migration,
    /// A payment taken back: debits only, may leave a debt.
    Chargeback,
    /// Points obtained by fraud: debits only, may leave a debt.
    Fraud,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Goodwill,
        Reason::Compensation,
        Reason::Correction,
        Reason::Migration,
        Reason::Chargeback,
        Reason::Fraud,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Goodwill => "goodwill",
            Reason::Compensation => "compensation",
            Reason::Correction => "correction",
            Reason::Migration => "migration",
            Reason::Chargeback => "chargeback",
            Reason::Fraud => "fraud",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == s)
    }

    pub fn credits(self) -> bool {
        !matches!(self, Reason::Chargeback | Reason::Fraud)
    }

    pub fn debits(self) -> bool {
        !matches!(self, Reason::Goodwill | Reason::Compensation)
    }

    /// May a debit for this reason take more than the member has (the rest owed)?
    pub fn allows_debt(self) -> bool {
        matches!(self, Reason::Chargeback | Reason::Fraud)
    }
}

/// Programme settings of adjustments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentSettings {
    /// An adjustment of more points than this (either way) waits for a second person.
    #[serde(default = "default_threshold")]
    pub approval_threshold: Points,
}

fn default_threshold() -> Points {
    10_000
}

impl Default for AdjustmentSettings {
    fn default() -> Self {
        AdjustmentSettings {
            approval_threshold: default_threshold(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Above the threshold: waits for a second person.
    PendingApproval,
    /// Approved (or below the threshold) and being written; sent again, it goes on.
    Applying,
    Applied,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub adjustment_id: String,
    pub programme_id: String,
    pub partner_id: String,
    pub member_id: String,
    /// Signed: a credit above 0, a debit below.
    pub points: Points,
    pub reason: Reason,
    pub note: String,
    pub reference: String,
    /// What the request said (a retry with another body under the reference is refused).
    pub request_sha256: String,
    pub requested_by: String,
    pub requested_via: String,
    pub requested_at: DateTime<Utc>,
    pub status: Status,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    /// Points written so far (absolute).
    #[serde(default)]
    pub applied: Points,
    /// Of a debit, the points that became a debt.
    #[serde(default)]
    pub debt: Points,
    /// Of a debit whose reason allows no debt, what the member no longer had when its last
    /// step ran (spent meanwhile): not taken.
    #[serde(default)]
    pub shortfall: Points,
    #[serde(default)]
    pub applied_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// The id of a partner's adjustment under its reference: the same request again finds it.
pub fn adjustment_id(partner_id: &str, reference: &str) -> String {
    let digest = Sha256::digest(format!("{partner_id}|adjustment|{reference}").as_bytes());
    format!("adj_{}", &hex::encode(digest)[..24])
}

/// A new adjustment as asked (status by the threshold), or why not.
#[allow(clippy::too_many_arguments)]
pub fn plan_request(
    programme: &Programme,
    partner_id: &str,
    member_id: &str,
    points: Points,
    reason: Reason,
    note: &str,
    reference: &str,
    request_sha256: &str,
    who: &crate::changes::Actor,
    now: DateTime<Utc>,
) -> Result<Adjustment, Error> {
    if points == 0 || points.abs() > MAX_POINTS {
        return Err(Error::invalid(
            "invalid_points",
            format!("points: a whole number from -{MAX_POINTS} to {MAX_POINTS}, not 0 (above 0 credits, below debits)"),
        ));
    }
    if points > 0 && !reason.credits() {
        return Err(Error::invalid(
            "invalid_reason",
            format!("reason: {} only debits", reason.code()),
        ));
    }
    if points < 0 && !reason.debits() {
        return Err(Error::invalid(
            "invalid_reason",
            format!("reason: {} only credits", reason.code()),
        ));
    }
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 500 || note.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_note",
            "note: 1 to 500 printable characters",
        ));
    }
    if !crate::ids::valid_id(reference) || reference.len() > 64 {
        return Err(Error::invalid(
            "invalid_reference",
            format!("reference: 1-64 characters, {}", crate::ids::ID_RULE),
        ));
    }
    let status = if points.abs() > programme.adjustments.approval_threshold {
        Status::PendingApproval
    } else {
        Status::Applying
    };
    Ok(Adjustment {
        adjustment_id: adjustment_id(partner_id, reference),
        programme_id: programme.id.clone(),
        partner_id: partner_id.to_string(),
        member_id: member_id.to_string(),
        points,
        reason,
        note: note.to_string(),
        reference: reference.to_string(),
        request_sha256: request_sha256.to_string(),
        requested_by: who.name.clone(),
        requested_via: who.via.clone(),
        requested_at: now,
        status,
        decided_by: None,
        decided_at: None,
        applied: 0,
        debt: 0,
        shortfall: 0,
        applied_at: None,
        version: 0,
    })
}

/// A second person approves (`true`) or rejects a pending adjustment. Deciding again as
/// decided is answered as it stands (None: nothing to write).
pub fn decide(
    adj: &Adjustment,
    approve: bool,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Option<Adjustment>, Error> {
    let wanted = if approve {
        [Status::Applying, Status::Applied]
    } else {
        [Status::Rejected, Status::Rejected]
    };
    if adj.status != Status::PendingApproval {
        if wanted.contains(&adj.status) && adj.decided_by.as_deref() == Some(who) {
            return Ok(None);
        }
        return Err(Error::conflict(
            "adjustment_not_pending",
            "this adjustment was decided already",
        ));
    }
    if adj.requested_by == who {
        return Err(Error::conflict(
            "same_person",
            "the person who asked for an adjustment cannot approve or reject it",
        ));
    }
    let mut next = adj.clone();
    next.status = if approve {
        Status::Applying
    } else {
        Status::Rejected
    };
    next.decided_by = Some(who.to_string());
    next.decided_at = Some(now);
    next.version += 1;
    Ok(Some(next))
}

/// One step of writing an adjustment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentStep {
    pub account: Account,
    pub adjustment: Adjustment,
    /// A credit's new lot.
    pub new_lot: Option<Lot>,
    /// A debit's takes: lot id and points (written as conditional deltas).
    pub taken: Vec<(String, Points)>,
    pub entries: Vec<LedgerEntry>,
    pub outstanding_change: Points,
    /// The adjustment is applied with this step.
    pub last: bool,
}

fn entry(
    account: &mut Account,
    adj: &Adjustment,
    now: DateTime<Utc>,
    kind: EntryKind,
    points: Points,
    issuers: BTreeMap<String, Points>,
    lot_id: Option<String>,
) -> LedgerEntry {
    account.entry_seq += 1;
    let what = if kind == EntryKind::Debt {
        "owed".to_string()
    } else {
        adj.reason.code().to_string()
    };
    LedgerEntry {
        seq: account.entry_seq,
        at: now,
        kind,
        points,
        reason: format!("adjustment ({what}) at {}: {}", adj.partner_id, adj.note),
        partner_id: Some(adj.partner_id.clone()),
        order_id: None,
        lot_id,
        event_id: format!(
            "adjusted:{}:{}:{}",
            adj.adjustment_id, account.member_id, account.entry_seq
        ),
        counterparty: None,
        issuers,
    }
}

/// The order id a credit's lot carries (its lot id is `{partner}:{this}`).
pub fn credit_order_id(adj: &Adjustment) -> String {
    format!("adjustment:{}", adj.adjustment_id)
}

/// The next step of an adjustment being applied, on the member's account and lots as read.
pub fn plan_step(
    programme: &Programme,
    adj: &Adjustment,
    account: &Account,
    lots: &[Lot],
    now: DateTime<Utc>,
) -> Result<AdjustmentStep, Error> {
    if adj.status != Status::Applying {
        return Err(Error::conflict(
            "adjustment_not_applying",
            "this adjustment is not being applied",
        ));
    }
    let mut a = account.clone();
    a.version += 1;
    a.fold_due(now);
    let mut next = adj.clone();
    next.version += 1;
    let (mut entries, mut taken, mut new_lot) = (Vec::new(), Vec::new(), None);
    let last;
    if adj.points > 0 {
        let mut lot = Lot::new(
            programme,
            &a.member_id,
            &adj.partner_id,
            &credit_order_id(adj),
            adj.points,
            now,
        );
        // Available at once: there is nothing to return.
        lot.available_at = now;
        let repaid = a.debt.min(adj.points);
        lot.remaining -= repaid;
        a.debt -= repaid;
        a.add_lot(&lot)?;
        a.fold_due(now);
        entries.push(entry(
            &mut a,
            adj,
            now,
            EntryKind::Adjustment,
            adj.points,
            BTreeMap::from([(adj.partner_id.clone(), adj.points)]),
            Some(lot.lot_id.clone()),
        ));
        new_lot = Some(lot);
        next.applied = adj.points;
        last = true;
    } else {
        let want = adj.points.abs() - adj.applied - adj.debt - adj.shortfall;
        // The adjusting partner's own points first, then those expiring soonest.
        let mut takeable: Vec<&Lot> = lots
            .iter()
            .filter(|l| l.remaining > 0 && l.status(now) != LotStatus::Expired)
            .collect();
        takeable.sort_by(|x, y| {
            (x.partner_id != adj.partner_id, x.expires_at, &x.lot_id).cmp(&(
                y.partner_id != adj.partner_id,
                y.expires_at,
                &y.lot_id,
            ))
        });
        let mut left = want;
        let mut by_issuer: BTreeMap<String, Points> = BTreeMap::new();
        for lot in takeable.iter().take(LOTS_PER_STEP) {
            if left == 0 {
                break;
            }
            let mut l = (*lot).clone();
            let got = a.take_from_lot(&mut l, left, now)?;
            if got > 0 {
                taken.push((l.lot_id.clone(), got));
                *by_issuer.entry(l.partner_id.clone()).or_default() += got;
                left -= got;
            }
        }
        let took: Points = by_issuer.values().sum();
        if took > 0 {
            entries.push(entry(
                &mut a,
                adj,
                now,
                EntryKind::Adjustment,
                -took,
                by_issuer,
                None,
            ));
        }
        next.applied += took;
        let more_lots = takeable.len() > taken.len() && taken.len() >= LOTS_PER_STEP;
        last = left == 0 || !more_lots;
        if last && left > 0 {
            if adj.reason.allows_debt() {
                a.debt = a
                    .debt
                    .checked_add(left)
                    .ok_or_else(|| Error::invalid("invalid_points", "debt would overflow"))?;
                entries.push(entry(
                    &mut a,
                    adj,
                    now,
                    EntryKind::Debt,
                    -left,
                    BTreeMap::from([(adj.partner_id.clone(), left)]),
                    None,
                ));
                next.debt += left;
            } else {
                next.shortfall += left;
            }
        }
    }
    if last {
        next.status = Status::Applied;
        next.applied_at = Some(now);
    }
    a.check()?;
    Ok(AdjustmentStep {
        outstanding_change: a.outstanding() - account.outstanding(),
        account: a,
        adjustment: next,
        new_lot,
        taken,
        entries,
        last,
    })
}

/// What a debit may take now: unexpired points no hold reserves (pending ones too).
pub fn debitable(lots: &[Lot], now: DateTime<Utc>) -> Points {
    lots.iter()
        .filter(|l| l.status(now) != LotStatus::Expired)
        .map(|l| l.remaining.max(0))
        .sum()
}

/// Refuse a debit the member cannot cover, unless its reason allows a debt.
pub fn check_cover(adj: &Adjustment, lots: &[Lot], now: DateTime<Utc>) -> Result<(), Error> {
    let can = debitable(lots, now);
    if adj.points < 0 && !adj.reason.allows_debt() && adj.points.abs() > can {
        return Err(Error::conflict(
            "insufficient_points",
            format!(
                "the member has {can} points a debit can take; only chargeback and fraud may leave a debt"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Actor;
    use crate::ledger::plan_order;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;
    use chrono::Duration;

    fn programme() -> Programme {
        Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Coalition,
            Currency::parse("EUR").unwrap(),
        )
    }

    fn t0() -> DateTime<Utc> {
        "2026-11-01T10:00:00Z".parse().unwrap()
    }

    fn who(name: &str) -> Actor {
        Actor {
            name: name.into(),
            via: "cli".into(),
        }
    }

    /// A member with lots (issuer, points, days before t0 + 20), all released by t0 + 20.
    fn member(lots: &[(&str, Points, i64)]) -> (Account, Vec<Lot>) {
        let p = programme();
        let mut a = Account::open("p", "M-1");
        let mut out = Vec::new();
        for (i, (issuer, points, day)) in lots.iter().enumerate() {
            let at = t0() - Duration::days(*day);
            let plan = plan_order(
                &p,
                &a,
                issuer,
                &format!("O-{i}"),
                *points,
                100,
                "Silver",
                at,
                at,
            )
            .unwrap();
            a = plan.account;
            out.push(plan.lot.unwrap());
        }
        (a, out)
    }

    fn ask(points: Points, reason: Reason) -> Adjustment {
        plan_request(
            &programme(),
            "shop",
            "M-1",
            points,
            reason,
            "sorry",
            "r-1",
            "h",
            &who("Ann"),
            t0(),
        )
        .unwrap()
    }

    /// Apply every step, as the service does; the lots as a store would keep them.
    fn apply(
        adj: &Adjustment,
        account: &Account,
        lots: &[Lot],
        now: DateTime<Utc>,
    ) -> (Adjustment, Account, Vec<Lot>, Vec<LedgerEntry>) {
        let (mut adj, mut a, mut lots) = (adj.clone(), account.clone(), lots.to_vec());
        let mut entries = Vec::new();
        loop {
            let s = plan_step(&programme(), &adj, &a, &lots, now).unwrap();
            for (id, p) in &s.taken {
                lots.iter_mut().find(|l| &l.lot_id == id).unwrap().remaining -= p;
            }
            lots.extend(s.new_lot.clone());
            entries.extend(s.entries.clone());
            a = s.account;
            adj = s.adjustment;
            if s.last {
                return (adj, a, lots, entries);
            }
        }
    }

    #[test]
    fn a_credit_is_a_lot_of_the_adjusting_partner_available_at_once() {
        let (a, lots) = member(&[]);
        let (adj, a, lots, entries) = apply(&ask(500, Reason::Goodwill), &a, &lots, t0());
        assert_eq!(adj.status, Status::Applied);
        assert_eq!((a.available, a.outstanding()), (500, 500));
        assert_eq!(lots[0].partner_id, "shop");
        assert_eq!(entries[0].kind, EntryKind::Adjustment);
        assert_eq!(
            entries[0].issuers,
            BTreeMap::from([("shop".to_string(), 500)])
        );
        assert_eq!(entries[0].reason, "adjustment (goodwill) at shop: sorry");
    }

    #[test]
    fn a_debit_takes_the_partners_own_points_first_then_the_soonest_expiring() {
        let now = t0() + Duration::days(20);
        let (a, lots) = member(&[("cafe", 300, 100), ("shop", 200, 10), ("cafe", 400, 50)]);
        let (adj, a, lots, entries) = apply(&ask(-600, Reason::Correction), &a, &lots, now);
        assert_eq!(
            (adj.status, adj.applied, adj.debt),
            (Status::Applied, 600, 0)
        );
        assert_eq!(a.available, 300);
        // shop's 200, then cafe's oldest (300), then 100 of the next.
        assert_eq!(
            lots.iter().map(|l| l.remaining).collect::<Vec<_>>(),
            vec![0, 0, 300]
        );
        assert_eq!(
            entries[0].issuers,
            BTreeMap::from([("cafe".to_string(), 400), ("shop".to_string(), 200)])
        );
    }

    #[test]
    fn debits_never_go_below_zero_unless_the_reason_allows_a_debt() {
        let now = t0() + Duration::days(20);
        let (a, lots) = member(&[("shop", 100, 30)]);
        assert_eq!(
            check_cover(&ask(-150, Reason::Correction), &lots, now)
                .unwrap_err()
                .code,
            "insufficient_points"
        );
        let fraud = ask(-150, Reason::Fraud);
        check_cover(&fraud, &lots, now).unwrap();
        let (adj, a, _, entries) = apply(&fraud, &a, &lots, now);
        assert_eq!(
            (adj.applied, adj.debt, a.debt, a.outstanding()),
            (100, 50, 50, -50)
        );
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.kind, e.points))
                .collect::<Vec<_>>(),
            vec![(EntryKind::Adjustment, -100), (EntryKind::Debt, -50)]
        );
        // A later credit pays the debt off first.
        let mut credit = ask(80, Reason::Goodwill);
        credit.adjustment_id = "adj_2".into();
        let (_, a, _, _) = apply(&credit, &a, &[], now);
        assert_eq!((a.debt, a.available, a.outstanding()), (0, 30, 30));
    }

    #[test]
    fn a_debit_over_many_lots_goes_in_steps_and_a_shortfall_is_recorded() {
        let now = t0() + Duration::days(20);
        let many: Vec<(&str, Points, i64)> = (0..70).map(|i| ("shop", 10, 20 + i)).collect();
        let (a, lots) = member(&many);
        let (adj, a, lots, entries) = apply(&ask(-650, Reason::Migration), &a, &lots, now);
        assert_eq!((adj.applied, adj.shortfall), (650, 0));
        assert_eq!(entries.len(), 3, "30 + 30 + 5 lots");
        assert_eq!(a.available, 50);
        assert_eq!(lots.iter().map(|l| l.remaining).sum::<Points>(), 50);
        // Spent meanwhile: what is not there is a shortfall, never a debt.
        let mut short = ask(-80, Reason::Correction);
        short.adjustment_id = "adj_3".into();
        let (adj, a, _, _) = apply(&short, &a, &lots, now);
        assert_eq!(
            (adj.applied, adj.shortfall, a.debt, a.available),
            (50, 30, 0, 0)
        );
    }

    #[test]
    fn requests_are_checked_and_a_second_person_decides_above_the_threshold() {
        let p = programme();
        let bad = |points, reason, note: &str, reference: &str| {
            plan_request(
                &p,
                "shop",
                "M-1",
                points,
                reason,
                note,
                reference,
                "h",
                &who("Ann"),
                t0(),
            )
            .unwrap_err()
            .code
        };
        assert_eq!(bad(0, Reason::Goodwill, "x", "r"), "invalid_points");
        assert_eq!(bad(-5, Reason::Goodwill, "x", "r"), "invalid_reason");
        assert_eq!(bad(5, Reason::Fraud, "x", "r"), "invalid_reason");
        assert_eq!(bad(5, Reason::Goodwill, " ", "r"), "invalid_note");
        assert_eq!(bad(5, Reason::Goodwill, "x", "a b"), "invalid_reference");
        assert_eq!(ask(10_000, Reason::Goodwill).status, Status::Applying);
        let big = ask(10_001, Reason::Goodwill);
        assert_eq!(big.status, Status::PendingApproval);
        assert_eq!(
            decide(&big, true, "Ann", t0()).unwrap_err().code,
            "same_person"
        );
        let approved = decide(&big, true, "Bob", t0()).unwrap().unwrap();
        assert_eq!(
            (approved.status, approved.decided_by.as_deref()),
            (Status::Applying, Some("Bob"))
        );
        assert_eq!(decide(&approved, true, "Bob", t0()).unwrap(), None);
        assert_eq!(
            decide(&approved, false, "Cy", t0()).unwrap_err().code,
            "adjustment_not_pending"
        );
        let rejected = decide(&big, false, "Cy", t0()).unwrap().unwrap();
        assert_eq!(rejected.status, Status::Rejected);
        assert_eq!(
            plan_step(&p, &big, &Account::open("p", "M-1"), &[], t0())
                .unwrap_err()
                .code,
            "adjustment_not_applying"
        );
    }
}
