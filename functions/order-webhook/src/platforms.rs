//! Shop platforms' own webhooks:
//! - `POST /v1/partners/{partner_id}/webhooks/shopify`
//! - `POST /v1/partners/{partner_id}/webhooks/woocommerce`
//!
//! Verified with the platform's signature (base64 HMAC-SHA256 of the raw body, any of the
//! partner's current secrets), mapped onto canonical orders and refunds
//! (`bonus_domain::platforms`), matched to a member, and booked by the same code as canonical
//! webhooks. A redelivery (the same signed Shopify body, whatever its unsigned webhook id;
//! the same WooCommerce order, modification time and status) gets the first answer without
//! being processed again.

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use http::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use bonus_domain::ids::{valid_external_id, valid_id};
use bonus_domain::order::validate;
use bonus_domain::platforms::{self, shopify, woocommerce, Mapped, MemberHints, Step};
use bonus_domain::programme::{Partner, PlatformLink};
use bonus_dynamodb::ledger::{Delivery, DELIVERY_DAYS};
use bonus_lambda::api::{raw_json, Error, Response};
use bonus_lambda::app::{Ctx, PartnerConfig};

use crate::{header, orders, refunds, Dialect};

/// The partner, if it has this platform linked; unknown partner, unlinked platform and bad
/// signature all get the same 401.
pub(crate) async fn verified(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
    link: fn(&Partner) -> Option<&PlatformLink>,
    signature_header: &str,
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
    let Some(l) = link(&opened) else {
        info!(
            partner_id,
            "platform webhook for a partner without that platform"
        );
        return Err(Error::unauthorized());
    };
    if !platforms::verify_base64_hmac(&l.secrets, header(req, signature_header), req.body()) {
        info!(partner_id, "platform webhook signature refused");
        return Err(Error::unauthorized());
    }
    Ok(cfg)
}

/// How an order's member was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FoundBy {
    /// The shop named the member, or its own customer id did: the answer may say who.
    Shop,
    /// The e-mail address (or not looked up at all): the answer never says who.
    Email,
}

/// The member an order belongs to: the id the shop put on the order, else the partner's
/// customer id, else the e-mail address (through the keyed-hash index; only a unique match
/// counts). None: a non-member's order.
async fn find_member(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    hints: &MemberHints,
) -> Result<Option<(String, FoundBy)>, Error> {
    if let Some(m) = hints.member_id.as_deref().filter(|m| valid_id(m)) {
        return Ok(Some((m.to_string(), FoundBy::Shop)));
    }
    if let Some(c) = hints
        .customer_id
        .as_deref()
        .filter(|c| valid_external_id(c))
    {
        let link = ctx.store.member_by_external_id(&cfg.partner.id, c).await?;
        if let Some(link) = link.filter(|l| l.programme_id == cfg.programme.id) {
            return Ok(Some((link.member_id, FoundBy::Shop)));
        }
    }
    if let Some(e) = hints.email.as_deref() {
        let found = ctx.store.members_by_email(&cfg.programme.id, e).await?;
        match found.as_slice() {
            [one] => return Ok(Some((one.clone(), FoundBy::Email))),
            [] => {}
            many => warn!(
                partner_id = %cfg.partner.id,
                matches = many.len(),
                "an e-mail address matches several members; the order is booked as a non-member's"
            ),
        }
    }
    Ok(None)
}

/// Book the steps of one delivery with the canonical code. One step answers as it would
/// on the canonical webhook; several answer with each step's answer in order.
async fn run(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    mapped: Mapped,
    body_sha256: &str,
    now: DateTime<Utc>,
) -> Result<Response, Error> {
    if let Some(why) = mapped.ignored {
        info!(partner_id = %cfg.partner.id, reason = %why, "platform webhook ignored");
        let body = json!({"status": "ignored", "reason": why}).to_string();
        return Ok(raw_json(StatusCode::OK, body));
    }
    let mut answers: Vec<Response> = Vec::new();
    // Until the shop's own words name the member, the answer does not (a refund-only
    // delivery never looks the member up, but its answer would name them).
    let mut found_by = FoundBy::Email;
    for step in mapped.steps {
        let answer = match step {
            Step::Earn(input) => {
                let mut input = *input;
                let found = find_member(ctx, cfg, &mapped.hints).await?;
                if let Some((_, by)) = &found {
                    found_by = *by;
                }
                input.member_id = found.map(|(m, _)| m);
                input.customer_id = mapped.hints.customer_id.clone();
                input.company_id = mapped.hints.company_id.clone();
                let order = validate(input, now)?;
                if order.currency != cfg.programme.currency {
                    return Err(Error::invalid(
                        "currency_mismatch",
                        format!(
                            "currency: {} is not the programme currency {}",
                            order.currency, cfg.programme.currency
                        ),
                    ));
                }
                orders::book(
                    ctx,
                    cfg,
                    &order,
                    body_sha256.to_string(),
                    Dialect::Platform,
                    now,
                )
                .await?
            }
            Step::Reverse { order_id, request } => {
                refunds::reverse(ctx, cfg, &order_id, &request, Dialect::Platform, now).await?
            }
        };
        // A member found by e-mail address stays out of the answer: an address must never
        // lead a partner to a member id.
        let answer = match found_by {
            FoundBy::Shop => answer,
            FoundBy::Email => without_member_id(answer),
        };
        answers.push(answer);
    }
    if answers.len() == 1 {
        return answers.pop().ok_or_else(Error::internal);
    }
    let steps: Vec<Value> = answers
        .iter()
        .map(|a| serde_json::from_str(a.body()).unwrap_or(Value::Null))
        .collect();
    Ok(raw_json(
        StatusCode::OK,
        json!({"status": "processed", "steps": steps}).to_string(),
    ))
}

