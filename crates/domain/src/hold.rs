//! Spending points in two phases: a **hold** reserves points while the customer pays, and
//! resolves exactly once: **captured** (all or part), **voided**, or **expired** (nobody acted
//! in time). Like a pending transfer in a two-phase ledger.
//!
//! Invariants (checked by [`crate::account::Account::check`] and by property tests):
//!
//! ```text
//! account.held = sum of the open holds' points
//! for a lot: remaining (free) + held >= 0, each >= 0
//! a hold resolves once: open -> captured | voided | expired, never back
//! captured + released = reserved
//! ```
//!
//! A hold takes its points from the member's available lots, oldest expiry first, only from
//! lots the accepting partner may spend: in a closed programme, lots that partner issued; in
//! a coalition, any partner's. Reserving moves points from a lot's free `remaining` to its
//! `held`, and from the account's `available` to `held`; capturing removes them for good;
//! releasing moves them back.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::account::OpenHold;
use crate::account::{Account, AccountError};
use crate::error::Error;
use crate::events::{DomainEvent, EntryKind, EventKind, LedgerEntry};
use crate::lot::{Lot, LotStatus};
use crate::money::Money;
use crate::money::Points;
use crate::programme::{Programme, ProgrammeKind};

/// How long a hold lasts unless the request says otherwise.
pub const DEFAULT_HOLD_MINUTES: i64 = 15;
/// Longest hold a request may ask for.
pub const MAX_HOLD_MINUTES: i64 = 24 * 60;
/// Open holds per member at once (keeps the account item small).
pub const MAX_OPEN_HOLDS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Being placed on more lots than one transaction holds: its lots are reserved chunk by
    /// chunk before the account is (`Hold::staged_lots`). Not a hold yet: nobody sees it,
    /// and the sweeper rolls back one left behind.
    Reserving,
    Open,
    Captured,
    Voided,
    Expired,
    /// A captured gift-shop claim given back (crate::claim_return): its points are the
    /// member's again, its unit is back in stock. Once, never back.
    Returned,
}

/// Points a hold reserved in one lot, and how many of them were captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLot {
    pub lot_id: String,
    /// The partner that issued the lot (who pays, in a coalition).
    pub issuer: String,
    pub points: Points,
    #[serde(default)]
    pub captured: Points,
    /// The lot's last valid day (what settling unbooks); None in holds written before it
    /// was kept here (their lots are read instead).
    #[serde(default)]
    pub expires_on: Option<chrono::NaiveDate>,
    /// Of `captured`, put back into the lot by a return of the claim (the rest of it had
    /// expired by then and expired at once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returned: Points,
}

fn is_zero(p: &Points) -> bool {
    *p == 0
}

/// A gift-shop claim riding on a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardClaim {
    pub reward_id: String,
    pub voucher_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub hold_id: String,
    pub programme_id: String,
    pub member_id: String,
    /// The partner that accepts the points (where they are spent).
    pub partner_id: String,
    /// The partner's reference (cart, order, till receipt).
    pub reference: String,
    pub points: Points,
    pub status: HoldStatus,
    pub captured: Points,
    pub lots: Vec<HeldLot>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Of the request that created it (the same reference with another request is a conflict).
    pub request_sha256: String,
    #[serde(default)]
    pub reward: Option<RewardClaim>,
    /// Incremented by every change; resolutions are written with `version = expected`.
    #[serde(default)]
    pub version: u64,
    /// While `Reserving`: how many of `lots` (from the start) are reserved on their lot
    /// items so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_lots: Option<usize>,
    /// After a resolution of more lots than its transaction held: how many of `lots` (from
    /// the start) have had the resolution applied to their lot items so far. The account,
    /// the statement and the clearing already have it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_lots: Option<usize>,
    /// The partner's local day whose per-member redemption counter this hold was counted
    /// in (a partner with a daily limit): a release gives back what it did not capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_day: Option<String>,
    /// Set when the claim was returned (status `Returned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<crate::claim_return::ClaimReturned>,
}

