//! Returning a gift-shop claim: the member gives the reward back (or the partner cancels
//! it), and the points it cost come back. Once per claim, like a hold's resolution:
//! `captured -> returned`, never back.
//!
//! The points go back into the lots the capture took, each with its own issuer and last
//! valid day, so a return never makes points younger than they were. A lot whose last day
//! has passed meanwhile gets nothing back: its share expires at once (an `expire` entry
//! right after the return's), as it would have had it never been spent.
//!
//! In clearing the return is a redemption taken back, at the partner where the points were
//! spent, in the month of the return (crate::clearing); a closed month is never rewritten.
//! The reward's unit of stock and the member's claim count come back in the same write
//! (the store's part).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::error::Error;
use crate::events::{EntryKind, LedgerEntry};
use crate::hold::{Hold, HoldStatus, LotChange, Settlement};
use crate::lot::{start_of_day, Lot};
use crate::money::Points;

/// Longest note a return may carry.
pub const MAX_NOTE_CHARS: usize = 500;

/// Who returned a claim, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimReturned {
    pub at: DateTime<Utc>,
    /// The partner that took the return.
    pub partner_id: String,
    /// The person who acted (the key's or the CLI's actor).
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Points back in the member's lots.
    pub points: Points,
    /// Points whose lots had expired meanwhile: they expired at once.
    pub expired: Points,
}

/// What a return request says, besides the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRequest {
    pub partner_id: String,
    pub by: String,
    pub note: Option<String>,
}

impl ReturnRequest {
    /// A note of at most [`MAX_NOTE_CHARS`] characters, without control characters.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(note) = &self.note {
            if note.chars().count() > MAX_NOTE_CHARS
                || note.chars().any(|c| c.is_control() && c != '\n')
            {
                return Err(Error::invalid(
                    "invalid_field",
                    format!("note: at most {MAX_NOTE_CHARS} characters, no control characters"),
                ));
            }
        }
        Ok(())
    }
}

/// What a return comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimReturn {
    /// Write it: the hold (returned), the account, the entries and the lots' deltas (one per
    /// lot of the hold, in its order; 0 for a lot that gets nothing back).
    Return(Box<Settlement>),
    /// Returned before: answer with it as it is.
    AsIs,
}

fn claim_not_found() -> Error {
    Error::not_found("claim_not_found", "no such claim for this partner")
}

