//! Order webhooks: `POST /v1/partners/{partner_id}/webhooks/orders`.
//!
//! A delivery is authenticated (Standard Webhooks), parsed and validated, and then:
//! - `order.paid`: its points are computed (`bonus_domain::earning`) and booked with one read round
//!   trip and one TransactWriteItems ([`orders`]);
//! - `order.refunded` / `order.cancelled`: what the refunded part earned is taken back
//!   ([`refunds`]).
//!
//! Shopify and WooCommerce post their own formats to `/webhooks/shopify` and
//! `/webhooks/woocommerce`; [`platforms`] maps them onto the same two paths.
//!
//! The record of each event makes the webhook idempotent: the same delivery again gets the
//! first answer; the same order and event with another body gets 409.

mod behaviour;
pub mod defer;
mod orders;
mod platforms;
mod refunds;

use bonus_metrics::name;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::account::Account;
use bonus_domain::booking::{Booking, LedgerWrite, Need, OrderRecord};
use bonus_domain::ids::valid_id;
use bonus_domain::lot::Lot;
use bonus_domain::order::{validate_within, EventType, OrderEventIn};
use bonus_domain::platforms::{shopify, woocommerce};
use bonus_domain::refund_event::{validate_refund, RefundEventIn};
use bonus_domain::webhook_sig;
use bonus_dynamodb::ledger::Commit;
use bonus_dynamodb::retry::Retry;
use bonus_dynamodb::{from_item, keys};
use bonus_lambda::api::{
    internal, parse_json, raw_json, respond, segments, with_allow, Error, Response,
};
use bonus_lambda::app::{Ctx, PartnerConfig};

/// Every route this function serves: (method, path template). `docs/openapi.yaml` describes
/// each; a test keeps the two in step.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/partners/{partner_id}/webhooks/orders"),
    ("POST", "/v1/partners/{partner_id}/events"),
    ("POST", "/v1/partners/{partner_id}/webhooks/shopify"),
    ("POST", "/v1/partners/{partner_id}/webhooks/woocommerce"),
];

/// Entry point for every route this function serves.
pub async fn handle(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    let path = segments(req.uri().path());
    if defer::over_limit(&req) && req.method() == Method::POST {
        if let ["v1", "partners", partner_id, kind @ ("webhooks" | "events"), rest @ ..] =
            path.as_slice()
        {
            let route = rest.first().copied().unwrap_or(kind);
            match over_limit(ctx, partner_id, route, &req).await {
                Ok(Some(resp)) => {
                    let outcome = if resp.status() == StatusCode::ACCEPTED {
                        "deferred"
                    } else {
                        "rejected"
                    };
                    bonus_metrics::count(name::WEBHOOKS, &[("Outcome", outcome)], 1);
                    return resp;
                }
                Ok(None) => {} // not queued here: booked at once, below
                Err(e) => return respond("order-webhook", Err(e)),
            }
        }
    }
    let result = match path.as_slice() {
        ["v1", "partners", partner_id, "webhooks", "orders"] => {
            if req.method() == Method::POST {
                orders(ctx, partner_id, &req).await
            } else {
                Err(Error::method_not_allowed())
            }
        }
        ["v1", "partners", partner_id, "webhooks", "shopify"] => {
            if req.method() == Method::POST {
                platforms::shopify(ctx, partner_id, &req).await
            } else {
                Err(Error::method_not_allowed())
            }
        }
        ["v1", "partners", partner_id, "webhooks", "woocommerce"] => {
            if req.method() == Method::POST {
                platforms::woocommerce(ctx, partner_id, &req).await
            } else {
                Err(Error::method_not_allowed())
            }
        }
        ["v1", "partners", partner_id, "events"] => {
            if req.method() == Method::POST {
                behaviour::event(ctx, partner_id, &req).await
            } else {
                Err(Error::method_not_allowed())
            }
        }
        _ => Err(Error::route_not_found()),
    };
    if let Err(e) = &result {
        let outcome = if e.is_server_error() {
            "failed"
        } else {
            "rejected"
        };
        bonus_metrics::count(name::WEBHOOKS, &[("Outcome", outcome)], 1);
    }
    with_allow(respond("order-webhook", result), ROUTES, req.uri().path())
}

/// A delivery over its partner's limit (module [`defer`]): verified, then queued with a
/// 202; a request that does not verify gets 429. None: book it at once.
async fn over_limit(
    ctx: &Ctx,
    partner_id: &str,
    route: &str,
    req: &http::Request<Bytes>,
) -> Result<Option<Response>, Error> {
    let verified = match route {
        "orders" | "events" => authenticate(ctx, partner_id, req, ctx.now()).await.is_ok(),
        "shopify" => platforms::verified(
            ctx,
            partner_id,
            req,
            |p| p.shopify.as_ref(),
            shopify::HEADER_HMAC,
        )
        .await
        .is_ok(),
        // WooCommerce's unsigned activation ping is answered as usual.
        "woocommerce" if woocommerce::is_ping(req.body()) => return Ok(None),
        "woocommerce" => {
            let header = woocommerce::HEADER_SIGNATURE;
            platforms::verified(ctx, partner_id, req, |p| p.woocommerce.as_ref(), header)
                .await
                .is_ok()
        }
        _ => return Ok(None),
    };
    if !verified {
        return Ok(Some(defer::too_many()));
    }
    defer::queue(ctx, partner_id, req).await
}

