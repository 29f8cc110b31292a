//! An `order.paid` webhook, decided: who earns (a member, a member enrolled by this order, or
//! a non-member who earns nothing), what each line earns (`crate::earning`), the member's
//! account and new lot (`crate::ledger::plan_order`), refunds that arrived before the order,
//! what each campaign's budget gives, and the sales for campaign reports.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{
    plan_reversal_on, refund_record, to_json, Booking, LedgerWrite, OrderRecord, Planned,
    RefundAnswer, ANSWER_ACCEPTED, ANSWER_DONE, PAID_ANSWER_KEPT,
};
use crate::account::Account;
use crate::budget::{plan_takes, BudgetShard, BudgetTake};
use crate::campaign::Campaign;
use crate::earning::{earn_order, EarnContext, LineEarning, OrderEarning};
use crate::error::Error;
use crate::ids::shard_of;
use crate::ledger::{plan_order, tier_for_order, RefundSource};
use crate::lot::Lot;
use crate::member::MemberProfile;
use crate::money::Points;
use crate::order::Order;
use crate::programme::{Partner, Programme};
use crate::refund::{OrderBook, PaidOrder, RefundRequest, Reversal};
use crate::sales::{buyer_key, by_sku, Sale, SaleLine};

/// Where an order arrives and what it says.
#[derive(Debug, Clone, Copy)]
pub struct OrderContext<'a> {
    pub partner: &'a Partner,
    pub programme: &'a Programme,
    /// The partner's campaigns that may pay for this order ([`campaigns_for`]): their budget
    /// shards are read with the order.
    pub campaigns: &'a [Campaign],
    pub order: &'a Order,
    pub body_sha256: &'a str,
    pub now: DateTime<Utc>,
}

/// What was read for an order.
#[derive(Debug, Clone, Default)]
pub struct OrderState {
    pub account: Option<Account>,
    /// The order's state: refunds that came first wait on it.
    pub book: Option<OrderBook>,
    /// Budget shards of the campaigns that may apply, by campaign id.
    pub budgets: BTreeMap<String, Vec<BudgetShard>>,
    /// All the earning member's lots, once the plan asked (an early refund whose lot is
    /// spent).
    pub lots: Option<Vec<Lot>>,
    /// The company the order is for, once the plan asked ([`super::Need::Company`]).
    pub company: Option<CompanyRead>,
    /// All the employee's lots (a company order's share), once the plan asked.
    pub companion_lots: Option<Vec<Lot>>,
}

/// What was read of the company an order names (or the buyer's default company).
#[derive(Debug, Clone, Default)]
pub struct CompanyRead {
    pub company_id: String,
    /// Its account (None: no such member).
    pub account: Option<Account>,
    /// The buyer's role in it (None: not one of its users).
    pub role: Option<crate::company::Role>,
}

/// What the answer says about the company an order named.
#[derive(Debug, Serialize)]
struct CompanyNote<'a> {
    company_id: &'a str,
    status: &'static str,
    message: &'static str,
}

/// The answer to an order webhook, as stored for idempotent replays.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    status: &'static str,
    partner_id: &'a str,
    order_id: &'a str,
    member_id: Option<&'a str>,
    points: i64,
    /// The company the points went to (the buyer buys for it), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    earned_for: Option<&'a str>,
    /// Of `points`, what the buyer got (`company_rewards: both`); the company got the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    employee_points: Option<Points>,
    /// The company the order named, when its points did not go there, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    company: Option<CompanyNote<'a>>,
    /// True when this order enrolled the member (partner auto-enrolment).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    enrolled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_on: Option<NaiveDate>,
    lines: &'a [LineEarning],
    /// Refunds that arrived before the order, applied with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    refunds_applied: Vec<RefundAnswer<'a>>,
}

/// The order's day in the partner's time zone (sales days).
pub fn local_date(partner: &Partner, order: &Order) -> NaiveDate {
    local_time(partner, order).date()
}

/// The order's time in the partner's time zone (campaign windows, weekdays and hours).
pub fn local_time(partner: &Partner, order: &Order) -> chrono::NaiveDateTime {
    order
        .occurred_at
        .with_timezone(&partner.time_zone)
        .naive_local()
}

