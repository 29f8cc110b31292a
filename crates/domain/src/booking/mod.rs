//! Bookings, decided without I/O: a handler reads, calls one `plan_*` here, and commits the
//! [`LedgerWrite`] it returns in one conditional TransactWriteItems (or answers without a
//! write). When a plan needs something the first read did not fetch (the member's other
//! lots, only when a refund's own lot was spent), it says so with [`Planned::Needs`]; the
//! handler reads that and plans again.
//!
//! - [`order`]: an `order.paid` webhook: enrolment, earning, non-members, refunds that came
//!   first, campaign budget takes, sales;
//! - [`refund`]: a refund or cancellation: waiting for its order, non-members, where the
//!   points come from;
//! - [`behaviour`]: a behaviour event paid by a behaviour campaign, up to its cap.

pub mod behaviour;
#[cfg(test)]
mod fixtures;
pub mod order;
pub mod refund;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::budget::BudgetTake;
use crate::error::{internal, Error};
use crate::events::{DomainEvent, LedgerEntry};
use crate::ledger::{plan_refund, OrderPlan, RefundPlan, RefundSource};
use crate::lot::Lot;
use crate::member::MemberProfile;
use crate::money::Points;
use crate::programme::Programme;
use crate::refund::OrderBook;

/// The first answer to a request, as stored and replayed: its status (200 done, 202
/// accepted for later) and JSON body.
pub const ANSWER_DONE: u16 = 200;
pub const ANSWER_ACCEPTED: u16 = 202;

/// How long a paid order's stored answer is kept (DynamoDB TTL). A genuine redelivery
/// comes within the 7 days an order may be late at all (`order::MAX_ORDER_DELAY`);
/// afterwards the order's state, which stays, refuses a second booking
/// (`order_already_booked`). Refund and behaviour records stay: they are their own
/// only guard.
pub const PAID_ANSWER_KEPT: chrono::Duration = chrono::Duration::days(30);

/// The stored outcome of one webhook event (partner + order id + event type). It makes the
/// webhook idempotent: a repeat with the same body gets `response` back; a different body
/// is a conflict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub partner_id: String,
    pub order_id: String,
    pub event: String,
    pub body_sha256: String,
    pub member_id: Option<String>,
    pub points: i64,
    pub lot_id: Option<String>,
    /// Points each campaign paid for this order (given back on refunds).
    #[serde(default)]
    pub campaign_points: std::collections::BTreeMap<String, i64>,
    /// HTTP status and JSON body of the first answer.
    pub status: u16,
    pub response: String,
    pub recorded_at: DateTime<Utc>,
    /// When DynamoDB may delete the record (epoch seconds; the table's TTL attribute).
    /// None: kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ttl: Option<i64>,
}

/// Everything one webhook writes, decided in pure code before the write, as one
/// TransactWriteItems: all of it or nothing.
#[derive(Debug, Clone)]
pub struct LedgerWrite {
    /// The idempotency record of the request; always the first item, so a failed condition
    /// on index 0 means "this request was processed before".
    pub record: OrderRecord,
    /// The order's state item and the version it was read at (None: must not exist yet).
    pub book: Option<(OrderBook, Option<u64>)>,
    /// The member's account and the version it was read at (None: created by this write,
    /// auto-enrolment).
    pub account: Option<(Account, Option<u64>)>,
    /// A member enrolled by this very order: the profile is created with the account.
    pub enrol: Option<MemberProfile>,
    /// Lots created by this write (conditional on not existing).
    pub new_lots: Vec<Lot>,
    /// Existing lots whose remaining changed, as planned (later plans of the same write
    /// start from them).
    pub lots: Vec<Lot>,
    /// What is taken out of each existing lot: written as conditional deltas
    /// (`remaining -= taken`), so they commute with holds on the same lots.
    pub lot_takes: Vec<(String, crate::money::Points)>,
    pub entries: Vec<LedgerEntry>,
    pub events: Vec<DomainEvent>,
    /// Conditional takes from campaign budget shards.
    pub takes: Vec<BudgetTake>,
    /// Campaign points given back to budgets by refunds.
    pub give_backs: Vec<BudgetTake>,
    /// Records of refunds that waited for their order and are applied with it (they replace
    /// the records that answered "waiting").
    pub records: Vec<OrderRecord>,
    /// The account's outstanding points after minus before (the plans' sum).
    pub outstanding_change: i64,
    /// The order's sales, for campaign reports (counted once, with the order).
    pub sale: Option<crate::sales::Sale>,
    /// A second account the same write changes: the employee's share of a company order
    /// (crate::company), earned or reversed with the company's, in the same transaction.
    pub companion: Option<Companion>,
}

