//! The nightly job, pure: what one member's night brings (`plan_night`), and when the member
//! next has something due (`next_due`, the key of the date-sharded index).
//!
//! For a night `D` (a local date in the programme's time zone) and a member:
//! - releases whose instant is before the end of `D` are folded into `available`
//!   (`PointsAvailable`);
//! - expiry buckets whose last valid day is `D` or earlier expire, only what is left of them
//!   (`PointsExpired`, an `expire` statement entry); if points are held by an open checkout
//!   hold, expiry waits a night for the hold to resolve;
//! - warnings go out 30 and 7 days before a bucket's last day (`ExpiryWarning`), once each;
//! - a tier above what the rolling 12-month volume supports is lowered (`TierChanged`).
//!
//! Idempotent: a night at or before `night_done` changes nothing, and every transition
//! consumes what it acts on, so a re-run finds nothing to do. Nights skipped and caught up
//! in date order give the same result as every night run.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::account::{Account, AccountError};
use crate::clock::ts;
use crate::events::{DomainEvent, EntryKind, EventKind, LedgerEntry};
use crate::lot::start_of_day;
use crate::money::Points;
use crate::month::Month;
use crate::programme::Programme;

/// Days before expiry that members are warned, farthest first.
pub const WARN_DAYS: [u32; 2] = [30, 7];
/// Shards of each night's index partition (one work item each).
pub const NIGHT_SHARDS: u32 = 16;

/// What a run did, added up over members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NightCounts {
    pub members: u64,
    pub releases: u64,
    pub points_released: Points,
    pub expiries: u64,
    pub points_expired: Points,
    pub warnings: u64,
    pub tiers_changed: u64,
    pub expiries_deferred: u64,
}

impl std::ops::AddAssign for NightCounts {
    fn add_assign(&mut self, o: NightCounts) {
        self.members += o.members;
        self.releases += o.releases;
        self.points_released += o.points_released;
        self.expiries += o.expiries;
        self.points_expired += o.points_expired;
        self.warnings += o.warnings;
        self.tiers_changed += o.tiers_changed;
        self.expiries_deferred += o.expiries_deferred;
    }
}

/// The most items one night write may have (DynamoDB takes 100 per transaction): the
/// account, entries, events and clearing counters. A night with more (a member whose
/// every expiry bucket falls due after a long pause) is written in several plans.
pub const MAX_NIGHT_ITEMS: usize = 90;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NightPlan {
    /// False: more of this night is left for the next plan (the account is not yet marked
    /// done); plan again on `account` and write again.
    pub complete: bool,
    pub account: Account,
    pub entries: Vec<LedgerEntry>,
    pub events: Vec<DomainEvent>,
    pub counts: NightCounts,
    /// Change of the member's outstanding points (unexpired minus debt), from the account's
    /// own buckets: the clearing's check does not trust the entries alone.
    pub outstanding_change: Points,
}

fn local_date(account: &Account, ts_key: &str) -> Option<NaiveDate> {
    DateTime::parse_from_rfc3339(ts_key)
        .ok()
        .map(|t| t.with_timezone(&account.time_zone).date_naive())
}

/// The first night on which the member has something to do, never before the day of their
/// last accrual nor before the night after the last one processed. None: nothing left.
pub fn next_due(account: &Account) -> Option<NaiveDate> {
    let floor = match (
        account.touched_on,
        account.night_done.and_then(|d| d.succ_opt()),
    ) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let at_least = |d: NaiveDate| floor.map_or(d, |f| d.max(f));
    let mut candidates: Vec<NaiveDate> = Vec::new();
    candidates.extend(
        account
            .pending
            .keys()
            .filter_map(|k| local_date(account, k))
            .map(at_least),
    );
    for key in account.expiring.keys() {
        let Ok(last) = key.parse::<NaiveDate>() else {
            continue;
        };
        candidates.push(at_least(last));
        let sent = account.warned.get(key).copied().unwrap_or(u32::MAX);
        for days in WARN_DAYS.into_iter().filter(|d| *d < sent) {
            let when = at_least(last - Duration::days(i64::from(days)));
            if when < last {
                candidates.push(when);
            }
        }
    }
    // A month leaves the rolling window at the end of a month's last night.
    if !account.tier.is_empty() {
        if let Some(f) = floor {
            candidates.push(Month::of_date(f).next().first_day() - Duration::days(1));
        }
    }
    // A reversal took the volume below the tier: the next night reviews it.
    if account.tier_review {
        if let Some(f) = floor {
            candidates.push(f);
        }
    }
    candidates.into_iter().min()
}

