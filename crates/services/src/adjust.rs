//! Adjustments (`bonus_domain::adjustment`): asked for by a partner's customer service over
//! the partner API or by ops with `bonus adjust`, approved by a second person above the
//! programme's threshold, then applied step by step. Every call is idempotent: the same
//! reference again answers the same adjustment, and one left half applied by a crash is
//! taken up where it stopped by the next call that touches it (the request sent again, or
//! its approval).

use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::account::Account;
use bonus_domain::adjustment::{
    adjustment_id, check_cover, decide as decide_rule, plan_request, plan_step, Adjustment, Reason,
    Status,
};
use bonus_domain::changes::Actor;
use bonus_domain::error::Error;
use bonus_domain::money::Points;
use bonus_domain::programme::Programme;
use bonus_dynamodb::retry;
use bonus_lambda::app::Ctx;

use crate::holds::tidy;
use crate::spend::Admit;

/// What is asked.
pub struct AdjustAsk<'a> {
    pub member_id: &'a str,
    pub points: Points,
    pub reason: Reason,
    pub note: &'a str,
    pub reference: &'a str,
}

fn request_sha256(ask: &AdjustAsk<'_>) -> String {
    hex::encode(Sha256::digest(
        format!(
            "{}|{}|{}|{}",
            ask.member_id,
            ask.points,
            ask.reason.code(),
            ask.note.trim()
        )
        .as_bytes(),
    ))
}

pub fn not_found() -> Error {
    Error::not_found("adjustment_not_found", "no such adjustment at this partner")
}

/// Ask for an adjustment at `partner_id`; `admit` is the access policy's answer for the
/// member (the same 404 as for no member). Returns it and whether this call created it.
pub async fn request(
    ctx: &Ctx,
    programme: &Programme,
    partner_id: &str,
    who: &Actor,
    ask: &AdjustAsk<'_>,
    admit: &Admit<'_>,
) -> Result<(Adjustment, bool), Error> {
    let sha = request_sha256(ask);
    let id = adjustment_id(partner_id, ask.reference);
    if let Some(existing) = ctx.store.get_adjustment(partner_id, &id).await? {
        return repeat(ctx, programme, existing, &sha).await;
    }
    let account = if bonus_domain::ids::valid_id(ask.member_id) {
        ctx.store.get_account(&programme.id, ask.member_id).await?
    } else {
        None
    };
    let account = admit(account)?;
    let adj = plan_request(
        programme,
        partner_id,
        &account.member_id,
        ask.points,
        ask.reason,
        ask.note,
        ask.reference,
        &sha,
        who,
        ctx.now(),
    )?;
    if adj.status == Status::Applying {
        cover(ctx, &adj, account).await?;
    }
    let change = audit(ctx, &adj, who, "requested", None);
    if !ctx.store.create_adjustment(&adj, &change).await? {
        // Created by a concurrent request under the same reference.
        let existing = ctx
            .store
            .get_adjustment(partner_id, &id)
            .await?
            .ok_or_else(Error::unavailable)?;
        return repeat(ctx, programme, existing, &sha).await;
    }
    info!(partner_id, adjustment_id = %adj.adjustment_id, points = adj.points, status = ?adj.status, "adjustment asked");
    let adj = if adj.status == Status::Applying {
        apply(ctx, programme, &adj).await?
    } else {
        adj
    };
    Ok((adj, true))
}

/// The same reference again: the same request is answered as it stands (and one left half
/// applied goes on); another request is a conflict.
async fn repeat(
    ctx: &Ctx,
    programme: &Programme,
    existing: Adjustment,
    sha: &str,
) -> Result<(Adjustment, bool), Error> {
    if existing.request_sha256 != sha {
        return Err(Error::conflict(
            "adjustment_conflict",
            "this reference was used for another adjustment",
        ));
    }
    if existing.status == Status::Applying {
        return Ok((apply(ctx, programme, &existing).await?, false));
    }
    Ok((existing, false))
}

