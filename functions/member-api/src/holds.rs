//! Checkout in two phases (`shared::hold`):
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
use tracing::{info, warn};

use shared::account::Account;
use shared::api::{json, parse_json, ApiError, Response};
use shared::app::{Ctx, KeyConfig};
use shared::hold::{
    choose_lots, expires_at, settle, HeldLot, Hold, HoldStatus, RewardClaim, SpendError,
};
use shared::ids::{require_id, valid_id};
use shared::lot::Lot;
use shared::money::{Money, Points};
use shared::store::holds::Reserve;
use shared::store::retry::{sleep_backoff, MAX_ATTEMPTS};
use shared::store::{from_item, keys};

use crate::{authorise, internal, member_account, Scope};

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

fn spend_error(e: SpendError) -> ApiError {
    match e {
        SpendError::NotPositive => ApiError::unprocessable(e.code(), e.to_string()),
        _ => ApiError::conflict(e.code(), e.to_string()),
    }
}

/// The id of the hold for a partner's reference for a member: the same request again finds
/// the same hold.
pub(crate) fn hold_id(partner_id: &str, member_id: &str, reference: &str) -> String {
    let digest = Sha256::digest(format!("{partner_id}|{member_id}|{reference}").as_bytes());
    format!("h_{}", &hex::encode(digest)[..24])
}

fn hold_not_found() -> ApiError {
    ApiError::not_found("hold_not_found", "no such hold for this partner")
}

/// Resolve an open hold (capture `points`, or release with `status`). Ok(None) when the hold
/// was no longer open (someone else resolved it): the caller re-reads.
pub(crate) async fn resolve(
    ctx: &Ctx,
    hold: &Hold,
    points: Points,
    status: HoldStatus,
) -> Result<Option<Hold>, ApiError> {
    let store = &ctx.store;
    for attempt in 0..MAX_ATTEMPTS {
        // The hold, its member's account and its lots as of one instant.
        let mut wanted = vec![
            keys::hold(&hold.hold_id),
            keys::account(&hold.programme_id, &hold.member_id),
        ];
        wanted.extend(
            hold.lots
                .iter()
                .map(|l| keys::lot(&hold.programme_id, &hold.member_id, &l.lot_id)),
        );
        let mut items = store.snapshot(&wanted).await.map_err(internal)?.into_iter();
        let mut next = || items.next().flatten();
        let Some(current) = next()
            .map(from_item::<Hold>)
            .transpose()
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if current.status != HoldStatus::Open {
            return Ok(None);
        }
        let account: Account = next()
            .map(from_item)
            .transpose()
            .map_err(internal)?
            .ok_or_else(|| internal("account of an open hold is missing"))?;
        let lots: Vec<Lot> = std::iter::from_fn(|| items.next())
            .flatten()
            .map(from_item)
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        let s = settle(&current, &account, &lots, points, status, ctx.now()).map_err(internal)?;
        // A gift-shop claim that is released gives its unit of stock back.
        let extra = match (&current.reward, status) {
            (Some(r), HoldStatus::Voided | HoldStatus::Expired) => store
                .unclaim_items(&current.programme_id, &r.reward_id, &current.member_id)
                .map_err(internal)?,
            _ => vec![],
        };
        if store
            .settle(&s, current.version, account.version, extra)
            .await
            .map_err(internal)?
        {
            return Ok(Some(s.hold));
        }
        sleep_backoff(attempt).await;
    }
    Err(ApiError::unavailable())
}

