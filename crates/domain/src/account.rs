//! The member's account: a small aggregate of all their lots, kept in one item so that a
//! balance read is one GetItem, whatever the member's history.
//!
//! Invariant (checked by [`Account::check`] and by property tests):
//!
//! ```text
//! sum(expiring) = available + held + sum(pending)      -- every unexpired remaining point is
//!                                                          scheduled to expire exactly once
//! for every date: sum(expiring_by_issuer[date]) = expiring[date]
//!                                                       -- and we know whose points they are
//! all counters >= 0
//! ```
//!
//! `pending` maps each release instant to the points that become available then; the view
//! folds the due ones into `available` lazily, so the balance is right even before the
//! nightly job has run. `expiring` maps each last-valid local date to the points that expire
//! after it; the view drops dates already past in the same lazy way.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::ts;
use crate::lot::Lot;
use crate::money::{Money, MoneyJson, Points};
use crate::month::Month;
use crate::programme::Programme;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub programme_id: String,
    pub member_id: String,
    /// Incremented by every change; the store writes with `version = expected` (optimistic
    /// concurrency) and numbers ledger entries with it.
    pub version: u64,
    /// Released points, not held.
    pub available: Points,
    /// Points reserved by open holds.
    pub held: Points,
    /// Points owed after a reversal that found nothing left to take (paid off by later accruals).
    pub debt: Points,
    /// Release instant (UTC, `ts` format) -> points still pending until then.
    #[serde(default)]
    pub pending: BTreeMap<String, Points>,
    /// Last valid local date (YYYY-MM-DD) -> remaining points that expire after it.
    #[serde(default)]
    pub expiring: BTreeMap<String, Points>,
    /// The same buckets split by the partner that issued the points (who pays for them in a
    /// coalition, and whose liability lapses when they expire).
    #[serde(default)]
    pub expiring_by_issuer: BTreeMap<String, BTreeMap<String, Points>>,
    pub lifetime_earned: Points,
    /// Number of the last statement entry.
    #[serde(default)]
    pub entry_seq: u64,
    /// Current tier name; empty means the programme's lowest tier.
    #[serde(default)]
    pub tier: String,
    /// Net purchase volume per local month (YYYY-MM, programme time zone), last 12 months.
    #[serde(default)]
    pub volume: BTreeMap<String, i64>,
    /// Times each behaviour campaign has paid this member (for per-member caps).
    #[serde(default)]
    pub behaviour: BTreeMap<String, u32>,
    /// Open checkout holds (hold id -> points and expiry); their points are in `held`.
    #[serde(default)]
    pub open_holds: BTreeMap<String, OpenHold>,
    /// Partners the member enrolled with; empty: enrolled by ops for the whole programme.
    /// Who may do what follows from this (crate::access); orders never change it.
    #[serde(default)]
    pub enrolled_with: Vec<String>,
    /// The programme's time zone (the nightly job's dates are local dates).
    #[serde(default = "utc")]
    pub time_zone: chrono_tz::Tz,
    /// Local date of the last accrual: the nightly index never points before it.
    #[serde(default)]
    pub touched_on: Option<NaiveDate>,
    /// The last night the nightly job processed for this member.
    #[serde(default)]
    pub night_done: Option<NaiveDate>,
    /// Expiry warnings sent: last valid date -> smallest days-ahead sent (30, then 7).
    #[serde(default)]
    pub warned: BTreeMap<String, u32>,
    /// A reversal took the rolling volume below the member's tier: the next night reviews
    /// the tier (as it does at every month's end), whatever else is due for the member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tier_review: bool,
    /// Set on a company's account (crate::company): its users' orders earn here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<crate::company::CompanyAccount>,
    /// A person's company that their orders earn for when an order names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_company: Option<String>,
    /// Merged into this member (crate::merge): what comes for this one goes there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// Local date of the last purchase (an order with volume), for offers' segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_purchase: Option<NaiveDate>,
    /// Partners the member bought at, for offers' segments.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub bought_at: std::collections::BTreeSet<String>,
}