/// The audit-trail record of an adjustment's request or decision.
fn audit(
    ctx: &Ctx,
    adj: &Adjustment,
    who: &Actor,
    action: &str,
    before: Option<&Adjustment>,
) -> bonus_domain::changes::Change {
    bonus_domain::changes::Change::of(
        &adj.partner_id,
        &ctx.random.hex(4),
        ctx.now(),
        who,
        bonus_domain::changes::Subject::Adjustment,
        &adj.adjustment_id,
        action,
        before,
        Some(adj),
    )
}

/// Refuse a debit the member cannot cover (unless its reason allows a debt).
async fn cover(ctx: &Ctx, adj: &Adjustment, account: Account) -> Result<(), Error> {
    if adj.points > 0 {
        return Ok(());
    }
    // Holds that ran out give their points back first.
    tidy(ctx, account).await?;
    let lots = ctx.store.lots(&adj.programme_id, &adj.member_id).await?;
    check_cover(adj, &lots, ctx.now())
}

/// Write an adjustment being applied, step by step, until it is applied. Each step has its
/// own tries; a step that cannot commit leaves the adjustment to the next call.
pub async fn apply(
    ctx: &Ctx,
    programme: &Programme,
    adj: &Adjustment,
) -> Result<Adjustment, Error> {
    loop {
        let mut retry = ctx.retry();
        let mut stepped = false;
        while let Some(pause) = retry.next() {
            retry::pause(pause).await;
            let Some(current) = ctx
                .store
                .get_adjustment(&adj.partner_id, &adj.adjustment_id)
                .await?
            else {
                return Err(not_found());
            };
            if current.status != Status::Applying {
                return Ok(current);
            }
            let account = ctx
                .store
                .get_account(&current.programme_id, &current.member_id)
                .await?
                .ok_or_else(|| bonus_domain::error::internal("adjusted member has no account"))?;
            let account = tidy(ctx, account).await?;
            let lots = ctx
                .store
                .lots(&current.programme_id, &current.member_id)
                .await?;
            let step = plan_step(programme, &current, &account, &lots, ctx.now())?;
            if ctx
                .store
                .commit_adjustment_step(&step, account.version, current.version)
                .await?
            {
                if step.last {
                    info!(adjustment_id = %current.adjustment_id, applied = step.adjustment.applied, debt = step.adjustment.debt, "adjustment applied");
                    return Ok(step.adjustment);
                }
                stepped = true;
                break;
            }
            retry.backoff();
        }
        if !stepped {
            return Err(Error::unavailable());
        }
    }
}

/// A second person approves or rejects a pending adjustment of `partner_id`.
pub async fn decide(
    ctx: &Ctx,
    programme: &Programme,
    partner_id: &str,
    adjustment_id: &str,
    approve: bool,
    who: &Actor,
) -> Result<Adjustment, Error> {
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let current = if bonus_domain::ids::valid_id(adjustment_id) {
            ctx.store.get_adjustment(partner_id, adjustment_id).await?
        } else {
            None
        }
        .ok_or_else(not_found)?;
        let Some(next) = decide_rule(&current, approve, &who.name, ctx.now())? else {
            // Decided so before by the same person: as it stands (going on if half applied).
            return match current.status {
                Status::Applying => apply(ctx, programme, &current).await,
                _ => Ok(current),
            };
        };
        if next.status == Status::Applying {
            let account = ctx
                .store
                .get_account(&next.programme_id, &next.member_id)
                .await?
                .ok_or_else(|| bonus_domain::error::internal("adjusted member has no account"))?;
            cover(ctx, &next, account).await?;
        }
        let action = if approve { "approved" } else { "rejected" };
        let change = audit(ctx, &next, who, action, Some(&current));
        if !ctx
            .store
            .save_adjustment(&next, current.version, &change)
            .await?
        {
            retry.backoff();
            continue;
        }
        info!(
            partner_id,
            adjustment_id,
            approved = approve,
            "adjustment decided"
        );
        return match next.status {
            Status::Applying => apply(ctx, programme, &next).await,
            _ => Ok(next),
        };
    }
    Err(Error::unavailable())
}
