//! Pure ledger decisions: given what was read, what must be written. No I/O here; the store
//! writes the plan in one transaction, conditional on the account version that was read.

use chrono::{DateTime, Utc};

use crate::account::{Account, AccountError};
use crate::events::{DomainEvent, EntryKind, EventKind, LedgerEntry};
use crate::lot::Lot;
use crate::money::Points;
use crate::programme::Programme;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccrualPlan {
    pub account: Account,
    pub lot: Lot,
    pub entry: LedgerEntry,
    pub event: DomainEvent,
}

/// Book `points` earned by an order: a new lot, the account updated, the statement entry and
/// the PointsEarned event. `points` must be positive (an order that earns 0 writes no lot).
pub fn plan_accrual(
    programme: &Programme,
    account: &Account,
    partner_id: &str,
    order_id: &str,
    points: Points,
    earned_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<AccrualPlan, AccountError> {
    let lot = Lot::new(
        programme,
        &account.member_id,
        partner_id,
        order_id,
        points,
        earned_at,
    );
    let mut next = account.clone();
    next.add_lot(&lot)?;
    next.check()?;
    let event_id = format!("earned:{}:{}", programme.id, lot.lot_id);
    let entry = LedgerEntry {
        seq: next.version,
        at: now,
        kind: EntryKind::Earn,
        points,
        reason: format!("order {order_id} at {partner_id}"),
        partner_id: Some(partner_id.to_string()),
        order_id: Some(order_id.to_string()),
        lot_id: Some(lot.lot_id.clone()),
        event_id: event_id.clone(),
    };
    let event = DomainEvent {
        event_id,
        occurred_at: now,
        programme_id: programme.id.clone(),
        member_id: account.member_id.clone(),
        kind: EventKind::PointsEarned {
            partner_id: partner_id.to_string(),
            order_id: order_id.to_string(),
            lot_id: lot.lot_id.clone(),
            points,
            available_at: lot.available_at,
            expires_on: lot.expires_on,
        },
    };
    Ok(AccrualPlan {
        account: next,
        lot,
        entry,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;

    #[test]
    fn an_accrual_plans_lot_entry_and_event_with_the_next_version() {
        let p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Closed,
            Currency::parse("EUR").unwrap(),
        );
        let a = Account::open("p", "m");
        let now: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let plan = plan_accrual(&p, &a, "shop", "A-1", 99, now, now).unwrap();
        assert_eq!(plan.account.version, 1);
        assert_eq!(plan.entry.seq, 1);
        assert_eq!(plan.lot.lot_id, "shop:A-1");
        assert_eq!(plan.lot.remaining, 99);
        assert_eq!(plan.account.view(&p, now).pending, 99);
        assert_eq!(plan.event.event_id, "earned:p:shop:A-1");
        assert!(plan_accrual(&p, &a, "shop", "A-2", 0, now, now).is_err());
    }
}
