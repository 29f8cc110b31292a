//! A partner's own gift-shop rewards (`bonus_domain::reward`), in the programme's catalogue:
//! - `GET /v1/partner/rewards`: its rewards;
//! - `POST /v1/partner/rewards` `{id, name, description?, category?, image_url?, points,
//!   stock, per_member_limit?}`: a new one (the same body again: 200; an id taken in the
//!   programme: 409 `reward_exists`);
//! - `PATCH /v1/partner/rewards/{id}`: a JSON merge patch of its settings (not the stock);
//! - `POST /v1/partner/rewards/{id}/stock` `{units, reference}`: more stock, once per
//!   reference.
//!
//! Another partner's reward, or the programme's own, is the same 404 as none.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::changes::{Change, Subject};
use bonus_domain::error::parse_json;
use bonus_domain::ids::valid_id;
use bonus_domain::reward::Reward;
use bonus_dynamodb::rewards::Restock;
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{actor, authorise};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RewardBody {
    id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    points: i64,
    /// Units put into stock at creation (later: `POST .../stock`).
    stock: i64,
    #[serde(default)]
    per_member_limit: Option<i64>,
}

fn reward_not_found() -> Error {
    Error::not_found("reward_not_found", "no such reward of this partner")
}

fn from_body(key: &KeyConfig, b: &RewardBody) -> Result<Reward, Error> {
    let r = Reward {
        programme_id: key.programme.id.clone(),
        reward_id: b.id.clone(),
        name: b.name.trim().to_string(),
        description: b.description.clone(),
        points: b.points,
        granted: b.stock,
        stock: b.stock,
        per_member_limit: b.per_member_limit,
        category: b.category.clone(),
        image_url: b.image_url.clone(),
        partner_id: Some(key.partner.id.clone()),
    };
    r.validate()
        .map_err(|e| Error::invalid("invalid_field", e))?;
    Ok(r)
}

/// The body a reward was made from (what a merge patch applies to).
fn as_body(r: &Reward) -> RewardBody {
    RewardBody {
        id: r.reward_id.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        category: r.category.clone(),
        image_url: r.image_url.clone(),
        points: r.points,
        stock: r.granted,
        per_member_limit: r.per_member_limit,
    }
}

#[derive(Debug, Serialize)]
struct View<'a> {
    reward_id: &'a str,
    name: &'a str,
    description: Option<&'a str>,
    category: Option<&'a str>,
    image_url: Option<&'a str>,
    points: i64,
    /// Units ever put into stock, and left.
    granted: i64,
    in_stock: i64,
    per_member_limit: Option<i64>,
}

fn view(r: &Reward) -> View<'_> {
    View {
        reward_id: &r.reward_id,
        name: &r.name,
        description: r.description.as_deref(),
        category: r.category.as_deref(),
        image_url: r.image_url.as_deref(),
        points: r.points,
        granted: r.granted,
        in_stock: r.stock.max(0),
        per_member_limit: r.per_member_limit,
    }
}

/// The partner's own reward `id` (anyone else's is the same 404 as none).
async fn own_reward(ctx: &Ctx, key: &KeyConfig, id: &str) -> Result<Reward, Error> {
    if !valid_id(id) {
        return Err(reward_not_found());
    }
    ctx.store
        .get_reward(&key.programme.id, id)
        .await?
        .filter(|r| r.partner_id.as_deref() == Some(key.partner.id.as_str()))
        .ok_or_else(reward_not_found)
}

fn change(
    ctx: &Ctx,
    key: &KeyConfig,
    who: &bonus_domain::changes::Actor,
    id: &str,
    action: &str,
    before: Option<&Reward>,
    after: Option<&Reward>,
) -> Change {
    let audit = crate::Audit {
        ctx,
        partner_id: &key.partner.id,
        who,
    };
    audit.change(Subject::Reward, id, action, before, after)
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let all = ctx.store.rewards(&key.programme.id).await?;
    let mine: Vec<View> = all
        .iter()
        .filter(|r| r.partner_id.as_deref() == Some(key.partner.id.as_str()))
        .map(view)
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "rewards": mine }),
    ))
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let body: RewardBody = parse_json(req.body())?;
    let r = from_body(&key, &body)?;
    let existing = |old: Reward| -> Result<Response, Error> {
        let mut same = old.clone();
        same.stock = same.granted;
        if old.partner_id == r.partner_id && same == r {
            Ok(json(StatusCode::OK, &view(&old)))
        } else {
            Err(Error::conflict(
                "reward_exists",
                format!("a reward {} exists in this programme", r.reward_id),
            ))
        }
    };
    if let Some(old) = ctx.store.get_reward(&r.programme_id, &r.reward_id).await? {
        return existing(old);
    }
    let record = change(ctx, &key, &who, &r.reward_id, "created", None, Some(&r));
    if !ctx.store.create_reward(&r, &record).await? {
        return match ctx.store.get_reward(&r.programme_id, &r.reward_id).await? {
            Some(old) => existing(old),
            None => Err(Error::unavailable()),
        };
    }
    info!(partner = %key.partner.id, reward = %r.reward_id, "reward created");
    Ok(json(StatusCode::CREATED, &view(&r)))
}

pub(crate) async fn update(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let patch: serde_json::Map<String, serde_json::Value> = parse_json(req.body())?;
    for fixed in ["id", "stock"] {
        if patch.contains_key(fixed) {
            return Err(Error::invalid(
                "invalid_field",
                format!("{fixed}: cannot be changed here (stock: POST .../stock)"),
            ));
        }
    }
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = own_reward(ctx, &key, id).await?;
        let body = crate::merge_patch(
            serde_json::to_value(as_body(&old)).map_err(bonus_domain::error::internal)?,
            &patch,
        );
        let input: RewardBody = parse_json(body.to_string().as_bytes())?;
        let mut new = from_body(&key, &input)?;
        new.stock = old.stock;
        if new == old {
            return Ok(json(StatusCode::OK, &view(&old)));
        }
        let record = change(ctx, &key, &who, id, "updated", Some(&old), Some(&new));
        if ctx.store.update_reward(&old, &new, &record).await? {
            info!(partner = %key.partner.id, reward = %id, "reward changed");
            return Ok(json(StatusCode::OK, &view(&new)));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestockIn {
    units: i64,
    reference: String,
}

pub(crate) async fn restock(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let input: RestockIn = parse_json(req.body())?;
    if input.units <= 0 || input.units > 1_000_000 {
        return Err(Error::invalid("invalid_field", "units: 1 to 1000000"));
    }
    crate::check_reference(&input.reference)?;
    let old = own_reward(ctx, &key, id).await?;
    let mut after = old.clone();
    after.granted += input.units;
    after.stock += input.units;
    let record = change(ctx, &key, &who, id, "restocked", Some(&old), Some(&after));
    let status = match ctx
        .store
        .restock_reward(&old, input.units, &input.reference, &record)
        .await?
    {
        Restock::Done => StatusCode::CREATED,
        Restock::Before(units) if units == input.units => StatusCode::OK,
        Restock::Before(_) => {
            return Err(Error::conflict(
                "restock_conflict",
                "this reference was used for another restock",
            ))
        }
    };
    let now = own_reward(ctx, &key, id).await?;
    Ok(json(
        status,
        &serde_json::json!({"reward_id": id, "reference": input.reference, "units": input.units, "granted": now.granted, "in_stock": now.stock.max(0)}),
    ))
}
