//! A partner's behaviour campaigns (points for a webinar attended, a course completed, ...):
//! - `GET /v1/partner/behaviour-campaigns`, `POST` `{id, name, event_type, points,
//!   per_member_cap?, starts_on, ends_on, budget?}` (validated as `bonus apply` validates
//!   them; the same body again: 200; another under the id: 409 `campaign_exists`);
//! - `GET/PATCH /v1/partner/behaviour-campaigns/{id}`: a JSON merge patch; the budget only
//!   grows (`409 budget_shrinks`): raising it tops it up.
//!
//! Another partner's campaign is the same 404 as none.

use bytes::Bytes;
use chrono::NaiveDate;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::campaign::BehaviourCampaign;
use bonus_domain::changes::{Change, Subject};
use bonus_domain::error::parse_json;
use bonus_domain::ids::valid_id;
use bonus_domain::money::Points;
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{actor, authorise};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Body {
    id: String,
    name: String,
    event_type: String,
    points: Points,
    #[serde(default)]
    per_member_cap: Option<u32>,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    #[serde(default)]
    budget: Option<Points>,
}

fn not_found() -> Error {
    Error::not_found(
        "campaign_not_found",
        "no such behaviour campaign of this partner",
    )
}

fn from_body(key: &KeyConfig, b: &Body) -> Result<BehaviourCampaign, Error> {
    let c = BehaviourCampaign {
        id: b.id.clone(),
        partner_id: key.partner.id.clone(),
        name: b.name.trim().to_string(),
        event_type: b.event_type.clone(),
        points: b.points,
        per_member_cap: b.per_member_cap,
        starts_on: b.starts_on,
        ends_on: b.ends_on,
        budget: b.budget,
    };
    if !valid_id(&c.id) {
        return Err(Error::invalid(
            "invalid_field",
            "id: letters, digits, '-', '_' or '.', at most 64",
        ));
    }
    c.validate()
        .map_err(|e| Error::invalid("invalid_field", e))?;
    Ok(c)
}

fn as_body(c: &BehaviourCampaign) -> Body {
    Body {
        id: c.id.clone(),
        name: c.name.clone(),
        event_type: c.event_type.clone(),
        points: c.points,
        per_member_cap: c.per_member_cap,
        starts_on: c.starts_on,
        ends_on: c.ends_on,
        budget: c.budget,
    }
}

fn view(c: &BehaviourCampaign, left: Option<Points>) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "name": c.name, "event_type": c.event_type, "points": c.points,
        "per_member_cap": c.per_member_cap, "starts_on": c.starts_on, "ends_on": c.ends_on,
        "budget": c.budget, "budget_remaining": left,
    })
}

fn change(
    ctx: &Ctx,
    key: &KeyConfig,
    who: &bonus_domain::changes::Actor,
    action: &str,
    before: Option<&BehaviourCampaign>,
    after: &BehaviourCampaign,
) -> Change {
    let audit = crate::Audit {
        ctx,
        partner_id: &key.partner.id,
        who,
    };
    audit.change(
        Subject::BehaviourCampaign,
        &after.id,
        action,
        before,
        Some(after),
    )
}

/// Write it (the budget grows only) with its audit record; the cached configuration of this
/// process forgets the partner.
async fn write(
    ctx: &Ctx,
    key: &KeyConfig,
    c: &BehaviourCampaign,
    record: &Change,
) -> Result<(), Error> {
    match ctx
        .store
        .put_behaviour_campaign_with(c, Some(record))
        .await?
    {
        Ok(()) => {
            ctx.forget_partner(&key.partner.id);
            Ok(())
        }
        Err(was) => Err(Error::conflict(
            "budget_shrinks",
            format!("budget: {was} were granted; a budget only grows"),
        )),
    }
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let items = ctx
        .store
        .partner_with_campaigns(&key.partner.id)
        .await?
        .map(|p| p.behaviour)
        .unwrap_or_default();
    let mut out = Vec::new();
    for c in &items {
        let left = ctx
            .store
            .behaviour_campaign(&key.partner.id, &c.id)
            .await?
            .and_then(|(_, l)| l);
        out.push(view(c, left));
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "campaigns": out }),
    ))
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    if !valid_id(id) {
        return Err(not_found());
    }
    let (c, left) = ctx
        .store
        .behaviour_campaign(&key.partner.id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, &view(&c, left)))
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let body: Body = parse_json(req.body())?;
    let c = from_body(&key, &body)?;
    if let Some((old, left)) = ctx.store.behaviour_campaign(&key.partner.id, &c.id).await? {
        return if old == c {
            Ok(json(StatusCode::OK, &view(&old, left)))
        } else {
            Err(Error::conflict(
                "campaign_exists",
                format!("this partner has a behaviour campaign {} already", c.id),
            ))
        };
    }
    let record = change(ctx, &key, &who, "created", None, &c);
    write(ctx, &key, &c, &record).await?;
    info!(partner = %key.partner.id, campaign = %c.id, "behaviour campaign created");
    Ok(json(StatusCode::CREATED, &view(&c, c.budget)))
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
    if !valid_id(id) {
        return Err(not_found());
    }
    let (old, _) = ctx
        .store
        .behaviour_campaign(&key.partner.id, id)
        .await?
        .ok_or_else(not_found)?;
    let body = crate::merge_patch(
        serde_json::to_value(as_body(&old)).map_err(bonus_domain::error::internal)?,
        &patch,
    );
    let input: Body = parse_json(body.to_string().as_bytes())?;
    let new = from_body(&key, &input)?;
    if new != old {
        let record = change(ctx, &key, &who, "updated", Some(&old), &new);
        write(ctx, &key, &new, &record).await?;
        info!(partner = %key.partner.id, campaign = %id, "behaviour campaign changed");
    }
    let (c, left) = ctx
        .store
        .behaviour_campaign(&key.partner.id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, &view(&c, left)))
}