/// The partner's campaigns that may pay for this order: running at its local time, on one of
/// its lines.
pub fn campaigns_for(
    partner: &Partner,
    programme: &Programme,
    campaigns: &[Campaign],
    order: &Order,
) -> Vec<Campaign> {
    let lines = order.earn_lines(programme);
    let at = local_time(partner, order);
    campaigns
        .iter()
        .filter(|c| c.may_apply(&lines, at))
        .cloned()
        .collect()
}

/// Auto-enrolment: an unknown member id joins with its first order at a partner that enrols
/// (the account and profile are created in the order's transaction). Otherwise the account
/// is as read (None: a non-member, or a member this partner may not touch).
pub fn enrol_unknown(
    partner: &Partner,
    programme: &Programme,
    member_id: Option<&str>,
    account: Option<Account>,
    now: DateTime<Utc>,
) -> (Option<Account>, Option<MemberProfile>) {
    // In a closed programme, a member another partner enrolled is not this partner's: its
    // order is booked as a non-member's, exactly as for an unknown id (and never enrols
    // one), so posting orders neither grants access nor tells which ids exist.
    if let Some(a) = &account {
        let relation = crate::access::relation(
            &partner.id,
            &programme.id,
            programme.kind,
            &a.programme_id,
            &a.enrolled_with,
        );
        if relation == crate::access::Relation::Outsider {
            return (None, None);
        }
    }
    match (account, member_id) {
        (None, Some(member)) if partner.auto_enrol => (
            Some(Account {
                enrolled_with: vec![partner.id.clone()],
                ..Account::open(&programme.id, member)
            }),
            Some(MemberProfile {
                member_id: member.to_string(),
                programme_id: programme.id.clone(),
                locale: "en".into(),
                enrolled_at: now,
                enrolled_with: vec![partner.id.clone()],
                ..Default::default()
            }),
        ),
        (account, _) => (account, None),
    }
}

/// A non-member earns nothing; the lines still show what the order was.
pub fn without_points(earning: &mut OrderEarning) {
    for l in &mut earning.lines {
        l.points = 0;
        l.base_points = 0;
        l.campaigns.clear();
    }
    earning.total = 0;
    earning.campaign_points.clear();
}

/// Where each campaign's points come from: its shards, starting at one picked by the order.
pub fn budget_takes(
    campaigns: &[Campaign],
    shards: &BTreeMap<String, Vec<BudgetShard>>,
    order_id: &str,
    points: &BTreeMap<String, i64>,
) -> Vec<BudgetTake> {
    campaigns
        .iter()
        .filter_map(|c| points.get(&c.id).map(|p| (c, *p)))
        .flat_map(|(c, p)| {
            let start = shard_of(order_id, c.budget_shards);
            plan_takes(
                c,
                shards.get(&c.id).map_or(&[][..], Vec::as_slice),
                start,
                p,
            )
        })
        .collect()
}

/// The order's sales for campaign reports: each line's net amount and quantity with the
/// points it earned, per SKU; the buyer hashed (member, else the shop's customer, else the
/// order itself).
pub fn sale(
    partner_id: &str,
    order: &Order,
    member_id: Option<&str>,
    day: NaiveDate,
    earned: &[LineEarning],
) -> Sale {
    let buyer = match (member_id, order.customer_id.as_deref()) {
        (Some(m), _) => buyer_key(partner_id, "member", m),
        (None, Some(c)) => buyer_key(partner_id, "customer", c),
        (None, None) => buyer_key(partner_id, "order", &order.order_id),
    };
    let lines = order.lines.iter().map(|l| {
        let e = earned.iter().find(|e| e.line_id == l.line_id);
        SaleLine {
            sku: l.sku.clone(),
            turnover_minor: l.net.minor,
            quantity: l.quantity,
            points: e.map_or(0, |e| e.points),
            campaigns: e
                .map(|e| {
                    e.campaigns
                        .iter()
                        .filter(|c| c.points != 0)
                        .map(|c| (c.campaign_id.clone(), c.points))
                        .collect()
                })
                .unwrap_or_default(),
        }
    });
    Sale {
        partner_id: partner_id.to_string(),
        day,
        buyer,
        member: member_id.is_some(),
        lines: by_sku(lines),
    }
}

