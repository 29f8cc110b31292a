//! Helpers shared by the domain's unit tests.

use chrono::{DateTime, Duration, Utc};

use crate::account::Account;
use crate::ledger::plan_order;
use crate::lot::Lot;
use crate::money::Points;
use crate::programme::Programme;

/// The instant the unit tests' histories start.
pub(crate) fn t0() -> DateTime<Utc> {
    "2026-01-01T10:00:00Z".parse().unwrap()
}

/// An account of `member_id` with one lot per (issuer, points, days after [`t0`] earned),
/// orders `{order_prefix}{i}`, and the releases due at `fold_at` folded in.
pub(crate) fn earned(
    p: &Programme,
    member_id: &str,
    order_prefix: &str,
    lots: &[(&str, Points, i64)],
    fold_at: DateTime<Utc>,
) -> (Account, Vec<Lot>) {
    let mut a = Account::open(&p.id, member_id);
    let mut out = Vec::new();
    for (i, (issuer, points, day)) in lots.iter().enumerate() {
        let at = t0() + Duration::days(*day);
        let order_id = format!("{order_prefix}{i}");
        let plan = plan_order(p, &a, issuer, &order_id, *points, 0, "Silver", at, at).unwrap();
        a = plan.account;
        out.push(plan.lot.unwrap());
    }
    a.fold_due(fold_at);
    (a, out)
}