pub(crate) fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Who sent a webhook, which decides how strict we are with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Our own schema: a repeat with another body is a conflict (409), and a refund of more
    /// than was ordered is refused (422).
    Canonical,
    /// A shop platform (Shopify, WooCommerce) whose word is final: it sends the whole order
    /// again on every change, so a repeat gets the first answer, and refunds are capped at
    /// what is left.
    Platform,
}

impl Dialect {
    pub(crate) fn strict(self) -> bool {
        self == Dialect::Canonical
    }
}

/// The partner a signed delivery comes from. Unknown partner and bad signature get the
/// same answer.
pub(crate) async fn authenticate(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
    now: DateTime<Utc>,
) -> Result<std::sync::Arc<PartnerConfig>, Error> {
    if !valid_id(partner_id) {
        return Err(Error::unauthorized());
    }
    let cfg = ctx
        .partner(partner_id)
        .await?
        .ok_or_else(Error::unauthorized)?;
    // The secrets are stored sealed: opened here, the only place that verifies.
    let opened = ctx
        .partner_with_secrets(partner_id)
        .await?
        .ok_or_else(Error::unauthorized)?;
    webhook_sig::verify(
        &opened.webhook_secrets,
        header(req, webhook_sig::HEADER_ID),
        header(req, webhook_sig::HEADER_TIMESTAMP),
        header(req, webhook_sig::HEADER_SIGNATURE),
        req.body(),
        now,
    )
    .map_err(|e| {
        info!(partner_id, reason = %e, "webhook signature refused");
        Error::unauthorized()
    })?;
    Ok(cfg)
}

