//! Pure ledger decisions: given what was read, what must be written. No I/O here; the store
//! writes the plan in one transaction, conditional on the account version that was read.

use chrono::{DateTime, Utc};

use crate::account::{Account, AccountError};
use crate::events::{DomainEvent, EntryKind, EventKind, LedgerEntry};
use crate::lot::Lot;
use crate::money::Points;
use crate::programme::{Programme, Tier};

/// What one order writes to the member's account, decided before the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPlan {
    pub account: Account,
    /// The new lot, if the order earned points.
    pub lot: Option<Lot>,
    pub entry: Option<LedgerEntry>,
    /// PointsEarned, TierChanged: written to the outbox in the same transaction.
    pub events: Vec<DomainEvent>,
    /// Change of the member's outstanding points (unexpired minus debt), from the account's
    /// own buckets: the clearing's check does not trust the entries alone.
    pub outstanding_change: Points,
}

/// The tier an order earns at. Tiers only go up at order time: an order whose volume lifts
/// the rolling 12-month volume over a threshold upgrades the member, and its own points
/// already earn at the new tier. Downgrades are the nightly job's.
pub fn tier_for_order<'a>(
    programme: &'a Programme,
    account: &Account,
    at: DateTime<Utc>,
    order_volume: i64,
) -> &'a Tier {
    let current = account.tier_name(programme);
    let reached = account
        .rolling_volume(programme, at)
        .saturating_add(order_volume.max(0));
    let by_volume = programme.tier_for_volume(reached);
    let current_tier = programme.tier(current).or(programme.tiers.first());
    match (current_tier, by_volume) {
        (Some(c), Some(v)) if programme.tier_rank(&v.name) > programme.tier_rank(&c.name) => v,
        (Some(c), _) => c,
        (None, Some(v)) => v,
        // A programme always has tiers (validated); this is only reached for a broken item.
        (None, None) => &FALLBACK_TIER,
    }
}

static FALLBACK_TIER: std::sync::LazyLock<Tier> = std::sync::LazyLock::new(|| Tier {
    name: String::new(),
    threshold_minor: 0,
    multiplier: rust_decimal::Decimal::ONE,
});