/// What night `night` does to one member. None when that night was already processed.
pub fn plan_night(
    programme: &Programme,
    account: &Account,
    night: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Option<NightPlan>, AccountError> {
    if account.night_done.is_some_and(|d| d >= night) {
        return Ok(None);
    }
    let tz = account.time_zone;
    let end = start_of_day(tz, night.succ_opt().unwrap_or(night));
    let mut next = account.clone();
    let mut counts = NightCounts {
        members: 1,
        ..NightCounts::default()
    };
    let (mut entries, mut events) = (Vec::new(), Vec::new());
    let event = |id: String, kind: EventKind| DomainEvent {
        event_id: id,
        occurred_at: now,
        programme_id: account.programme_id.clone(),
        member_id: account.member_id.clone(),
        kind,
    };
    let who = format!("{}:{}", account.programme_id, account.member_id);

    // Items this write may still take: the account, the tier event, the outstanding
    // counter, one spare.
    let mut room = MAX_NIGHT_ITEMS - 4;
    let mut complete = true;

    // Releases due before the end of the night: one event (one message to the member) per
    // local day they fell due, however many lots, named by the day's last release.
    let end_key = ts(end);
    let due: Vec<(String, Points)> = next
        .pending
        .range(..end_key)
        .map(|(k, p)| (k.clone(), *p))
        .collect();
    let mut by_day: BTreeMap<NaiveDate, Vec<(String, Points)>> = BTreeMap::new();
    for (key, points) in due {
        let day = local_date(account, &key).unwrap_or(night);
        by_day.entry(day).or_default().push((key, points));
    }
    for releases in by_day.into_values() {
        if room == 0 {
            complete = false;
            break;
        }
        room -= 1;
        let Some((last, _)) = releases.last() else {
            continue;
        };
        let released_at = DateTime::parse_from_rfc3339(last)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(end);
        let id = format!("available:{who}:{last}");
        let mut total: Points = 0;
        for (key, points) in &releases {
            next.pending.remove(key);
            next.available += points;
            counts.releases += 1;
            total += points;
        }
        counts.points_released += total;
        events.push(event(
            id,
            EventKind::PointsAvailable {
                points: total,
                released_at,
            },
        ));
    }

    // Expiries: buckets whose last valid day is this night or earlier.
    let night_key = night.to_string();
    let expiring: Vec<(String, Points)> = next
        .expiring
        .range(..=night_key.clone())
        .map(|(k, p)| (k.clone(), *p))
        .collect();
    if !complete {
        // Releases filled this write; expiries come in the next.
    } else if !expiring.is_empty() && next.held > 0 {
        // Held points may be among them: expire once the hold has resolved (at most a day).
        counts.expiries_deferred += expiring.len() as u64;
    } else {
        let mut issuers_seen: std::collections::BTreeSet<String> = Default::default();
        for (key, points) in expiring {
            // An entry, an event, and a clearing counter per issuer not counted yet.
            let new_issuers = next.expiring_by_issuer.get(&key).map_or(0, |m| {
                m.keys().filter(|i| !issuers_seen.contains(*i)).count()
            });
            let cost = 2 + new_issuers;
            // (The first bucket of a plan always goes, so every plan makes progress.)
            if cost > room && room < MAX_NIGHT_ITEMS - 4 {
                complete = false;
                break;
            }
            room = room.saturating_sub(cost);
            if let Some(m) = next.expiring_by_issuer.get(&key) {
                issuers_seen.extend(m.keys().cloned());
            }
            if next.available < points {
                return Err(AccountError::Invariant(format!(
                    "bucket {key} has {points} points, available only {}",
                    next.available
                )));
            }
            let issuers = next.expire_bucket(&key);
            next.warned.remove(&key);
            next.available -= points;
            next.entry_seq += 1;
            counts.expiries += 1;
            counts.points_expired += points;
            let expires_on = key.parse::<NaiveDate>().unwrap_or(night);
            let id = format!("expired:{who}:{key}");
            entries.push(LedgerEntry {
                seq: next.entry_seq,
                at: now,
                kind: EntryKind::Expire,
                points: -points,
                reason: format!("points earned up to 12 months before {key} expired unspent"),
                partner_id: None,
                order_id: None,
                lot_id: None,
                event_id: id.clone(),
                counterparty: None,
                issuers,
            });
            events.push(event(id, EventKind::PointsExpired { points, expires_on }));
        }
    }

    // Warnings: the nearest threshold reached and not yet sent, once per bucket.
    let warn: Vec<(String, Points)> = next
        .expiring
        .range(night.succ_opt().unwrap_or(night).to_string()..)
        .map(|(k, p)| (k.clone(), *p))
        .collect();
    for (key, points) in warn {
        if !complete || room == 0 {
            complete = false;
            break;
        }
        let Ok(last) = key.parse::<NaiveDate>() else {
            continue;
        };
        let sent = next.warned.get(&key).copied().unwrap_or(u32::MAX);
        let reached = WARN_DAYS
            .into_iter()
            .filter(|d| last - Duration::days(i64::from(*d)) <= night)
            .min();
        if let Some(days) = reached.filter(|d| *d < sent) {
            room -= 1;
            next.warned.insert(key.clone(), days);
            counts.warnings += 1;
            events.push(event(
                format!("warning:{who}:{key}:{days}"),
                EventKind::ExpiryWarning {
                    points,
                    expires_on: last,
                    days,
                },
            ));
        }
    }

    // Tier: down to what the rolling volume supports, if it fell below the threshold.
    if complete && !next.tier.is_empty() {
        let volume = next.rolling_volume(programme, end);
        let current = next.tier_name(programme).to_string();
        let supported = programme.supported_tier(volume).to_string();
        if programme.tier_rank(&supported) < programme.tier_rank(&current) {
            next.tier = if supported == programme.base_tier() {
                String::new()
            } else {
                supported.clone()
            };
            counts.tiers_changed += 1;
            events.push(event(
                format!("tier:{who}:night:{night}"),
                EventKind::TierChanged {
                    from: current,
                    to: supported,
                    reason: format!("rolling 12-month volume {volume} minor units on {night}"),
                },
            ));
        } else if programme.tier_rank(&current) == 0 {
            next.tier = String::new();
        }
    }

    if complete {
        next.night_done = Some(night);
        next.tier_review = false;
    }
    next.version += 1;
    next.check()?;
    Ok(Some(NightPlan {
        complete,
        outstanding_change: next.outstanding() - account.outstanding(),
        account: next,
        entries,
        events,
        counts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::OpenHold;
    use crate::ledger::plan_order;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;

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

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn earned_on(p: &Programme, a: &Account, order: &str, points: Points, at: &str) -> Account {
        let at: DateTime<Utc> = at.parse().unwrap();
        plan_order(p, a, "shop", order, points, 0, "Silver", at, at)
            .unwrap()
            .account
    }

    /// Run every night from `from` to `to`, returning all events.
    fn nights(p: &Programme, a: &mut Account, from: &str, to: &str) -> Vec<DomainEvent> {
        let mut out = Vec::new();
        let mut night = d(from);
        while night <= d(to) {
            while let Some(plan) = plan_night(p, a, night, Utc::now()).unwrap() {
                *a = plan.account;
                out.extend(plan.events);
                if plan.complete {
                    break;
                }
            }
            night = night.succ_opt().unwrap();
        }
        out
    }

    /// Items one write of `plan` needs: the account, entries, events, and a clearing
    /// counter per issuer of the expired points.
    fn items(plan: &NightPlan) -> usize {
        let issuers: std::collections::BTreeSet<&String> =
            plan.entries.iter().flat_map(|e| e.issuers.keys()).collect();
        1 + plan.entries.len() + plan.events.len() + issuers.len() + 1
    }

    #[test]
    fn a_thousand_releases_in_one_night_are_one_event_and_one_write() {
        let p = programme();
        let mut a = Account::open("p", "m");
        let start: DateTime<Utc> = "2026-01-10T08:00:00Z".parse().unwrap();
        for i in 0..1_000 {
            let at = (start + Duration::seconds(i * 30)).to_rfc3339();
            a = earned_on(&p, &a, &format!("O-{i}"), 2, &at);
        }
        assert_eq!(a.pending.len(), 1_000);
        let plan = plan_night(&p, &a, d("2026-01-24"), Utc::now())
            .unwrap()
            .unwrap();
        assert!(plan.complete);
        assert_eq!(plan.counts.releases, 1_000);
        assert_eq!(plan.events.len(), 1);
        assert!(matches!(
            plan.events[0].kind,
            EventKind::PointsAvailable { points: 2_000, .. }
        ));
        assert_eq!(
            (plan.account.available, plan.account.pending.len()),
            (2_000, 0)
        );
        assert!(items(&plan) <= MAX_NIGHT_ITEMS);
    }

    #[test]
    fn a_night_after_a_long_pause_is_written_in_plans_that_each_fit_a_transaction() {
        // 400 days of orders, then no night run for over a year: every bucket is due at once.
        let p = programme();
        let mut a = Account::open("p", "m");
        let start: DateTime<Utc> = "2025-01-10T10:00:00Z".parse().unwrap();
        for i in 0..400 {
            let at = (start + Duration::days(i)).to_rfc3339();
            a = earned_on(&p, &a, &format!("O-{i}"), 3, &at);
        }
        let night = d("2027-03-01");
        let (mut plans, mut expired, mut released) = (0, 0, 0);
        while let Some(plan) = plan_night(&p, &a, night, Utc::now()).unwrap() {
            plans += 1;
            assert!(items(&plan) <= MAX_NIGHT_ITEMS, "{} items", items(&plan));
            assert_eq!(plan.account.version, a.version + 1);
            expired += plan.counts.points_expired;
            released += plan.counts.points_released;
            a = plan.account;
            if plan.complete {
                break;
            }
        }
        assert!(plans > 4, "{plans} plans");
        assert_eq!((released, expired), (1_200, 1_200));
        assert_eq!(
            (a.available, a.expiring.len(), a.night_done),
            (0, 0, Some(night))
        );
        a.check().unwrap();
        assert_eq!(plan_night(&p, &a, night, Utc::now()).unwrap(), None);
    }

    #[test]
    fn earned_in_january_available_on_the_24th_warned_and_expired_a_year_later() {
        let p = programme();
        let a = earned_on(
            &p,
            &Account::open("p", "m"),
            "A",
            100,
            "2026-01-10T10:00:00Z",
        );
        assert_eq!(next_due(&a), Some(d("2026-01-24")));
        let mut a2 = a.clone();
        let events = nights(&p, &mut a2, "2026-01-10", "2026-01-23");
        assert!(events.is_empty());
        assert_eq!(a2.available, 0);
        let events = nights(&p, &mut a2, "2026-01-24", "2026-01-24");
        assert_eq!(events[0].type_name(), "PointsAvailable");
        assert_eq!(a2.available, 100);
        assert_eq!(next_due(&a2), Some(d("2026-12-11")), "the 30-day warning");
        let events = nights(&p, &mut a2, "2026-01-25", "2027-01-11");
        let names: Vec<(&str, String)> = events
            .iter()
            .map(|e| (e.type_name(), e.event_id.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("ExpiryWarning", "warning:p:m:2027-01-10:30".to_string()),
                ("ExpiryWarning", "warning:p:m:2027-01-10:7".to_string()),
                ("PointsExpired", "expired:p:m:2027-01-10".to_string()),
            ]
        );
        assert_eq!(
            (a2.available, a2.expiring.len(), next_due(&a2)),
            (0, 0, None)
        );
    }

    #[test]
    fn running_a_night_twice_changes_nothing_and_skipped_nights_catch_up_the_same() {
        let p = programme();
        let mut a = earned_on(
            &p,
            &Account::open("p", "m"),
            "A",
            100,
            "2026-01-10T10:00:00Z",
        );
        a = earned_on(&p, &a, "B", 50, "2026-02-03T10:00:00Z");
        let mut every = a.clone();
        let e1 = nights(&p, &mut every, "2026-01-10", "2027-03-01");
        // Only the due nights, as the index gives them.
        let mut due_only = a.clone();
        let mut e2 = Vec::new();
        while let Some(night) = next_due(&due_only) {
            let plan = plan_night(&p, &due_only, night, Utc::now())
                .unwrap()
                .unwrap();
            due_only = plan.account;
            e2.extend(plan.events);
        }
        let ids = |e: &[DomainEvent]| e.iter().map(|x| x.event_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&e1), ids(&e2));
        assert_eq!(
            (every.available, every.expiring.clone()),
            (due_only.available, due_only.expiring.clone())
        );
        // The same night again: nothing.
        assert!(plan_night(&p, &every, d("2027-03-01"), Utc::now())
            .unwrap()
            .is_none());
    }

    #[test]
    fn expiry_takes_only_what_is_left_and_waits_for_an_open_hold() {
        let p = programme();
        let mut a = earned_on(
            &p,
            &Account::open("p", "m"),
            "A",
            100,
            "2026-01-10T10:00:00Z",
        );
        nights(&p, &mut a, "2026-01-24", "2026-01-24");
        // 60 spent (as a capture does): 40 left to expire.
        a.available -= 60;
        *a.expiring.get_mut("2027-01-10").unwrap() -= 60;
        *a.expiring_by_issuer
            .get_mut("2027-01-10")
            .unwrap()
            .get_mut("shop")
            .unwrap() -= 60;
        a.held = 10;
        a.available -= 10;
        a.open_holds.insert(
            "h".into(),
            OpenHold {
                points: 10,
                expires_at: "2027-01-10T12:00:00Z".parse().unwrap(),
            },
        );
        let plan = plan_night(&p, &a, d("2027-01-10"), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(
            (plan.counts.expiries, plan.counts.expiries_deferred),
            (0, 1)
        );
        assert_eq!(next_due(&plan.account), Some(d("2027-01-11")));
        // The hold was voided the next morning: 40 expire the next night.
        let mut b = plan.account;
        b.open_holds.clear();
        b.held = 0;
        b.available += 10;
        let plan = plan_night(&p, &b, d("2027-01-11"), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(
            (plan.counts.points_expired, plan.account.available),
            (40, 0)
        );
        assert_eq!(plan.entries[0].points, -40);
        // Whose points lapsed: the issuer's (for the clearing's breakage).
        assert_eq!(
            plan.entries[0]
                .issuers
                .clone()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![("shop".to_string(), 40)]
        );
        assert_eq!(plan.outstanding_change, -40);
    }

    #[test]
    fn tiers_come_down_when_the_rolling_volume_falls_below_the_threshold() {
        let p = programme();
        let at: DateTime<Utc> = "2026-01-10T10:00:00Z".parse().unwrap();
        let a = plan_order(
            &p,
            &Account::open("p", "m"),
            "shop",
            "A",
            0,
            600_000,
            "Gold",
            at,
            at,
        )
        .unwrap()
        .account;
        assert_eq!(a.tier, "Gold");
        assert_eq!(next_due(&a), Some(d("2026-01-31")));
        let mut b = a.clone();
        // January 2026 counts for 12 months: through December 2026.
        let events = nights(&p, &mut b, "2026-01-11", "2026-12-30");
        assert!(
            events.iter().all(|e| e.type_name() != "TierChanged"),
            "still in the window"
        );
        let events = nights(&p, &mut b, "2026-12-31", "2026-12-31");
        assert!(
            matches!(&events[0].kind, EventKind::TierChanged { from, to, .. } if from == "Gold" && to == "Silver")
        );
        assert_eq!((b.tier.as_str(), next_due(&b)), ("", None));
    }

    #[test]
    fn a_refund_that_takes_a_member_below_their_tier_puts_them_on_that_nights_list() {
        let p = programme();
        let at: DateTime<Utc> = "2026-03-10T10:00:00Z".parse().unwrap();
        let gold = crate::ledger::plan_order(
            &p,
            &Account::open("p", "m"),
            "shop",
            "A",
            150,
            600_000,
            "Gold",
            at,
            at,
        )
        .unwrap();
        let source = crate::ledger::RefundSource {
            partner_id: "shop",
            order_id: "A",
            refund_id: "R-1",
            order_at: at,
        };
        let refund = |volume: i64| {
            let later = at + Duration::days(2);
            let own = gold.lot.clone().unwrap();
            crate::ledger::plan_refund(
                &p,
                &gold.account,
                Some(&own),
                &[],
                source,
                10,
                volume,
                later,
            )
            .unwrap()
            .account
        };
        // Still over Gold's 5,000.00: nothing to review before the release.
        let still = refund(50_000);
        assert!(!still.tier_review);
        assert_eq!(next_due(&still), Some(d("2026-03-24")), "the release");
        // Under it: reviewed the same night, not at the release or the month's end.
        let mut below = refund(150_000);
        assert!(below.tier_review);
        assert_eq!(next_due(&below), Some(d("2026-03-12")));
        let events = nights(&p, &mut below, "2026-03-11", "2026-03-12");
        assert!(
            matches!(&events[..], [e] if matches!(&e.kind, EventKind::TierChanged { from, to, .. } if from == "Gold" && to == "Silver")),
            "{events:?}"
        );
        assert_eq!((below.tier.as_str(), below.tier_review), ("", false));
    }
}
