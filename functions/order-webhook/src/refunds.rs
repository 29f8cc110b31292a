//! Refunds and cancellations: take back what the refunded part of an order earned.
//!
//! Reads the refund's record and the order's state (one BatchGetItem), then the member's
//! account and the order's lot (one more BatchGetItem), and only when the order's own points
//! were already spent, the member's other lots (one Query). Writes the refund's record, the order's state,
//! the account, the lots, one statement entry per step, the PointsReversed event and the
//! campaign budget given back, in one TransactWriteItems. A refund whose order has not
//! arrived yet is kept on the order's state (202) and applied when the order comes.

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::Serialize;
use tracing::{info, warn};

use bonus_domain::account::Account;
use bonus_domain::budget::BudgetTake;
use bonus_domain::ledger::{plan_refund, RefundPlan, RefundSource};
use bonus_domain::lot::Lot;
use bonus_domain::money::Points;
use bonus_domain::programme::Programme;
use bonus_domain::refund::{LineReversal, OrderBook, RefundRequest, MAX_WAITING};
use bonus_dynamodb::ledger::{LedgerWrite, OrderRecord};
use bonus_dynamodb::retry;
use bonus_dynamodb::{from_item, keys, shard_of};
use bonus_lambda::api::{raw_json, Error, Response};
use bonus_lambda::app::{Ctx, PartnerConfig};

use crate::{commit, internal, replay, Dialect};

/// The answer to a refund or cancellation, as stored for idempotent replays.
#[derive(Debug, Serialize)]
pub(crate) struct RefundAnswer<'a> {
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
    pub lines: &'a [LineReversal],
}

/// The idempotency record of a refund (its answer is filled in by the caller).
pub(crate) fn refund_record(
    partner_id: &str,
    order_id: &str,
    req: &RefundRequest,
    member_id: Option<&str>,
    now: DateTime<Utc>,
) -> OrderRecord {
    OrderRecord {
        partner_id: partner_id.to_string(),
        order_id: order_id.to_string(),
        event: req.record_event(),
        body_sha256: req.body_sha256.clone(),
        member_id: member_id.map(str::to_string),
        status: StatusCode::OK.as_u16(),
        recorded_at: now,
        ..OrderRecord::default()
    }
}

/// Plan a reversal on the account; the member's other lots are read only when the order's
/// own lot cannot cover it and there are available points to take. `known` are lots this
/// same write already changed (they win over what the store holds).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn reverse_on(
    ctx: &Ctx,
    programme: &Programme,
    account: &Account,
    own: Option<&Lot>,
    known: &[Lot],
    source: RefundSource<'_>,
    points: Points,
    volume_minor: i64,
    now: DateTime<Utc>,
) -> Result<RefundPlan, Error> {
    let plan = plan_refund(
        programme,
        account,
        own,
        known,
        source,
        points,
        volume_minor,
        now,
    )
    .map_err(internal)?;
    let mut folded = plan.account.clone();
    folded.fold_due(now);
    if plan.to_debt == 0 || folded.available == 0 {
        return Ok(plan);
    }
    let mut lots = ctx
        .store
        .lots(&programme.id, &account.member_id)
        .await
        .map_err(internal)?;
    for lot in &mut lots {
        if let Some(k) = known.iter().find(|k| k.lot_id == lot.lot_id) {
            *lot = k.clone();
        }
    }
    plan_refund(
        programme,
        account,
        own,
        &lots,
        source,
        points,
        volume_minor,
        now,
    )
    .map_err(internal)
}

/// Campaign points a refund gives back, to each campaign's budget (one shard, picked by the
/// order). Campaigns no longer configured get nothing back.
pub(crate) fn give_backs(
    cfg: &PartnerConfig,
    order_id: &str,
    campaigns: &std::collections::BTreeMap<String, Points>,
) -> Vec<BudgetTake> {
    campaigns
        .iter()
        .filter(|(_, p)| **p > 0)
        .filter_map(|(id, p)| {
            let c = cfg.campaigns.iter().find(|c| &c.id == id)?;
            Some(BudgetTake {
                partner_id: c.partner_id.clone(),
                campaign_id: c.id.clone(),
                shard: shard_of(order_id, c.budget_shards),
                points: *p,
            })
        })
        .collect()
}

