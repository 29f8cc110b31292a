//! A partner's own order campaigns (`bonus_domain::campaign`):
//! - `GET /v1/partner/campaigns`: all of them, with their status;
//! - `POST /v1/partner/campaigns`: a new one, validated as `bonus apply` validates the
//!   config file (the same fields, without `partner`); the same body again answers 200 with
//!   the campaign, another body under an existing id 409 `campaign_exists`;
//! - `GET /v1/partner/campaigns/{id}`: one, with its budget spent and left;
//! - `PATCH /v1/partner/campaigns/{id}`: a JSON merge patch of the same fields (`ends_on`
//!   today ends it); the budget only grows, the shard count is fixed;
//! - `POST /v1/partner/campaigns/{id}/top-ups` `{points, reference}`: more budget, once per
//!   reference;
//! - `GET /v1/partner/campaigns/{id}/report?format=json|csv|svg`: the campaign period
//!   against the three before it.
//!
//! Every change lands in the audit trail in the same transaction as the change.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::budget::BudgetStatus;
use bonus_domain::campaign::{Campaign, MAX_BUDGET};
use bonus_domain::changes::{Actor, Change, Subject};
use bonus_domain::config::CampaignIn;
use bonus_domain::error::parse_json;
use bonus_domain::ids::valid_id;
use bonus_domain::money::Points;
use bonus_dynamodb::campaigns::{CampaignApplied, TopUp};
use bonus_lambda::api::{json, query_param, typed, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::{actor, authorise};

#[derive(Debug, Serialize)]
struct CampaignView<'a> {
    #[serde(flatten)]
    campaign: &'a Campaign,
    /// `scheduled`, `running` or `ended`, by the partner's local date.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_spent: Option<Points>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_remaining: Option<Points>,
}

fn status(ctx: &Ctx, key: &KeyConfig, c: &Campaign) -> &'static str {
    let today = ctx.now().with_timezone(&key.partner.time_zone).date_naive();
    if today < c.starts_on {
        "scheduled"
    } else if c.ended_before(today) {
        "ended"
    } else {
        "running"
    }
}

fn view<'a>(
    ctx: &Ctx,
    key: &KeyConfig,
    c: &'a Campaign,
    budget: Option<&BudgetStatus>,
) -> CampaignView<'a> {
    CampaignView {
        campaign: c,
        status: status(ctx, key, c),
        budget_spent: budget.map(|b| b.spent),
        budget_remaining: budget.map(|b| b.remaining),
    }
}

fn campaign_not_found() -> Error {
    Error::not_found("campaign_not_found", "no such campaign at this partner")
}

fn invalid(e: String) -> Error {
    Error::invalid("invalid_field", e)
}

/// The caller's campaign `id` (a malformed id is simply not one of its campaigns).
pub(crate) async fn own_campaign(ctx: &Ctx, key: &KeyConfig, id: &str) -> Result<Campaign, Error> {
    if !valid_id(id) {
        return Err(campaign_not_found());
    }
    ctx.store
        .get_campaign(&key.partner.id, id)
        .await?
        .ok_or_else(campaign_not_found)
}

fn change(
    ctx: &Ctx,
    who: &Actor,
    c: &Campaign,
    action: &str,
    before: Option<&Campaign>,
    after: Option<&Campaign>,
) -> Change {
    let audit = crate::Audit {
        ctx,
        partner_id: &c.partner_id,
        who,
    };
    audit.change(Subject::Campaign, &c.id, action, before, after)
}

/// The body as the partner's campaign: `partner` must be left out (it is the key's).
fn from_body(key: &KeyConfig, input: &CampaignIn) -> Result<Campaign, Error> {
    if input.partner.is_some() {
        return Err(invalid(
            "partner: leave it out; a campaign is the calling key's partner's".into(),
        ));
    }
    if !valid_id(&input.id) {
        return Err(invalid(format!(
            "id: '{}' {}",
            input.id,
            bonus_domain::ids::ID_RULE
        )));
    }
    if input.id.contains('/') {
        return Err(invalid(
            "id: no '/' (it is part of the campaign's address)".into(),
        ));
    }
    input
        .to_campaign(&key.partner.id, Some(&key.programme))
        .map_err(invalid)
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let items = ctx
        .store
        .partner_with_campaigns(&key.partner.id)
        .await?
        .unwrap_or_default();
    let views: Vec<CampaignView> = items
        .campaigns
        .iter()
        .map(|c| view(ctx, &key, c, None))
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "campaigns": views }),
    ))
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let c = own_campaign(ctx, &key, id).await?;
    let budget = ctx.store.budget_status(&c).await?;
    Ok(json(StatusCode::OK, &view(ctx, &key, &c, Some(&budget))))
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let input: CampaignIn = parse_json(req.body())?;
    let c = from_body(&key, &input)?;
    if let Some(old) = ctx.store.get_campaign(&key.partner.id, &c.id).await? {
        return existing(ctx, &key, &old, &c).await;
    }
    let record = change(ctx, &who, &c, "created", None, Some(&c));
    match ctx.store.put_campaign(&c, Some(&record)).await? {
        CampaignApplied::Created => {
            ctx.forget_partner(&key.partner.id);
            info!(partner = %key.partner.id, campaign = %c.id, "campaign created");
            let budget = ctx.store.budget_status(&c).await?;
            Ok(json(
                StatusCode::CREATED,
                &view(ctx, &key, &c, Some(&budget)),
            ))
        }
        // Created by a concurrent request meanwhile: answered as a repeat.
        _ => match ctx.store.get_campaign(&key.partner.id, &c.id).await? {
            Some(old) => existing(ctx, &key, &old, &c).await,
            None => Err(Error::unavailable()),
        },
    }
}

