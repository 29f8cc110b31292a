//! Merging a duplicate member into another (`bonus_domain::merge`), for the member API
//! (the enrolling partner) and the CLI (ops). Steps until the duplicate is marked merged,
//! then its customer ids, e-mail address and phone number move to the survivor (where it
//! has none of its own), so that shops and the e-mail index find the survivor.
//!
//! Run again after any failure it goes on where it stopped: the duplicate's lots and its
//! `merged_into` say what is left.

use tracing::info;

use bonus_domain::account::Account;
use bonus_domain::error::{internal, Error};
use bonus_domain::merge::plan_merge_step;
use bonus_domain::money::Points;
use bonus_dynamodb::retry;
use bonus_lambda::app::Ctx;

use crate::holds::tidy;
use crate::spend::Admit;

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Merged {
    pub survivor_id: String,
    pub duplicate_id: String,
    /// Points moved (all steps of this call).
    pub points: Points,
    pub lots: usize,
    pub steps: usize,
}

/// Merge `duplicate_id` into `survivor_id`. `admit` is the access policy's answer for each
/// of the two accounts as read.
pub async fn merge(
    ctx: &Ctx,
    programme_id: &str,
    survivor_id: &str,
    duplicate_id: &str,
    admit: &Admit<'_>,
) -> Result<Merged, Error> {
    let mut done = Merged {
        survivor_id: survivor_id.to_string(),
        duplicate_id: duplicate_id.to_string(),
        ..Merged::default()
    };
    let read = |id: &str| {
        let id = id.to_string();
        async move {
            let a = if bonus_domain::ids::valid_id(&id) {
                ctx.store.get_account(programme_id, &id).await?
            } else {
                None
            };
            admit(a)
        }
    };
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let survivor: Account = read(survivor_id).await?;
        let duplicate: Account = read(duplicate_id).await?;
        bonus_domain::merge::check(&survivor, &duplicate)?;
        // Holds that ran out are released first (they would block the merge).
        let duplicate = tidy(ctx, duplicate).await?;
        let survivor = tidy(ctx, survivor).await?;
        let lots = ctx.store.lots(programme_id, duplicate_id).await?;
        let step = plan_merge_step(&survivor, &duplicate, &lots, ctx.now())?;
        if !ctx
            .store
            .commit_merge_step(&step, survivor.version, duplicate.version)
            .await?
        {
            retry.backoff();
            continue;
        }
        done.steps += 1;
        done.lots += step.moved.len();
        done.points += step.emptied.iter().map(|(_, p)| p).sum::<Points>();
        // Progress: the next step gets a fresh set of tries.
        retry = ctx.retry();
        if step.last {
            move_contacts(ctx, programme_id, survivor_id, duplicate_id).await?;
            info!(
                programme_id,
                points = done.points,
                steps = done.steps,
                "members merged"
            );
            return Ok(done);
        }
    }
    Err(Error::unavailable())
}

/// The duplicate's customer ids, e-mail address and phone number go to the survivor where
/// it has none of its own; the duplicate keeps neither (its index entries go with them).
async fn move_contacts(
    ctx: &Ctx,
    programme_id: &str,
    survivor_id: &str,
    duplicate_id: &str,
) -> Result<(), Error> {
    let (Some(d), Some(s)) = (
        ctx.store.get_profile(programme_id, duplicate_id).await?,
        ctx.store.get_profile(programme_id, survivor_id).await?,
    ) else {
        return Ok(()); // erased, or created without a profile: nothing to move
    };
    if d.erased_at.is_some() || s.erased_at.is_some() {
        return Ok(());
    }
    let (mut d2, mut s2) = (d.clone(), s.clone());
    for (partner, customer) in std::mem::take(&mut d2.external_ids) {
        s2.external_ids.entry(partner).or_insert(customer);
    }
    if s2.email.is_none() {
        s2.email = d2.email.clone();
        s2.consents.email |= d2.consents.email;
    }
    if s2.phone.is_none() {
        s2.phone = d2.phone.clone();
        s2.consents.sms |= d2.consents.sms;
    }
    (d2.email, d2.phone) = (None, None);
    // The duplicate first: its links go, then the survivor's are written.
    if d2 != d && !ctx.store.save_profile(&d, &d2).await? {
        return Err(internal("the duplicate's profile changed during the merge"));
    }
    if s2 != s && !ctx.store.save_profile(&s, &s2).await? {
        return Err(internal("the survivor's profile changed during the merge"));
    }
    Ok(())
}