fn utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}

/// An open hold as the account knows it (so a balance read can release it lazily).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHold {
    pub points: Points,
    pub expires_at: DateTime<Utc>,
}

/// The tier window of an instant: the key (`YYYY-MM`, programme time zone) of its month and
/// of the month 11 before it.
fn tier_window(programme: &Programme, at: DateTime<Utc>) -> (String, String) {
    let month = Month::of(at, programme.time_zone);
    (month.back(11).to_string(), month.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("points must be positive")]
    NotPositive,
    #[error("the account would overflow")]
    Overflow,
    #[error("account invariant broken: {0}")]
    Invariant(String),
}

/// What a member (or a shop widget) sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    pub member_id: String,
    pub programme_id: String,
    /// Spendable now.
    pub available: Points,
    /// Earned but still in the return window.
    pub pending: Points,
    /// Reserved by open checkout holds.
    pub held: Points,
    /// pending + available + held.
    pub total: Points,
    /// Points owed from reversals, paid off by the next accruals.
    pub debt: Points,
    /// Points that expire within the next 30 days (programme time zone, today included).
    pub expiring_30d: Points,
    pub expiring: Vec<DatedPoints>,
    /// When pending points become available.
    pub releases: Vec<DatedPoints>,
    /// Money value of the available points.
    pub available_value: MoneyJson,
    /// The member's tier and how far the next one is.
    pub tier: TierProgress,
    pub as_of: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierProgress {
    pub name: String,
    /// Net purchase volume of the last 12 local months.
    pub rolling_volume: MoneyJson,
    /// The next tier up, if any, and the volume still needed to reach it.
    pub next: Option<String>,
    pub to_next: Option<MoneyJson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedPoints {
    pub date: String,
    pub points: Points,
}

fn add(
    map: &mut BTreeMap<String, Points>,
    key: String,
    points: Points,
) -> Result<(), AccountError> {
    let slot = map.entry(key).or_insert(0);
    *slot = slot.checked_add(points).ok_or(AccountError::Overflow)?;
    Ok(())
}

impl Account {
    pub fn open(programme_id: &str, member_id: &str) -> Self {
        Account {
            programme_id: programme_id.to_string(),
            member_id: member_id.to_string(),
            version: 0,
            available: 0,
            held: 0,
            debt: 0,
            pending: BTreeMap::new(),
            expiring: BTreeMap::new(),
            expiring_by_issuer: BTreeMap::new(),
            lifetime_earned: 0,
            entry_seq: 0,
            tier: String::new(),
            volume: BTreeMap::new(),
            behaviour: BTreeMap::new(),
            open_holds: BTreeMap::new(),
            enrolled_with: Vec::new(),
            time_zone: chrono_tz::UTC,
            touched_on: None,
            night_done: None,
            warned: BTreeMap::new(),
            tier_review: false,
            company: None,
            default_company: None,
            merged_into: None,
            last_purchase: None,
            bought_at: std::collections::BTreeSet::new(),
        }
    }

    /// The member's tier name (the programme's lowest when none is recorded).
    pub fn tier_name<'a>(&'a self, programme: &'a Programme) -> &'a str {
        if self.tier.is_empty() {
            programme.base_tier()
        } else {
            &self.tier
        }
    }

    /// Net purchase volume of the 12 local calendar months up to and including `at`'s month.
    pub fn rolling_volume(&self, programme: &Programme, at: DateTime<Utc>) -> i64 {
        let (first, this) = tier_window(programme, at);
        self.volume.range(first..=this).map(|(_, v)| *v).sum()
    }

    /// Add an order's volume to its month and drop months that left the window.
    pub fn add_volume(
        &mut self,
        programme: &Programme,
        at: DateTime<Utc>,
        minor: i64,
    ) -> Result<(), AccountError> {
        let (first, key) = tier_window(programme, at);
        add(&mut self.volume, key, minor)?;
        self.volume.retain(|k, v| *k >= first && *v != 0);
        Ok(())
    }

    /// Take back volume of an order made at `order_at` (a refund), if that month is still in
    /// the rolling window at `now`; older months no longer count for the tier anyway.
    pub fn remove_volume(
        &mut self,
        programme: &Programme,
        order_at: DateTime<Utc>,
        minor: i64,
        now: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let (_, key) = tier_window(programme, order_at);
        if minor <= 0 || key < tier_window(programme, now).0 {
            return Ok(());
        }
        add(&mut self.volume, key, -minor)?;
        self.volume.retain(|_, v| *v != 0);
        Ok(())
    }

    /// Book a new lot: its remaining points are pending until its release instant and
    /// scheduled to expire after its last valid date.
    pub fn add_lot(&mut self, lot: &Lot) -> Result<(), AccountError> {
        if lot.points <= 0 {
            return Err(AccountError::NotPositive);
        }
        // A lot that went to pay off debt in full has nothing left to book.
        if lot.remaining > 0 {
            add(&mut self.pending, ts(lot.available_at), lot.remaining)?;
            add(
                &mut self.expiring,
                lot.expires_on.to_string(),
                lot.remaining,
            )?;
            add(
                self.expiring_by_issuer
                    .entry(lot.expires_on.to_string())
                    .or_default(),
                lot.partner_id.clone(),
                lot.remaining,
            )?;
        }
        self.lifetime_earned = self
            .lifetime_earned
            .checked_add(lot.points)
            .ok_or(AccountError::Overflow)?;
        Ok(())
    }

    /// Book points received from another member (a transfer): available at once, expiring
    /// on the lot's day, as its issuer's. Not earned: the lifetime total stays.
    pub fn book_received(&mut self, lot: &Lot) -> Result<(), AccountError> {
        if lot.points <= 0 {
            return Err(AccountError::NotPositive);
        }
        if lot.remaining > 0 {
            self.available = self
                .available
                .checked_add(lot.remaining)
                .ok_or(AccountError::Overflow)?;
            add(
                &mut self.expiring,
                lot.expires_on.to_string(),
                lot.remaining,
            )?;
            add(
                self.expiring_by_issuer
                    .entry(lot.expires_on.to_string())
                    .or_default(),
                lot.partner_id.clone(),
                lot.remaining,
            )?;
        }
        Ok(())
    }

    /// Take a lot's remaining points out of the account's buckets (pending or available, and
    /// its expiry day, as its issuer's): the lot leaves the account (a merge).
    pub fn take_lot(&mut self, lot: &Lot) -> Result<(), AccountError> {
        let points = lot.remaining;
        if points <= 0 {
            return Ok(());
        }
        let short = || AccountError::Invariant(format!("lot {} is not in the account", lot.lot_id));
        let key = ts(lot.available_at);
        match self.pending.get_mut(&key) {
            Some(p) if *p >= points => {
                *p -= points;
                self.pending.retain(|_, p| *p != 0);
            }
            _ if self.available >= points => self.available -= points,
            _ => return Err(short()),
        }
        self.unbook_expiry_of(&lot.lot_id, lot.expires_on, &lot.partner_id, points)
    }

    /// Put a lot's remaining points into the account's buckets as they are: pending until
    /// its release, else available (a merge). Its lifetime total is the caller's.
    pub fn put_lot(&mut self, lot: &Lot) -> Result<(), AccountError> {
        let points = lot.remaining;
        if points <= 0 {
            return Ok(());
        }
        // Pending under its own release instant; one already past is folded into available
        // by the next read or night, as any due release is.
        add(&mut self.pending, ts(lot.available_at), points)?;
        add(&mut self.expiring, lot.expires_on.to_string(), points)?;
        add(
            self.expiring_by_issuer
                .entry(lot.expires_on.to_string())
                .or_default(),
            lot.partner_id.clone(),
            points,
        )
    }

    /// Move every release that is due at `now` from `pending` into `available` (what the
    /// view does lazily, made permanent). Idempotent.
    pub fn fold_due(&mut self, now: DateTime<Utc>) {
        let now_key = ts(now);
        let due: Vec<String> = self
            .pending
            .range(..=now_key)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(p) = self.pending.remove(&k) {
                self.available += p;
            }
        }
    }

    /// Take `points` out of a lot: its remaining, the bucket the lot's points sit in
    /// (pending until its release, available after; call [`Account::fold_due`] first), and
    /// its expiry date. Returns what was taken (at most the lot's remaining).
    pub fn take_from_lot(
        &mut self,
        lot: &mut Lot,
        points: Points,
        now: DateTime<Utc>,
    ) -> Result<Points, AccountError> {
        let take = points.min(lot.remaining).max(0);
        if take == 0 {
            return Ok(0);
        }
        let bucket = if lot.available_at > now {
            self.pending.get_mut(&ts(lot.available_at))
        } else {
            Some(&mut self.available)
        };
        match bucket {
            Some(b) if *b >= take => *b -= take,
            _ => {
                return Err(AccountError::Invariant(format!(
                    "lot {} is not booked where it should be",
                    lot.lot_id
                )))
            }
        }
        self.unbook_expiry(lot, take)?;
        self.pending.retain(|_, p| *p != 0);
        lot.remaining -= take;
        Ok(take)
    }

    /// `points` of a lot leave the account for good (reversed or spent): they no longer
    /// expire, neither in the date's bucket nor in its issuer's share of it.
    pub fn unbook_expiry(&mut self, lot: &Lot, points: Points) -> Result<(), AccountError> {
        self.unbook_expiry_of(&lot.lot_id, lot.expires_on, &lot.partner_id, points)
    }

    /// [`Account::unbook_expiry`] for a lot known by its id, last valid day and issuer.
    pub fn unbook_expiry_of(
        &mut self,
        lot_id: &str,
        expires_on: NaiveDate,
        issuer: &str,
        points: Points,
    ) -> Result<(), AccountError> {
        let date = expires_on.to_string();
        let missing = || AccountError::Invariant(format!("lot {lot_id} has no expiry booked"));
        match self.expiring.get_mut(&date) {
            Some(e) if *e >= points => *e -= points,
            _ => return Err(missing()),
        }
        let shares = self.expiring_by_issuer.get_mut(&date).ok_or_else(missing)?;
        match shares.get_mut(issuer) {
            Some(e) if *e >= points => *e -= points,
            _ => return Err(missing()),
        }
        shares.retain(|_, p| *p != 0);
        self.expiring.retain(|_, p| *p != 0);
        self.expiring_by_issuer.retain(|_, s| !s.is_empty());
        Ok(())
    }

    /// `points` of a lot come back into the account (a returned claim): they expire after
    /// the lot's last valid day again, as its issuer's. The inverse of
    /// [`Account::unbook_expiry_of`]; the bucket they sit in (available) is the caller's.
    pub fn book_expiry_of(
        &mut self,
        expires_on: NaiveDate,
        issuer: &str,
        points: Points,
    ) -> Result<(), AccountError> {
        add(&mut self.expiring, expires_on.to_string(), points)?;
        add(
            self.expiring_by_issuer
                .entry(expires_on.to_string())
                .or_default(),
            issuer.to_string(),
            points,
        )
    }

    /// Remove a date's bucket (its points expire): what each issuer loses.
    pub fn expire_bucket(&mut self, date: &str) -> BTreeMap<String, Points> {
        self.expiring.remove(date);
        self.expiring_by_issuer.remove(date).unwrap_or_default()
    }

    /// What the member holds net of debt: every unexpired point (pending, available or
    /// held) minus what they owe. The clearing's "outstanding member balance".
    pub fn outstanding(&self) -> Points {
        self.expiring.values().sum::<Points>() - self.debt
    }

    /// The invariant stated at the top of this module.
    pub fn check(&self) -> Result<(), AccountError> {
        let pending: i128 = self.pending.values().map(|p| i128::from(*p)).sum();
        let expiring: i128 = self.expiring.values().map(|p| i128::from(*p)).sum();
        let held = i128::from(self.held);
        let available = i128::from(self.available);
        if self.available < 0 || self.held < 0 || self.debt < 0 {
            return Err(AccountError::Invariant("negative counter".into()));
        }
        if self
            .pending
            .values()
            .chain(self.expiring.values())
            .any(|p| *p <= 0)
        {
            return Err(AccountError::Invariant("empty or negative bucket".into()));
        }
        let holds: i128 = self.open_holds.values().map(|h| i128::from(h.points)).sum();
        if holds != held {
            return Err(AccountError::Invariant(format!(
                "held {held} != open holds {holds}"
            )));
        }
        if expiring != available + held + pending {
            return Err(AccountError::Invariant(format!(
                "expiring {expiring} != available {available} + held {held} + pending {pending}"
            )));
        }
        let dates_match = self.expiring.len() == self.expiring_by_issuer.len();
        for (date, points) in &self.expiring {
            let shares = self.expiring_by_issuer.get(date);
            let split: i128 = shares.map_or(0, |s| s.values().map(|p| i128::from(*p)).sum());
            if !dates_match
                || split != i128::from(*points)
                || shares.is_some_and(|s| s.values().any(|p| *p <= 0))
            {
                return Err(AccountError::Invariant(format!(
                    "the points expiring after {date} are not split by issuer"
                )));
            }
        }
        Ok(())
    }

    /// The member's tier, rolling volume and the distance to the next tier.
    pub fn tier_progress(&self, programme: &Programme, now: DateTime<Utc>) -> TierProgress {
        let name = self.tier_name(programme).to_string();
        let volume = self.rolling_volume(programme, now);
        let rank = programme.tier_rank(&name);
        let next = programme.tiers.get(rank + 1);
        TierProgress {
            rolling_volume: Money::new(volume, programme.currency).into(),
            next: next.map(|t| t.name.clone()),
            to_next: next.map(|t| {
                Money::new((t.threshold_minor - volume).max(0), programme.currency).into()
            }),
            name,
        }
    }

    /// The balance as of `now`, folding in releases and expiries that are due but that the
    /// nightly job has not processed yet.
    pub fn view(&self, programme: &Programme, now: DateTime<Utc>) -> BalanceView {
        let now_key = ts(now);
        let today = now.with_timezone(&programme.time_zone).date_naive();
        let today_key = today.to_string();
        let horizon_key = (today + Duration::days(30)).to_string();

        let released: Points = self
            .pending
            .range(..=now_key.clone())
            .map(|(_, p)| *p)
            .sum();
        let releases: Vec<DatedPoints> = self
            .pending
            .range(now_key.clone()..)
            .filter(|(k, _)| **k != now_key)
            .map(|(k, p)| DatedPoints {
                date: k.clone(),
                points: *p,
            })
            .collect();
        let pending: Points = releases.iter().map(|r| r.points).sum();
        let expired: Points = self
            .expiring
            .range(..today_key.clone())
            .map(|(_, p)| *p)
            .sum();
        let expiring: Vec<DatedPoints> = self
            .expiring
            .range(today_key..=horizon_key)
            .map(|(k, p)| DatedPoints {
                date: k.clone(),
                points: *p,
            })
            .collect();
        // Holds past their time are released, whether or not anyone has written it yet.
        let lapsed: Points = self
            .open_holds
            .values()
            .filter(|h| now >= h.expires_at)
            .map(|h| h.points)
            .sum();
        let held = self.held - lapsed;
        let available = (self.available + lapsed + released - expired).max(0);
        let value = available.saturating_mul(programme.point_value_minor);
        BalanceView {
            member_id: self.member_id.clone(),
            programme_id: self.programme_id.clone(),
            available,
            pending,
            held,
            total: available + pending + held,
            debt: self.debt,
            expiring_30d: expiring.iter().map(|e| e.points).sum(),
            expiring,
            releases,
            available_value: Money::new(value, programme.currency).into(),
            tier: self.tier_progress(programme, now),
            as_of: now,
        }
    }
}

