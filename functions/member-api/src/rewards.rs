//! The gift shop: `GET /v1/rewards` and
//! `POST /v1/members/{member_id}/rewards/{reward_id}/claim` `{reference?}`.
//!
//! A claim is a hold of the reward's price whose transaction also takes one unit of stock
//! (condition: stock left) and counts the member's claims (condition: under the limit), then
//! captured at once. Released claims (a capture that never happened) give the unit back.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::hold::{HoldStatus, RewardClaim};
use bonus_domain::ids::{require_id, valid_id};
use bonus_domain::reward::{voucher_code, Reward};
use bonus_lambda::api::{json, parse_json, Error, Response};
use bonus_lambda::app::Ctx;

use bonus_domain::hold::HoldRequest;

use crate::holds::{place, resolve, view};
use bonus_domain::access::Action;

use crate::{authorise, internal, member_account, Scope};

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
    points: i64,
    in_stock: i64,
    per_member_limit: Option<i64>,
}

fn reward_view(r: &Reward) -> RewardView<'_> {
    RewardView {
        reward_id: &r.reward_id,
        name: &r.name,
        description: r.description.as_deref(),
        points: r.points,
        in_stock: r.stock.max(0),
        per_member_limit: r.per_member_limit,
    }
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::ReadBalance).await?;
    let rewards = ctx.store.rewards(&key.programme.id).await?;
    let views: Vec<RewardView> = rewards.iter().map(reward_view).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "rewards": views }),
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
    let request = HoldRequest {
        points: reward.points,
        reference: format!("claim/{reward_id}/{reference}"),
        minutes: None,
        request_sha256: hex::encode(Sha256::digest(
            [req.body().as_ref(), reward_id.as_bytes()].concat(),
        )),
        reward: Some(RewardClaim {
            reward_id: reward_id.to_string(),
            voucher_code: voucher_code(ctx.random.as_ref()),
        }),
    };
    let placed = place(ctx, &key, member_id, &request, || {
        ctx.store.claim_items(&reward, member_id).map_err(internal)
    })
    .await;
    let (hold, _) = match placed {
        Ok(h) => h,
        Err(e) if e.code == "out_of_stock" => {
            let now = ctx.store.get_reward(&key.programme.id, reward_id).await?;
            return Err(match now {
                Some(r) if r.stock > 0 => Error::conflict(
                    "claim_limit_reached",
                    format!(
                        "the member already claimed this reward {} time(s), the limit",
                        r.per_member_limit.unwrap_or(0)
                    ),
                ),
                _ => Error::conflict("out_of_stock", "the reward is out of stock"),
            });
        }
        Err(e) => return Err(e),
    };
    let hold = match hold.status {
        HoldStatus::Open => resolve(ctx, &hold, hold.points, HoldStatus::Captured)
            .await?
            .unwrap_or(hold),
        _ => hold,
    };
    let hold = ctx.store.get_hold(&hold.hold_id).await?.unwrap_or(hold);
    if hold.status != HoldStatus::Captured {
        return Err(Error::conflict(
            "claim_not_completed",
            format!("the claim's hold is {:?}", hold.status_at(ctx.now())),
        ));
    }
    info!(partner_id = %key.partner.id, reward_id, "reward claimed");
    Ok(json(StatusCode::CREATED, &view(&hold, ctx.now())))
}