/// What a refund that came first took back: the reversal per line, and the points taken
/// from the order's own lot, from other lots, and to debt.
type Applied<'r> = (&'r RefundRequest, Reversal, (Points, Points, Points));

/// Apply the refunds that waited for this order to it, capped at what it earned, on top of
/// the accrual in `write`.
fn apply_waiting<'r>(
    cx: &OrderContext<'_>,
    state: &OrderState,
    waiting: &'r [RefundRequest],
    paid: &mut PaidOrder,
    order_book: &mut OrderBook,
    write: &mut LedgerWrite,
) -> Result<Planned<Vec<Applied<'r>>>, Error> {
    let order = cx.order;
    let mut applied = Vec::new();
    for req in waiting {
        let reversal = paid.apply(req, false)?;
        if req.full {
            order_book.cancelled = true;
        }
        let mut outcome = (0, 0, 0);
        if let Some((current, _)) = write.account.clone() {
            let source = RefundSource {
                partner_id: &cx.partner.id,
                order_id: &order.order_id,
                refund_id: &req.refund_id,
                order_at: order.occurred_at,
            };
            let own = write.new_lots.first().cloned();
            let known = write.lots.clone();
            let refund = match plan_reversal_on(
                cx.programme,
                &current,
                own.as_ref(),
                &known,
                state.lots.as_deref(),
                source,
                reversal.points - reversal.employee_points,
                reversal.volume_minor,
                cx.now,
            )? {
                Planned::Ready(refund) => refund,
                Planned::Needs(need) => return Ok(Planned::Needs(need)),
            };
            outcome = (refund.from_own, refund.from_others, refund.to_debt);
            write.add_refund(refund);
            // The employee's share comes back from the employee.
            if let (Some(c), true) = (write.companion.as_mut(), reversal.employee_points > 0) {
                let own = c.new_lots.first().cloned();
                let refund = match plan_reversal_on(
                    cx.programme,
                    &c.account,
                    own.as_ref(),
                    &c.lots,
                    state.companion_lots.as_deref(),
                    source,
                    reversal.employee_points,
                    0,
                    cx.now,
                )? {
                    Planned::Ready(refund) => refund,
                    Planned::Needs(need) => return Ok(Planned::Needs(super::for_companion(need))),
                };
                outcome.0 += refund.from_own;
                outcome.1 += refund.from_others;
                outcome.2 += refund.to_debt;
                c.add_refund(refund);
            }
        }
        applied.push((req, reversal, outcome));
    }
    Ok(Planned::Ready(applied))
}

