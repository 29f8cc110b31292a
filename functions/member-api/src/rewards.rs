//! The gift shop: `GET /v1/rewards` and
//! `POST /v1/members/{member_id}/rewards/{reward_id}/claim` `{reference?}`.
//!
//! A claim is a hold of the reward's price whose transaction also takes one unit of stock
//! (condition: stock left) and counts the member's claims (condition: under the limit), then
//! captured at once. Released claims (a capture that never happened) give the unit back.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::ids::{require_id, valid_id};
use bonus_domain::reward::Reward;
use bonus_lambda::api::{json, parse_json, query_param, Error, Response};
use bonus_lambda::app::Ctx;

use crate::holds::{spend_at, view};
use bonus_domain::access::Action;
use bonus_services::spend;

use crate::{admit, authorise, member_account, Scope};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimIn {
    #[serde(default)]
    reference: Option<String>,
}

#[derive(Debug, Serialize)]
struct RewardView<'a> {
    reward_id: &'a str,
    name: &'a str,
    description: Option<&'a str>,
    category: Option<&'a str>,
    image_url: Option<&'a str>,
    points: i64,
    in_stock: i64,
    per_member_limit: Option<i64>,
}

fn reward_view(r: &Reward) -> RewardView<'_> {
    RewardView {
        reward_id: &r.reward_id,
        name: &r.name,
        description: r.description.as_deref(),
        category: r.category.as_deref(),
        image_url: r.image_url.as_deref(),
        points: r.points,
        in_stock: r.stock.max(0),
        per_member_limit: r.per_member_limit,
    }
}

/// `GET /v1/rewards?category=&limit=50&cursor=`: a page of the catalogue in id order (of
/// one category), one Query whatever its size; `next_cursor` while there may be more.
pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::ReadBalance).await?;
    let limit = match query_param(req, "limit") {
        None => 50,
        Some(l) => match l.parse::<i32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(Error::malformed("invalid_limit", "limit: 1 to 100")),
        },
    };
    let category = match query_param(req, "category") {
        None => None,
        Some(c) if valid_id(c) && c.len() <= 64 => Some(c),
        Some(_) => {
            return Err(Error::malformed(
                "invalid_category",
                "category: 1-64 characters of A-Z a-z 0-9 . _ : @ -",
            ))
        }
    };
    let after = query_param(req, "cursor")
        .map(|c| {
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|id| valid_id(id))
                .ok_or_else(|| Error::malformed("invalid_cursor", "cursor: not one we gave out"))
        })
        .transpose()?;
    let page = ctx
        .store
        .rewards_page(&key.programme.id, category, limit, after.as_deref())
        .await?;
    let views: Vec<RewardView> = page.rewards.iter().map(reward_view).collect();
    let next = page
        .next_after
        .map(|id| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, id));
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "rewards": views, "next_cursor": next }),
    ))
}

pub(crate) async fn claim(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
    reward_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Hold).await?;
    let input: ClaimIn = if req.body().is_empty() {
        ClaimIn::default()
    } else {
        parse_json(req.body())?
    };
    let not_found = || Error::not_found("reward_not_found", "no such reward in this programme");
    if !valid_id(reward_id) {
        return Err(not_found());
    }
    member_account(ctx, &key, member_id, Action::Hold).await?;
    let reward = ctx
        .store
        .get_reward(&key.programme.id, reward_id)
        .await?
        .ok_or_else(not_found)?;
    let reference = match input.reference {
        Some(r) => {
            require_id(&r, "reference", "invalid_reference")?;
            r
        }
        None => ctx.random.hex(8),
    };
    let hold = spend::claim_reward(
        ctx,
        &spend_at(&key),
        member_id,
        &reward,
        &reference,
        req.body(),
        &|account| Ok(admit(&key, account, Action::Hold)?.0),
    )
    .await?;
    info!(partner_id = %key.partner.id, reward_id, "reward claimed");
    Ok(json(StatusCode::CREATED, &view(&hold, ctx.now())))
}