/// Book an order on a member's account: its volume, a tier upgrade, and (if it earned any)
/// a new lot with its statement entry and PointsEarned event.
#[allow(clippy::too_many_arguments)]
pub fn plan_order(
    programme: &Programme,
    account: &Account,
    partner_id: &str,
    order_id: &str,
    points: Points,
    volume_minor: i64,
    tier: &str,
    earned_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<OrderPlan, AccountError> {
    let mut next = account.clone();
    next.version += 1;
    next.time_zone = programme.time_zone;
    next.touched_on = Some(now.with_timezone(&programme.time_zone).date_naive());
    next.add_volume(programme, earned_at, volume_minor)?;
    if volume_minor > 0 {
        // A purchase: what offers' segments ask (crate::offer).
        let day = earned_at.with_timezone(&programme.time_zone).date_naive();
        next.last_purchase = next.last_purchase.max(Some(day));
        next.bought_at.insert(partner_id.to_string());
    }
    // Buying at a partner never grants it access to the member (crate::access): only
    // enrolment does, so `enrolled_with` is left as it is.
    let mut events = Vec::new();
    let before = account.tier_name(programme).to_string();
    if tier != before {
        next.tier = tier.to_string();
        events.push(DomainEvent {
            event_id: format!(
                "tier:{}:{}:{}",
                programme.id, account.member_id, next.version
            ),
            occurred_at: now,
            programme_id: programme.id.clone(),
            member_id: account.member_id.clone(),
            kind: EventKind::TierChanged {
                from: before,
                to: tier.to_string(),
                reason: format!("order {order_id} at {partner_id}"),
            },
        });
    }
    let (mut lot, mut entry) = (None, None);
    if points > 0 {
        let mut new_lot = Lot::new(
            programme,
            &account.member_id,
            partner_id,
            order_id,
            points,
            earned_at,
        );
        // Debt from earlier reversals is paid off first, out of the new lot.
        let repaid = next.debt.min(points);
        new_lot.remaining -= repaid;
        next.debt -= repaid;
        next.add_lot(&new_lot)?;
        next.entry_seq += 1;
        let event_id = format!("earned:{}:{}", programme.id, new_lot.lot_id);
        entry = Some(LedgerEntry {
            seq: next.entry_seq,
            at: now,
            kind: EntryKind::Earn,
            points,
            reason: if repaid > 0 {
                format!("order {order_id} at {partner_id} ({repaid} paid off debt)")
            } else {
                format!("order {order_id} at {partner_id}")
            },
            partner_id: Some(partner_id.to_string()),
            order_id: Some(order_id.to_string()),
            lot_id: Some(new_lot.lot_id.clone()),
            event_id: event_id.clone(),
            counterparty: None,
            issuers: [(partner_id.to_string(), points)].into(),
        });
        events.push(DomainEvent {
            event_id,
            occurred_at: now,
            programme_id: programme.id.clone(),
            member_id: account.member_id.clone(),
            kind: EventKind::PointsEarned {
                partner_id: partner_id.to_string(),
                order_id: order_id.to_string(),
                lot_id: new_lot.lot_id.clone(),
                points,
                available_at: new_lot.available_at,
                expires_on: new_lot.expires_on,
            },
        });
        lot = Some(new_lot);
    }
    next.check()?;
    Ok(OrderPlan {
        outstanding_change: next.outstanding() - account.outstanding(),
        account: next,
        lot,
        entry,
        events,
    })
}

/// Where the points of a reversal came from. Invariant (checked by property tests):
///
/// ```text
/// from_own + from_others + to_debt = points
/// (total - debt) after = (total - debt) before - points      -- nothing silently dropped
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversalPlan {
    pub account: Account,
    /// Every lot that lost points, with its new remaining.
    pub lots: Vec<Lot>,
    /// What was taken out of each lot, in the order it was taken.
    pub taken: Vec<(String, Points)>,
    pub from_own: Points,
    pub from_others: Points,
    pub to_debt: Points,
    /// Of the order's own points, already expired unspent (the nightly job took them): the
    /// member is not charged for them again, and the issuer's liability already lapsed.
    pub expired: Points,
}

/// Reverse `points`: first from the order's own lot (pending or available), then from the
/// member's other available lots, oldest expiry first, and what is still missing becomes a
/// debt. Never fails for lack of points. What is left of the own lot after it expired
/// (and the nightly job took its bucket) counts as given back: nothing is charged for it. `others` may hold any of the member's lots; only
/// the available, unexpired ones with points left are used.
pub fn plan_reversal(
    account: &Account,
    own: Option<&Lot>,
    others: &[Lot],
    points: Points,
    now: DateTime<Utc>,
) -> Result<ReversalPlan, AccountError> {
    if points <= 0 {
        return Err(AccountError::NotPositive);
    }
    let mut next = account.clone();
    next.fold_due(now);
    let mut lots = Vec::new();
    let mut taken = Vec::new();
    let mut left = points;
    let (mut from_own, mut expired) = (0, 0);
    if let Some(lot) = own {
        let mut lot = lot.clone();
        // The job expires a whole day's bucket at once; the lot item keeps its remaining.
        let lapsed = lot.status(now) == crate::lot::LotStatus::Expired
            && !next.expiring.contains_key(&lot.expires_on.to_string());
        let took = if lapsed {
            expired = left.min(lot.remaining).max(0);
            lot.remaining -= expired;
            expired
        } else {
            from_own = next.take_from_lot(&mut lot, left, now)?;
            from_own
        };
        left -= took;
        if took > 0 {
            taken.push((lot.lot_id.clone(), took));
            lots.push(lot);
        }
    }
    let own_id = own.map(|l| l.lot_id.as_str());
    let mut candidates: Vec<Lot> = others
        .iter()
        .filter(|l| Some(l.lot_id.as_str()) != own_id)
        .filter(|l| l.remaining > 0 && l.status(now) == crate::lot::LotStatus::Available)
        .cloned()
        .collect();
    candidates.sort_by(|a, b| (a.expires_at, &a.lot_id).cmp(&(b.expires_at, &b.lot_id)));
    let mut from_others = 0;
    for mut lot in candidates {
        if left == 0 {
            break;
        }
        // Held points are reserved: only what is available and not held can be taken.
        let spendable = next.available.min(lot.remaining);
        let took = next.take_from_lot(&mut lot, left.min(spendable), now)?;
        if took > 0 {
            from_others += took;
            left -= took;
            taken.push((lot.lot_id.clone(), took));
            lots.push(lot);
        }
    }
    next.debt = next.debt.checked_add(left).ok_or(AccountError::Overflow)?;
    next.version += 1;
    next.check()?;
    Ok(ReversalPlan {
        account: next,
        lots,
        taken,
        from_own,
        from_others,
        to_debt: left,
        expired,
    })
}

/// Why points are reversed: which refund of which order.
#[derive(Debug, Clone, Copy)]
pub struct RefundSource<'a> {
    pub partner_id: &'a str,
    pub order_id: &'a str,
    /// [`crate::refund::CANCEL_ID`] for a cancellation.
    pub refund_id: &'a str,
    /// When the order was made (its volume month).
    pub order_at: DateTime<Utc>,
}

