//! Spending points: placing a hold and claiming a gift-shop reward. Shared by the member API
//! (a partner's key) and the member site (the member's own session). Each caller asks the
//! access policy through `admit`: given the member's account as read (None: no such member),
//! it answers the account, or the same 404 as for a member that does not exist.

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use bonus_domain::account::Account;
use bonus_domain::error::{internal, Error};
use bonus_domain::hold::{hold_id, plan_hold, Hold, HoldRequest, HoldStatus, RewardClaim};
use bonus_domain::programme::{Programme, RedemptionLimits};
use bonus_domain::reward::{voucher_code, Reward};
use bonus_dynamodb::holds::Reserve;
use bonus_dynamodb::retry;
use bonus_lambda::app::Ctx;

use crate::holds::{resolve, tidy};

/// Where a hold is placed: the programme, and the partner at which the points are spent
/// (the redeemer in clearing).
pub struct SpendAt<'a> {
    pub programme: &'a Programme,
    pub partner_id: &'a str,
    /// The partner's redemption limits and time zone (None: none apply, as for the member
    /// site's own gift shop and transfers).
    pub limits: Option<(&'a RedemptionLimits, chrono_tz::Tz)>,
}

/// The local day whose counter a hold is counted in, and the day's limit.
struct DayCount {
    day: String,
    max: bonus_domain::money::Points,
}

/// The partner's redemption limits for this hold (a 409 naming the limit), and the day it
/// counts into when the partner limits points per member and day.
async fn check_limits(
    ctx: &Ctx,
    at: &SpendAt<'_>,
    member_id: &str,
    points: bonus_domain::money::Points,
) -> Result<Option<DayCount>, Error> {
    let Some((limits, tz)) = at.limits.filter(|(l, _)| !l.is_empty()) else {
        return Ok(None);
    };
    let local = ctx.now().with_timezone(&tz).naive_local();
    let day = local.date().to_string();
    let today = match limits.max_points_per_member_day {
        Some(_) => {
            ctx.store
                .redeemed_on(at.partner_id, member_id, &day)
                .await?
        }
        None => 0,
    };
    limits.check(points, local, today)?;
    Ok(limits
        .max_points_per_member_day
        .map(|max| DayCount { day, max }))
}

/// The access policy's answer for spending from a member's account (None: not found).
pub type Admit<'a> = dyn Fn(Option<Account>) -> Result<Account, Error> + Send + Sync + 'a;

/// Place a hold (also used by gift-shop claims, with `extra` items in the same transaction:
/// the stock take). Returns the hold and whether this call created it.
pub async fn place(
    ctx: &Ctx,
    at: &SpendAt<'_>,
    member_id: &str,
    req: &HoldRequest,
    admit: &Admit<'_>,
    extra: impl Fn() -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, Error>,
) -> Result<(Hold, bool), Error> {
    let (programme, partner_id) = (at.programme, at.partner_id);
    let id = hold_id(partner_id, member_id, &req.reference);
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        // Each pass re-reads at once unless it asks to back off.
        retry.now();
        if let Some(existing) = ctx.store.get_hold(&id).await? {
            if existing.status == HoldStatus::Reserving {
                // A placement of this request that did not finish: undo it, and place again.
                ctx.store.roll_back_reservation(&id).await?;
                continue;
            }
            if existing.request_sha256 != req.request_sha256 {
                return Err(Error::conflict(
                    "hold_conflict",
                    "this reference was used for another hold request",
                ));
            }
            return Ok((existing, false));
        }
        let account = if bonus_domain::ids::valid_id(member_id) {
            ctx.store.get_account(&programme.id, member_id).await?
        } else {
            None
        };
        let account = admit(account)?;
        let account = tidy(ctx, account).await?;
        let counted = check_limits(ctx, at, member_id, req.points).await?;
        let lots = ctx.store.lots(&programme.id, member_id).await?;
        let mut hold = plan_hold(programme, &account, &lots, partner_id, req, ctx.now())?;
        let mut items = extra()?;
        if let Some(c) = &counted {
            hold.redeemed_day = Some(c.day.clone());
            let ttl = (ctx.now() + chrono::Duration::days(3)).timestamp();
            items.push(
                ctx.store
                    .redeem_day_item(partner_id, member_id, &c.day, req.points, c.max, ttl)
                    .map_err(internal)?,
            );
        }
        let need = if partner_id == bonus_domain::transfer::TRANSFER_PARTNER {
            req.points
        } else {
            req.points.max(programme.min_balance_to_redeem)
        };
        match ctx.store.reserve(&hold, need, items).await? {
            Reserve::Reserved => {
                info!(partner_id, points = hold.points, "hold placed");
                return Ok((hold, true));
            }
            Reserve::Duplicate | Reserve::AccountShort | Reserve::Stale => continue,
            Reserve::Retry => retry.backoff(),
            Reserve::ExtraRefused => {
                // The day's limit (a racing hold took the room) says so; else the reward's
                // stock or per-member limit.
                if counted.is_some() {
                    check_limits(ctx, at, member_id, req.points).await?;
                }
                return Err(Error::conflict(
                    "out_of_stock",
                    "the reward is out of stock, or the member reached its limit",
                ));
            }
        }
    }
    warn!(partner_id, "hold gave up under contention");
    Err(Error::unavailable())
}

/// Claim a reward: a hold of its price whose transaction also takes one unit of stock and
/// counts the member's claims, captured at once. Idempotent on `reference` (the same
/// reference again answers the same claim). `body` is what the request said (its hash tells
/// a retry from a different request under the same reference).
pub async fn claim_reward(
    ctx: &Ctx,
    at: &SpendAt<'_>,
    member_id: &str,
    reward: &Reward,
    reference: &str,
    body: &[u8],
    admit: &Admit<'_>,
) -> Result<Hold, Error> {
    let request = HoldRequest {
        points: reward.points,
        reference: format!("claim/{}/{reference}", reward.reward_id),
        minutes: None,
        request_sha256: hex::encode(Sha256::digest([body, reward.reward_id.as_bytes()].concat())),
        reward: Some(RewardClaim {
            reward_id: reward.reward_id.clone(),
            voucher_code: voucher_code(ctx.random.as_ref()),
        }),
    };
    let voucher = request
        .reward
        .as_ref()
        .map(|r| r.voucher_code.clone())
        .unwrap_or_default();
    let claim_hold = hold_id(at.partner_id, member_id, &request.reference);
    let placed = place(ctx, at, member_id, &request, admit, || {
        ctx.store
            .claim_items(reward, member_id, &claim_hold, &voucher)
            .map_err(internal)
    })
    .await;
    let (hold, _) = match placed {
        Ok(h) => h,
        Err(e) if e.code == "out_of_stock" => {
            let now = ctx
                .store
                .get_reward(&at.programme.id, &reward.reward_id)
                .await?;
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
    // A claim returned since answers as it is (the same reference, the same claim).
    if !matches!(hold.status, HoldStatus::Captured | HoldStatus::Returned) {
        return Err(Error::conflict(
            "claim_not_completed",
            format!("the claim's hold is {:?}", hold.status_at(ctx.now())),
        ));
    }
    info!(partner_id = at.partner_id, reward_id = %reward.reward_id, "reward claimed");
    Ok(hold)
}
