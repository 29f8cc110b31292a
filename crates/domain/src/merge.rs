//! Merging a duplicate member into another (the survivor): ops or the enrolling partner.
//!
//! The points move as they are: every unexpired lot of the duplicate becomes a lot of the
//! survivor with the same id, last valid day, issuer, release time and remaining points
//! (pending stays pending). So a later refund of one of the duplicate's orders finds its lot
//! under the survivor, and clearing still charges the issuer where the points are spent.
//!
//! A merge of any size is a durable plan of steps, each one consistent on its own: a step
//! moves up to [`LOTS_PER_STEP`] lots with their share of both accounts' buckets and one
//! statement entry on each side, in one transaction; the last step moves the debt and the
//! purchase volume and marks the duplicate merged. Run again after a crash, it goes on
//! from what is left (the duplicate's own lots say it): nothing is lost or moved twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::account::{Account, AccountError};
use crate::error::Error;
use crate::events::{EntryKind, LedgerEntry};
use crate::lot::{Lot, LotStatus};
use crate::money::Points;

/// Lots moved per step (two lot writes each, with both accounts and entries, stay under
/// DynamoDB's 100 items per transaction).
pub const LOTS_PER_STEP: usize = 40;

/// The issuer named on the entries that move a debt: no partner's points move with it.
pub const DEBT_ISSUER: &str = "_debt";

/// Is this a merge that may start (or go on)? The same 404 as for no member is the
/// caller's to give for members it may not touch; these are the merge's own rules.
pub fn check(survivor: &Account, duplicate: &Account) -> Result<(), Error> {
    if survivor.member_id == duplicate.member_id {
        return Err(Error::invalid(
            "invalid_merge",
            "a member cannot be merged into themself",
        ));
    }
    if survivor.company.is_some() || duplicate.company.is_some() {
        return Err(Error::invalid(
            "invalid_merge",
            "companies are not merged; move their users instead",
        ));
    }
    if survivor.merged_into.is_some() {
        return Err(Error::conflict(
            "member_merged",
            "the surviving member was itself merged into another",
        ));
    }
    if duplicate
        .merged_into
        .as_deref()
        .is_some_and(|m| m != survivor.member_id)
    {
        return Err(Error::conflict(
            "member_merged",
            "the duplicate was already merged into another member",
        ));
    }
    if !duplicate.open_holds.is_empty() {
        return Err(Error::conflict(
            "member_has_open_holds",
            "the duplicate has open checkout holds: capture or void them (or let them lapse) first",
        ));
    }
    Ok(())
}

/// One step of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeStep {
    pub survivor: Account,
    pub duplicate: Account,
    /// The survivor's new lots (the duplicate's, same ids).
    pub moved: Vec<Lot>,
    /// The duplicate's lots emptied, with the points they had (written conditionally).
    pub emptied: Vec<(String, Points)>,
    pub survivor_entries: Vec<LedgerEntry>,
    pub duplicate_entries: Vec<LedgerEntry>,
    /// Outstanding points after minus before, of both (they sum to 0).
    pub outstanding_change: (Points, Points),
    /// The last step: the duplicate is marked merged.
    pub last: bool,
}

fn entry(
    account: &mut Account,
    now: DateTime<Utc>,
    points: Points,
    reason: String,
    other: &str,
    issuers: BTreeMap<String, Points>,
    tag: &str,
) -> LedgerEntry {
    account.entry_seq += 1;
    LedgerEntry {
        seq: account.entry_seq,
        at: now,
        kind: EntryKind::Merge,
        points,
        reason,
        partner_id: None,
        order_id: None,
        lot_id: None,
        event_id: format!(
            "merge:{}:{}:{}:{tag}",
            account.programme_id, account.member_id, account.entry_seq
        ),
        counterparty: Some(other.to_string()),
        issuers,
    }
}