impl Hold {
    /// The status as of `now`: an open hold past its time is expired, whether or not the
    /// release has been written yet.
    pub fn status_at(&self, now: DateTime<Utc>) -> HoldStatus {
        if self.status == HoldStatus::Open && now >= self.expires_at {
            HoldStatus::Expired
        } else {
            self.status
        }
    }

    /// What this hold's resolution (or, once `Returned`, its return) does to the item of
    /// one of its lots: how the lots are brought up to date after the account.
    pub fn lot_change(&self, l: &HeldLot) -> LotChange {
        if self.status == HoldStatus::Returned {
            LotChange {
                lot_id: l.lot_id.clone(),
                release: 0,
                back: l.returned,
            }
        } else {
            LotChange {
                lot_id: l.lot_id.clone(),
                release: l.points,
                back: l.points - l.captured,
            }
        }
    }

    /// Captured points per issuing partner (for clearing).
    pub fn captured_by_issuer(&self) -> BTreeMap<String, Points> {
        let mut out = BTreeMap::new();
        for l in self.lots.iter().filter(|l| l.captured > 0) {
            *out.entry(l.issuer.clone()).or_insert(0) += l.captured;
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendError {
    #[error("points must be a whole number above 0")]
    NotPositive,
    #[error("the member can spend points once {min} are available; {available} are")]
    BelowMinBalance { available: Points, min: Points },
    #[error("{wanted} points wanted, {available} available")]
    Insufficient { available: Points, wanted: Points },
    #[error("{wanted} points wanted, {spendable} of the available points may be spent at this partner (a closed programme spends only the points it issued)")]
    NotSpendableHere { spendable: Points, wanted: Points },
    #[error("the member already has {0} open holds")]
    TooManyOpenHolds(usize),
}

impl SpendError {
    pub fn code(&self) -> &'static str {
        match self {
            SpendError::NotPositive => "invalid_points",
            SpendError::BelowMinBalance { .. } => "below_min_balance",
            SpendError::Insufficient { .. } => "insufficient_points",
            SpendError::NotSpendableHere { .. } => "points_not_spendable_here",
            SpendError::TooManyOpenHolds(_) => "too_many_open_holds",
        }
    }
}

/// May `partner` spend the points of `lot`?
pub fn may_spend(programme: &Programme, partner_id: &str, lot: &Lot) -> bool {
    if partner_id == crate::transfer::TRANSFER_PARTNER {
        // A transfer moves points with their issuer; it spends nothing.
        return true;
    }
    match programme.kind {
        ProgrammeKind::Coalition => true,
        ProgrammeKind::Closed => lot.partner_id == partner_id,
    }
}

/// The account's available points once due releases are folded in and expired holds are
/// counted as released (what a new hold may take).
pub fn spendable_available(account: &Account, now: DateTime<Utc>) -> Points {
    let mut a = account.clone();
    a.fold_due(now);
    let expired: Points = a
        .open_holds
        .values()
        .filter(|h| now >= h.expires_at)
        .map(|h| h.points)
        .sum();
    a.available + expired
}

/// Which lots a hold of `points` at `partner_id` reserves: available, unexpired lots with
/// free points that the partner may spend, oldest expiry first. `account` must have no
/// expired open holds and no due releases left (the caller releases and folds them first).
pub fn choose_lots(
    programme: &Programme,
    account: &Account,
    lots: &[Lot],
    partner_id: &str,
    points: Points,
    now: DateTime<Utc>,
) -> Result<Vec<HeldLot>, SpendError> {
    if points <= 0 {
        return Err(SpendError::NotPositive);
    }
    if account.open_holds.len() >= MAX_OPEN_HOLDS {
        return Err(SpendError::TooManyOpenHolds(account.open_holds.len()));
    }
    let available = account.available;
    if available < points {
        return Err(SpendError::Insufficient {
            available,
            wanted: points,
        });
    }
    // The minimum balance is a rule for spending; a transfer spends nothing.
    if available < programme.min_balance_to_redeem
        && partner_id != crate::transfer::TRANSFER_PARTNER
    {
        return Err(SpendError::BelowMinBalance {
            available,
            min: programme.min_balance_to_redeem,
        });
    }
    let mut eligible: Vec<&Lot> = lots
        .iter()
        .filter(|l| l.remaining > 0 && l.status(now) == LotStatus::Available)
        .filter(|l| may_spend(programme, partner_id, l))
        .collect();
    eligible.sort_by(|a, b| (a.expires_at, &a.lot_id).cmp(&(b.expires_at, &b.lot_id)));
    let mut left = points;
    let mut out = Vec::new();
    for lot in eligible {
        if left == 0 {
            break;
        }
        let take = left.min(lot.remaining);
        out.push(HeldLot {
            lot_id: lot.lot_id.clone(),
            issuer: lot.partner_id.clone(),
            points: take,
            captured: 0,
            expires_on: Some(lot.expires_on),
            returned: 0,
        });
        left -= take;
    }
    if left > 0 {
        let spendable = points - left;
        return Err(match programme.kind {
            ProgrammeKind::Closed => SpendError::NotSpendableHere {
                spendable,
                wanted: points,
            },
            ProgrammeKind::Coalition => SpendError::Insufficient {
                available: spendable,
                wanted: points,
            },
        });
    }
    Ok(out)
}

/// A new hold's expiry.
pub fn expires_at(now: DateTime<Utc>, minutes: Option<i64>) -> DateTime<Utc> {
    now + Duration::minutes(
        minutes
            .unwrap_or(DEFAULT_HOLD_MINUTES)
            .clamp(1, MAX_HOLD_MINUTES),
    )
}

/// What resolving a hold does to one of its lots: `held` down by `release`, free
/// `remaining` up by `back` (the part not captured). Written as a conditional delta
/// (`held >= release`), so it commutes with other holds on the same lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotChange {
    pub lot_id: String,
    pub release: Points,
    pub back: Points,
}

impl LotChange {
    /// Changes nothing (a returned claim's lot that had expired): not written.
    pub fn is_nothing(&self) -> bool {
        self.release == 0 && self.back == 0
    }
}

/// What resolving a hold writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub account: Account,
    pub hold: Hold,
    /// Each lot of the hold, in the hold's order.
    pub lot_changes: Vec<LotChange>,
    /// The new state of those of the hold's lots that were passed in (for checks).
    pub lots: Vec<Lot>,
    pub entries: Vec<LedgerEntry>,
    pub events: Vec<DomainEvent>,
    /// Change of the member's outstanding points (unexpired minus debt), from the account's
    /// own buckets: the clearing's check does not trust the entries alone.
    pub outstanding_change: Points,
}

