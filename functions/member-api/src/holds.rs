//! Checkout in two phases (`bonus_domain::hold`):
//! - `POST /v1/members/{member_id}/holds` `{points | amount, reference, expires_in_minutes?}`
//! - `GET /v1/holds/{hold_id}`
//! - `POST /v1/holds/{hold_id}/capture` `{points?}` (default: all of it)
//! - `POST /v1/holds/{hold_id}/void`
//!
//! A hold is identified by the partner's `reference` for the member: posting it again gets
//! the same hold. Each hold resolves once; a repeated capture or void answers with the
//! hold's state and changes nothing.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::hold::{
    hold_points, plan_finish, Finish, HeldLot, Hold, HoldRequest, HoldStatus,
};
use bonus_domain::ids::{require_id, valid_id};
use bonus_domain::money::Points;
use bonus_dynamodb::retry;
use bonus_lambda::api::{json, parse_json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};
pub(crate) use bonus_services::holds::resolve;
use bonus_services::spend::{self, SpendAt};

use bonus_domain::access::Action;

use crate::{admit, authorise, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldIn {
    #[serde(default)]
    points: Option<Points>,
    /// A money amount to pay with points instead (decimal string in the programme currency).
    #[serde(default)]
    amount: Option<String>,
    reference: String,
    #[serde(default)]
    expires_in_minutes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureIn {
    #[serde(default)]
    points: Option<Points>,
}

/// A hold as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct HoldView<'a> {
    hold_id: &'a str,
    status: HoldStatus,
    member_id: &'a str,
    partner_id: &'a str,
    reference: &'a str,
    points: Points,
    captured: Points,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<DateTime<Utc>>,
    lots: &'a [HeldLot],
    #[serde(skip_serializing_if = "Option::is_none")]
    reward_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voucher_code: Option<&'a str>,
}

pub(crate) fn view(hold: &Hold, now: DateTime<Utc>) -> HoldView<'_> {
    HoldView {
        hold_id: &hold.hold_id,
        status: hold.status_at(now),
        member_id: &hold.member_id,
        partner_id: &hold.partner_id,
        reference: &hold.reference,
        points: hold.points,
        captured: hold.captured,
        created_at: hold.created_at,
        expires_at: hold.expires_at,
        resolved_at: hold.resolved_at,
        lots: &hold.lots,
        reward_id: hold.reward.as_ref().map(|r| r.reward_id.as_str()),
        voucher_code: hold.reward.as_ref().map(|r| r.voucher_code.as_str()),
    }
}

fn hold_not_found() -> Error {
    Error::not_found("hold_not_found", "no such hold for this partner")
}

/// Place a hold at the key's partner, for a member the key may spend for.
pub(crate) async fn place(
    ctx: &Ctx,
    key: &KeyConfig,
    member_id: &str,
    req: &HoldRequest,
) -> Result<(Hold, bool), Error> {
    let at = spend_at(key);
    spend::place(
        ctx,
        &at,
        member_id,
        req,
        &|account| Ok(admit(key, account, Action::Hold)?.0),
        || Ok(vec![]),
    )
    .await
}

/// Where a key's holds and claims are placed: its programme, at its partner.
pub(crate) fn spend_at(key: &KeyConfig) -> SpendAt<'_> {
    SpendAt {
        programme: &key.programme,
        partner_id: &key.partner.id,
        limits: Some((&key.partner.redemption, key.partner.time_zone)),
    }
}

pub(crate) async fn create(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Hold).await?;
    let input: HoldIn = parse_json(req.body())?;
    require_id(&input.reference, "reference", "invalid_reference")?;
    let points = hold_points(input.points, input.amount.as_deref(), &key.programme)?;
    let request = HoldRequest {
        points,
        reference: input.reference.clone(),
        minutes: input.expires_in_minutes,
        request_sha256: hex::encode(Sha256::digest(req.body())),
        reward: None,
    };
    let (hold, created) = place(ctx, &key, member_id, &request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view(&hold, ctx.now())))
}

/// The caller's hold, or 404 (another partner's holds do not exist for it).
async fn own_hold(ctx: &Ctx, key: &KeyConfig, hold_id: &str) -> Result<Hold, Error> {
    if !valid_id(hold_id) {
        return Err(hold_not_found());
    }
    match ctx.store.get_hold(hold_id).await? {
        // A hold still being placed is not a hold yet.
        Some(h) if h.partner_id == key.partner.id && h.status != HoldStatus::Reserving => Ok(h),
        _ => Err(hold_not_found()),
    }
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    hold_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Hold).await?;
    let hold = own_hold(ctx, &key, hold_id).await?;
    Ok(json(StatusCode::OK, &view(&hold, ctx.now())))
}

/// Capture (`capture = true`) or void a hold.
pub(crate) async fn finish(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    hold_id: &str,
    capture: bool,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Hold).await?;
    let wanted = if capture && !req.body().is_empty() {
        parse_json::<CaptureIn>(req.body())?.points
    } else {
        None
    };
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        // Each pass re-reads at once unless it asks to back off.
        retry.now();
        let hold = own_hold(ctx, &key, hold_id).await?;
        let now = ctx.now();
        match plan_finish(&hold, now, capture, wanted)? {
            Finish::Settle { points, status } => {
                if let Some(done) = resolve(ctx, &hold, points, status).await? {
                    info!(partner_id = %key.partner.id, points, capture, "hold resolved");
                    return Ok(json(StatusCode::OK, &view(&done, now)));
                }
                // Resolved by someone else meanwhile: read what it became.
            }
            Finish::Lapsed { release, refusal } => {
                if release {
                    resolve(ctx, &hold, 0, HoldStatus::Expired).await?;
                }
                return match refusal {
                    Some(e) => Err(e),
                    None => Ok(json(StatusCode::OK, &view(&hold, now))),
                };
            }
            Finish::AsIs => return Ok(json(StatusCode::OK, &view(&hold, now))),
        }
    }
    Err(Error::unavailable())
}