/// Plan the return of `hold` (a gift-shop claim) for the member's `account` as read.
/// `lots` need only hold the lots whose last day the hold does not know (holds written
/// before it kept them). `time_zone` is the programme's: a lot's points are gone from the
/// start of the day after its last valid day there.
pub fn plan_claim_return(
    hold: &Hold,
    account: &Account,
    lots: &[Lot],
    time_zone: chrono_tz::Tz,
    req: &ReturnRequest,
    now: DateTime<Utc>,
) -> Result<ClaimReturn, Error> {
    let Some(reward) = &hold.reward else {
        return Err(claim_not_found());
    };
    match hold.status {
        HoldStatus::Returned => return Ok(ClaimReturn::AsIs),
        HoldStatus::Captured => {}
        HoldStatus::Reserving => return Err(claim_not_found()),
        _ => {
            return Err(Error::conflict(
                "claim_not_captured",
                "the claim was never completed: its points and its unit of stock are back already",
            ))
        }
    }
    req.validate()?;
    if let Some(into) = &account.merged_into {
        return Err(Error::conflict(
            "member_merged",
            format!("the member was merged into {into}; their points are there now"),
        ));
    }
    if hold.settled_lots.is_some() {
        // The capture's lots are still being updated: the caller finishes that first.
        return Err(Error::unavailable());
    }
    let mut next = account.clone();
    let mut hold = hold.clone();
    let mut lot_changes = Vec::with_capacity(hold.lots.len());
    let mut changed = Vec::new();
    let (mut back_total, mut expired_by_issuer) = (0, BTreeMap::<String, Points>::new());
    for held in &mut hold.lots {
        let lot = lots.iter().find(|l| l.lot_id == held.lot_id);
        let expires_on = match held.expires_on.or(lot.map(|l| l.expires_on)) {
            Some(d) => d,
            None if held.captured == 0 => {
                lot_changes.push(LotChange {
                    lot_id: held.lot_id.clone(),
                    release: 0,
                    back: 0,
                });
                continue;
            }
            None => {
                return Err(crate::error::internal(format!(
                    "lot {} missing",
                    held.lot_id
                )))
            }
        };
        let expired = now >= start_of_day(time_zone, expires_on.succ_opt().unwrap_or(expires_on));
        let back = if expired { 0 } else { held.captured };
        if expired && held.captured > 0 {
            *expired_by_issuer.entry(held.issuer.clone()).or_default() += held.captured;
        }
        if back > 0 {
            next.book_expiry_of(expires_on, &held.issuer, back)
                .map_err(crate::error::internal)?;
            if let Some(lot) = lot {
                let mut lot = lot.clone();
                lot.remaining += back;
                changed.push(lot);
            }
        }
        held.returned = back;
        back_total += back;
        lot_changes.push(LotChange {
            lot_id: held.lot_id.clone(),
            release: 0,
            back,
        });
    }
    next.available += back_total;
    next.version += 1;
    let expired_total: Points = expired_by_issuer.values().sum();
    let who = format!("{}:{}", hold.programme_id, hold.hold_id);
    let mut entries = Vec::new();
    next.entry_seq += 1;
    entries.push(LedgerEntry {
        seq: next.entry_seq,
        at: now,
        kind: EntryKind::ClaimReturn,
        points: hold.captured,
        reason: format!(
            "returned to {}: reward {}",
            req.partner_id, reward.reward_id
        ),
        // The partner where the points were spent: its redemption is taken back.
        partner_id: Some(hold.partner_id.clone()),
        order_id: Some(hold.reference.clone()),
        lot_id: None,
        event_id: format!("returned:{who}"),
        counterparty: None,
        issuers: hold.captured_by_issuer(),
    });
    if expired_total > 0 {
        next.entry_seq += 1;
        entries.push(LedgerEntry {
            seq: next.entry_seq,
            at: now,
            kind: EntryKind::Expire,
            points: -expired_total,
            reason: "returned points whose last valid day had passed expired at once".into(),
            partner_id: None,
            order_id: Some(hold.reference.clone()),
            lot_id: None,
            event_id: format!("returned-expired:{who}"),
            counterparty: None,
            issuers: expired_by_issuer,
        });
    }
    hold.status = HoldStatus::Returned;
    hold.version += 1;
    hold.returned = Some(ClaimReturned {
        at: now,
        partner_id: req.partner_id.clone(),
        by: req.by.clone(),
        note: req.note.clone(),
        points: back_total,
        expired: expired_total,
    });
    next.check().map_err(crate::error::internal)?;
    Ok(ClaimReturn::Return(Box::new(Settlement {
        outstanding_change: next.outstanding() - account.outstanding(),
        account: next,
        hold,
        lot_changes,
        lots: changed,
        entries,
        events: Vec::new(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::movements;
    use crate::hold::{choose_lots, settle, HeldLot, OpenHold, RewardClaim};
    use crate::money::Currency;
    use crate::programme::{Programme, ProgrammeKind};
    use chrono::Duration;
    use proptest::prelude::*;

    fn programme() -> Programme {
        let mut p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Coalition,
            Currency::parse("EUR").unwrap(),
        );
        p.min_balance_to_redeem = 0;
        p
    }

    use crate::testing::t0;

    /// An account with lots (issuer, points, day earned), available by day 35.
    fn earned(p: &Programme, lots: &[(&str, Points, i64)]) -> (Account, Vec<Lot>) {
        crate::testing::earned(p, "m", "O-", lots, t0() + Duration::days(35))
    }

    /// A claim of `points` at `shop`, captured at day 35: the account, lots and hold after.
    fn claimed(
        p: &Programme,
        lots: &[(&str, Points, i64)],
        points: Points,
    ) -> (Account, Vec<Lot>, Hold) {
        let (mut a, mut lots) = earned(p, lots);
        let now = t0() + Duration::days(35);
        let chosen: Vec<HeldLot> = choose_lots(p, &a, &lots, "shop", points, now).unwrap();
        let hold = Hold {
            hold_id: "h1".into(),
            programme_id: "p".into(),
            member_id: "m".into(),
            partner_id: "shop".into(),
            reference: "claim/mug/r1".into(),
            points,
            status: HoldStatus::Open,
            captured: 0,
            lots: chosen,
            created_at: now,
            expires_at: now + Duration::minutes(15),
            resolved_at: None,
            request_sha256: String::new(),
            reward: Some(RewardClaim {
                reward_id: "mug".into(),
                voucher_code: "AAAA-BBBB-CCCC-DDDD".into(),
            }),
            version: 0,
            staged_lots: None,
            settled_lots: None,
            redeemed_day: None,
            returned: None,
        };
        for h in &hold.lots {
            let l = lots.iter_mut().find(|l| l.lot_id == h.lot_id).unwrap();
            l.remaining -= h.points;
            l.held += h.points;
        }
        a.available -= points;
        a.held += points;
        a.open_holds.insert(
            "h1".into(),
            OpenHold {
                points,
                expires_at: hold.expires_at,
            },
        );
        let s = settle(&hold, &a, &lots, points, HoldStatus::Captured, now).unwrap();
        for l in s.lots {
            let slot = lots.iter_mut().find(|x| x.lot_id == l.lot_id).unwrap();
            *slot = l;
        }
        (s.account, lots, s.hold)
    }

    fn req() -> ReturnRequest {
        ReturnRequest {
            partner_id: "shop".into(),
            by: "anna".into(),
            note: Some("box unopened".into()),
        }
    }

    fn plan(hold: &Hold, a: &Account, now: DateTime<Utc>) -> Settlement {
        match plan_claim_return(hold, a, &[], chrono_tz::UTC, &req(), now).unwrap() {
            ClaimReturn::Return(s) => *s,
            ClaimReturn::AsIs => panic!("returned before"),
        }
    }

    #[test]
    fn a_return_puts_the_points_back_into_the_lots_the_claim_took() {
        let p = programme();
        let (a, _, hold) = claimed(&p, &[("bakery", 600, 0), ("cafe", 700, 5)], 1000);
        assert_eq!(a.available, 300);
        let now = t0() + Duration::days(40);
        let s = plan(&hold, &a, now);
        assert_eq!((s.account.available, s.account.held), (1300, 0));
        assert_eq!(s.account.outstanding(), 1300);
        assert_eq!(s.outstanding_change, 1000);
        assert_eq!(s.hold.status, HoldStatus::Returned);
        let back: Vec<(&str, Points, Points)> = s
            .lot_changes
            .iter()
            .map(|c| (c.lot_id.as_str(), c.release, c.back))
            .collect();
        assert_eq!(back, vec![("bakery:O-0", 0, 600), ("cafe:O-1", 0, 400)]);
        // Each lot's points expire on its own day again, as its issuer's.
        let expiring: Vec<(&str, Points)> = s
            .account
            .expiring
            .iter()
            .map(|(d, p)| (d.as_str(), *p))
            .collect();
        assert_eq!(expiring, vec![("2027-01-01", 600), ("2027-01-06", 700)]);
        assert_eq!(a.expiring.values().sum::<Points>(), 300);
        assert_eq!(s.entries.len(), 1);
        let e = &s.entries[0];
        assert_eq!(
            (e.kind, e.points, e.partner_id.as_deref()),
            (EntryKind::ClaimReturn, 1000, Some("shop"))
        );
        assert_eq!(
            e.issuers,
            [("bakery".to_string(), 600), ("cafe".to_string(), 400)]
                .into_iter()
                .collect()
        );
        let info = s.hold.returned.as_ref().unwrap();
        assert_eq!(
            (info.points, info.expired, info.by.as_str()),
            (1000, 0, "anna")
        );
        // Clearing: the redemptions at the shop are taken back, per issuer.
        let moved = movements(&s.entries, chrono_tz::UTC);
        assert_eq!(
            moved[&("2026-02".to_string(), "bakery".to_string())].returned_at["shop"],
            600
        );
        assert_eq!(
            moved[&("2026-02".to_string(), "cafe".to_string())].returned_at["shop"],
            400
        );
        // Once: returned again, it is as it is.
        assert_eq!(
            plan_claim_return(&s.hold, &s.account, &[], chrono_tz::UTC, &req(), now),
            Ok(ClaimReturn::AsIs)
        );
    }

    #[test]
    fn a_share_whose_lot_has_expired_expires_again_at_once() {
        let p = programme();
        // Bakery's lot's last day is 2027-01-01, the cafe's 2027-01-06.
        let (a, _, hold) = claimed(&p, &[("bakery", 600, 0), ("cafe", 700, 5)], 1000);
        let now: DateTime<Utc> = "2027-01-03T12:00:00Z".parse().unwrap();
        // The nightly job expired the bakery's 0 remaining points (nothing left there).
        let s = plan(&hold, &a, now);
        assert_eq!(s.account.available, 300 + 400);
        assert_eq!(s.outstanding_change, 400);
        let kinds: Vec<(EntryKind, Points)> =
            s.entries.iter().map(|e| (e.kind, e.points)).collect();
        assert_eq!(
            kinds,
            vec![(EntryKind::ClaimReturn, 1000), (EntryKind::Expire, -600)]
        );
        assert_eq!(
            s.entries[1].issuers,
            [("bakery".to_string(), 600)].into_iter().collect()
        );
        assert_eq!(s.lot_changes[0].back, 0);
        assert_eq!(s.lot_changes[1].back, 400);
        let info = s.hold.returned.unwrap();
        assert_eq!((info.points, info.expired), (400, 600));
        // The day after the last valid day, in the programme's time zone: Amsterdam's
        // 2027-01-01 ends at 23:00 UTC.
        let late: DateTime<Utc> = "2027-01-01T23:30:00Z".parse().unwrap();
        let ams =
            match plan_claim_return(&hold, &a, &[], chrono_tz::Europe::Amsterdam, &req(), late)
                .unwrap()
            {
                ClaimReturn::Return(s) => s,
                _ => unreachable!(),
            };
        assert_eq!(ams.hold.returned.unwrap().expired, 600);
        let utc = plan(&hold, &a, late);
        assert_eq!(utc.hold.returned.unwrap().expired, 0);
    }

    #[test]
    fn only_a_captured_claim_returns() {
        let p = programme();
        let (a, _, hold) = claimed(&p, &[("shop", 2000, 0)], 300);
        let now = t0() + Duration::days(36);
        let code = |h: &Hold, a: &Account| {
            plan_claim_return(h, a, &[], chrono_tz::UTC, &req(), now)
                .unwrap_err()
                .code
        };
        let mut voided = hold.clone();
        voided.status = HoldStatus::Voided;
        assert_eq!(code(&voided, &a), "claim_not_captured");
        let mut plain = hold.clone();
        plain.reward = None;
        assert_eq!(code(&plain, &a), "claim_not_found");
        let mut merged = a.clone();
        merged.merged_into = Some("m2".into());
        assert_eq!(code(&hold, &merged), "member_merged");
        let long = ReturnRequest {
            note: Some("x".repeat(MAX_NOTE_CHARS + 1)),
            ..req()
        };
        assert_eq!(
            plan_claim_return(&hold, &a, &[], chrono_tz::UTC, &long, now)
                .unwrap_err()
                .code,
            "invalid_field"
        );
    }

    proptest! {
        /// Whatever was claimed and whenever it comes back: the entries move exactly the
        /// account's outstanding change, the clearing's identity holds for the return
        /// (issued - reversed = net redeemed + expired + outstanding change), and the
        /// account's invariants hold.
        #[test]
        fn a_return_conserves_points(
            earned_lots in prop::collection::vec((0usize..3, 1i64..2_000, 0i64..20), 1..6),
            want in 1i64..5_000,
            days_later in 0i64..500,
        ) {
            let p = programme();
            let spec: Vec<(&str, Points, i64)> = earned_lots.iter().map(|(i, pts, d)| (["a", "b", "c"][*i], *pts, *d)).collect();
            let total: Points = spec.iter().map(|(_, pts, _)| pts).sum();
            prop_assume!(want <= total);
            let (a, _, hold) = claimed(&p, &spec, want);
            let now = t0() + Duration::days(35 + days_later);
            let s = plan(&hold, &a, now);
            s.account.check().unwrap();
            let moved: Points = s.entries.iter().map(|e| e.points).sum();
            prop_assert_eq!(moved, s.outstanding_change);
            let info = s.hold.returned.clone().unwrap();
            prop_assert_eq!(info.points + info.expired, want);
            let mut net_redeemed = 0;
            let mut expired = 0;
            for c in movements(&s.entries, chrono_tz::UTC).values() {
                net_redeemed -= c.returned_at.values().sum::<Points>();
                expired += c.expired;
            }
            prop_assert_eq!(0, net_redeemed + expired + s.outstanding_change);
        }
    }
}