/// Resolve an open hold: capture `capture` points of it (0 for a void or an expiry) and
/// release the rest. Lots are consumed in the order the hold reserved them (oldest expiry
/// first). `lots` need only hold the lots whose expiry the hold does not know (holds from
/// before it kept them); any lot passed in is checked and its new state returned.
pub fn settle(
    hold: &Hold,
    account: &Account,
    lots: &[Lot],
    capture: Points,
    status: HoldStatus,
    now: DateTime<Utc>,
) -> Result<Settlement, AccountError> {
    if hold.status != HoldStatus::Open || matches!(status, HoldStatus::Open | HoldStatus::Reserving)
    {
        return Err(AccountError::Invariant(format!(
            "hold {} is not open",
            hold.hold_id
        )));
    }
    if capture < 0 || capture > hold.points {
        return Err(AccountError::Invariant("capture out of range".into()));
    }
    let mut next = account.clone();
    let mut hold = hold.clone();
    let mut changed = Vec::new();
    let mut lot_changes = Vec::new();
    let mut left = capture;
    for held in &mut hold.lots {
        let lot = lots.iter().find(|l| l.lot_id == held.lot_id);
        let expires_on = held
            .expires_on
            .or(lot.map(|l| l.expires_on))
            .ok_or_else(|| AccountError::Invariant(format!("lot {} missing", held.lot_id)))?;
        let take = left.min(held.points);
        left -= take;
        let back = held.points - take;
        if let Some(lot) = lot {
            if lot.held < held.points {
                return Err(AccountError::Invariant(format!(
                    "lot {} holds less than the hold reserved",
                    lot.lot_id
                )));
            }
            let mut lot = lot.clone();
            lot.held -= held.points;
            lot.remaining += back;
            changed.push(lot);
        }
        held.captured = take;
        if take > 0 {
            next.unbook_expiry_of(&held.lot_id, expires_on, &held.issuer, take)?;
        }
        lot_changes.push(LotChange {
            lot_id: held.lot_id.clone(),
            release: held.points,
            back,
        });
    }
    next.held -= hold.points;
    next.available += hold.points - capture;
    next.open_holds.remove(&hold.hold_id);
    next.version += 1;
    hold.status = status;
    hold.captured = capture;
    hold.resolved_at = Some(now);
    hold.version += 1;
    let (mut entry, mut events) = (None, Vec::new());
    if capture > 0 {
        next.entry_seq += 1;
        let event_id = format!("redeemed:{}:{}", hold.programme_id, hold.hold_id);
        let what = match &hold.reward {
            Some(r) => format!("reward {}", r.reward_id),
            None => hold.reference.clone(),
        };
        entry = Some(LedgerEntry {
            seq: next.entry_seq,
            at: now,
            kind: EntryKind::Redeem,
            points: -capture,
            reason: format!("spent at {}: {what}", hold.partner_id),
            partner_id: Some(hold.partner_id.clone()),
            order_id: Some(hold.reference.clone()),
            lot_id: None,
            event_id: event_id.clone(),
            counterparty: None,
            issuers: hold.captured_by_issuer(),
        });
        events.push(DomainEvent {
            event_id,
            occurred_at: now,
            programme_id: hold.programme_id.clone(),
            member_id: hold.member_id.clone(),
            kind: EventKind::PointsRedeemed {
                partner_id: hold.partner_id.clone(),
                hold_id: hold.hold_id.clone(),
                reference: hold.reference.clone(),
                points: capture,
                by_issuer: hold.captured_by_issuer(),
                voucher_code: hold.reward.as_ref().map(|r| r.voucher_code.clone()),
            },
        });
    }
    next.check()?;
    Ok(Settlement {
        outstanding_change: next.outstanding() - account.outstanding(),
        account: next,
        hold,
        lot_changes,
        lots: changed,
        entries: entry.into_iter().collect(),
        events,
    })
}