/// Release the member's holds that ran out, and fold due releases into the account, so that
/// its stored `available` is what may be spent now. Returns the fresh account.
pub(crate) async fn tidy(ctx: &Ctx, account: Account) -> Result<Account, ApiError> {
    let now = ctx.now();
    let mut account = account;
    for _ in 0..MAX_ATTEMPTS {
        let lapsed: Vec<String> = account
            .open_holds
            .iter()
            .filter(|(_, h)| now >= h.expires_at)
            .map(|(id, _)| id.clone())
            .collect();
        let due = account
            .pending
            .keys()
            .next()
            .is_some_and(|k| *k <= shared::clock::ts(now));
        if lapsed.is_empty() && !due {
            return Ok(account);
        }
        for id in lapsed {
            if let Some(h) = ctx.store.get_hold(&id).await.map_err(internal)? {
                if h.status == HoldStatus::Open {
                    resolve(ctx, &h, 0, HoldStatus::Expired).await?;
                }
            }
        }
        let fresh = ctx
            .store
            .get_account(&account.programme_id, &account.member_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("account vanished"))?;
        account = fresh;
        if account
            .pending
            .keys()
            .next()
            .is_some_and(|k| *k <= shared::clock::ts(now))
        {
            let mut folded = account.clone();
            folded.fold_due(now);
            folded.version += 1;
            if ctx
                .store
                .save_account(&folded, account.version)
                .await
                .map_err(internal)?
            {
                account = folded;
            }
        }
    }
    Ok(account)
}

/// What a new hold asks for, validated.
pub(crate) struct HoldRequest {
    pub points: Points,
    pub reference: String,
    pub minutes: Option<i64>,
    pub request_sha256: String,
    pub reward: Option<RewardClaim>,
}

/// Place a hold (also used by gift-shop claims, with `extra` items in the same transaction:
/// the stock take). Returns the hold and whether this call created it.
pub(crate) async fn place(
    ctx: &Ctx,
    key: &KeyConfig,
    member_id: &str,
    req: &HoldRequest,
    extra: impl Fn() -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, ApiError>,
) -> Result<(Hold, bool), ApiError> {
    let programme = &key.programme;
    let partner_id = key.partner.id.as_str();
    let id = hold_id(partner_id, member_id, &req.reference);
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(existing) = ctx.store.get_hold(&id).await.map_err(internal)? {
            if existing.request_sha256 != req.request_sha256 {
                return Err(ApiError::conflict(
                    "hold_conflict",
                    "this reference was used for another hold request",
                ));
            }
            return Ok((existing, false));
        }
        let account = member_account(ctx, key, member_id).await?;
        let account = tidy(ctx, account).await?;
        let now = ctx.now();
        let lots = ctx
            .store
            .lots(&programme.id, member_id)
            .await
            .map_err(internal)?;
        let chosen = choose_lots(programme, &account, &lots, partner_id, req.points, now)
            .map_err(spend_error)?;
        let hold = Hold {
            hold_id: id.clone(),
            programme_id: programme.id.clone(),
            member_id: member_id.to_string(),
            partner_id: partner_id.to_string(),
            reference: req.reference.clone(),
            points: req.points,
            status: HoldStatus::Open,
            captured: 0,
            lots: chosen,
            created_at: now,
            expires_at: expires_at(now, req.minutes),
            resolved_at: None,
            request_sha256: req.request_sha256.clone(),
            reward: req.reward.clone(),
            version: 0,
        };
        let need = req.points.max(programme.min_balance_to_redeem);
        match ctx
            .store
            .reserve(&hold, need, extra()?)
            .await
            .map_err(internal)?
        {
            Reserve::Reserved => {
                info!(partner_id, points = hold.points, "hold placed");
                return Ok((hold, true));
            }
            Reserve::Duplicate | Reserve::AccountShort | Reserve::Stale => continue,
            Reserve::Retry => sleep_backoff(attempt).await,
            Reserve::ExtraRefused => {
                return Err(ApiError::conflict(
                    "out_of_stock",
                    "the reward is out of stock, or the member reached its limit",
                ))
            }
        }
    }
    warn!(partner_id, "hold gave up under contention");
    Err(ApiError::unavailable())
}

