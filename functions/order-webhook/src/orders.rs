//! Booking an order that earns: one BatchGetItem (account, the event's record, the order's
//! state, the budget shards of campaigns that may apply) and one TransactWriteItems. Refunds
//! that arrived before the order are applied in the same transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use http::StatusCode;
use serde::Serialize;
use tracing::{info, warn};

use bonus_domain::account::Account;
use bonus_domain::budget::{plan_takes, BudgetShard, BudgetTake};
use bonus_domain::campaign::Campaign;
use bonus_domain::earning::{earn_order, EarnContext, LineEarning};
use bonus_domain::ledger::{plan_order, tier_for_order, RefundSource};
use bonus_domain::order::Order;
use bonus_domain::refund::{OrderBook, PaidOrder};
use bonus_domain::sales::{buyer_key, by_sku, Sale, SaleLine};
use bonus_dynamodb::config::MemberProfile;
use bonus_dynamodb::ledger::{LedgerWrite, OrderRecord};
use bonus_dynamodb::retry;
use bonus_dynamodb::{keys, shard_of};
use bonus_lambda::api::{raw_json, Error, Response};
use bonus_lambda::app::{Ctx, PartnerConfig};

use crate::refunds::{refund_record, reverse_on, RefundAnswer};
use crate::{commit, internal, replay, Dialect};

/// The answer to an order webhook, as stored for idempotent replays.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    status: &'static str,
    partner_id: &'a str,
    order_id: &'a str,
    member_id: Option<&'a str>,
    points: i64,
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