/// The id of the hold for a partner's reference for a member: the same request again finds
/// the same hold.
pub fn hold_id(partner_id: &str, member_id: &str, reference: &str) -> String {
    let digest = Sha256::digest(format!("{partner_id}|{member_id}|{reference}").as_bytes());
    format!("h_{}", &hex::encode(digest)[..24])
}

/// What a new hold asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    pub points: Points,
    pub reference: String,
    pub minutes: Option<i64>,
    pub request_sha256: String,
    pub reward: Option<RewardClaim>,
}

/// The points a hold asks for: `points`, or an `amount` in the programme currency that is a
/// whole number of points at the programme's point value.
pub fn hold_points(
    points: Option<Points>,
    amount: Option<&str>,
    programme: &Programme,
) -> Result<Points, Error> {
    match (points, amount) {
        (Some(p), None) if p > 0 => Ok(p),
        (Some(_), None) => Err(Error::invalid(
            "invalid_points",
            "points: a whole number above 0",
        )),
        (None, Some(a)) => {
            let money = Money::parse(a, programme.currency)
                .map_err(|e| Error::invalid("invalid_amount", format!("amount: {e}")))?;
            let per_point = programme.point_value_minor.max(1);
            if money.minor <= 0 || money.minor % per_point != 0 {
                return Err(Error::invalid(
                    "invalid_amount",
                    format!(
                        "amount: a positive multiple of the point value ({per_point} minor units)"
                    ),
                ));
            }
            Ok(money.minor / per_point)
        }
        _ => Err(Error::invalid(
            "invalid_field",
            "give either points or amount",
        )),
    }
}

