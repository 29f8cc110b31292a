//! A partner's offers to the programme's members (`bonus_domain::offer`):
//! - `GET /v1/partner/offers`, `POST /v1/partner/offers` `{id, texts: {en: {title, text},
//!   ...}, valid_from, valid_to, link?: {campaign|reward: id}, segment?, channels?}` (the
//!   same body again: 200; another under the id: 409 `offer_exists`);
//! - `GET/PATCH /v1/partner/offers/{id}` (a JSON merge patch, until it is sent);
//! - `GET /v1/partner/offers/{id}/preview`: how many members the segment holds now, and how
//!   many of them each channel reaches;
//! - `POST /v1/partner/offers/{id}/send`: sends it once (again: 200, nothing more goes out),
//!   fanned out over the notifications queue under every member's monthly cap.
//!
//! Another partner's offer is the same 404 as none.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::changes::{Change, Subject};
use bonus_domain::error::parse_json;
use bonus_domain::ids::valid_id;
use bonus_domain::notify::Channel;
use bonus_domain::offer::{Offer, OfferLink, OfferText, Segment};
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{actor, authorise};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OfferBody {
    id: String,
    texts: BTreeMap<String, OfferText>,
    valid_from: DateTime<Utc>,
    valid_to: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<OfferLink>,
    #[serde(default)]
    segment: Segment,
    #[serde(default = "email")]
    channels: Vec<Channel>,
}

fn email() -> Vec<Channel> {
    vec![Channel::Email]
}

fn offer_not_found() -> Error {
    Error::not_found("offer_not_found", "no such offer of this partner")
}

/// An offer from a body, checked against the programme and the partner's own campaigns and
/// rewards.
async fn from_body(
    ctx: &Ctx,
    key: &KeyConfig,
    b: &OfferBody,
    created_at: DateTime<Utc>,
    version: u64,
) -> Result<Offer, Error> {
    let mut channels = b.channels.clone();
    channels.sort_by_key(|c| c.as_str());
    channels.dedup();
    let o = Offer {
        programme_id: key.programme.id.clone(),
        partner_id: key.partner.id.clone(),
        offer_id: b.id.clone(),
        texts: b.texts.clone(),
        valid_from: b.valid_from,
        valid_to: b.valid_to,
        link: b.link.clone(),
        segment: b.segment.clone(),
        channels,
        sent_at: None,
        sent_by: None,
        created_at,
        version,
    };
    let invalid = |e: String| Error::invalid("invalid_field", e);
    o.validate(ctx.now()).map_err(invalid)?;
    let tiers: Vec<String> = key.programme.tiers.iter().map(|t| t.name.clone()).collect();
    let partners: BTreeSet<String> = ctx
        .store
        .partner_ids(&key.programme.id)
        .await?
        .into_iter()
        .collect();
    o.segment.validate(&tiers, &partners).map_err(invalid)?;
    match &o.link {
        None => {}
        Some(OfferLink::Campaign(id)) => {
            let ok = valid_id(id) && ctx.store.get_campaign(&key.partner.id, id).await?.is_some();
            if !ok {
                return Err(invalid(format!(
                    "link.campaign: '{id}' is not a campaign of this partner"
                )));
            }
        }
        Some(OfferLink::Reward(id)) => {
            let ok = valid_id(id)
                && ctx
                    .store
                    .get_reward(&key.programme.id, id)
                    .await?
                    .is_some_and(|r| r.partner_id.as_deref() == Some(key.partner.id.as_str()));
            if !ok {
                return Err(invalid(format!(
                    "link.reward: '{id}' is not a reward of this partner"
                )));
            }
        }
    }
    Ok(o)
}

fn as_body(o: &Offer) -> OfferBody {
    OfferBody {
        id: o.offer_id.clone(),
        texts: o.texts.clone(),
        valid_from: o.valid_from,
        valid_to: o.valid_to,
        link: o.link.clone(),
        segment: o.segment.clone(),
        channels: o.channels.clone(),
    }
}

#[derive(Debug, Serialize)]
struct View<'a> {
    offer_id: &'a str,
    texts: &'a BTreeMap<String, OfferText>,
    valid_from: DateTime<Utc>,
    valid_to: DateTime<Utc>,
    link: Option<&'a OfferLink>,
    segment: &'a Segment,
    channels: &'a [Channel],
    sent_at: Option<DateTime<Utc>>,
    sent_by: Option<&'a str>,
    created_at: DateTime<Utc>,
}

fn view(o: &Offer) -> View<'_> {
    View {
        offer_id: &o.offer_id,
        texts: &o.texts,
        valid_from: o.valid_from,
        valid_to: o.valid_to,
        link: o.link.as_ref(),
        segment: &o.segment,
        channels: &o.channels,
        sent_at: o.sent_at,
        sent_by: o.sent_by.as_deref(),
        created_at: o.created_at,
    }
}

