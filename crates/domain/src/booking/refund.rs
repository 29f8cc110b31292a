//! A refund or cancellation, decided: keep it for an order that has not arrived, answer a
//! non-member's or an already cancelled order's, or take back what the refunded part earned
//! (own lot first, then other available points, then debt) and give its campaign points back
//! to the budgets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    plan_reversal_on, refund_record, to_json, Booking, LedgerWrite, Need, Planned, RefundAnswer,
    ANSWER_ACCEPTED, ANSWER_DONE,
};
use crate::account::Account;
use crate::budget::BudgetTake;
use crate::campaign::Campaign;
use crate::error::Error;
use crate::ids::shard_of;
use crate::ledger::RefundSource;
use crate::lot::Lot;
use crate::money::Points;
use crate::programme::Programme;
use crate::refund::{LineReversal, OrderBook, RefundRequest, MAX_WAITING};

/// Where a refund arrives and what it asks.
#[derive(Debug, Clone, Copy)]
pub struct RefundContext<'a> {
    pub partner_id: &'a str,
    pub programme: &'a Programme,
    /// The partner's campaigns: their budgets get back what the refund takes.
    pub campaigns: &'a [Campaign],
    pub order_id: &'a str,
    pub request: &'a RefundRequest,
    /// Our own schema refuses a refund of more than was ordered; a shop platform's word is
    /// final and is capped at what is left.
    pub strict: bool,
    pub now: DateTime<Utc>,
}

/// What was read for a refund.
#[derive(Debug, Clone, Default)]
pub struct RefundRead {
    /// The order's state: what it earned, refunds waiting for it.
    pub book: Option<OrderBook>,
    /// The member's account and the order's own lot, once the plan asked ([`Need::Member`]).
    pub member: Option<(Option<Account>, Option<Lot>)>,
    /// All the member's lots, once the plan asked ([`Need::Lots`]).
    pub lots: Option<Vec<Lot>>,
    /// A company order's employee: their account and their share's lot, once the plan
    /// asked ([`Need::Companion`]), and all their lots if it asked for those.
    pub companion: Option<(Option<Account>, Option<Lot>)>,
    pub companion_lots: Option<Vec<Lot>>,
}

/// Campaign points a refund gives back, to each campaign's budget (one shard, picked by the
/// order). Campaigns no longer configured get nothing back.
pub fn give_backs(
    campaigns: &[Campaign],
    order_id: &str,
    points: &BTreeMap<String, Points>,
) -> Vec<BudgetTake> {
    points
        .iter()
        .filter(|(_, p)| **p > 0)
        .filter_map(|(id, p)| {
            let c = campaigns.iter().find(|c| &c.id == id)?;
            Some(BudgetTake {
                partner_id: c.partner_id.clone(),
                campaign_id: c.id.clone(),
                shard: shard_of(order_id, c.budget_shards),
                points: *p,
            })
        })
        .collect()
}