/// The hold a request places on the account as read: its lots chosen by [`choose_lots`]
/// (refused when too few points are available), open until its expiry.
pub fn plan_hold(
    programme: &Programme,
    account: &Account,
    lots: &[Lot],
    partner_id: &str,
    req: &HoldRequest,
    now: DateTime<Utc>,
) -> Result<Hold, Error> {
    let chosen = choose_lots(programme, account, lots, partner_id, req.points, now)?;
    Ok(Hold {
        hold_id: hold_id(partner_id, &account.member_id, &req.reference),
        programme_id: programme.id.clone(),
        member_id: account.member_id.clone(),
        partner_id: partner_id.to_string(),
        reference: req.reference.clone(),
        points: req.points,
        status: HoldStatus::Open,
        captured: 0,
        lots: chosen,
        created_at: now,
        expires_at: expires_at(now, req.minutes),
        resolved_at: None,
        request_sha256: req.request_sha256.clone(),
        reward: req.reward.clone(),
        version: 0,
        staged_lots: None,
        settled_lots: None,
        redeemed_day: None,
        returned: None,
    })
}

/// What capturing or voiding a hold comes to, as it stands at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Settle the open hold: capture `points` ([`HoldStatus::Captured`]) or void it.
    Settle { points: Points, status: HoldStatus },
    /// The hold ran out: release it if it is still stored as open; a void then answers with
    /// it, a capture is refused with `refusal`.
    Lapsed {
        release: bool,
        refusal: Option<Error>,
    },
    /// Already what was asked (a repeated capture or void): answer with it.
    AsIs,
}

/// Decide a capture (`capture`, of `wanted` points or the whole hold) or a void.
pub fn plan_finish(
    hold: &Hold,
    now: DateTime<Utc>,
    capture: bool,
    wanted: Option<Points>,
) -> Result<Finish, Error> {
    match (hold.status_at(now), capture) {
        (HoldStatus::Open, _) => {
            let points = if capture {
                wanted.unwrap_or(hold.points)
            } else {
                0
            };
            if points <= 0 && capture || points > hold.points {
                return Err(Error::invalid(
                    "invalid_capture",
                    format!("points: 1 to {} (the hold)", hold.points),
                ));
            }
            let status = if capture {
                HoldStatus::Captured
            } else {
                HoldStatus::Voided
            };
            Ok(Finish::Settle { points, status })
        }
        (HoldStatus::Expired, _) => Ok(Finish::Lapsed {
            release: hold.status == HoldStatus::Open,
            refusal: capture.then(|| {
                Error::conflict(
                    "hold_expired",
                    "the hold ran out before it was captured; its points are released",
                )
            }),
        }),
        (HoldStatus::Captured, true) | (HoldStatus::Voided, false) => Ok(Finish::AsIs),
        (HoldStatus::Captured, false) => Err(Error::conflict(
            "hold_captured",
            "the hold was captured; refund the order to give points back",
        )),
        (HoldStatus::Voided, true) => Err(Error::conflict(
            "hold_voided",
            "the hold was voided; place a new one",
        )),
        (HoldStatus::Returned, _) => Err(Error::conflict(
            "claim_returned",
            "the claim was captured and then returned; its points are back",
        )),
        // Still being placed (or left half placed): not a hold yet.
        (HoldStatus::Reserving, _) => Err(Error::not_found(
            "hold_not_found",
            "no such hold for this partner",
        )),
    }
}