/// The employee's side of a company order's write.
#[derive(Debug, Clone)]
pub struct Companion {
    /// The account and the version it was read at.
    pub account: Account,
    pub expected_version: u64,
    pub new_lots: Vec<Lot>,
    pub lots: Vec<Lot>,
    pub lot_takes: Vec<(String, Points)>,
    pub entries: Vec<LedgerEntry>,
    pub events: Vec<DomainEvent>,
    pub outstanding_change: i64,
}

/// A refund's lot changes on top of a write's: takes from existing lots add up as deltas (a
/// lot created by this very write is written whole instead), changed lots replace what
/// the write knew of them.
fn merge_lots(
    new_lots: &mut [Lot],
    lots: &mut Vec<Lot>,
    lot_takes: &mut Vec<(String, Points)>,
    plan: &mut RefundPlan,
) {
    for (lot_id, took) in &plan.taken {
        if new_lots.iter().any(|l| &l.lot_id == lot_id) {
            continue; // created by this write: written whole, below
        }
        match lot_takes.iter_mut().find(|(id, _)| id == lot_id) {
            Some((_, t)) => *t += took,
            None => lot_takes.push((lot_id.clone(), *took)),
        }
    }
    for lot in std::mem::take(&mut plan.lots) {
        match new_lots.iter_mut().find(|l| l.lot_id == lot.lot_id) {
            Some(new) => *new = lot,
            None => match lots.iter_mut().find(|l| l.lot_id == lot.lot_id) {
                Some(known) => *known = lot,
                None => lots.push(lot),
            },
        }
    }
}

/// The employee's events and entries are named apart from the company's: the same order
/// (and refund) makes both, and their ids are derived from it.
fn employee_ids(entries: &mut [LedgerEntry], events: &mut [DomainEvent]) {
    for e in entries {
        e.event_id.push_str(":employee");
    }
    for e in events {
        e.event_id.push_str(":employee");
    }
}

impl Companion {
    /// An accrual on the employee's account.
    pub fn accrual(expected_version: u64, mut plan: OrderPlan) -> Self {
        employee_ids(plan.entry.as_mut_slice(), &mut plan.events);
        Companion {
            account: plan.account,
            expected_version,
            new_lots: plan.lot.into_iter().collect(),
            lots: Vec::new(),
            lot_takes: Vec::new(),
            entries: plan.entry.into_iter().collect(),
            events: plan.events,
            outstanding_change: plan.outstanding_change,
        }
    }

    /// A refund's changes on the employee's account, on top (as [`LedgerWrite::add_refund`]).
    pub fn add_refund(&mut self, mut plan: RefundPlan) {
        employee_ids(&mut plan.entries, &mut plan.events);
        merge_lots(
            &mut self.new_lots,
            &mut self.lots,
            &mut self.lot_takes,
            &mut plan,
        );
        self.entries.extend(plan.entries);
        self.events.extend(plan.events);
        self.outstanding_change += plan.outstanding_change;
        self.account = plan.account;
    }
}

impl LedgerWrite {
    /// Only the idempotency record (a non-member's order, a capped behaviour event).
    pub fn record_only(record: OrderRecord) -> Self {
        LedgerWrite {
            record,
            book: None,
            account: None,
            enrol: None,
            new_lots: Vec::new(),
            lots: Vec::new(),
            lot_takes: Vec::new(),
            entries: Vec::new(),
            events: Vec::new(),
            takes: Vec::new(),
            give_backs: Vec::new(),
            records: Vec::new(),
            outstanding_change: 0,
            sale: None,
            companion: None,
        }
    }

    /// An accrual: the plan's account, lot, entry and events.
    pub fn accrual(record: OrderRecord, expected_version: Option<u64>, plan: OrderPlan) -> Self {
        let mut w = LedgerWrite::record_only(record);
        w.account = Some((plan.account, expected_version));
        w.new_lots.extend(plan.lot);
        w.entries.extend(plan.entry);
        w.events = plan.events;
        w.outstanding_change = plan.outstanding_change;
        w
    }

    /// Add a refund's changes on top: its lots (a lot created by this very write is updated in
    /// place), entries and events; the account becomes the refund's.
    pub fn add_refund(&mut self, mut plan: RefundPlan) {
        merge_lots(
            &mut self.new_lots,
            &mut self.lots,
            &mut self.lot_takes,
            &mut plan,
        );
        self.entries.extend(plan.entries);
        self.events.extend(plan.events);
        self.outstanding_change += plan.outstanding_change;
        if let Some((account, _)) = self.account.as_mut() {
            *account = plan.account;
        }
    }
}