/// Where each campaign's points come from: its shards, starting at one picked by the order.
fn budget_takes(
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
fn sale(
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

/// Read, decide, write; again if the account, the order or a budget moved in between.
pub(crate) async fn book(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    order: &Order,
    body_sha256: String,
    dialect: Dialect,
    now: DateTime<Utc>,
) -> Result<Response, Error> {
    let partner_id = cfg.partner.id.as_str();
    let programme = &cfg.programme;
    let event = order.event.as_str();
    let record_keys = keys::order_event(partner_id, &order.order_id, event);
    let book_keys = keys::order_book(partner_id, &order.order_id);
    let account_keys = order
        .member_id
        .as_deref()
        .map(|m| keys::account(&programme.id, m));
    let local_date = order
        .occurred_at
        .with_timezone(&cfg.partner.time_zone)
        .date_naive();
    let lines = order.earn_lines(programme);
    // Campaigns that may pay for this order: their budget shards join the one read.
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let campaigns: Vec<Campaign> = cfg
        .campaigns
        .iter()
        .filter(|c| c.may_apply(&skus, local_date))
        .cloned()
        .collect();
    let budget_keys: Vec<(String, String)> = campaigns
        .iter()
        .flat_map(|c| (0..c.budget_shards).map(|s| keys::budget_shard(&c.partner_id, &c.id, s)))
        .collect();

    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let read = ctx
            .store
            .read_for_order(
                account_keys.clone(),
                record_keys.clone(),
                Some(book_keys.clone()),
                &budget_keys,
            )
            .await
            .map_err(internal)?;
        if let Some(record) = read.record {
            info!(partner_id, order_id = %order.order_id, "order webhook replayed");
            return replay(record, &body_sha256, dialect);
        }
        // Auto-enrolment: an unknown member id joins with this order, in its transaction.
        let (account, enrol) = match (read.account, order.member_id.as_deref()) {
            (None, Some(member)) if cfg.partner.auto_enrol => (
                Some(Account {
                    enrolled_with: vec![partner_id.to_string()],
                    ..Account::open(&programme.id, member)
                }),
                Some(MemberProfile {
                    member_id: member.to_string(),
                    programme_id: programme.id.clone(),
                    email: None,
                    phone: None,
                    name: None,
                    locale: "en".into(),
                    enrolled_at: now,
                    enrolled_with: vec![partner_id.to_string()],
                    ..Default::default()
                }),
            ),
            (account, _) => (account, None),
        };

        let member_id = account.as_ref().map(|a| a.member_id.as_str());
        let volume = order.volume_minor(programme);
        let budgets: BTreeMap<String, i64> = read
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
        let earn_ctx = EarnContext {
            programme,
            tier,
            local_date,
            campaigns: &campaigns,
        };
        let mut earning = earn_order(&earn_ctx, &lines, &budgets)
            .map_err(|e| Error::invalid("invalid_amount", e.to_string()))?;
        let plan = match &account {
            Some(a) => Some(
                plan_order(
                    programme,
                    a,
                    partner_id,
                    &order.order_id,
                    earning.total,
                    volume,
                    &tier.name,
                    order.occurred_at,
                    now,
                )
                .map_err(internal)?,
            ),
            None => {
                // A non-member earns nothing; the lines still show what the order was.
                for l in &mut earning.lines {
                    l.points = 0;
                    l.base_points = 0;
                    l.campaigns.clear();
                }
                earning.total = 0;
                earning.campaign_points.clear();
                None
            }
        };
        let (status, status_text) = match account {
            Some(_) => (StatusCode::OK, "earned"),
            None => (StatusCode::ACCEPTED, "recorded_non_member"),
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
        let expected_book = read.book.as_ref().map(|b| b.version);
        let mut order_book = read
            .book
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

        // Refunds that came first are applied now, capped at what the order earned.
        let mut applied = Vec::new();
        for req in &waiting {
            let reversal = paid
                .apply(req, false)
                .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
            if req.full {
                order_book.cancelled = true;
            }
            let mut outcome = (0, 0, 0);
            if let Some((current, _)) = write.account.clone() {
                let source = RefundSource {
                    partner_id,
                    order_id: &order.order_id,
                    refund_id: &req.refund_id,
                    order_at: order.occurred_at,
                };
                let own = write.new_lots.first().cloned();
                let known = write.lots.clone();
                let refund = reverse_on(
                    ctx,
                    programme,
                    &current,
                    own.as_ref(),
                    &known,
                    source,
                    reversal.points,
                    reversal.volume_minor,
                    now,
                )
                .await?;
                outcome = (refund.from_own, refund.from_others, refund.to_debt);
                write.add_refund(refund);
            }
            applied.push((req, reversal, outcome));
        }
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
                lines: &reversal.lines,
            };
            let mut record = refund_record(partner_id, &order.order_id, req, member_id, now);
            record.points = reversal.points;
            record.response = serde_json::to_string(&answer).map_err(internal)?;
            write.records.push(record);
            refunds_applied.push(answer);
        }

        let net_campaigns = paid.net_campaign_points();
        // Campaign points the early refunds took back never leave the budget.
        write.takes = budget_takes(&campaigns, &read.budgets, &order.order_id, &net_campaigns);
        order_book.paid = Some(paid);
        write.sale = Some(sale(
            partner_id,
            order,
            member_id,
            local_date,
            &earning.lines,
        ));

        let answer = Answer {
            status: status_text,
            partner_id,
            order_id: &order.order_id,
            member_id,
            points: earning.total,
            enrolled: enrol.is_some(),
            tier: tier_name.as_deref(),
            available_at: lot.map(|l| l.available_at),
            expires_on: lot.map(|l| l.expires_on),
            lines: &earning.lines,
            refunds_applied,
        };
        let response = serde_json::to_string(&answer).map_err(internal)?;
        write.record = OrderRecord {
            partner_id: partner_id.to_string(),
            order_id: order.order_id.clone(),
            event: event.to_string(),
            body_sha256: body_sha256.clone(),
            member_id: member_id.map(str::to_string),
            points: answer.points,
            lot_id: lot.map(|l| l.lot_id.clone()),
            campaign_points: earning.campaign_points.clone(),
            status: status.as_u16(),
            response: response.clone(),
            recorded_at: now,
        };
        write.book = Some((order_book, expected_book));
        if commit(ctx, &write, &mut retry).await? {
            info!(partner_id, order_id = %order.order_id, points = answer.points, refunds = applied.len(), status = status.as_u16(), "order booked");
            return Ok(raw_json(status, response));
        }
    }
    warn!(partner_id, order_id = %order.order_id, "order webhook gave up under contention");
    Err(Error::unavailable())
}