/// A spend the account cannot make: a non-positive amount is the request's fault; too few
/// points, below the minimum, a closed account conflict with the account's state.
impl From<SpendError> for Error {
    fn from(e: SpendError) -> Self {
        match e {
            SpendError::NotPositive => Error::invalid(e.code(), e.to_string()),
            _ => Error::conflict(e.code(), e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn programme(kind: ProgrammeKind) -> Programme {
        let mut p = Programme::with_defaults("p", "P", kind, Currency::parse("EUR").unwrap());
        p.min_balance_to_redeem = 1000;
        p
    }

    use crate::testing::t0;

    /// An account with lots (issuer, points, day earned), all available by day 30.
    fn earned(p: &Programme, lots: &[(&str, Points, i64)]) -> (Account, Vec<Lot>) {
        crate::testing::earned(p, "m", "O-", lots, now())
    }

    fn now() -> DateTime<Utc> {
        t0() + Duration::days(30)
    }

    /// Reserve as the store does: lots free -> held, account available -> held.
    fn reserve(a: &mut Account, lots: &mut [Lot], hold: &Hold) {
        for h in &hold.lots {
            let l = lots.iter_mut().find(|l| l.lot_id == h.lot_id).unwrap();
            l.remaining -= h.points;
            l.held += h.points;
        }
        a.available -= hold.points;
        a.held += hold.points;
        a.open_holds.insert(
            hold.hold_id.clone(),
            OpenHold {
                points: hold.points,
                expires_at: hold.expires_at,
            },
        );
        a.check().unwrap();
    }

    fn hold(points: Points, lots: Vec<HeldLot>) -> Hold {
        Hold {
            hold_id: "h1".into(),
            programme_id: "p".into(),
            member_id: "m".into(),
            partner_id: "shop".into(),
            reference: "cart-1".into(),
            points,
            status: HoldStatus::Open,
            captured: 0,
            lots,
            created_at: now(),
            expires_at: expires_at(now(), None),
            resolved_at: None,
            request_sha256: String::new(),
            reward: None,
            version: 0,
            staged_lots: None,
            settled_lots: None,
            redeemed_day: None,
            returned: None,
        }
    }

    #[test]
    fn the_minimum_balance_is_on_available_points() {
        let p = programme(ProgrammeKind::Coalition);
        let (a, lots) = earned(&p, &[("shop", 999, 0)]);
        assert_eq!(
            choose_lots(&p, &a, &lots, "shop", 10, now())
                .unwrap_err()
                .code(),
            "below_min_balance"
        );
        let (a, lots) = earned(&p, &[("shop", 1000, 0)]);
        assert_eq!(
            choose_lots(&p, &a, &lots, "shop", 10, now()).unwrap()[0].points,
            10
        );
        assert_eq!(
            choose_lots(&p, &a, &lots, "shop", 1001, now())
                .unwrap_err()
                .code(),
            "insufficient_points"
        );
    }

    #[test]
    fn lots_are_taken_oldest_expiry_first_and_closed_programmes_spend_only_their_own() {
        let p = programme(ProgrammeKind::Coalition);
        let (a, lots) = earned(&p, &[("b", 700, 5), ("a", 600, 0), ("a", 500, 9)]);
        let chosen = choose_lots(&p, &a, &lots, "b", 1000, now()).unwrap();
        let got: Vec<(&str, Points)> = chosen
            .iter()
            .map(|h| (h.lot_id.as_str(), h.points))
            .collect();
        assert_eq!(got, vec![("a:O-1", 600), ("b:O-0", 400)]);

        let closed = programme(ProgrammeKind::Closed);
        let (a, lots) = earned(&closed, &[("a", 1500, 0), ("b", 200, 0)]);
        let err = choose_lots(&closed, &a, &lots, "b", 300, now()).unwrap_err();
        assert_eq!(
            err,
            SpendError::NotSpendableHere {
                spendable: 200,
                wanted: 300
            }
        );
        assert_eq!(
            choose_lots(&closed, &a, &lots, "a", 1500, now())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_partial_capture_consumes_oldest_first_and_releases_the_rest() {
        let p = programme(ProgrammeKind::Coalition);
        let (mut a, mut lots) = earned(&p, &[("a", 600, 0), ("b", 700, 5)]);
        let h = hold(1000, choose_lots(&p, &a, &lots, "c", 1000, now()).unwrap());
        reserve(&mut a, &mut lots, &h);
        let s = settle(&h, &a, &lots, 800, HoldStatus::Captured, now()).unwrap();
        assert_eq!((s.account.available, s.account.held), (500, 0));
        assert_eq!(
            s.hold.captured_by_issuer(),
            [("a".to_string(), 600), ("b".to_string(), 200)]
                .into_iter()
                .collect()
        );
        let free: Vec<(Points, Points)> = s.lots.iter().map(|l| (l.remaining, l.held)).collect();
        assert_eq!(free, vec![(0, 0), (500, 0)]);
        assert_eq!(
            s.entries.first().map(|e| (e.kind, e.points)),
            Some((EntryKind::Redeem, -800))
        );
        // A void releases everything and writes no statement line.
        let v = settle(&h, &a, &lots, 0, HoldStatus::Voided, now()).unwrap();
        assert_eq!(
            (v.account.available, v.account.held, v.entries.is_empty()),
            (1300, 0, true)
        );
        // A resolved hold cannot resolve again.
        assert!(settle(&s.hold, &s.account, &s.lots, 0, HoldStatus::Voided, now()).is_err());
    }

    proptest! {
        /// Whatever is captured, points are conserved: captured + what is left = before.
        #[test]
        fn settling_conserves_points(
            earned_lots in prop::collection::vec((0usize..3, 1i64..2_000, 0i64..20), 1..6),
            want in 1i64..6_000,
            capture_share in 0i64..=100,
        ) {
            let p = programme(ProgrammeKind::Coalition);
            let spec: Vec<(&str, Points, i64)> = earned_lots.iter().map(|(i, pts, d)| (["a", "b", "c"][*i], *pts, *d)).collect();
            let (mut a, mut lots) = earned(&p, &spec);
            let before = a.available + a.held + a.pending.values().sum::<Points>();
            let Ok(chosen) = choose_lots(&p, &a, &lots, "x", want, now()) else {
                return Ok(());
            };
            prop_assert_eq!(chosen.iter().map(|h| h.points).sum::<Points>(), want);
            let h = hold(want, chosen);
            reserve(&mut a, &mut lots, &h);
            let capture = want * capture_share / 100;
            let s = settle(&h, &a, &lots, capture, HoldStatus::Captured, now()).unwrap();
            let after = s.account.available + s.account.held + s.account.pending.values().sum::<Points>();
            prop_assert_eq!(after + capture, before);
            prop_assert_eq!(s.account.held, 0);
            prop_assert!(s.lots.iter().all(|l| l.remaining >= 0 && l.held == 0));
        }
    }

    fn request(points: Points, reference: &str) -> HoldRequest {
        HoldRequest {
            points,
            reference: reference.into(),
            minutes: Some(30),
            request_sha256: "sha".into(),
            reward: None,
        }
    }

    #[test]
    fn hold_points_come_from_points_or_a_whole_amount() {
        let p = programme(ProgrammeKind::Closed);
        assert_eq!(hold_points(Some(250), None, &p), Ok(250));
        // At the default point value of 1 cent, 12.34 EUR is 1,234 points.
        assert_eq!(hold_points(None, Some("12.34"), &p), Ok(1234));
        let code = |r: Result<Points, Error>| r.unwrap_err().code;
        assert_eq!(code(hold_points(Some(0), None, &p)), "invalid_points");
        assert_eq!(code(hold_points(None, Some("-1.00"), &p)), "invalid_amount");
        assert_eq!(code(hold_points(None, Some("1.234"), &p)), "invalid_amount");
        assert_eq!(
            code(hold_points(Some(1), Some("1.00"), &p)),
            "invalid_field"
        );
        assert_eq!(code(hold_points(None, None, &p)), "invalid_field");
        let mut coarse = p.clone();
        coarse.point_value_minor = 5;
        assert_eq!(hold_points(None, Some("0.10"), &coarse), Ok(2));
        assert_eq!(
            code(hold_points(None, Some("0.12"), &coarse)),
            "invalid_amount"
        );
    }

    #[test]
    fn a_planned_hold_takes_lots_and_is_keyed_by_the_reference() {
        let p = programme(ProgrammeKind::Closed);
        let (a, lots) = earned(&p, &[("shop", 800, 0), ("shop", 700, 1)]);
        let h = plan_hold(&p, &a, &lots, "shop", &request(1200, "till-1"), now()).unwrap();
        assert_eq!(
            (h.points, h.status, h.member_id.as_str()),
            (1200, HoldStatus::Open, "m")
        );
        assert_eq!(h.lots.iter().map(|l| l.points).sum::<Points>(), 1200);
        assert_eq!(h.hold_id, hold_id("shop", "m", "till-1"));
        assert_ne!(h.hold_id, hold_id("shop", "m", "till-2"));
        assert_eq!(h.expires_at, now() + Duration::minutes(30));
        // More than is available is refused with the spending rule's code, as a conflict.
        let e = plan_hold(&p, &a, &lots, "shop", &request(1501, "till-3"), now()).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Conflict);
    }

    #[test]
    fn finishing_a_hold_follows_its_state() {
        let p = programme(ProgrammeKind::Closed);
        let (a, lots) = earned(&p, &[("shop", 2000, 0)]);
        let h = plan_hold(&p, &a, &lots, "shop", &request(1200, "till-1"), now()).unwrap();
        assert_eq!(
            plan_finish(&h, now(), true, None),
            Ok(Finish::Settle {
                points: 1200,
                status: HoldStatus::Captured
            })
        );
        assert_eq!(
            plan_finish(&h, now(), true, Some(500)),
            Ok(Finish::Settle {
                points: 500,
                status: HoldStatus::Captured
            })
        );
        assert_eq!(
            plan_finish(&h, now(), false, None),
            Ok(Finish::Settle {
                points: 0,
                status: HoldStatus::Voided
            })
        );
        for bad in [Some(0), Some(1201)] {
            assert_eq!(
                plan_finish(&h, now(), true, bad).unwrap_err().code,
                "invalid_capture"
            );
        }
        // Past its expiry: a void answers with the released hold, a capture is refused.
        let late = h.expires_at;
        assert_eq!(
            plan_finish(&h, late, false, None),
            Ok(Finish::Lapsed {
                release: true,
                refusal: None
            })
        );
        match plan_finish(&h, late, true, None) {
            Ok(Finish::Lapsed {
                release: true,
                refusal: Some(e),
            }) => assert_eq!(e.code, "hold_expired"),
            other => panic!("{other:?}"),
        }
        let mut done = h.clone();
        done.status = HoldStatus::Captured;
        assert_eq!(plan_finish(&done, now(), true, None), Ok(Finish::AsIs));
        assert_eq!(
            plan_finish(&done, now(), false, None).unwrap_err().code,
            "hold_captured"
        );
        done.status = HoldStatus::Voided;
        assert_eq!(plan_finish(&done, now(), false, None), Ok(Finish::AsIs));
        assert_eq!(
            plan_finish(&done, now(), true, None).unwrap_err().code,
            "hold_voided"
        );
    }
}