async fn own_offer(ctx: &Ctx, key: &KeyConfig, id: &str) -> Result<Offer, Error> {
    if !valid_id(id) {
        return Err(offer_not_found());
    }
    ctx.store
        .get_offer(&key.programme.id, &key.partner.id, id)
        .await?
        .ok_or_else(offer_not_found)
}

fn change(
    ctx: &Ctx,
    key: &KeyConfig,
    who: &bonus_domain::changes::Actor,
    id: &str,
    action: &str,
    before: Option<&Offer>,
    after: Option<&Offer>,
) -> Change {
    let audit = crate::Audit {
        ctx,
        partner_id: &key.partner.id,
        who,
    };
    audit.change(Subject::Offer, id, action, before, after)
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let all = ctx.store.offers(&key.programme.id).await?;
    let mine: Vec<View> = all
        .iter()
        .filter(|o| o.partner_id == key.partner.id)
        .map(view)
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "offers": mine })))
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let o = own_offer(ctx, &key, id).await?;
    Ok(json(StatusCode::OK, &view(&o)))
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let body: OfferBody = parse_json(req.body())?;
    let o = from_body(ctx, &key, &body, ctx.now(), 1).await?;
    let existing = |old: Offer| -> Result<Response, Error> {
        let same = Offer {
            created_at: o.created_at,
            version: o.version,
            sent_at: None,
            sent_by: None,
            ..old.clone()
        };
        if same == o {
            Ok(json(StatusCode::OK, &view(&old)))
        } else {
            Err(Error::conflict(
                "offer_exists",
                format!("this partner has an offer {} already", o.offer_id),
            ))
        }
    };
    if let Some(old) = ctx
        .store
        .get_offer(&o.programme_id, &o.partner_id, &o.offer_id)
        .await?
    {
        return existing(old);
    }
    let record = change(ctx, &key, &who, &o.offer_id, "created", None, Some(&o));
    if !ctx.store.create_offer(&o, &record).await? {
        return match ctx
            .store
            .get_offer(&o.programme_id, &o.partner_id, &o.offer_id)
            .await?
        {
            Some(old) => existing(old),
            None => Err(Error::unavailable()),
        };
    }
    info!(partner = %key.partner.id, offer = %o.offer_id, "offer created");
    Ok(json(StatusCode::CREATED, &view(&o)))
}

fn already_sent(o: &Offer) -> Error {
    Error::conflict(
        "offer_sent",
        format!("offer {} was sent; it cannot be changed", o.offer_id),
    )
}

pub(crate) async fn update(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let patch: serde_json::Map<String, serde_json::Value> = parse_json(req.body())?;
    if patch.contains_key("id") {
        return Err(Error::invalid("invalid_field", "id: cannot be changed"));
    }
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = own_offer(ctx, &key, id).await?;
        if old.sent_at.is_some() {
            return Err(already_sent(&old));
        }
        let body = crate::merge_patch(
            serde_json::to_value(as_body(&old)).map_err(bonus_domain::error::internal)?,
            &patch,
        );
        let input: OfferBody = parse_json(body.to_string().as_bytes())?;
        let new = from_body(ctx, &key, &input, old.created_at, old.version + 1).await?;
        if (Offer {
            version: old.version,
            ..new.clone()
        }) == old
        {
            return Ok(json(StatusCode::OK, &view(&old)));
        }
        let record = change(ctx, &key, &who, id, "updated", Some(&old), Some(&new));
        if ctx.store.update_offer(&new, &record, None).await? {
            info!(partner = %key.partner.id, offer = %id, "offer changed");
            return Ok(json(StatusCode::OK, &view(&new)));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}

pub(crate) async fn preview(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let o = own_offer(ctx, &key, id).await?;
    let p = bonus_services::offers::preview(&ctx.store, &key.programme, &o, ctx.now()).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "offer_id": o.offer_id,
            "members": p.members,
            "reachable": p.reachable,
            "email": p.email,
            "sms": p.sms,
            "not_yet_indexed": p.unknown,
            "marketing_per_month": key.programme.messages.marketing_per_month,
        }),
    ))
}

pub(crate) async fn send(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = own_offer(ctx, &key, id).await?;
        if old.sent_at.is_some() {
            // Sent once: the same answer again, nothing more goes out.
            return Ok(json(StatusCode::OK, &view(&old)));
        }
        if ctx.now() >= old.valid_to {
            return Err(Error::conflict(
                "offer_expired",
                "the offer's validity has ended",
            ));
        }
        let new = Offer {
            sent_at: Some(ctx.now()),
            sent_by: Some(who.name.clone()),
            version: old.version + 1,
            ..old.clone()
        };
        let record = change(ctx, &key, &who, id, "sent", Some(&old), Some(&new));
        let task = serde_json::json!({"offer": {
            "programme_id": new.programme_id,
            "partner_id": new.partner_id,
            "offer_id": new.offer_id,
        }});
        if ctx.store.update_offer(&new, &record, Some(&task)).await? {
            info!(partner = %key.partner.id, offer = %id, "offer sent");
            return Ok(json(StatusCode::ACCEPTED, &view(&new)));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}