/// Book a refund or cancellation of `order_id`.
pub(crate) async fn reverse(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    order_id: &str,
    req: &RefundRequest,
    dialect: Dialect,
    now: DateTime<Utc>,
) -> Result<Response, Error> {
    let partner_id = cfg.partner.id.as_str();
    let programme = &cfg.programme;
    let record_keys = keys::order_event(partner_id, order_id, &req.record_event());
    let book_keys = keys::order_book(partner_id, order_id);
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let mut found = ctx
            .store
            .batch_get(&[record_keys.clone(), book_keys.clone()])
            .await
            .map_err(internal)?;
        if let Some(item) = found.remove(&record_keys) {
            let record: OrderRecord = from_item(item).map_err(internal)?;
            info!(partner_id, order_id, "refund replayed");
            return replay(record, &req.body_sha256, dialect);
        }
        let stored: Option<OrderBook> = found
            .remove(&book_keys)
            .map(from_item)
            .transpose()
            .map_err(internal)?;
        let expected = stored.as_ref().map(|b| b.version);
        let mut book = stored.unwrap_or_else(|| OrderBook::new(partner_id, order_id));
        book.version += 1;
        let mut record = refund_record(partner_id, order_id, req, None, now);
        let no_lines: &[LineReversal] = &[];
        let answer =
            |status, member_id, points, steps: (Points, Points, Points), lines| RefundAnswer {
                status,
                partner_id,
                order_id,
                refund_id: &req.refund_id,
                member_id,
                points,
                from_own: steps.0,
                from_others: steps.1,
                to_debt: steps.2,
                lines,
            };

        let Some(mut paid) = book.paid.clone() else {
            if req.only_if_booked {
                let body = answer("not_booked", None, 0, (0, 0, 0), no_lines);
                let body = serde_json::to_string(&body).map_err(internal)?;
                return Ok(raw_json(StatusCode::OK, body));
            }
            // The order has not arrived: keep the refund on its state, apply it later.
            if book.waiting.len() >= MAX_WAITING {
                return Err(Error::invalid(
                    "too_many_waiting_refunds",
                    format!("order {order_id} has not arrived and already has {MAX_WAITING} refunds waiting"),
                ));
            }
            book.waiting.push(req.clone());
            record.status = StatusCode::ACCEPTED.as_u16();
            record.response =
                serde_json::to_string(&answer("waiting_for_order", None, 0, (0, 0, 0), no_lines))
                    .map_err(internal)?;
            let mut write = LedgerWrite::record_only(record.clone());
            write.book = Some((book, expected));
            if commit(ctx, &write, &mut retry).await? {
                info!(partner_id, order_id, "refund waits for its order");
                return Ok(raw_json(StatusCode::ACCEPTED, record.response));
            }
            continue;
        };

        // The member's account and the order's lot, in one more round trip.
        let (account, own): (Option<Account>, Option<Lot>) = match paid.member_id.as_deref() {
            Some(m) if !book.cancelled => {
                let account_keys = keys::account(&programme.id, m);
                let lot_keys = paid
                    .lot_id
                    .as_deref()
                    .map(|l| keys::lot(&programme.id, m, l));
                let mut wanted = vec![account_keys.clone()];
                wanted.extend(lot_keys.clone());
                let mut found = ctx.store.batch_get(&wanted).await.map_err(internal)?;
                let mut take = |k: Option<(String, String)>| k.and_then(|k| found.remove(&k));
                let account = take(Some(account_keys)).map(from_item).transpose();
                let lot = take(lot_keys).map(from_item).transpose();
                (account.map_err(internal)?, lot.map_err(internal)?)
            }
            _ => (None, None),
        };
        let Some(account) = account else {
            // A non-member's order, or one already cancelled: nothing (more) to take back.
            let status = if book.cancelled {
                "already_cancelled"
            } else {
                "recorded_non_member"
            };
            record.response = serde_json::to_string(&answer(
                status,
                paid.member_id.as_deref(),
                0,
                (0, 0, 0),
                no_lines,
            ))
            .map_err(internal)?;
            record.member_id = paid.member_id.clone();
            if commit(ctx, &LedgerWrite::record_only(record.clone()), &mut retry).await? {
                return Ok(raw_json(StatusCode::OK, record.response));
            }
            continue;
        };

        let reversal = paid
            .apply(req, dialect.strict())
            .map_err(|e| Error::invalid(e.code(), e.to_string()))?;
        if req.full {
            book.cancelled = true;
        }
        let source = RefundSource {
            partner_id,
            order_id,
            refund_id: &req.refund_id,
            order_at: paid.occurred_at,
        };
        let plan = reverse_on(
            ctx,
            programme,
            &account,
            own.as_ref(),
            &[],
            source,
            reversal.points,
            reversal.volume_minor,
            now,
        )
        .await?;
        let steps = (plan.from_own, plan.from_others, plan.to_debt);
        record.member_id = Some(account.member_id.clone());
        record.points = reversal.points;
        record.lot_id = paid.lot_id.clone();
        record.campaign_points = reversal.campaigns.clone();
        record.response = serde_json::to_string(&answer(
            "reversed",
            Some(&account.member_id),
            reversal.points,
            steps,
            &reversal.lines,
        ))
        .map_err(internal)?;
        book.paid = Some(paid.clone());
        let mut write = LedgerWrite::record_only(record.clone());
        write.book = Some((book, expected));
        write.account = Some((account.clone(), Some(account.version)));
        write.add_refund(plan);
        write.give_backs = give_backs(cfg, order_id, &reversal.campaigns);
        if commit(ctx, &write, &mut retry).await? {
            info!(
                partner_id,
                order_id,
                points = reversal.points,
                from_own = steps.0,
                from_others = steps.1,
                to_debt = steps.2,
                "refund booked"
            );
            return Ok(raw_json(StatusCode::OK, record.response));
        }
    }
    warn!(partner_id, order_id, "refund gave up under contention");
    Err(Error::unavailable())
}
