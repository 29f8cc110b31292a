//! Gift-shop claims found by their voucher code, and returned (crate `bonus_domain::
//! claim_return` has the rules). Used by the partner API (a partner's return desk) and the
//! CLI (ops).

use tracing::info;

use bonus_domain::changes::Change;
use bonus_domain::claim_return::{plan_claim_return, ClaimReturn, ReturnRequest};
use bonus_domain::error::{internal, Error};
use bonus_domain::hold::Hold;
use bonus_domain::reward::valid_voucher_code;
use bonus_dynamodb::retry;

use crate::holds::{hold_and_account, lots_without_expiry};
use bonus_lambda::app::Ctx;

fn claim_not_found() -> Error {
    Error::not_found("claim_not_found", "no such claim for this partner")
}

/// The claim a voucher code names, if `partner_id` may handle it (None: ops, any claim).
/// Codes are matched in upper case. Anything else is the same 404 as no such code.
pub async fn find(
    ctx: &Ctx,
    programme_id: &str,
    partner_id: Option<&str>,
    code: &str,
) -> Result<Hold, Error> {
    let code = code.to_ascii_uppercase();
    if !valid_voucher_code(&code) {
        return Err(claim_not_found());
    }
    let hold = ctx
        .store
        .voucher_hold(programme_id, &code)
        .await?
        .ok_or_else(claim_not_found)?;
    let Some(claim) = &hold.reward else {
        return Err(claim_not_found());
    };
    if let Some(partner_id) = partner_id {
        let owner = ctx
            .store
            .get_reward(programme_id, &claim.reward_id)
            .await?
            .and_then(|r| r.partner_id);
        if !bonus_domain::access::may_handle_claim(partner_id, &hold.partner_id, owner.as_deref()) {
            return Err(claim_not_found());
        }
    }
    Ok(hold)
}

/// Return a claim once: the points back into its lots, its unit of stock and the member's
/// claim count back, the statement and clearing entries, and `change` (the partner's audit
/// trail), in one write. Returns the claim as it is now and whether this call returned it
/// (false: it was returned before, and is answered as it is).
pub async fn return_claim(
    ctx: &Ctx,
    time_zone: chrono_tz::Tz,
    claim: &Hold,
    req: &ReturnRequest,
    change: Option<&(dyn Fn(&Hold) -> Change + Sync)>,
) -> Result<(Hold, bool), Error> {
    let store = &ctx.store;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let (current, account) = hold_and_account(ctx, claim)
            .await?
            .ok_or_else(claim_not_found)?;
        if current.settled_lots.is_some() {
            // The capture's lots are still being updated (a crash left them): finish first.
            store.finish_settlement(&current).await?;
            retry.now();
            continue;
        }
        let account = account.ok_or_else(|| internal("account of a claim is missing"))?;
        let lots = lots_without_expiry(ctx, &current).await?;
        let s = match plan_claim_return(&current, &account, &lots, time_zone, req, ctx.now())? {
            ClaimReturn::AsIs => return Ok((current, false)),
            ClaimReturn::Return(s) => s,
        };
        let reward_id = current
            .reward
            .as_ref()
            .map(|r| r.reward_id.clone())
            .unwrap_or_default();
        let mut extra =
            store.unclaim_items(&current.programme_id, &reward_id, &current.member_id)?;
        if let Some(c) = change {
            extra.push(store.change_put(&c(&s.hold))?);
        }
        if store
            .settle(&s, current.version, account.version, extra)
            .await?
        {
            info!(
                partner_id = %req.partner_id,
                reward_id = %reward_id,
                points = s.hold.captured,
                "claim returned"
            );
            return Ok((s.hold, true));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}
