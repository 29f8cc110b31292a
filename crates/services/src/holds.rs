//! Resolving checkout holds, used by the member API (captures, voids, lazy expiry) and by the
//! hold sweeper (holds whose time ran out): one place for the read-settle-write of a hold.

use bonus_domain::account::Account;
use bonus_domain::error::{internal, Error};
use bonus_domain::hold::{settle, Hold, HoldStatus};
use bonus_domain::lot::Lot;
use bonus_domain::money::Points;
use bonus_dynamodb::retry;
use bonus_dynamodb::{from_item, keys};
use bonus_lambda::app::Ctx;

/// Resolve an open hold (capture `points`, or release with `status`). Ok(None) when the hold
/// was no longer open (someone else resolved it): the caller re-reads.
pub async fn resolve(
    ctx: &Ctx,
    hold: &Hold,
    points: Points,
    status: HoldStatus,
) -> Result<Option<Hold>, Error> {
    let store = &ctx.store;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let Some((current, account)) = hold_and_account(ctx, hold).await? else {
            return Ok(None);
        };
        if current.status != HoldStatus::Open {
            return Ok(None);
        }
        let account = account.ok_or_else(|| internal("account of an open hold is missing"))?;
        let lots = lots_without_expiry(ctx, &current).await?;
        let s = settle(&current, &account, &lots, points, status, ctx.now())?;
        // A gift-shop claim that is released gives its unit of stock back.
        let mut extra = match (&current.reward, status) {
            (Some(r), HoldStatus::Voided | HoldStatus::Expired) => {
                store.unclaim_items(&current.programme_id, &r.reward_id, &current.member_id)?
            }
            _ => vec![],
        };
        // What it reserved and did not spend goes back to the member's day at the partner.
        if let Some(day) = &current.redeemed_day {
            let unspent = current.points - s.hold.captured;
            if unspent > 0 {
                extra.push(store.unredeem_day_item(
                    &current.partner_id,
                    &current.member_id,
                    day,
                    unspent,
                )?);
            }
        }
        if store
            .settle(&s, current.version, account.version, extra)
            .await?
        {
            return Ok(Some(s.hold));
        }
        retry.backoff();
    }
    Err(Error::unavailable())
}

/// A hold and its member's account as of one instant (None: no such hold). The lots are not
/// read: their changes are conditional deltas, and the hold knows each lot's last day.
pub(crate) async fn hold_and_account(
    ctx: &Ctx,
    hold: &Hold,
) -> Result<Option<(Hold, Option<Account>)>, Error> {
    let wanted = vec![
        keys::hold(&hold.hold_id),
        keys::account(&hold.programme_id, &hold.member_id),
    ];
    let mut items = ctx.store.snapshot(&wanted).await?.into_iter();
    let mut next = || items.next().flatten();
    let Some(current) = next().map(from_item::<Hold>).transpose()? else {
        return Ok(None);
    };
    let account = next().map(from_item::<Account>).transpose()?;
    Ok(Some((current, account)))
}

/// The lots of a hold written before holds kept each lot's last day (their last days are
/// read, which never change); none for any other hold.
pub(crate) async fn lots_without_expiry(ctx: &Ctx, hold: &Hold) -> Result<Vec<Lot>, Error> {
    let unknown: Vec<(String, String)> = hold
        .lots
        .iter()
        .filter(|l| l.expires_on.is_none())
        .map(|l| keys::lot(&hold.programme_id, &hold.member_id, &l.lot_id))
        .collect();
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ctx
        .store
        .batch_get(&unknown)
        .await?
        .into_values()
        .map(from_item)
        .collect::<Result<_, _>>()?)
}

/// Release the member's holds that ran out (each resolves once, as the sweeper would), so
/// that the points they still reserve are the member's again before anything is taken or
/// spent. True when any was found: the caller reads the account (and lots) again.
pub async fn release_members_lapsed(ctx: &Ctx, account: &Account) -> Result<bool, Error> {
    let now = ctx.now();
    let lapsed: Vec<&String> = account
        .open_holds
        .iter()
        .filter(|(_, h)| now >= h.expires_at)
        .map(|(id, _)| id)
        .collect();
    for id in &lapsed {
        release_lapsed(ctx, id).await?;
    }
    Ok(!lapsed.is_empty())
}