/// Upgrade an account written before the expiry buckets were split by issuer (issue 8):
/// rebuild `expiring_by_issuer` from the member's lots (remaining + held of each lot, by
/// its expiry date and issuer). Some(upgraded account) when it needed it and the lots add
/// up to its buckets; None when it is already current. Err when the lots disagree with the
/// buckets (left for `bonus audit` to report; nothing is guessed).
pub fn split_expiry_by_issuer(
    account: &Account,
    lots: &[Lot],
) -> Result<Option<Account>, AccountError> {
    if account.check().is_ok() || account.expiring.is_empty() {
        return Ok(None);
    }
    let mut split: BTreeMap<String, BTreeMap<String, Points>> = BTreeMap::new();
    for l in lots {
        let date = l.expires_on.to_string();
        let points = l.remaining + l.held;
        if points != 0 && account.expiring.contains_key(&date) {
            *split
                .entry(date)
                .or_default()
                .entry(l.partner_id.clone())
                .or_default() += points;
        }
    }
    let mut upgraded = account.clone();
    upgraded.expiring_by_issuer = split;
    upgraded.check()?;
    upgraded.version += 1;
    Ok(Some(upgraded))
}

/// Upgrade an account written before orders stopped granting access (schema 1): until then
/// an order at a partner added that partner to `enrolled_with`. The profile has always kept
/// the partners the member really enrolled with, so the account takes its list from there.
/// Some(upgraded) when it differs, None when it is already right.
pub fn restore_enrolment(account: &Account, enrolled_with: &[String]) -> Option<Account> {
    if account.enrolled_with == enrolled_with {
        return None;
    }
    let mut upgraded = account.clone();
    upgraded.enrolled_with = enrolled_with.to_vec();
    upgraded.version += 1;
    Some(upgraded)
}