/// The answer with any `member_id` removed (at any depth).
fn without_member_id(resp: Response) -> Response {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("member_id");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let Ok(mut body) = serde_json::from_str::<Value>(resp.body()) else {
        return resp;
    };
    strip(&mut body);
    raw_json(resp.status(), body.to_string())
}

/// Answer a redelivery from memory, or process and remember.
async fn once(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    platform: &str,
    delivery_id: Option<&str>,
    work: impl std::future::Future<Output = Result<Response, Error>>,
) -> Result<Response, Error> {
    let delivery_id = delivery_id.filter(|d| valid_external_id(d));
    if let Some(d) = delivery_id {
        if let Some(seen) = ctx.store.get_delivery(&cfg.partner.id, platform, d).await? {
            info!(partner_id = %cfg.partner.id, platform, "platform redelivery answered from memory");
            let status = StatusCode::from_u16(seen.status).unwrap_or(StatusCode::OK);
            return Ok(raw_json(status, seen.response));
        }
    }
    let resp = work.await?;
    if let Some(d) = delivery_id {
        let now = ctx.now();
        let delivery = Delivery {
            status: resp.status().as_u16(),
            response: resp.body().clone(),
            recorded_at: now,
            expires_ttl: (now + Duration::days(DELIVERY_DAYS)).timestamp(),
        };
        // Remembering is an optimisation: the steps are idempotent, so a failure here only
        // means a redelivery is processed (to the same result) again.
        if let Err(e) = ctx
            .store
            .put_delivery(&cfg.partner.id, platform, d, &delivery)
            .await
        {
            warn!(error = %e, "could not remember a platform delivery");
        }
    }
    Ok(resp)
}

pub(crate) async fn shopify(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Response, Error> {
    let now = crate::defer::judged_at(ctx, req);
    let cfg = verified(
        ctx,
        partner_id,
        req,
        |p| p.shopify.as_ref(),
        shopify::HEADER_HMAC,
    )
    .await?;
    let link = cfg
        .partner
        .shopify
        .clone()
        .ok_or_else(Error::unauthorized)?;
    let topic = header(req, shopify::HEADER_TOPIC)
        .ok_or_else(|| Error::malformed("missing_topic", "X-Shopify-Topic is missing"))?
        .to_string();
    let body_sha256 = hex::encode(Sha256::digest(req.body()));
    let work = async {
        let mapped = shopify::map(
            &topic,
            req.body(),
            &link,
            cfg.programme.currency,
            now,
            &body_sha256,
        )?;
        run(ctx, &cfg, mapped, &body_sha256, now).await
    };
    // Remembered by the hash of the signed body, not by X-Shopify-Webhook-Id: that header is
    // not signed, so a replay under a new id must still find the first answer. Topics we do
    // not use are not remembered (orders/updated may carry the same body as orders/paid).
    if !shopify::USED_TOPICS.contains(&topic.as_str()) {
        return work.await;
    }
    once(ctx, &cfg, "shopify", Some(&body_sha256), work).await
}

pub(crate) async fn woocommerce(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Response, Error> {
    // WooCommerce checks a new webhook's URL with an unsigned ping: answer it with exactly 200.
    if woocommerce::is_ping(req.body()) {
        info!(partner_id, "woocommerce ping");
        return Ok(raw_json(
            StatusCode::OK,
            json!({"status": "pong"}).to_string(),
        ));
    }
    let now = crate::defer::judged_at(ctx, req);
    let cfg = verified(
        ctx,
        partner_id,
        req,
        |p| p.woocommerce.as_ref(),
        woocommerce::HEADER_SIGNATURE,
    )
    .await?;
    let topic = header(req, woocommerce::HEADER_TOPIC).unwrap_or("order.updated");
    let body_sha256 = hex::encode(Sha256::digest(req.body()));
    let (mapped, delivery) =
        woocommerce::map(topic, req.body(), cfg.programme.currency, now, &body_sha256)?;
    let work = run(ctx, &cfg, mapped, &body_sha256, now);
    once(ctx, &cfg, "woocommerce", delivery.as_deref(), work).await
}