/// What a plan could not decide without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The member's account and the order's own lot.
    Member {
        member_id: String,
        lot_id: Option<String>,
    },
    /// All of the member's lots (a reversal whose own lot was spent takes from the others).
    Lots { member_id: String },
    /// All the lots of a company order's employee.
    CompanionLots { member_id: String },
    /// The employee of a company order: their account and their share's lot.
    Companion {
        member_id: String,
        lot_id: Option<String>,
    },
    /// The company an order is for: its account and the buyer's role in it.
    Company {
        company_id: String,
        member_id: String,
    },
}

/// What the employee's side of a company order needs, named as theirs.
pub(crate) fn for_companion(need: Need) -> Need {
    match need {
        Need::Lots { member_id } => Need::CompanionLots { member_id },
        other => other,
    }
}

/// A plan, or what it needs read first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned<T> {
    Ready(T),
    Needs(Need),
}

/// A decided booking: what to write (None: answer without writing) and the answer.
#[derive(Debug, Clone)]
pub struct Booking {
    pub write: Option<LedgerWrite>,
    /// [`ANSWER_DONE`] or [`ANSWER_ACCEPTED`].
    pub status: u16,
    /// The JSON body of the answer.
    pub response: String,
    /// Points the answer reports (for the log).
    pub points: Points,
}

/// The answer to a refund or cancellation, as stored for idempotent replays.
#[derive(Debug, Serialize)]
pub struct RefundAnswer<'a> {
    pub status: &'static str,
    pub partner_id: &'a str,
    pub order_id: &'a str,
    pub refund_id: &'a str,
    pub member_id: Option<&'a str>,
    /// Points taken back.
    pub points: Points,
    /// Out of the order's own lot.
    pub from_own: Points,
    /// Out of the member's other available points (the order's were already spent).
    pub from_others: Points,
    /// Owed, paid off by the member's next points.
    pub to_debt: Points,
    /// Of the order's own points, already expired unspent: nothing taken back for them.
    #[serde(skip_serializing_if = "is_zero")]
    pub expired: Points,
    pub lines: &'a [crate::refund::LineReversal],
}

/// The idempotency record of a refund (its answer is filled in by the caller).
pub fn refund_record(
    partner_id: &str,
    order_id: &str,
    req: &crate::refund::RefundRequest,
    member_id: Option<&str>,
    now: DateTime<Utc>,
) -> OrderRecord {
    OrderRecord {
        partner_id: partner_id.to_string(),
        order_id: order_id.to_string(),
        event: req.record_event(),
        body_sha256: req.body_sha256.clone(),
        member_id: member_id.map(str::to_string),
        status: ANSWER_DONE,
        recorded_at: now,
        ..OrderRecord::default()
    }
}

/// Plan a reversal on the account. The member's other lots are needed only when the order's
/// own lot cannot cover it and there are available points to take: then, without `lots`,
/// the plan asks for them. `known` are lots this same write already changed (they win over
/// what was read).
#[allow(clippy::too_many_arguments)]
pub fn plan_reversal_on(
    programme: &Programme,
    account: &Account,
    own: Option<&Lot>,
    known: &[Lot],
    lots: Option<&[Lot]>,
    source: RefundSource<'_>,
    points: Points,
    volume_minor: i64,
    now: DateTime<Utc>,
) -> Result<Planned<RefundPlan>, Error> {
    let plan = plan_refund(
        programme,
        account,
        own,
        known,
        source,
        points,
        volume_minor,
        now,
    )?;
    let mut folded = plan.account.clone();
    folded.fold_due(now);
    if plan.to_debt == 0 || folded.available == 0 {
        return Ok(Planned::Ready(plan));
    }
    let Some(lots) = lots else {
        return Ok(Planned::Needs(Need::Lots {
            member_id: account.member_id.clone(),
        }));
    };
    let merged: Vec<Lot> = lots
        .iter()
        .map(|lot| {
            known
                .iter()
                .find(|k| k.lot_id == lot.lot_id)
                .unwrap_or(lot)
                .clone()
        })
        .collect();
    plan_refund(
        programme,
        account,
        own,
        &merged,
        source,
        points,
        volume_minor,
        now,
    )
    .map(Planned::Ready)
    .map_err(internal)
}

/// A stored answer's JSON (serialising our own types does not fail; if it did, it is ours).
pub(crate) fn to_json<T: Serialize>(answer: &T) -> Result<String, Error> {
    serde_json::to_string(answer).map_err(internal)
}

fn is_zero(n: &Points) -> bool {
    *n == 0
}