/// A create of an id that exists: the same campaign again is answered as created before
/// (200); anything else is a conflict.
async fn existing(
    ctx: &Ctx,
    key: &KeyConfig,
    old: &Campaign,
    asked: &Campaign,
) -> Result<Response, Error> {
    if old != asked {
        return Err(Error::conflict(
            "campaign_exists",
            format!(
                "campaign {} exists with other settings; change it with PATCH",
                old.id
            ),
        ));
    }
    let budget = ctx.store.budget_status(old).await?;
    Ok(json(StatusCode::OK, &view(ctx, key, old, Some(&budget))))
}

/// A campaign in the shape of the create body (what a merge patch applies to).
fn as_body(c: &Campaign) -> Result<serde_json::Value, Error> {
    let mut v = serde_json::to_value(c).map_err(bonus_domain::error::internal)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("partner_id");
    }
    Ok(v)
}

pub(crate) async fn update(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let patch: serde_json::Map<String, serde_json::Value> = parse_json(req.body())?;
    for fixed in ["id", "partner", "partner_id"] {
        if patch.contains_key(fixed) {
            return Err(invalid(format!("{fixed}: cannot be changed")));
        }
    }
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = own_campaign(ctx, &key, id).await?;
        let body = crate::merge_patch(as_body(&old)?, &patch);
        let input: CampaignIn = parse_json(body.to_string().as_bytes())?;
        let new = from_body(&key, &input)?;
        if new.budget_shards != old.budget_shards {
            return Err(Error::conflict(
                "budget_shards_fixed",
                format!(
                    "budget_shards is fixed at {} once created",
                    old.budget_shards
                ),
            ));
        }
        if new.budget < old.budget {
            return Err(Error::conflict(
                "budget_cannot_shrink",
                format!(
                    "budget {} is below the {} already granted; budgets only grow",
                    new.budget, old.budget
                ),
            ));
        }
        if new == old {
            let budget = ctx.store.budget_status(&old).await?;
            return Ok(json(StatusCode::OK, &view(ctx, &key, &old, Some(&budget))));
        }
        let record = change(ctx, &who, &new, "updated", Some(&old), Some(&new));
        match ctx.store.put_campaign(&new, Some(&record)).await? {
            CampaignApplied::Updated | CampaignApplied::ToppedUp(_) => {
                ctx.forget_partner(&key.partner.id);
                info!(partner = %key.partner.id, campaign = %new.id, "campaign changed");
                let budget = ctx.store.budget_status(&new).await?;
                return Ok(json(StatusCode::OK, &view(ctx, &key, &new, Some(&budget))));
            }
            _ => retry.backoff(),
        }
    }
    Err(Error::unavailable())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUpIn {
    points: Points,
    /// The caller's name for this top-up: sent again, it adds nothing.
    reference: String,
}

#[derive(Debug, Serialize)]
struct TopUpView<'a> {
    campaign_id: &'a str,
    reference: &'a str,
    points: Points,
    budget: Points,
}

pub(crate) async fn top_up(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let input: TopUpIn = parse_json(req.body())?;
    if input.points <= 0 || input.points > MAX_BUDGET {
        return Err(invalid(format!(
            "points: a whole number from 1 to {MAX_BUDGET}"
        )));
    }
    crate::check_reference(&input.reference)?;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = own_campaign(ctx, &key, id).await?;
        if old
            .budget
            .checked_add(input.points)
            .is_none_or(|b| b > MAX_BUDGET)
        {
            return Err(invalid(format!(
                "points: the budget would pass {MAX_BUDGET}"
            )));
        }
        let mut after = old.clone();
        after.budget += input.points;
        let record = change(ctx, &who, &old, "topped_up", Some(&old), Some(&after));
        let (status, done) = match ctx
            .store
            .top_up_campaign(&old, input.points, &input.reference, &record, Vec::new())
            .await?
        {
            TopUp::Done(done, _) => {
                ctx.forget_partner(&key.partner.id);
                info!(partner = %key.partner.id, campaign = %old.id, points = input.points, "campaign topped up");
                (StatusCode::CREATED, done)
            }
            TopUp::Before(done) if done.points == input.points => (StatusCode::OK, done),
            TopUp::Before(_) => {
                return Err(Error::conflict(
                    "top_up_conflict",
                    "this reference was used for another top-up",
                ))
            }
            TopUp::Raced => {
                retry.backoff();
                continue;
            }
        };
        return Ok(json(
            status,
            &TopUpView {
                campaign_id: &old.id,
                reference: &done.reference,
                points: done.points,
                budget: done.budget_after,
            },
        ));
    }
    Err(Error::unavailable())
}

pub(crate) async fn report(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let format = query_param(req, "format").unwrap_or("json");
    if !["json", "csv", "svg"].contains(&format) {
        return Err(Error::malformed(
            "invalid_format",
            "format: json, csv or svg",
        ));
    }
    let c = own_campaign(ctx, &key, id).await?;
    if c.skus.is_empty() {
        return Err(Error::invalid(
            "report_needs_skus",
            "the campaign report compares the sales of a campaign's SKUs; this campaign lists product groups or every product",
        ));
    }
    let report = bonus_services::report::gather(&ctx.store, &key.programme, &c).await?;
    Ok(match format {
        "csv" => typed(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            bonus_domain::report::csv(&report),
        ),
        "svg" => typed(
            StatusCode::OK,
            "image/svg+xml",
            bonus_services::report::svg(&report, key.programme.currency)
                .map_err(bonus_domain::error::internal)?,
        ),
        _ => json(StatusCode::OK, &report),
    })
}