/// A broken account invariant or an overflow: ours, never the caller's.
impl From<AccountError> for crate::error::Error {
    fn from(e: AccountError) -> Self {
        crate::error::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;
    use proptest::prelude::*;

    fn programme() -> Programme {
        let mut p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Closed,
            Currency::parse("EUR").unwrap(),
        );
        p.time_zone = chrono_tz::Europe::Amsterdam;
        p
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn volume_rolls_over_twelve_local_months() {
        let p = programme();
        let mut a = Account::open("p", "m");
        a.add_volume(&p, at("2025-11-30T23:30:00Z"), 100).unwrap(); // 1 Dec in Amsterdam
        a.add_volume(&p, at("2026-06-15T10:00:00Z"), 50).unwrap();
        assert_eq!(a.rolling_volume(&p, at("2026-11-15T00:00:00Z")), 150);
        assert_eq!(
            a.rolling_volume(&p, at("2026-12-15T00:00:00Z")),
            50,
            "Dec 2025 left the window"
        );
        a.add_volume(&p, at("2027-01-01T12:00:00Z"), 1).unwrap();
        assert_eq!(
            a.volume.keys().cloned().collect::<Vec<_>>(),
            vec!["2026-06", "2027-01"]
        );
        assert_eq!(
            tier_window(&p, at("2026-12-15T12:00:00Z")),
            ("2026-01".to_string(), "2026-12".to_string())
        );
        assert_eq!(
            tier_window(&p, at("2026-01-15T12:00:00Z")),
            ("2025-02".to_string(), "2026-01".to_string())
        );
    }

    #[test]
    fn a_new_lot_is_pending_then_available_then_expiring_then_gone() {
        let p = programme();
        let mut a = Account::open("p", "m");
        a.add_lot(&Lot::new(
            &p,
            "m",
            "shop",
            "A-1",
            99,
            at("2026-01-10T10:00:00Z"),
        ))
        .unwrap();
        a.check().unwrap();

        let v = a.view(&p, at("2026-01-10T10:00:01Z"));
        assert_eq!(
            (v.available, v.pending, v.total, v.expiring_30d),
            (0, 99, 99, 0)
        );
        assert_eq!(
            v.releases,
            vec![DatedPoints {
                date: "2026-01-24T10:00:00Z".into(),
                points: 99
            }]
        );

        let v = a.view(&p, at("2026-01-24T10:00:00Z"));
        assert_eq!((v.available, v.pending, v.total), (99, 0, 99));
        assert_eq!(v.available_value.minor, 99);

        let v = a.view(&p, at("2026-12-10T10:00:00Z"));
        assert_eq!(
            (v.available, v.expiring_30d),
            (99, 0),
            "10 Jan 2027 is 31 days after 10 Dec 2026"
        );
        let v = a.view(&p, at("2026-12-11T10:00:00Z"));
        assert_eq!(
            v.expiring_30d, 99,
            "10 Jan 2027 is 30 days after 11 Dec 2026"
        );

        // Last valid day, late evening in Amsterdam.
        assert_eq!(a.view(&p, at("2027-01-10T22:59:00Z")).available, 99);
        // Midnight in Amsterdam: gone, even before the nightly job ran.
        let v = a.view(&p, at("2027-01-10T23:00:00Z"));
        assert_eq!((v.available, v.total), (0, 0));
    }

    proptest! {
        #[test]
        fn adding_lots_keeps_the_invariant(
            lots in proptest::collection::vec((1i64..1_000_000, 0i64..400 * 86_400), 1..50),
            probe in 0i64..500 * 86_400,
        ) {
            let p = programme();
            let base = at("2026-01-01T00:00:00Z");
            let mut a = Account::open("p", "m");
            for (i, (points, offset)) in lots.iter().enumerate() {
                let lot = Lot::new(&p, "m", "shop", &i.to_string(), *points, base + Duration::seconds(*offset));
                a.add_lot(&lot).unwrap();
            }
            a.check().unwrap();
            let sum: i64 = lots.iter().map(|(p, _)| p).sum();
            prop_assert_eq!(a.lifetime_earned, sum);
            let v = a.view(&p, base + Duration::seconds(probe));
            prop_assert!(v.available >= 0 && v.pending >= 0);
            prop_assert_eq!(v.total, v.available + v.pending + v.held);
            prop_assert!(v.total <= sum);
        }
    }

    #[test]
    fn an_account_from_before_the_issuer_split_is_upgraded_from_its_lots() {
        let p = programme();
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        let mut a = Account::open("p", "m");
        let mut lots = Vec::new();
        for (i, issuer) in ["bakery", "cafe", "bakery"].iter().enumerate() {
            let plan = crate::ledger::plan_order(
                &p,
                &a,
                issuer,
                &format!("O-{i}"),
                100 * (i as i64 + 1),
                0,
                "Silver",
                at("2026-11-01T10:00:00Z"),
                at("2026-11-01T10:00:00Z"),
            )
            .unwrap();
            a = plan.account;
            lots.extend(plan.lot);
        }
        let current = a.clone();
        assert_eq!(
            split_expiry_by_issuer(&current, &lots),
            Ok(None),
            "current: nothing to do"
        );
        let mut old = a.clone();
        old.expiring_by_issuer.clear();
        assert!(old.check().is_err());
        let upgraded = split_expiry_by_issuer(&old, &lots).unwrap().unwrap();
        assert_eq!(upgraded.expiring_by_issuer, current.expiring_by_issuer);
        assert_eq!(upgraded.version, old.version + 1);
        upgraded.check().unwrap();
        // Lots that do not add up to the buckets are not guessed at.
        assert!(split_expiry_by_issuer(&old, &lots[..1]).is_err());
    }
}
