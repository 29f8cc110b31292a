//! Order webhooks: `POST /v1/partners/{partner_id}/webhooks/orders`.
//!
//! A delivery is authenticated (Standard Webhooks), parsed and validated, its points are
//! computed (`shared::earning`), and it is booked with one read round trip (BatchGetItem of
//! the member's account and any earlier record of this event) and one TransactWriteItems.
//! The record of the event makes the webhook idempotent: the same delivery again gets the
//! first answer; the same order and event with another body gets 409.

mod behaviour;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use http::{Method, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use shared::api::{parse_json, raw_json, segments, ApiError, Response};
use shared::app::{Ctx, PartnerConfig};
use std::collections::BTreeMap;

use shared::account::Account;
use shared::campaign::Campaign;
use shared::earning::{earn_order, EarnContext, LineEarning};
use shared::ids::valid_id;
use shared::ledger::{plan_order, tier_for_order};
use shared::order::{validate, Order, OrderEventIn};
use shared::store::campaigns::{plan_takes, BudgetShard, BudgetTake};
use shared::store::config::MemberProfile;
use shared::store::ledger::{Booking, Commit, OrderRecord, OrderWrite};
use shared::store::retry::{sleep_backoff, MAX_ATTEMPTS};
use shared::store::{keys, shard_of};
use shared::webhook_sig;

/// Entry point for every route this function serves.
pub async fn handle(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    let path = segments(req.uri().path());
    let result = match path.as_slice() {
        ["v1", "partners", partner_id, "webhooks", "orders"] => {
            if req.method() == Method::POST {
                orders(ctx, partner_id, &req).await
            } else {
                Err(ApiError::method_not_allowed())
            }
        }
        ["v1", "partners", partner_id, "events"] => {
            if req.method() == Method::POST {
                behaviour::event(ctx, partner_id, &req).await
            } else {
                Err(ApiError::method_not_allowed())
            }
        }
        _ => Err(ApiError::route_not_found()),
    };
    result.unwrap_or_else(|e| {
        if e.status.is_server_error() {
            error!(code = e.code, "order webhook failed");
        }
        e.into_response()
    })
}

fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    error!(error = %e, "store error");
    ApiError::internal()
}

/// The answer to a webhook, as stored for idempotent replays.
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
}

/// The partner a signed delivery comes from. Unknown partner and bad signature get the
/// same answer.
pub(crate) async fn authenticate(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
    now: DateTime<Utc>,
) -> Result<std::sync::Arc<PartnerConfig>, ApiError> {
    if !valid_id(partner_id) {
        return Err(ApiError::unauthorized());
    }
    let cfg = ctx
        .partner(partner_id)
        .await
        .map_err(internal)?
        .ok_or_else(ApiError::unauthorized)?;
    webhook_sig::verify(
        &cfg.partner.webhook_secrets,
        header(req, webhook_sig::HEADER_ID),
        header(req, webhook_sig::HEADER_TIMESTAMP),
        header(req, webhook_sig::HEADER_SIGNATURE),
        req.body(),
        now,
    )
    .map_err(|e| {
        info!(partner_id, reason = %e, "webhook signature refused");
        ApiError::unauthorized()
    })?;
    Ok(cfg)
}

async fn orders(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Response, ApiError> {
    let now = ctx.now();
    let cfg = authenticate(ctx, partner_id, req, now).await?;
    let body = req.body();
    let input: OrderEventIn = parse_json(body)?;
    let order = validate(input, now)?;
    if order.currency != cfg.programme.currency {
        return Err(ApiError::unprocessable(
            "currency_mismatch",
            format!(
                "currency: {} is not the programme currency {}",
                order.currency, cfg.programme.currency
            ),
        ));
    }
    let body_sha256 = hex::encode(Sha256::digest(body));
    book(ctx, &cfg, &order, body_sha256, now).await
}

pub(crate) fn replay(record: OrderRecord, body_sha256: &str) -> Result<Response, ApiError> {
    if record.body_sha256 != body_sha256 {
        return Err(ApiError::conflict(
            "order_conflict",
            format!(
                "order {} was already received as {} with a different body",
                record.order_id, record.event
            ),
        ));
    }
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    Ok(raw_json(status, record.response))
}

/// Write a booking. True when it is written; false when the caller must read and decide
/// again: someone booked this event first (the next read replays it), the account or a
/// budget moved (decide on fresh figures), or DynamoDB asked us to back off (after a wait).
pub(crate) async fn commit(ctx: &Ctx, booking: &Booking, attempt: u32) -> Result<bool, ApiError> {
    match ctx.store.commit_booking(booking).await.map_err(internal)? {
        Commit::Committed => Ok(true),
        Commit::Duplicate | Commit::Stale => Ok(false),
        Commit::Retry => {
            sleep_backoff(attempt).await;
            Ok(false)
        }
    }
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

/// Read, decide, write; again if the account or a budget moved in between.
async fn book(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    order: &Order,
    body_sha256: String,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let partner_id = cfg.partner.id.as_str();
    let programme = &cfg.programme;
    let event = order.event.as_str();
    let record_keys = keys::order_event(partner_id, &order.order_id, event);
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

    for attempt in 0..MAX_ATTEMPTS {
        let read = ctx
            .store
            .read_for_order(account_keys.clone(), record_keys.clone(), &budget_keys)
            .await
            .map_err(internal)?;
        // Auto-enrolment: an unknown member id joins with this order, in its transaction.
        let (account, enrol) = match (read.account, order.member_id.as_deref()) {
            (None, Some(member)) if cfg.partner.auto_enrol => (
                Some(Account::open(&programme.id, member)),
                Some(MemberProfile {
                    member_id: member.to_string(),
                    programme_id: programme.id.clone(),
                    email: None,
                    phone: None,
                    name: None,
                    locale: "en".into(),
                    enrolled_at: now,
                }),
            ),
            (account, _) => (account, None),
        };
        if let Some(record) = read.record {
            info!(partner_id, order_id = %order.order_id, "order webhook replayed");
            return replay(record, &body_sha256);
        }

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
            .map_err(|e| ApiError::unprocessable("invalid_amount", e.to_string()))?;
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
        };
        let response = serde_json::to_string(&answer).map_err(internal)?;
        let record = OrderRecord {
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
        let booking = match (plan, &account) {
            (Some(plan), Some(a)) => Booking::Ledger(OrderWrite {
                record,
                expected_version: a.version,
                plan,
                takes: budget_takes(
                    &campaigns,
                    &read.budgets,
                    &order.order_id,
                    &earning.campaign_points,
                ),
                enrol: enrol.clone(),
            }),
            _ => Booking::RecordOnly(record),
        };
        if commit(ctx, &booking, attempt).await? {
            info!(partner_id, order_id = %order.order_id, points = answer.points, status = status.as_u16(), "order booked");
            return Ok(raw_json(status, response));
        }
    }
    warn!(partner_id, order_id = %order.order_id, "order webhook gave up under contention");
    Err(ApiError::unavailable())
}