/// What a refund writes to the member's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPlan {
    pub account: Account,
    /// Lots that lost points, with their new remaining.
    pub lots: Vec<Lot>,
    /// What was taken out of each lot (written as deltas: `remaining -= taken`).
    pub taken: Vec<(String, Points)>,
    /// At most three statement entries, however many lots: the order's own lot, the
    /// member's other lots (their issuers in `issuers`), the debt.
    pub entries: Vec<LedgerEntry>,
    pub events: Vec<DomainEvent>,
    pub from_own: Points,
    pub from_others: Points,
    pub to_debt: Points,
    /// Of the order's own points, already expired: nothing taken back for them.
    pub expired: Points,
    /// Change of the member's outstanding points (unexpired minus debt), from the account's
    /// own buckets: the clearing's check does not trust the entries alone.
    pub outstanding_change: Points,
}

/// Book a reversal of `points` and `volume_minor` on the account (see [`plan_reversal`] for
/// where the points come from). With nothing to reverse, the account is unchanged.
#[allow(clippy::too_many_arguments)]
pub fn plan_refund(
    programme: &Programme,
    account: &Account,
    own: Option<&Lot>,
    others: &[Lot],
    source: RefundSource<'_>,
    points: Points,
    volume_minor: i64,
    now: DateTime<Utc>,
) -> Result<RefundPlan, AccountError> {
    let mut plan = RefundPlan {
        account: account.clone(),
        lots: Vec::new(),
        taken: Vec::new(),
        entries: Vec::new(),
        events: Vec::new(),
        from_own: 0,
        from_others: 0,
        to_debt: 0,
        expired: 0,
        outstanding_change: 0,
    };
    if points <= 0 && volume_minor <= 0 {
        return Ok(plan);
    }
    let what = if source.refund_id == crate::refund::CANCEL_ID {
        format!("cancellation of order {}", source.order_id)
    } else {
        format!("refund {} of order {}", source.refund_id, source.order_id)
    };
    if points > 0 {
        let r = plan_reversal(account, own, others, points, now)?;
        plan.account = r.account;
        let own_id = own.map(|l| l.lot_id.as_str());
        let next = &mut plan.account;
        // The reversed points were their lots' issuers': their liability shrinks.
        let issuer_of = |lot_id: &str| {
            r.lots
                .iter()
                .find(|l| l.lot_id == lot_id)
                .map_or(source.partner_id, |l| l.partner_id.as_str())
                .to_string()
        };
        type Takes<'t> = Vec<&'t (String, Points)>;
        let (own_taken, others_taken): (Takes, Takes) = r
            .taken
            .iter()
            .partition(|(id, _)| Some(id.as_str()) == own_id);
        // (What the own lot gave that had expired is no change to the member: no entry.)
        for (lot_id, _) in own_taken.into_iter().filter(|_| r.from_own > 0) {
            let took = &r.from_own;
            next.entry_seq += 1;
            plan.entries.push(LedgerEntry {
                seq: next.entry_seq,
                at: now,
                kind: EntryKind::Reversal,
                points: -took,
                reason: format!("{what} at {}", source.partner_id),
                partner_id: Some(source.partner_id.to_string()),
                order_id: Some(source.order_id.to_string()),
                lot_id: Some(lot_id.clone()),
                event_id: String::new(),
                counterparty: None,
                issuers: [(issuer_of(lot_id), *took)].into(),
            });
        }
        if !others_taken.is_empty() {
            // One entry for every other lot (a daily customer's refund may draw on hundreds).
            let mut issuers: std::collections::BTreeMap<String, Points> = Default::default();
            for (lot_id, took) in &others_taken {
                *issuers.entry(issuer_of(lot_id)).or_default() += took;
            }
            let total: Points = others_taken.iter().map(|(_, t)| t).sum();
            let (lot_id, whence) = match others_taken.as_slice() {
                [(id, _)] => (Some(id.clone()), format!("lot {id}")),
                many => (None, format!("{} other lots, oldest first", many.len())),
            };
            next.entry_seq += 1;
            plan.entries.push(LedgerEntry {
                seq: next.entry_seq,
                at: now,
                kind: EntryKind::Reversal,
                points: -total,
                reason: format!(
                    "{what} at {}: the order's own points were already spent, taken from {whence}",
                    source.partner_id
                ),
                partner_id: Some(source.partner_id.to_string()),
                order_id: Some(source.order_id.to_string()),
                lot_id,
                event_id: String::new(),
                counterparty: None,
                issuers,
            });
        }
        if r.to_debt > 0 {
            next.entry_seq += 1;
            plan.entries.push(LedgerEntry {
                seq: next.entry_seq,
                at: now,
                kind: EntryKind::Debt,
                points: -r.to_debt,
                reason: format!(
                    "{what} at {}: {} points were already spent and are owed; later points pay them off first",
                    source.partner_id, r.to_debt
                ),
                partner_id: Some(source.partner_id.to_string()),
                order_id: Some(source.order_id.to_string()),
                lot_id: None,
                event_id: String::new(),
                counterparty: None,
                issuers: [(source.partner_id.to_string(), r.to_debt)].into(),
            });
        }
        let event_id = format!(
            "reversed:{}:{}:{}:{}",
            programme.id, source.partner_id, source.order_id, source.refund_id
        );
        for e in &mut plan.entries {
            e.event_id = event_id.clone();
        }
        // The member is told what they lose; points that had expired are not news.
        if points > r.expired {
            plan.events.push(DomainEvent {
                event_id,
                occurred_at: now,
                programme_id: programme.id.clone(),
                member_id: account.member_id.clone(),
                kind: EventKind::PointsReversed {
                    partner_id: source.partner_id.to_string(),
                    order_id: source.order_id.to_string(),
                    refund_id: source.refund_id.to_string(),
                    points: points - r.expired,
                    from_own: r.from_own,
                    from_others: r.from_others,
                    to_debt: r.to_debt,
                },
            });
        }
        plan.lots = r.lots;
        plan.taken = r.taken;
        plan.from_own = r.from_own;
        plan.from_others = r.from_others;
        plan.to_debt = r.to_debt;
        plan.expired = r.expired;
    } else {
        plan.account.version += 1;
    }
    plan.account
        .remove_volume(programme, source.order_at, volume_minor, now)?;
    // Tiers come down at night: a member this reversal took below their tier is on the next
    // night's list, not only when something else is due for them.
    let supported = programme.supported_tier(plan.account.rolling_volume(programme, now));
    if !plan.account.tier.is_empty()
        && programme.tier_rank(supported) < programme.tier_rank(plan.account.tier_name(programme))
    {
        plan.account.tier_review = true;
        // Tonight at the earliest: the nightly index never points before this day.
        let today = now.with_timezone(&programme.time_zone).date_naive();
        plan.account.touched_on = Some(plan.account.touched_on.map_or(today, |d| d.max(today)));
    }
    plan.account.check()?;
    plan.outstanding_change = plan.account.outstanding() - account.outstanding();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;

    fn programme() -> Programme {
        Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Closed,
            Currency::parse("EUR").unwrap(),
        )
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_purchase_records_its_partner_and_day_and_an_older_one_keeps_the_last() {
        let p = programme();
        let a = Account::open("p", "m");
        let later: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        let first = plan_order(&p, &a, "shop", "A-1", 10, 1_000, "Silver", later, later).unwrap();
        let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
        assert_eq!(first.account.last_purchase, Some(day("2026-11-25")));
        // An order imported late, at another partner: added, the last purchase stays.
        let old = plan_order(
            &p,
            &first.account,
            "bakery",
            "B-1",
            5,
            500,
            "Silver",
            now(),
            later,
        )
        .unwrap();
        assert_eq!(old.account.last_purchase, Some(day("2026-11-25")));
        assert_eq!(
            old.account.bought_at.iter().collect::<Vec<_>>(),
            ["bakery", "shop"]
        );
        // A bonus without volume (a behaviour event) is no purchase.
        let bonus = plan_order(&p, &a, "shop", "event/x", 50, 0, "Silver", now(), now()).unwrap();
        assert_eq!(
            (bonus.account.last_purchase, bonus.account.bought_at.len()),
            (None, 0)
        );
    }

    #[test]
    fn an_order_plans_lot_entry_and_event_with_the_next_version() {
        let p = programme();
        let a = Account::open("p", "m");
        let plan = plan_order(&p, &a, "shop", "A-1", 99, 9_990, "Silver", now(), now()).unwrap();
        assert_eq!((plan.account.version, plan.account.entry_seq), (1, 1));
        assert_eq!(plan.entry.as_ref().unwrap().seq, 1);
        let lot = plan.lot.as_ref().unwrap();
        assert_eq!((lot.lot_id.as_str(), lot.remaining), ("shop:A-1", 99));
        assert_eq!(plan.account.view(&p, now()).pending, 99);
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.events[0].event_id, "earned:p:shop:A-1");
        assert_eq!(plan.account.rolling_volume(&p, now()), 9_990);
    }

    #[test]
    fn a_zero_point_order_still_counts_volume_but_writes_no_lot() {
        let plan = plan_order(
            &programme(),
            &Account::open("p", "m"),
            "shop",
            "A-2",
            0,
            500,
            "Silver",
            now(),
            now(),
        )
        .unwrap();
        assert!(plan.lot.is_none() && plan.entry.is_none() && plan.events.is_empty());
        assert_eq!((plan.account.version, plan.account.entry_seq), (1, 0));
    }

    fn net_worth(a: &Account) -> i64 {
        a.available + a.held + a.pending.values().sum::<i64>() - a.debt
    }

    #[test]
    fn a_reversal_takes_from_the_own_lot_then_other_lots_oldest_first_then_debt() {
        let p = programme();
        let t0: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let mut a = Account::open("p", "m");
        let mut lots = Vec::new();
        for (i, (points, day)) in [(100, 0), (50, 1), (1000, 40)].iter().enumerate() {
            let plan = plan_order(
                &p,
                &a,
                "shop",
                &format!("O-{i}"),
                *points,
                0,
                "Silver",
                t0 + chrono::Duration::days(*day),
                t0,
            )
            .unwrap();
            a = plan.account;
            lots.push(plan.lot.unwrap());
        }
        let now = t0 + chrono::Duration::days(45); // lots 0 and 1 available, lot 2 pending
                                                   // Reverse 1,200 of order 2 (pending lot of 1,000): 1,000 own, 150 from the others, 50 debt.
        let r = plan_reversal(&a, Some(&lots[2]), &lots, 1_200, now).unwrap();
        assert_eq!((r.from_own, r.from_others, r.to_debt), (1_000, 150, 50));
        assert_eq!(r.account.debt, 50);
        assert_eq!(net_worth(&r.account), net_worth(&a) - 1_200);
        assert_eq!(
            r.lots
                .iter()
                .map(|l| (l.lot_id.as_str(), l.remaining))
                .collect::<Vec<_>>(),
            vec![("shop:O-2", 0), ("shop:O-0", 0), ("shop:O-1", 0)]
        );
        // Partial: 30 of order 0 (available) comes from its own lot only.
        let r = plan_reversal(&a, Some(&lots[0]), &lots, 30, now).unwrap();
        assert_eq!(
            (r.from_own, r.from_others, r.to_debt, r.lots[0].remaining),
            (30, 0, 0, 70)
        );
        assert_eq!(r.account.view(&p, now).available, 120);
    }

    /// Found by the simulation (seed 17, step 127: a 500): a refund after the order's lot
    /// expired and the nightly job took its bucket. What is left of the lot expired unspent:
    /// nothing is charged for it, no entry, no event; only the rest of the reversal (points
    /// of the order that were spent) comes from other lots or becomes debt.
    #[test]
    fn a_refund_after_the_orders_points_expired_charges_nothing_for_them() {
        let p = programme();
        let t0: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let a = Account::open("p", "m");
        let old = plan_order(&p, &a, "shop", "O-1", 100, 0, "Silver", t0, t0).unwrap();
        let t1 = t0 + chrono::Duration::days(300);
        let new = plan_order(&p, &old.account, "shop", "O-2", 500, 0, "Silver", t1, t1).unwrap();
        let mut lot = old.lot.unwrap();
        let mut a = new.account;
        // 40 of order 1 were spent (the lot item keeps 60); then the job expired its bucket.
        let now = t0 + chrono::Duration::days(400);
        a.fold_due(now);
        a.take_from_lot(&mut lot, 40, now).unwrap();
        let bucket = lot.expires_on.to_string();
        assert_eq!(a.expiring.get(&bucket), Some(&60));
        a.available -= 60;
        a.expire_bucket(&bucket);
        let before = a.clone();

        let source = RefundSource {
            partner_id: "shop",
            order_id: "O-1",
            refund_id: "CANCEL",
            order_at: t0,
        };
        let plan = plan_refund(&p, &a, Some(&lot), &[lot.clone()], source, 100, 0, now).unwrap();
        // 60 had expired; the 40 that were spent come out of the member's other points.
        assert_eq!(
            (plan.from_own, plan.from_others, plan.to_debt, plan.expired),
            (0, 0, 40, 60)
        );
        assert_eq!(plan.taken, vec![("shop:O-1".to_string(), 60)]);
        assert_eq!(plan.entries.len(), 1);
        assert_eq!(plan.entries[0].points, -40);
        assert_eq!(net_worth(&plan.account), net_worth(&before) - 40);
        assert_eq!(plan.outstanding_change, -40);
        match &plan.events[0].kind {
            EventKind::PointsReversed { points, .. } => assert_eq!(*points, 40),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refund_writes_one_entry_per_step_and_gives_back_volume() {
        let p = programme();
        let t0: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let a = Account::open("p", "m");
        let first = plan_order(&p, &a, "shop", "O-1", 40, 0, "Silver", t0, t0).unwrap();
        let t1 = t0 + chrono::Duration::days(1);
        let second = plan_order(
            &p,
            &first.account,
            "shop",
            "O-2",
            100,
            10_000,
            "Silver",
            t1,
            t1,
        )
        .unwrap();
        let own = second.lot.clone().unwrap();
        // Order 2's lot was spent down to 30 (say): a refund of 100 takes 30 of it, 40 of order 1, 30 owed.
        let mut account = second.account.clone();
        let mut spent = own.clone();
        let now = t0 + chrono::Duration::days(20);
        account.fold_due(now);
        account.take_from_lot(&mut spent, 70, now).unwrap();
        let source = RefundSource {
            partner_id: "shop",
            order_id: "O-2",
            refund_id: "R-1",
            order_at: t1,
        };
        let others = [first.lot.clone().unwrap()];
        let plan = plan_refund(
            &p,
            &account,
            Some(&spent),
            &others,
            source,
            100,
            10_000,
            now,
        )
        .unwrap();
        let steps: Vec<(EntryKind, i64, Option<&str>)> = plan
            .entries
            .iter()
            .map(|e| (e.kind, e.points, e.lot_id.as_deref()))
            .collect();
        assert_eq!(
            steps,
            vec![
                (EntryKind::Reversal, -30, Some("shop:O-2")),
                (EntryKind::Reversal, -40, Some("shop:O-1")),
                (EntryKind::Debt, -30, None),
            ]
        );
        assert_eq!(
            plan.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(
            (plan.account.debt, plan.account.rolling_volume(&p, now)),
            (30, 0)
        );
        assert_eq!(plan.events.len(), 1);
        assert_eq!(plan.events[0].event_id, "reversed:p:shop:O-2:R-1");
        // Nothing to reverse: the account is untouched.
        let none = plan_refund(&p, &account, Some(&spent), &others, source, 0, 0, now).unwrap();
        assert_eq!((none.account, none.entries.len()), (account, 0));
    }

    #[test]
    fn the_next_accrual_pays_off_debt_first() {
        let p = programme();
        let mut a = Account::open("p", "m");
        a.debt = 50;
        let plan = plan_order(&p, &a, "shop", "A-9", 30, 0, "Silver", now(), now()).unwrap();
        assert_eq!(
            (plan.account.debt, plan.lot.as_ref().unwrap().remaining),
            (20, 0)
        );
        assert_eq!(plan.account.view(&p, now()).total, 0);
        assert_eq!(
            plan.entry.as_ref().unwrap().reason,
            "order A-9 at shop (30 paid off debt)"
        );
        let plan = plan_order(
            &p,
            &plan.account,
            "shop",
            "A-10",
            100,
            0,
            "Silver",
            now(),
            now(),
        )
        .unwrap();
        assert_eq!(
            (plan.account.debt, plan.lot.as_ref().unwrap().remaining),
            (0, 80)
        );
        assert_eq!(net_worth(&plan.account), 80);
    }

    proptest::proptest! {
        #[test]
        fn reversals_conserve_points_and_never_fail(
            earned in proptest::collection::vec((1i64..5_000, 0i64..60), 1..12),
            reverse in 1i64..40_000,
            own_index in 0usize..12,
            probe_day in 0i64..80,
        ) {
            let p = programme();
            let t0: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
            let mut a = Account::open("p", "m");
            let mut lots = Vec::new();
            for (i, (points, day)) in earned.iter().enumerate() {
                let plan = plan_order(&p, &a, "shop", &format!("O-{i}"), *points, 0, "Silver", t0 + chrono::Duration::days(*day), t0).unwrap();
                a = plan.account;
                lots.push(plan.lot.unwrap());
            }
            let now = t0 + chrono::Duration::days(probe_day);
            let own = lots.get(own_index % lots.len()).cloned();
            let r = plan_reversal(&a, own.as_ref(), &lots, reverse, now).unwrap();
            proptest::prop_assert_eq!(r.from_own + r.from_others + r.to_debt, reverse);
            proptest::prop_assert_eq!(net_worth(&r.account), net_worth(&a) - reverse);
            proptest::prop_assert!(r.lots.iter().all(|l| l.remaining >= 0));
            let taken: i64 = r.lots.iter().map(|l| lots.iter().find(|o| o.lot_id == l.lot_id).unwrap().remaining - l.remaining).sum();
            proptest::prop_assert_eq!(taken, r.from_own + r.from_others);
            r.account.check().unwrap();
            // The next accrual pays debt first and adds exactly what it earns to the net worth.
            let next = plan_order(&p, &r.account, "shop", "NEXT", 777, 0, "Silver", now, now).unwrap();
            proptest::prop_assert_eq!(net_worth(&next.account), net_worth(&r.account) + 777);
            proptest::prop_assert_eq!(next.account.debt, (r.account.debt - 777).max(0));
        }
    }

    #[test]
    fn an_order_that_crosses_gold_upgrades_and_earns_at_gold() {
        let p = programme();
        let mut a = Account::open("p", "m");
        a.add_volume(&p, now(), 490_000).unwrap();
        assert_eq!(tier_for_order(&p, &a, now(), 99_99).name, "Silver");
        let tier = tier_for_order(&p, &a, now(), 10_000);
        assert_eq!(
            (tier.name.as_str(), tier.multiplier.to_string().as_str()),
            ("Gold", "1.25")
        );
        let plan =
            plan_order(&p, &a, "shop", "A-3", 125, 10_000, &tier.name, now(), now()).unwrap();
        assert_eq!(plan.account.tier, "Gold");
        assert!(
            matches!(&plan.events[0].kind, EventKind::TierChanged { from, to, .. } if from == "Silver" && to == "Gold")
        );
        // Never down at order time, even when the volume would say so.
        let mut vip = Account::open("p", "m");
        vip.tier = "VIP".into();
        assert_eq!(tier_for_order(&p, &vip, now(), 1).name, "VIP");
    }
}