/// Decide an `order.paid`: everything it writes, and its answer.
pub fn plan_order_booking(
    cx: &OrderContext<'_>,
    state: &OrderState,
) -> Result<Planned<Booking>, Error> {
    let (partner, programme, order, now) = (cx.partner, cx.programme, cx.order, cx.now);
    let partner_id = partner.id.as_str();
    if state.book.as_ref().is_some_and(|b| b.paid.is_some()) {
        // Booked before, and its stored answer has expired (`PAID_ANSWER_KEPT`).
        return Err(Error::conflict(
            "order_already_booked",
            format!(
                "order {} was booked on its first delivery; its answer is kept {} days",
                order.order_id,
                PAID_ANSWER_KEPT.num_days()
            ),
        ));
    }
    let day = local_date(partner, order);
    let lines = order.earn_lines(programme);
    // The partner's own base rate and coefficients replace the programme's (bonVito).
    let rates = programme.with_partner_rates(partner);

    let (account, enrol) = enrol_unknown(
        partner,
        programme,
        order.member_id.as_deref(),
        state.account.clone(),
        now,
    );
    // A company's buyer earns for the company (crate::company): its account earns, its
    // volume counts for its tier, refunds come back from it.
    let buyer_id = account.as_ref().map(|a| a.member_id.clone());
    let buyer_account = account.clone();
    let (mut account, mut earned_for, mut not_for) = (account, None, None);
    // Under `company_rewards: both`, the employee's share of each line, in percent.
    let mut employee_percent = 0;
    let candidate = match (&account, programme.company_rewards) {
        (
            Some(a),
            crate::company::CompanyRewards::Company | crate::company::CompanyRewards::Both,
        ) => order
            .company_id
            .clone()
            .or_else(|| a.default_company.clone())
            .filter(|c| *c != a.member_id),
        _ => None,
    };
    if let Some(company_id) = candidate {
        let Some(read) = state
            .company
            .as_ref()
            .filter(|r| r.company_id == company_id)
        else {
            return Ok(Planned::Needs(super::Need::Company {
                company_id,
                member_id: buyer_id.clone().unwrap_or_default(),
            }));
        };
        let is_company = read
            .account
            .as_ref()
            .is_some_and(|c| c.company.is_some() && c.programme_id == programme.id);
        let named = order.company_id.as_deref() == Some(company_id.as_str());
        match crate::company::earner(
            programme.company_rewards,
            Some((&company_id, is_company, read.role)),
            named,
        ) {
            crate::company::Earner::Company(c) => {
                account = read.account.clone();
                let keeps_all = account
                    .as_ref()
                    .and_then(|a| a.company.as_ref())
                    .is_some_and(|c| c.no_employee_share);
                if programme.company_rewards == crate::company::CompanyRewards::Both && !keeps_all {
                    employee_percent = programme.company_employee_percent;
                }
                earned_for = Some(c);
            }
            crate::company::Earner::BuyerNotInCompany(c) => not_for = Some(c),
            crate::company::Earner::Buyer => {}
        }
    }
    let member_id = account.as_ref().map(|a| a.member_id.as_str());
    let volume = order.volume_minor(programme);
    let budgets: BTreeMap<String, i64> = state
        .budgets
        .iter()
        .map(|(id, shards)| (id.clone(), shards.iter().map(|s| s.remaining).sum()))
        .collect();
    let fresh = Account::open(&programme.id, "");
    let tier = tier_for_order(
        programme,
        account.as_ref().unwrap_or(&fresh),
        order.occurred_at,
        volume,
    );
    let earn_cx = EarnContext {
        programme: &rates,
        tier,
        local_time: local_time(partner, order),
        campaigns: cx.campaigns,
    };
    let mut earning = earn_order(&earn_cx, &lines, &budgets)
        .map_err(|e| Error::invalid("invalid_amount", e.to_string()))?;
    // The employee's share: each line rounded down once; the company gets the rest.
    let employee_points: Points = earning
        .lines
        .iter()
        .map(|l| crate::company::employee_share(l.points, employee_percent))
        .sum();
    let employee_plan = match (&buyer_account, employee_points > 0 && account.is_some()) {
        (Some(b), true) => {
            let mut p = plan_order(
                programme,
                b,
                partner_id,
                &order.order_id,
                employee_points,
                0,
                b.tier_name(programme),
                order.occurred_at,
                now,
            )?;
            // The employee's statement says whose order it was for.
            if let Some(e) = p.entry.as_mut() {
                e.counterparty = earned_for.clone();
            }
            Some((b.version, p))
        }
        _ => None,
    };
    let plan = match &account {
        Some(a) => Some(plan_order(
            programme,
            a,
            partner_id,
            &order.order_id,
            earning.total - employee_points,
            volume,
            &tier.name,
            order.occurred_at,
            now,
        )?),
        None => {
            without_points(&mut earning);
            None
        }
    };
    let mut plan = plan;
    if let (Some(p), Some(_)) = (plan.as_mut(), &earned_for) {
        // The company's statement says which employee earned it.
        if let Some(e) = p.entry.as_mut() {
            e.counterparty = buyer_id.clone();
        }
    }
    let (status, status_text) = match account {
        Some(_) => (ANSWER_DONE, "earned"),
        None => (ANSWER_ACCEPTED, "recorded_non_member"),
    };
    let lot = plan.as_ref().and_then(|p| p.lot.clone());
    let lot = lot.as_ref();
    let tier_name = plan
        .as_ref()
        .map(|p| p.account.tier_name(programme).to_string());

    // The order's state: what each line earned, for refunds to come.
    let mut paid = PaidOrder::new(
        member_id.map(str::to_string),
        lot.map(|l| l.lot_id.clone()),
        order,
        &lines,
        &earning,
    );
    if let Some((_, p)) = &employee_plan {
        let share = crate::refund::EmployeeShare {
            member_id: buyer_id.clone().unwrap_or_default(),
            lot_id: p.lot.as_ref().map(|l| l.lot_id.clone()),
        };
        paid.share_with(share, employee_percent);
    }
    let expected_book = state.book.as_ref().map(|b| b.version);
    let mut order_book = state
        .book
        .clone()
        .unwrap_or_else(|| OrderBook::new(partner_id, &order.order_id));
    order_book.version += 1;
    let waiting = std::mem::take(&mut order_book.waiting);

    let mut write = match (plan, &account) {
        (Some(plan), Some(a)) => LedgerWrite::accrual(
            OrderRecord::default(),
            enrol.is_none().then_some(a.version),
            plan,
        ),
        _ => LedgerWrite::record_only(OrderRecord::default()),
    };
    write.enrol = enrol.clone();
    write.companion = employee_plan.map(|(v, p)| super::Companion::accrual(v, p));

    // Refunds that came first are applied now, capped at what the order earned.
    let applied = match apply_waiting(cx, state, &waiting, &mut paid, &mut order_book, &mut write)?
    {
        Planned::Ready(applied) => applied,
        Planned::Needs(need) => return Ok(Planned::Needs(need)),
    };
    let mut refunds_applied = Vec::new();
    for (req, reversal, (from_own, from_others, to_debt)) in &applied {
        let answer = RefundAnswer {
            status: if member_id.is_some() {
                "reversed"
            } else {
                "recorded_non_member"
            },
            partner_id,
            order_id: &order.order_id,
            refund_id: &req.refund_id,
            member_id,
            points: reversal.points,
            from_own: *from_own,
            from_others: *from_others,
            to_debt: *to_debt,
            // A refund that waited meets a new lot: nothing of it has expired.
            expired: 0,
            lines: &reversal.lines,
        };
        let mut record = refund_record(partner_id, &order.order_id, req, member_id, now);
        record.points = reversal.points;
        record.response = to_json(&answer)?;
        write.records.push(record);
        refunds_applied.push(answer);
    }

    // Campaign points the early refunds took back never leave the budget.
    let net_campaigns = paid.net_campaign_points();
    write.takes = budget_takes(
        cx.campaigns,
        &state.budgets,
        &order.order_id,
        &net_campaigns,
    );
    order_book.paid = Some(paid);
    // Sales count the buyer (campaign reports count who bought).
    write.sale = Some(sale(
        partner_id,
        order,
        buyer_id.as_deref().or(member_id),
        day,
        &earning.lines,
    ));

    let answer = Answer {
        status: status_text,
        partner_id,
        order_id: &order.order_id,
        member_id: buyer_id.as_deref().or(member_id),
        points: earning.total,
        earned_for: earned_for.as_deref(),
        employee_points: (employee_points > 0).then_some(employee_points),
        company: not_for.as_deref().map(|c| CompanyNote {
            company_id: c,
            status: "not_a_buyer",
            message: "the buyer does not buy for this company: the points went to the buyer",
        }),
        enrolled: enrol.is_some(),
        tier: tier_name.as_deref(),
        available_at: lot.map(|l| l.available_at),
        expires_on: lot.map(|l| l.expires_on),
        lines: &earning.lines,
        refunds_applied,
    };
    let response = to_json(&answer)?;
    write.record = OrderRecord {
        partner_id: partner_id.to_string(),
        order_id: order.order_id.clone(),
        event: order.event.as_str().to_string(),
        body_sha256: cx.body_sha256.to_string(),
        member_id: member_id.map(str::to_string),
        points: answer.points,
        lot_id: lot.map(|l| l.lot_id.clone()),
        campaign_points: earning.campaign_points.clone(),
        status,
        response: response.clone(),
        recorded_at: now,
        expires_ttl: Some((now + PAID_ANSWER_KEPT).timestamp()),
    };
    write.book = Some((order_book, expected_book));
    Ok(Planned::Ready(Booking {
        write: Some(write),
        status,
        response,
        points: answer.points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::fixtures::{config, now, order};
    use crate::booking::Need;
    use crate::budget::split_budget;
    use crate::error::parse_json;
    use crate::refund_event::validate_refund;
    use proptest::prelude::*;

    const HELMETS: &str = r#"{"line_id":"1","sku":"HELMET","quantity":2,"unit_price":"49.95"}"#;
    const BELLS: &str = r#"{"line_id":"2","sku":"BELL","quantity":3,"unit_price":"2.00"}"#;

    fn shards(c: &Campaign, remaining: &[i64]) -> BTreeMap<String, Vec<BudgetShard>> {
        let shards = remaining
            .iter()
            .enumerate()
            .map(|(i, r)| BudgetShard {
                partner_id: c.partner_id.clone(),
                campaign_id: c.id.clone(),
                shard: i as u32,
                remaining: *r,
                spent: 0,
            })
            .collect();
        BTreeMap::from([(c.id.clone(), shards)])
    }

    fn plan(partner: &str, order: &Order, state: &OrderState) -> Planned<Booking> {
        let cfg = config();
        let partner = cfg.partners.iter().find(|p| p.id == partner).unwrap();
        let campaigns = campaigns_for(partner, &cfg.programmes[0], &cfg.campaigns, order);
        let cx = OrderContext {
            partner,
            programme: &cfg.programmes[0],
            campaigns: &campaigns,
            order,
            body_sha256: "sha",
            now: now(),
        };
        plan_order_booking(&cx, state).unwrap()
    }

    fn ready(p: Planned<Booking>) -> Booking {
        match p {
            Planned::Ready(b) => b,
            Planned::Needs(n) => panic!("needs {n:?}"),
        }
    }

    fn member(id: &str) -> Account {
        Account::open("velo", id)
    }

    /// A member with `points` available: earned 30 days ago, released since.
    fn with_available(id: &str, points: i64) -> Account {
        let earned = now() - chrono::Duration::days(30);
        let p = &config().programmes[0];
        let plan = plan_order(
            p,
            &member(id),
            "shop",
            "OLD-1",
            points,
            0,
            "Silver",
            earned,
            earned,
        )
        .unwrap();
        let mut a = plan.account;
        a.fold_due(now());
        assert_eq!(a.available, points);
        a
    }

    fn json(b: &Booking) -> serde_json::Value {
        serde_json::from_str(&b.response).unwrap()
    }

    #[test]
    fn a_member_earns_per_line_with_one_lot_entry_and_sale() {
        let b = ready(plan(
            "shop",
            &order(Some("M-1"), HELMETS),
            &OrderState {
                account: Some(member("M-1")),
                ..OrderState::default()
            },
        ));
        assert_eq!((b.status, b.points), (ANSWER_DONE, 99));
        let w = b.write.unwrap();
        assert_eq!(w.new_lots.len(), 1);
        assert_eq!(w.new_lots[0].points, 99);
        assert_eq!(w.entries.len(), 1);
        assert_eq!(
            w.account
                .as_ref()
                .map(|(a, v)| (a.pending.values().sum::<i64>(), *v)),
            Some((99, Some(0)))
        );
        assert!(w.enrol.is_none() && w.takes.is_empty());
        let sale = w.sale.unwrap();
        assert_eq!(
            (sale.member, sale.lines.len(), sale.lines[0].turnover_minor),
            (true, 1, 9990)
        );
        assert_eq!((w.record.status, &w.record.response), (200, &b.response));
        assert_eq!(
            w.book.as_ref().map(|(b, v)| (b.version, *v)),
            Some((1, None))
        );
    }

    #[test]
    fn a_non_member_is_recorded_with_zero_points_but_the_lines_show_the_order() {
        let b = ready(plan("shop", &order(None, HELMETS), &OrderState::default()));
        assert_eq!((b.status, b.points), (ANSWER_ACCEPTED, 0));
        let v = json(&b);
        assert_eq!(v["status"], "recorded_non_member");
        assert_eq!(v["lines"][0]["points"], 0);
        assert_eq!(v["lines"][0]["net_amount"], "99.90");
        let w = b.write.unwrap();
        assert!(w.account.is_none() && w.new_lots.is_empty() && w.entries.is_empty());
        assert_eq!(w.sale.map(|s| s.member), Some(false));
        // An unknown member id at a partner that does not enrol is a non-member too.
        let b = ready(plan(
            "shop",
            &order(Some("M-NEW"), HELMETS),
            &OrderState::default(),
        ));
        assert_eq!((b.status, b.points), (ANSWER_ACCEPTED, 0));
    }

    #[test]
    fn an_enrolling_partner_enrols_an_unknown_member_with_the_order() {
        let b = ready(plan(
            "enrols",
            &order(Some("M-NEW"), HELMETS),
            &OrderState::default(),
        ));
        assert_eq!((b.status, b.points), (ANSWER_DONE, 99));
        assert_eq!(json(&b)["enrolled"], true);
        let w = b.write.unwrap();
        let profile = w.enrol.unwrap();
        assert_eq!(
            (profile.member_id.as_str(), profile.enrolled_with.clone()),
            ("M-NEW", vec!["enrols".to_string()])
        );
        // The account is created by this write: no version to check.
        assert_eq!(
            w.account
                .as_ref()
                .map(|(a, v)| (a.enrolled_with.clone(), *v)),
            Some((vec!["enrols".to_string()], None))
        );
        let (account, profile) = enrol_unknown(
            &config().partners[1],
            &config().programmes[0],
            Some("M-1"),
            Some(member("M-1")),
            now(),
        );
        assert_eq!(
            (account.map(|a| a.member_id), profile),
            (Some("M-1".into()), None)
        );
    }

    #[test]
    fn campaign_points_are_taken_from_the_shards_never_more_than_they_hold() {
        let cfg = config();
        let bells = &cfg.campaigns[0];
        // 3 bells x 5 = 15 points of bonus, but only 12 are left: 2 + 4 + 6.
        let state = OrderState {
            account: Some(member("M-1")),
            budgets: shards(bells, &[2, 4, 6]),
            ..OrderState::default()
        };
        let b = ready(plan("shop", &order(Some("M-1"), BELLS), &state));
        let w = b.write.unwrap();
        let taken: i64 = w.takes.iter().map(|t| t.points).sum();
        assert_eq!(taken, 12);
        assert_eq!(b.points, 6 + 12, "6 base points and what the budget had");
        for t in &w.takes {
            let left = [2, 4, 6][t.shard as usize];
            assert!(t.points <= left, "{t:?}");
        }
        assert_eq!(w.sale.unwrap().lines[0].campaigns.get("bells"), Some(&12));
    }

    #[test]
    fn a_refund_that_came_first_is_applied_with_the_order() {
        let (_, refund) = validate_refund(
            parse_json(br#"{"type":"order.refunded","order_id":"A-1","refund_id":"R-1","occurred_at":"2026-11-23T11:00:00Z","lines":[{"line_id":"1","quantity":1}]}"#).unwrap(),
            crate::money::Currency::parse("EUR").unwrap(),
            now(),
            "rsha",
        )
        .unwrap();
        let mut book = OrderBook::new("shop", "A-1");
        book.version = 1;
        book.waiting.push(refund);
        let state = OrderState {
            account: Some(member("M-1")),
            book: Some(book),
            ..OrderState::default()
        };
        let b = ready(plan("shop", &order(Some("M-1"), HELMETS), &state));
        let v = json(&b);
        assert_eq!(v["points"], 99);
        assert_eq!(v["refunds_applied"][0]["points"], 49);
        assert_eq!(v["refunds_applied"][0]["from_own"], 49);
        let w = b.write.unwrap();
        assert_eq!(w.new_lots[0].remaining, 50);
        assert_eq!(w.records.len(), 1);
        assert_eq!(
            (w.records[0].event.as_str(), w.records[0].points),
            ("order.refunded#R-1", 49)
        );
        let (book, expected) = w.book.unwrap();
        assert_eq!(
            (book.waiting.len(), book.version, expected),
            (0, 2, Some(1))
        );
        assert_eq!(w.account.unwrap().0.pending.values().sum::<i64>(), 50);
    }

    #[test]
    fn an_early_refund_beyond_the_own_lot_asks_for_the_other_lots() {
        // Cancelled before it came, with other available points to take from: the plan
        // asks for the member's lots rather than guessing.
        let (_, cancel) = validate_refund(
            parse_json(br#"{"type":"order.cancelled","order_id":"A-1","occurred_at":"2026-11-23T11:00:00Z"}"#).unwrap(),
            crate::money::Currency::parse("EUR").unwrap(),
            now(),
            "csha",
        )
        .unwrap();
        let mut book = OrderBook::new("shop", "A-1");
        book.waiting.push(cancel);
        let account = with_available("M-1", 10);
        let state = OrderState {
            account: Some(account.clone()),
            book: Some(book),
            ..OrderState::default()
        };
        // The order earns 99 and the cancellation takes all 99 from its own lot: nothing more needed.
        let b = ready(plan("shop", &order(Some("M-1"), HELMETS), &state));
        assert_eq!(json(&b)["refunds_applied"][0]["to_debt"], 0);
        assert!(matches!(
            plan_reversal_on(
                &config().programmes[0],
                &account,
                None,
                &[],
                None,
                RefundSource {
                    partner_id: "shop",
                    order_id: "A-1",
                    refund_id: "R-9",
                    order_at: now()
                },
                5,
                0,
                now(),
            )
            .unwrap(),
            Planned::Needs(Need::Lots { .. })
        ));
    }

    proptest! {
        #[test]
        fn budget_takes_never_exceed_a_shard_or_the_points(
            budget in 0i64..10_000,
            n in 1u32..8,
            spent in proptest::collection::vec(0i64..2_000, 8),
            want in 0i64..20_000,
            order_id in "[A-Z]-[0-9]{1,6}",
        ) {
            let cfg = config();
            let mut c = cfg.campaigns[0].clone();
            c.budget_shards = n;
            let remaining: Vec<i64> = split_budget(budget, n)
                .iter()
                .zip(&spent)
                .map(|(b, s)| (b - s).max(0))
                .collect();
            let held: i64 = remaining.iter().sum();
            let takes = budget_takes(&[c.clone()], &shards(&c, &remaining), &order_id, &BTreeMap::from([(c.id.clone(), want)]));
            let total: i64 = takes.iter().map(|t| t.points).sum();
            prop_assert_eq!(total, want.min(held));
            for t in &takes {
                prop_assert!(t.points > 0 && t.points <= remaining[t.shard as usize]);
            }
            let mut seen: Vec<u32> = takes.iter().map(|t| t.shard).collect();
            seen.dedup();
            prop_assert_eq!(seen.len(), takes.len(), "one take per shard");
        }

        #[test]
        fn a_non_member_never_earns_and_a_member_earns_the_sum_of_the_lines(
            // Under 5,000 EUR: the order does not lift the member to Gold.
            qty in 1i64..50,
            cents in 1i64..10_000,
        ) {
            let line = format!(r#"{{"line_id":"1","sku":"HELMET","quantity":{qty},"unit_price":"{}.{:02}"}}"#, cents / 100, cents % 100);
            let none = ready(plan("shop", &order(None, &line), &OrderState::default()));
            prop_assert_eq!(none.points, 0);
            prop_assert!(none.write.as_ref().unwrap().new_lots.is_empty());
            let some = ready(plan("shop", &order(Some("M-1"), &line), &OrderState { account: Some(member("M-1")), ..OrderState::default() }));
            prop_assert_eq!(some.points, qty * cents / 100);
            let w = some.write.unwrap();
            prop_assert_eq!(w.new_lots.first().map_or(0, |l| l.points), some.points);
            prop_assert_eq!(w.sale.unwrap().lines[0].turnover_minor, qty * cents);
        }
    }
}