async fn orders(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Response, Error> {
    let now = defer::judged_at(ctx, req);
    let cfg = authenticate(ctx, partner_id, req, now).await?;
    book_canonical(
        ctx,
        &cfg,
        req.body(),
        now,
        bonus_domain::order::MAX_ORDER_DELAY,
    )
    .await
}

/// Book a canonical order, refund or cancellation event of `cfg`'s partner (authenticated
/// by the caller), for an order paid at most `max_delay` ago.
async fn book_canonical(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    body: &[u8],
    now: DateTime<Utc>,
    max_delay: chrono::Duration,
) -> Result<Response, Error> {
    let body_sha256 = hex::encode(Sha256::digest(body));
    let kind: EventType = parse_json(body)?;
    if matches!(
        kind.event_type.as_str(),
        "order.refunded" | "order.cancelled"
    ) {
        let input: RefundEventIn = parse_json(body)?;
        let (order_id, refund) = validate_refund(input, cfg.programme.currency, now, &body_sha256)?;
        return refunds::reverse(ctx, cfg, &order_id, &refund, Dialect::Canonical, now).await;
    }
    let input: OrderEventIn = parse_json(body)?;
    let order = validate_within(input, now, max_delay)?;
    if order.currency != cfg.programme.currency {
        return Err(Error::invalid(
            "currency_mismatch",
            format!(
                "currency: {} is not the programme currency {}",
                order.currency, cfg.programme.currency
            ),
        ));
    }
    orders::book(ctx, cfg, &order, body_sha256, Dialect::Canonical, now).await
}

/// Book one canonical event of a bulk import of missed deliveries (`bonus import orders`):
/// exactly as the signed webhook would (idempotent on the same business keys: the same order
/// or refund again is answered as it was first), for a caller trusted without a signature,
/// with orders paid up to [`bonus_domain::order::MAX_IMPORT_DELAY`] ago.
pub async fn book_imported(ctx: &Ctx, partner_id: &str, body: &[u8]) -> Response {
    let result = async {
        let cfg = ctx
            .partner(partner_id)
            .await?
            .ok_or_else(|| Error::not_found("partner_not_found", "no such partner"))?;
        book_canonical(
            ctx,
            &cfg,
            body,
            ctx.now(),
            bonus_domain::order::MAX_IMPORT_DELAY,
        )
        .await
    }
    .await;
    respond("order-webhook", result)
}

pub(crate) fn replay(
    record: OrderRecord,
    body_sha256: &str,
    dialect: Dialect,
) -> Result<Response, Error> {
    if dialect.strict() && record.body_sha256 != body_sha256 {
        return Err(Error::conflict(
            "order_conflict",
            format!(
                "order {} was already received as {} with a different body",
                record.order_id, record.event
            ),
        ));
    }
    bonus_metrics::count(name::WEBHOOKS, &[("Outcome", "duplicate")], 1);
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
    Ok(raw_json(status, record.response))
}

/// Write a booking. True when it is written; false when the caller must read and decide
/// again: someone booked this event first (the next read replays it, at once), the account
/// or a budget moved (decide on fresh figures, after a short wait that spreads one member's
/// concurrent orders), or DynamoDB asked us to back off.
pub(crate) async fn commit(
    ctx: &Ctx,
    booking: &LedgerWrite,
    retry: &mut Retry,
) -> Result<bool, Error> {
    match ctx.store.commit_booking(booking).await? {
        Commit::Committed => {
            bonus_metrics::count(name::WEBHOOKS, &[("Outcome", "booked")], 1);
            return Ok(true);
        }
        Commit::Duplicate => retry.now(),
        Commit::Stale | Commit::Conflict => retry.again(),
        Commit::Retry => retry.backoff(),
    }
    Ok(false)
}

/// A booking's answer: the status and body it stores for replays.
/// A sandbox partner's answer (`bonus_domain::programme::Partner::sandbox`): what booking
/// would answer, marked `"sandbox": true`; nothing was written.
pub(crate) fn sandbox_answer(booking: Booking) -> Response {
    let status = StatusCode::from_u16(booking.status).unwrap_or(StatusCode::OK);
    match serde_json::from_str::<serde_json::Value>(&booking.response) {
        Ok(serde_json::Value::Object(mut body)) => {
            body.insert("sandbox".into(), serde_json::Value::Bool(true));
            bonus_lambda::api::json(status, &body)
        }
        _ => raw_json(status, booking.response),
    }
}

pub(crate) fn answer(booking: Booking) -> Response {
    let status = StatusCode::from_u16(booking.status).unwrap_or(StatusCode::OK);
    raw_json(status, booking.response)
}

/// What a plan asked to be read.
pub(crate) enum Fetched {
    Member(Box<(Option<Account>, Option<Lot>)>),
    Lots(Vec<Lot>),
    Company(Box<bonus_domain::booking::order::CompanyRead>),
}

/// Read what a plan needs: the member's account and the order's lot (one BatchGetItem), or
/// all the member's lots (one Query).
pub(crate) async fn fetch(ctx: &Ctx, programme_id: &str, need: Need) -> Result<Fetched, Error> {
    match need {
        Need::Member { member_id, lot_id } | Need::Companion { member_id, lot_id } => {
            let mut account_keys = keys::account(programme_id, &member_id);
            let mut lot_keys = lot_id
                .as_ref()
                .map(|l| keys::lot(programme_id, &member_id, l));
            let mut wanted = vec![account_keys.clone()];
            wanted.extend(lot_keys.clone());
            // Twice at most: after releasing lapsed holds, once more to read what they freed
            // (and once more if the member was merged into another: its lots are there,
            // under the same ids).
            for _ in 0..3 {
                let mut found = ctx.store.batch_get(&wanted).await?;
                let mut take = |k: Option<(String, String)>| k.and_then(|k| found.remove(&k));
                let account: Option<Account> = take(Some(account_keys.clone()))
                    .map(from_item)
                    .transpose()?;
                let lot = take(lot_keys.clone()).map(from_item).transpose()?;
                if let Some(survivor) = account.as_ref().and_then(|a| a.merged_into.clone()) {
                    account_keys = keys::account(programme_id, &survivor);
                    lot_keys = lot_id
                        .as_ref()
                        .map(|l| keys::lot(programme_id, &survivor, l));
                    wanted = vec![account_keys.clone()];
                    wanted.extend(lot_keys.clone());
                    continue;
                }
                // A hold that ran out reserves nothing: its points are taken back first, as
                // the member's own, not from other lots or as debt (the sweeper may not have
                // come by yet).
                if let Some(a) = &account {
                    // Boxed: resolving holds is a deep future, seldom needed.
                    if Box::pin(bonus_services::holds::release_members_lapsed(ctx, a)).await? {
                        continue;
                    }
                }
                return Ok(Fetched::Member(Box::new((account, lot))));
            }
            Err(internal("the member's lapsed holds stayed open"))
        }
        Need::Company {
            company_id,
            member_id,
        } => {
            // The company's account and the buyer's role in it (one BatchGetItem).
            let (account_keys, user_keys) = (
                keys::account(programme_id, &company_id),
                keys::company_user(programme_id, &company_id, &member_id),
            );
            let valid = bonus_domain::ids::valid_id(&company_id);
            let mut found = if valid {
                ctx.store
                    .batch_get(&[account_keys.clone(), user_keys.clone()])
                    .await?
            } else {
                Default::default()
            };
            let account: Option<Account> =
                found.remove(&account_keys).map(from_item).transpose()?;
            let user: Option<bonus_domain::company::CompanyUser> =
                found.remove(&user_keys).map(from_item).transpose()?;
            Ok(Fetched::Company(Box::new(
                bonus_domain::booking::order::CompanyRead {
                    company_id,
                    account,
                    role: user.map(|u| u.role),
                },
            )))
        }
        Need::Lots { member_id } | Need::CompanionLots { member_id } => Ok(Fetched::Lots(
            ctx.store.lots(programme_id, &member_id).await?,
        )),
    }
}