pub(crate) async fn create(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, ApiError> {
    let key = authorise(ctx, req, Scope::Hold).await?;
    let input: HoldIn = parse_json(req.body())?;
    require_id(&input.reference, "reference", "invalid_reference")?;
    let points = match (input.points, input.amount.as_deref()) {
        (Some(p), None) if p > 0 => p,
        (Some(_), None) => {
            return Err(ApiError::unprocessable(
                "invalid_points",
                "points: a whole number above 0",
            ))
        }
        (None, Some(a)) => {
            let money = Money::parse(a, key.programme.currency)
                .map_err(|e| ApiError::unprocessable("invalid_amount", format!("amount: {e}")))?;
            let per_point = key.programme.point_value_minor.max(1);
            if money.minor <= 0 || money.minor % per_point != 0 {
                return Err(ApiError::unprocessable(
                    "invalid_amount",
                    format!(
                        "amount: a positive multiple of the point value ({per_point} minor units)"
                    ),
                ));
            }
            money.minor / per_point
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "give either points or amount",
            ))
        }
    };
    let request = HoldRequest {
        points,
        reference: input.reference.clone(),
        minutes: input.expires_in_minutes,
        request_sha256: hex::encode(Sha256::digest(req.body())),
        reward: None,
    };
    let (hold, created) = place(ctx, &key, member_id, &request, || Ok(vec![])).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view(&hold, ctx.now())))
}

/// The caller's hold, or 404 (another partner's holds do not exist for it).
async fn own_hold(ctx: &Ctx, key: &KeyConfig, hold_id: &str) -> Result<Hold, ApiError> {
    if !valid_id(hold_id) {
        return Err(hold_not_found());
    }
    match ctx.store.get_hold(hold_id).await.map_err(internal)? {
        Some(h) if h.partner_id == key.partner.id => Ok(h),
        _ => Err(hold_not_found()),
    }
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    hold_id: &str,
) -> Result<Response, ApiError> {
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
) -> Result<Response, ApiError> {
    let key = authorise(ctx, req, Scope::Hold).await?;
    let wanted = if capture && !req.body().is_empty() {
        parse_json::<CaptureIn>(req.body())?.points
    } else {
        None
    };
    for _ in 0..MAX_ATTEMPTS {
        let hold = own_hold(ctx, &key, hold_id).await?;
        let now = ctx.now();
        match (hold.status_at(now), capture) {
            (HoldStatus::Open, _) => {
                let points = if capture {
                    wanted.unwrap_or(hold.points)
                } else {
                    0
                };
                if points <= 0 && capture || points > hold.points {
                    return Err(ApiError::unprocessable(
                        "invalid_capture",
                        format!("points: 1 to {} (the hold)", hold.points),
                    ));
                }
                let status = if capture {
                    HoldStatus::Captured
                } else {
                    HoldStatus::Voided
                };
                if let Some(done) = resolve(ctx, &hold, points, status).await? {
                    info!(partner_id = %key.partner.id, points, capture, "hold resolved");
                    return Ok(json(StatusCode::OK, &view(&done, now)));
                }
                // Resolved by someone else meanwhile: answer with what it became.
            }
            (HoldStatus::Expired, _) => {
                if hold.status == HoldStatus::Open {
                    resolve(ctx, &hold, 0, HoldStatus::Expired).await?;
                }
                if capture {
                    return Err(ApiError::conflict(
                        "hold_expired",
                        "the hold ran out before it was captured; its points are released",
                    ));
                }
                return Ok(json(StatusCode::OK, &view(&hold, now)));
            }
            (HoldStatus::Captured, true) | (HoldStatus::Voided, false) => {
                return Ok(json(StatusCode::OK, &view(&hold, now)));
            }
            (HoldStatus::Captured, false) => {
                return Err(ApiError::conflict(
                    "hold_captured",
                    "the hold was captured; refund the order to give points back",
                ))
            }
            (HoldStatus::Voided, true) => {
                return Err(ApiError::conflict(
                    "hold_voided",
                    "the hold was voided; place a new one",
                ))
            }
        }
    }
    Err(ApiError::unavailable())
}