/// Decide a refund or cancellation of `cx.order_id`.
pub fn plan_refund_booking(
    cx: &RefundContext<'_>,
    read: &RefundRead,
) -> Result<Planned<Booking>, Error> {
    let req = cx.request;
    let expected = read.book.as_ref().map(|b| b.version);
    let mut book = read
        .book
        .clone()
        .unwrap_or_else(|| OrderBook::new(cx.partner_id, cx.order_id));
    book.version += 1;
    let mut record = refund_record(cx.partner_id, cx.order_id, req, None, cx.now);
    let no_lines: &[LineReversal] = &[];
    let answer =
        |status, member_id, points, steps: (Points, Points, Points, Points), lines| RefundAnswer {
            status,
            partner_id: cx.partner_id,
            order_id: cx.order_id,
            refund_id: &req.refund_id,
            member_id,
            points,
            from_own: steps.0,
            from_others: steps.1,
            to_debt: steps.2,
            expired: steps.3,
            lines,
        };

    let Some(mut paid) = book.paid.clone() else {
        if req.only_if_booked {
            let body = to_json(&answer("not_booked", None, 0, (0, 0, 0, 0), no_lines))?;
            return Ok(Planned::Ready(Booking {
                write: None,
                status: ANSWER_DONE,
                response: body,
                points: 0,
            }));
        }
        // The order has not arrived: keep the refund on its state, apply it later.
        if book.waiting.len() >= MAX_WAITING {
            return Err(Error::invalid(
                "too_many_waiting_refunds",
                format!(
                    "order {} has not arrived and already has {MAX_WAITING} refunds waiting",
                    cx.order_id
                ),
            ));
        }
        book.waiting.push(req.clone());
        record.status = ANSWER_ACCEPTED;
        record.response = to_json(&answer(
            "waiting_for_order",
            None,
            0,
            (0, 0, 0, 0),
            no_lines,
        ))?;
        let mut write = LedgerWrite::record_only(record.clone());
        write.book = Some((book, expected));
        return Ok(Planned::Ready(Booking {
            write: Some(write),
            status: ANSWER_ACCEPTED,
            response: record.response,
            points: 0,
        }));
    };

    // The member's account and the order's lot: a second read, asked for here.
    let (account, own) = match paid.member_id.as_deref() {
        Some(m) if !book.cancelled => match &read.member {
            Some(found) => found.clone(),
            None => {
                return Ok(Planned::Needs(Need::Member {
                    member_id: m.to_string(),
                    lot_id: paid.lot_id.clone(),
                }))
            }
        },
        _ => (None, None),
    };
    let Some(account) = account else {
        // A non-member's order, or one already cancelled: nothing (more) to take back.
        let status = if book.cancelled {
            "already_cancelled"
        } else {
            "recorded_non_member"
        };
        record.response = to_json(&answer(
            status,
            paid.member_id.as_deref(),
            0,
            (0, 0, 0, 0),
            no_lines,
        ))?;
        record.member_id = paid.member_id.clone();
        return Ok(Planned::Ready(Booking {
            response: record.response.clone(),
            write: Some(LedgerWrite::record_only(record)),
            status: ANSWER_DONE,
            points: 0,
        }));
    };

    let reversal = paid.apply(req, cx.strict)?;
    if req.full {
        book.cancelled = true;
    }
    let source = RefundSource {
        partner_id: cx.partner_id,
        order_id: cx.order_id,
        refund_id: &req.refund_id,
        order_at: paid.occurred_at,
    };
    let plan = match plan_reversal_on(
        cx.programme,
        &account,
        own.as_ref(),
        &[],
        read.lots.as_deref(),
        source,
        reversal.points - reversal.employee_points,
        reversal.volume_minor,
        cx.now,
    )? {
        Planned::Ready(plan) => plan,
        Planned::Needs(need) => return Ok(Planned::Needs(need)),
    };
    let mut steps = (plan.from_own, plan.from_others, plan.to_debt, plan.expired);
    // A company order's employee share comes back from the employee (crate::company).
    let mut companion = None;
    if let (Some(share), true) = (&paid.employee, reversal.employee_points > 0) {
        let Some((employee, their_lot)) = &read.companion else {
            return Ok(Planned::Needs(Need::Companion {
                member_id: share.member_id.clone(),
                lot_id: share.lot_id.clone(),
            }));
        };
        if let Some(e) = employee {
            let refund = match plan_reversal_on(
                cx.programme,
                e,
                their_lot.as_ref(),
                &[],
                read.companion_lots.as_deref(),
                source,
                reversal.employee_points,
                0,
                cx.now,
            )? {
                Planned::Ready(plan) => plan,
                Planned::Needs(need) => return Ok(Planned::Needs(super::for_companion(need))),
            };
            steps.0 += refund.from_own;
            steps.1 += refund.from_others;
            steps.2 += refund.to_debt;
            steps.3 += refund.expired;
            let mut c = super::Companion {
                account: e.clone(),
                expected_version: e.version,
                new_lots: Vec::new(),
                lots: Vec::new(),
                lot_takes: Vec::new(),
                entries: Vec::new(),
                events: Vec::new(),
                outstanding_change: 0,
            };
            c.add_refund(refund);
            companion = Some(c);
        }
    }
    record.member_id = Some(account.member_id.clone());
    record.points = reversal.points;
    record.lot_id = paid.lot_id.clone();
    record.campaign_points = reversal.campaigns.clone();
    record.response = to_json(&answer(
        "reversed",
        Some(&account.member_id),
        reversal.points,
        steps,
        &reversal.lines,
    ))?;
    book.paid = Some(paid);
    let mut write = LedgerWrite::record_only(record.clone());
    write.book = Some((book, expected));
    write.account = Some((account.clone(), Some(account.version)));
    write.add_refund(plan);
    write.companion = companion;
    write.give_backs = give_backs(cx.campaigns, cx.order_id, &reversal.campaigns);
    Ok(Planned::Ready(Booking {
        write: Some(write),
        status: ANSWER_DONE,
        response: record.response,
        points: reversal.points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::fixtures::{config, now, order};
    use crate::booking::order::{plan_order_booking, OrderContext, OrderState};
    use crate::error::parse_json;
    use crate::money::Currency;
    use crate::refund_event::validate_refund;

    fn request(json: &str) -> RefundRequest {
        validate_refund(
            parse_json(json.as_bytes()).unwrap(),
            Currency::parse("EUR").unwrap(),
            now(),
            "rsha",
        )
        .unwrap()
        .1
    }

    const ONE_BELL: &str = r#"{"type":"order.refunded","order_id":"A-1","refund_id":"R-1","occurred_at":"2026-11-23T11:00:00Z","lines":[{"line_id":"1","quantity":1}]}"#;

    fn plan(req: &RefundRequest, read: &RefundRead) -> Result<Planned<Booking>, Error> {
        let cfg = config();
        plan_refund_booking(
            &RefundContext {
                partner_id: "shop",
                programme: &cfg.programmes[0],
                campaigns: &cfg.campaigns,
                order_id: "A-1",
                request: req,
                strict: true,
                now: now(),
            },
            read,
        )
    }

    fn ready(p: Result<Planned<Booking>, Error>) -> Booking {
        match p.unwrap() {
            Planned::Ready(b) => b,
            Planned::Needs(n) => panic!("needs {n:?}"),
        }
    }

    fn status(b: &Booking) -> String {
        serde_json::from_str::<serde_json::Value>(&b.response).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The order A-1 (4 bells at 2.00 for M-1: 8 base + 20 campaign points) as booked.
    fn booked(member: Option<&str>) -> (OrderBook, Option<Account>, Option<Lot>) {
        let cfg = config();
        let order = order(
            member,
            r#"{"line_id":"1","sku":"BELL","quantity":4,"unit_price":"2.00"}"#,
        );
        let campaigns = cfg.campaigns.clone();
        let budgets = BTreeMap::from([(
            "bells".to_string(),
            (0..3)
                .map(|s| crate::budget::BudgetShard {
                    partner_id: "shop".into(),
                    campaign_id: "bells".into(),
                    shard: s,
                    remaining: 250,
                    spent: 0,
                })
                .collect(),
        )]);
        let b = match plan_order_booking(
            &OrderContext {
                partner: &cfg.partners[0],
                programme: &cfg.programmes[0],
                campaigns: &campaigns,
                order: &order,
                body_sha256: "osha",
                now: now(),
            },
            &OrderState {
                account: member.map(|m| Account::open("velo", m)),
                budgets,
                ..OrderState::default()
            },
        )
        .unwrap()
        {
            Planned::Ready(b) => b,
            Planned::Needs(n) => panic!("{n:?}"),
        };
        let w = b.write.unwrap();
        (
            w.book.unwrap().0,
            w.account.map(|(a, _)| a),
            w.new_lots.into_iter().next(),
        )
    }

    #[test]
    fn a_refund_before_its_order_waits_on_the_order_and_is_accepted() {
        let b = ready(plan(&request(ONE_BELL), &RefundRead::default()));
        assert_eq!(
            (b.status, status(&b).as_str()),
            (ANSWER_ACCEPTED, "waiting_for_order")
        );
        let (book, expected) = b.write.unwrap().book.unwrap();
        assert_eq!((book.waiting.len(), book.version, expected), (1, 1, None));
        // A platform's "only if booked" refund of an unknown order writes nothing.
        let mut only = request(ONE_BELL);
        only.only_if_booked = true;
        let b = ready(plan(&only, &RefundRead::default()));
        assert_eq!(
            (b.status, status(&b).as_str(), b.write.is_none()),
            (ANSWER_DONE, "not_booked", true)
        );
        // At most MAX_WAITING wait.
        let mut full = OrderBook::new("shop", "A-1");
        full.waiting = vec![request(ONE_BELL); MAX_WAITING];
        let e = plan(
            &request(ONE_BELL),
            &RefundRead {
                book: Some(full),
                ..RefundRead::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.code, "too_many_waiting_refunds");
    }

    #[test]
    fn a_booked_members_refund_asks_for_the_member_then_reverses_and_gives_the_budget_back() {
        let (book, account, lot) = booked(Some("M-1"));
        let mut read = RefundRead {
            book: Some(book),
            ..RefundRead::default()
        };
        match plan(&request(ONE_BELL), &read).unwrap() {
            Planned::Needs(Need::Member { member_id, lot_id }) => {
                assert_eq!(
                    (member_id.as_str(), lot_id),
                    ("M-1", lot.as_ref().map(|l| l.lot_id.clone()))
                );
            }
            other => panic!("{other:?}"),
        }
        read.member = Some((account, lot));
        let b = ready(plan(&request(ONE_BELL), &read));
        // One bell of four: a quarter of 28 points = 7 (2 base + 5 campaign).
        assert_eq!(
            (b.status, b.points, status(&b).as_str()),
            (ANSWER_DONE, 7, "reversed")
        );
        let w = b.write.unwrap();
        assert_eq!(w.give_backs.iter().map(|g| g.points).sum::<i64>(), 5);
        assert_eq!(w.new_lots.len() + w.lots.len(), 1);
        assert_eq!(w.lots[0].remaining, 21);
        assert_eq!(w.record.campaign_points.get("bells"), Some(&5));
        assert!(!w.book.unwrap().0.cancelled);
    }

    #[test]
    fn non_members_and_cancelled_orders_give_nothing_back() {
        let (book, _, _) = booked(None);
        let b = ready(plan(
            &request(ONE_BELL),
            &RefundRead {
                book: Some(book),
                ..RefundRead::default()
            },
        ));
        assert_eq!((b.points, status(&b).as_str()), (0, "recorded_non_member"));
        assert!(b.write.unwrap().account.is_none());
        let (mut book, _, _) = booked(Some("M-1"));
        book.cancelled = true;
        let b = ready(plan(
            &request(ONE_BELL),
            &RefundRead {
                book: Some(book),
                ..RefundRead::default()
            },
        ));
        assert_eq!((b.points, status(&b).as_str()), (0, "already_cancelled"));
    }

    #[test]
    fn a_refund_over_the_order_is_refused_by_our_own_schema() {
        let (book, account, lot) = booked(Some("M-1"));
        let five = request(
            r#"{"type":"order.refunded","order_id":"A-1","refund_id":"R-2","occurred_at":"2026-11-23T11:00:00Z","lines":[{"line_id":"1","quantity":5}]}"#,
        );
        let read = RefundRead {
            book: Some(book),
            member: Some((account, lot)),
            ..RefundRead::default()
        };
        let e = plan(&five, &read).unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (crate::error::ErrorKind::Invalid, "refund_exceeds_order")
        );
    }

    #[test]
    fn give_backs_go_to_configured_campaigns_only() {
        let cfg = config();
        let points = BTreeMap::from([
            ("bells".to_string(), 5),
            ("gone".to_string(), 3),
            ("zero".to_string(), 0),
        ]);
        let g = give_backs(&cfg.campaigns, "A-1", &points);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].campaign_id.as_str(), g[0].points), ("bells", 5));
        assert_eq!(g[0].shard, shard_of("A-1", cfg.campaigns[0].budget_shards));
    }
}