/// The next step of merging `duplicate` into `survivor`, given the duplicate's lots.
pub fn plan_merge_step(
    survivor: &Account,
    duplicate: &Account,
    duplicate_lots: &[Lot],
    now: DateTime<Utc>,
) -> Result<MergeStep, Error> {
    check(survivor, duplicate)?;
    let (mut s, mut d) = (survivor.clone(), duplicate.clone());
    s.version += 1;
    d.version += 1;
    let (s_id, d_id) = (s.member_id.clone(), d.member_id.clone());
    // The lots still holding unexpired points, oldest first; a step takes a bounded share.
    let mut movable: Vec<&Lot> = duplicate_lots
        .iter()
        .filter(|l| l.remaining > 0 && l.status(now) != LotStatus::Expired)
        .collect();
    movable.sort_by(|a, b| (a.expires_at, &a.lot_id).cmp(&(b.expires_at, &b.lot_id)));
    let chunk: Vec<&Lot> = movable.iter().take(LOTS_PER_STEP).copied().collect();
    let last = movable.len() <= LOTS_PER_STEP;
    let (mut moved, mut emptied) = (Vec::new(), Vec::new());
    let mut by_issuer: BTreeMap<String, Points> = BTreeMap::new();
    for lot in &chunk {
        d.take_lot(lot)?;
        let mut new = (*lot).clone();
        new.member_id = s_id.clone();
        new.held = 0;
        s.put_lot(&new)?;
        *by_issuer.entry(lot.partner_id.clone()).or_default() += lot.remaining;
        emptied.push((lot.lot_id.clone(), lot.remaining));
        moved.push(new);
    }
    let points: Points = by_issuer.values().sum();
    let (mut s_entries, mut d_entries) = (Vec::new(), Vec::new());
    if points > 0 {
        d_entries.push(entry(
            &mut d,
            now,
            -points,
            format!("merged into {s_id}"),
            &s_id,
            by_issuer.clone(),
            "out",
        ));
        s_entries.push(entry(
            &mut s,
            now,
            points,
            format!("merged from {d_id}"),
            &d_id,
            by_issuer,
            "in",
        ));
    }
    if last {
        // The debt, the purchase history and what was earned move; the duplicate is closed.
        if d.debt > 0 {
            let debt = d.debt;
            let named = BTreeMap::from([(DEBT_ISSUER.to_string(), debt)]);
            d_entries.push(entry(
                &mut d,
                now,
                debt,
                format!("points owed, moved to {s_id}"),
                &s_id,
                named.clone(),
                "debt-out",
            ));
            s_entries.push(entry(
                &mut s,
                now,
                -debt,
                format!("points owed, moved from {d_id}"),
                &d_id,
                named,
                "debt-in",
            ));
            s.debt = s.debt.checked_add(debt).ok_or(AccountError::Overflow)?;
            d.debt = 0;
        }
        for (month, v) in std::mem::take(&mut d.volume) {
            *s.volume.entry(month).or_default() += v;
        }
        s.lifetime_earned = s
            .lifetime_earned
            .checked_add(std::mem::take(&mut d.lifetime_earned))
            .ok_or(AccountError::Overflow)?;
        s.last_purchase = s.last_purchase.max(d.last_purchase.take());
        s.bought_at.append(&mut d.bought_at);
        d.merged_into = Some(s_id.clone());
        // The survivor's tier is reviewed on its next night with the volume it now has.
        s.tier_review = true;
    }
    s.check()?;
    d.check()?;
    Ok(MergeStep {
        outstanding_change: (
            s.outstanding() - survivor.outstanding(),
            d.outstanding() - duplicate.outstanding(),
        ),
        survivor: s,
        duplicate: d,
        moved,
        emptied,
        survivor_entries: s_entries,
        duplicate_entries: d_entries,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::plan_order;
    use crate::money::Currency;
    use crate::programme::{Programme, ProgrammeKind};
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
        "2026-01-01T10:00:00Z".parse().unwrap()
    }

    fn member(id: &str, lots: &[(&str, Points, i64)]) -> (Account, Vec<Lot>) {
        let p = programme();
        let mut a = Account::open("p", id);
        let mut out = Vec::new();
        for (i, (issuer, points, day)) in lots.iter().enumerate() {
            let at = t0() + Duration::days(*day);
            let plan = plan_order(
                &p,
                &a,
                issuer,
                &format!("O-{id}-{i}"),
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

    #[test]
    fn lots_move_with_their_dates_and_issuers_and_pending_stays_pending() {
        let (s, _) = member("S", &[("a", 100, 0)]);
        let (mut d, lots) = member("D", &[("a", 300, 0), ("b", 200, 30)]);
        d.debt = 0;
        let now = t0() + Duration::days(35);
        let step = plan_merge_step(&s, &d, &lots, now).unwrap();
        assert!(step.last);
        assert_eq!(step.moved.len(), 2);
        assert_eq!(step.outstanding_change, (500, -500));
        let v = step.survivor.view(&programme(), now);
        // The 300 from day 0 are available; the 200 from day 30 still pending (day 44).
        assert_eq!((v.available, v.pending), (400, 200));
        assert_eq!(step.duplicate.outstanding(), 0);
        assert_eq!(step.duplicate.merged_into.as_deref(), Some("S"));
        assert_eq!(
            step.survivor_entries[0].issuers,
            [("a".into(), 300), ("b".into(), 200)].into()
        );
        // Once merged, into the same survivor again: nothing left to move.
        let again = plan_merge_step(&step.survivor, &step.duplicate, &[], now).unwrap();
        assert!(again.moved.is_empty() && again.survivor_entries.is_empty());
    }

    #[test]
    fn a_debt_moves_with_its_own_entries_and_big_accounts_take_several_steps() {
        let (s, _) = member("S", &[]);
        let spec: Vec<(&str, Points, i64)> = (0..100).map(|i| ("a", 10, i)).collect();
        let (mut d, lots) = member("D", &spec);
        d.debt = 7;
        let now = t0() + Duration::days(120);
        let first = plan_merge_step(&s, &d, &lots, now).unwrap();
        assert_eq!((first.moved.len(), first.last), (LOTS_PER_STEP, false));
        assert_eq!(first.duplicate.debt, 7);
        let mut rest: Vec<Lot> = lots.clone();
        for (id, _) in &first.emptied {
            rest.iter_mut().find(|l| &l.lot_id == id).unwrap().remaining = 0;
        }
        let second = plan_merge_step(&first.survivor, &first.duplicate, &rest, now).unwrap();
        for (id, _) in &second.emptied {
            rest.iter_mut().find(|l| &l.lot_id == id).unwrap().remaining = 0;
        }
        let third = plan_merge_step(&second.survivor, &second.duplicate, &rest, now).unwrap();
        assert!(third.last);
        assert_eq!((third.survivor.debt, third.duplicate.debt), (7, 0));
        assert_eq!(third.survivor.outstanding(), 1000 - 7);
        assert_eq!(third.duplicate.outstanding(), 0);
        let debt: Vec<Points> = third.duplicate_entries.iter().map(|e| e.points).collect();
        assert_eq!(debt, vec![-200, 7]);
    }

    #[test]
    fn the_rules_refuse_with_their_codes() {
        let (s, _) = member("S", &[]);
        let (mut d, _) = member("D", &[]);
        assert_eq!(check(&s, &s).unwrap_err().code, "invalid_merge");
        d.open_holds.insert(
            "h".into(),
            crate::account::OpenHold {
                points: 1,
                expires_at: t0(),
            },
        );
        assert_eq!(check(&s, &d).unwrap_err().code, "member_has_open_holds");
        d.open_holds.clear();
        d.merged_into = Some("X".into());
        assert_eq!(check(&s, &d).unwrap_err().code, "member_merged");
    }
}