/// Release the member's holds that ran out, and fold due releases into the account, so that
/// its stored `available` is what may be spent now. Returns the fresh account.
pub async fn tidy(ctx: &Ctx, account: Account) -> Result<Account, Error> {
    let now = ctx.now();
    let mut account = account;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        // Each pass re-reads at once: it only waits on what it resolves.
        retry.now();
        let due = account
            .pending
            .keys()
            .next()
            .is_some_and(|k| *k <= bonus_domain::clock::ts(now));
        let released = release_members_lapsed(ctx, &account).await?;
        if !released && !due {
            return Ok(account);
        }
        let fresh = ctx
            .store
            .get_account(&account.programme_id, &account.member_id)
            .await?
            .ok_or_else(|| internal("account vanished"))?;
        account = fresh;
        if account
            .pending
            .keys()
            .next()
            .is_some_and(|k| *k <= bonus_domain::clock::ts(now))
        {
            let mut folded = account.clone();
            folded.fold_due(now);
            folded.version += 1;
            if ctx.store.save_account(&folded, account.version).await? {
                account = folded;
            }
        }
    }
    Ok(account)
}

/// Release one lapsed hold: true when this call released it. A placement left half done
/// (`Reserving`) is rolled back.
async fn release_lapsed(ctx: &Ctx, hold_id: &str) -> Result<bool, Error> {
    match ctx.store.get_hold(hold_id).await? {
        Some(h) if h.status == HoldStatus::Open => {
            Ok(resolve(ctx, &h, 0, HoldStatus::Expired).await?.is_some())
        }
        Some(h) if h.status == HoldStatus::Reserving => {
            Ok(ctx.store.roll_back_reservation(&h.hold_id).await?)
        }
        _ => Ok(false),
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    /// Open holds found past their time.
    pub lapsed: usize,
    /// Of those, released by this sweep (the rest were resolved by someone else meanwhile).
    pub released: usize,
    /// Of those, left as they are because releasing them failed (logged with the hold id;
    /// the next sweep, or the member's next balance read, tries again).
    pub failed: usize,
    /// Resolved holds whose lots (too many for one transaction) a crash left half updated,
    /// and transfers whose receiver lots it left half written, finished by this sweep.
    pub settled: usize,
    /// Refunds' lot takes (too many lots for their booking transaction) staged by a request
    /// that died, given back to their lots by this sweep.
    pub takes_rolled_back: usize,
    /// Orders whose sales (too many SKUs for their booking transaction) were finished.
    pub sales_finished: usize,
    /// Of those pending, left for the next sweep because writing them failed.
    pub sales_failed: usize,
}

/// Release holds whose time ran out, and finish sales left pending (the sweeper; holds are also released lazily whenever
/// they or their member's balance are touched). Reads only the lapsed holds, through their
/// sparse index; at most `limit` per index shard per run.
pub async fn sweep(ctx: &Ctx, limit: i32) -> Result<SweepSummary, Error> {
    let now = ctx.now();
    let ids = ctx.store.lapsed_holds(now, limit).await?;
    let mut summary = SweepSummary {
        lapsed: ids.len(),
        ..SweepSummary::default()
    };
    // One hold that cannot be released must not keep the others (or the nightly run that
    // sweeps first) from going on.
    for id in ids {
        match release_lapsed(ctx, &id).await {
            Ok(true) => summary.released += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(hold_id = %id, code = e.code, "lapsed hold not released");
                summary.failed += 1;
            }
        }
    }
    // Resolutions whose lots were left half updated.
    for hold in ctx.store.unsettled_holds(limit).await? {
        match ctx.store.finish_settlement(&hold).await {
            Ok(()) => summary.settled += 1,
            Err(e) => {
                tracing::error!(hold_id = %hold.hold_id, error = %e, "hold's lots not updated");
                summary.failed += 1;
            }
        }
    }
    // Transfers whose receiver lots were left half written.
    for transfer in ctx.store.uncredited_transfers(limit).await? {
        match ctx.store.finish_credit(&transfer).await {
            Ok(()) => summary.settled += 1,
            Err(e) => {
                tracing::error!(transfer_id = %transfer.transfer_id, error = %e, "receiver's lots not written");
                summary.failed += 1;
            }
        }
    }
    // Refunds' lot takes staged by a request that died before it booked.
    let (rolled_back, failed) = ctx.store.roll_back_stale_takes(now, limit).await?;
    summary.takes_rolled_back = rolled_back;
    summary.failed += failed;
    // Sales an order could not write with its booking, and nobody finished since.
    let (finished, failed) = ctx.store.complete_pending_sales(limit).await?;
    summary.sales_finished = finished;
    summary.sales_failed = failed;
    tracing::info!(
        lapsed = summary.lapsed,
        released = summary.released,
        failed = summary.failed,
        sales_finished = finished,
        sales_failed = failed,
        "holds swept"
    );
    Ok(summary)
}
