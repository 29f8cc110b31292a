//! Sending points to another member: shared by the member API (a partner's key with the
//! `transfer` scope) and the member site (the member's own session). The caller asks the
//! access policy for the sender through `admit` (as for spending).
//!
//! Steps, each retried safely: the sender's points are reserved by a hold under the
//! transfer's reference (`spend::place`: racing transfers cannot reserve more than there
//! is), then the hold is captured into the receiver in one transaction
//! (`Store::commit_transfer`). The same reference again answers the same transfer.

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use bonus_domain::account::Account;
use bonus_domain::error::{internal, Error};
use bonus_domain::hold::{HoldRequest, HoldStatus};
use bonus_domain::ids::valid_id;
use bonus_domain::member::MemberProfile;
use bonus_domain::money::Points;
use bonus_domain::programme::Programme;
use bonus_domain::transfer::{
    counterparty_label, hold_reference, plan_transfer, quote, transfer_id, Transfer,
    TransferRequest, TRANSFER_PARTNER,
};
use bonus_dynamodb::retry;
use bonus_dynamodb::transfers::TransferCommit;
use bonus_dynamodb::{from_item, keys};
use bonus_lambda::app::Ctx;

use crate::holds::resolve;
use crate::spend::{self, Admit, SpendAt};

/// Minutes a transfer's hold lasts if the capture never comes (a crash between the steps):
/// then it lapses, and the points are the sender's again.
const TRANSFER_HOLD_MINUTES: i64 = 5;

/// Who receives: a member id, or a verified e-mail address or phone number of a member who
/// allowed being found that way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Member(String),
    Email(String),
    Phone(String),
}

/// A transfer as asked.
pub struct TransferAsk<'a> {
    pub programme: &'a Programme,
    pub sender_id: &'a str,
    pub to: Recipient,
    pub points: Points,
    /// The client's reference: the same reference again is the same transfer.
    pub reference: &'a str,
    /// What the request said (a retry under the same reference must say the same).
    pub body: &'a [u8],
    /// A partner id, or `member` (the member site).
    pub initiated_by: &'a str,
}

fn recipient_not_found() -> Error {
    Error::not_found(
        "recipient_not_found",
        "no member of this programme can be found that way",
    )
}

/// The receiving member's id. E-mail and phone find only members who allowed it; every
/// other case (nobody, someone who did not allow it, an erased member) is the same 404.
pub async fn find_recipient(
    ctx: &Ctx,
    programme_id: &str,
    to: &Recipient,
) -> Result<String, Error> {
    let (candidates, by_email) = match to {
        Recipient::Member(id) => {
            if !valid_id(id) {
                return Err(recipient_not_found());
            }
            return match ctx.store.get_account(programme_id, id).await? {
                Some(_) => Ok(id.clone()),
                None => Err(recipient_not_found()),
            };
        }
        Recipient::Email(e) => (ctx.store.members_by_email(programme_id, e).await?, true),
        Recipient::Phone(p) => (ctx.store.members_by_phone(programme_id, p).await?, false),
    };
    for id in candidates {
        let Some(profile) = ctx.store.get_profile(programme_id, &id).await? else {
            continue;
        };
        let allowed = if by_email {
            profile.findable.by_email
        } else {
            profile.findable.by_phone
        };
        if allowed && profile.erased_at.is_none() {
            return Ok(id);
        }
    }
    Err(recipient_not_found())
}

/// How a member is named to the other party.
fn label(profile: Option<&MemberProfile>, member_id: &str) -> String {
    let name = profile
        .filter(|p| p.erased_at.is_none())
        .and_then(|p| p.display_name.as_deref());
    counterparty_label(member_id, name)
}

/// Send points. Returns the transfer and whether this call made it.
pub async fn send(
    ctx: &Ctx,
    ask: &TransferAsk<'_>,
    admit: &Admit<'_>,
) -> Result<(Transfer, bool), Error> {
    let programme = ask.programme;
    if ask.reference.is_empty() || ask.reference.len() > 100 || !valid_id(ask.reference) {
        return Err(Error::invalid(
            "invalid_reference",
            "reference: 1 to 100 letters, digits or . _ : @ / -",
        ));
    }
    let request_sha256 = hex::encode(Sha256::digest(ask.body));
    let id = transfer_id(ask.sender_id, ask.reference);
    if let Some(done) = existing(ctx, &id, &request_sha256).await? {
        return Ok((done, false));
    }
    let sender = if valid_id(ask.sender_id) {
        ctx.store.get_account(&programme.id, ask.sender_id).await?
    } else {
        None
    };
    let sender = admit(sender)?;
    let receiver_id = find_recipient(ctx, &programme.id, &ask.to).await?;
    let today = ctx.now().with_timezone(&programme.time_zone).date_naive();
    let sent_today = ctx
        .store
        .sent_on(&programme.id, ask.sender_id, today)
        .await?;
    let q = quote(
        &programme.transfers,
        &sender,
        &receiver_id,
        ask.points,
        sent_today,
    )?;
    let profiles = (
        ctx.store.get_profile(&programme.id, ask.sender_id).await?,
        ctx.store.get_profile(&programme.id, &receiver_id).await?,
    );
    let req = TransferRequest {
        reference: ask.reference.to_string(),
        quote: q,
        from_label: label(profiles.0.as_ref(), ask.sender_id),
        to_label: label(profiles.1.as_ref(), &receiver_id),
        initiated_by: ask.initiated_by.to_string(),
        request_sha256: request_sha256.clone(),
    };
    // 1. Reserve the sender's points (the fee included).
    let at = SpendAt {
        programme,
        partner_id: TRANSFER_PARTNER,
        limits: None,
    };
    let hold_req = HoldRequest {
        points: q.total,
        reference: hold_reference(ask.reference),
        minutes: Some(TRANSFER_HOLD_MINUTES),
        request_sha256: request_sha256.clone(),
        reward: None,
    };
    let (hold, _) = spend::place(ctx, &at, ask.sender_id, &hold_req, admit, || Ok(vec![]))
        .await
        .map_err(|e| match e.code {
            "hold_conflict" => conflict(),
            _ => e,
        })?;
    // 2. Capture it into the receiver.
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let wanted = vec![
            keys::hold(&hold.hold_id),
            keys::account(&programme.id, ask.sender_id),
            keys::account(&programme.id, &receiver_id),
        ];
        let mut items = ctx.store.snapshot(&wanted).await?.into_iter();
        let mut next = || items.next().flatten();
        let hold = next()
            .map(from_item::<bonus_domain::hold::Hold>)
            .transpose()?
            .ok_or_else(|| internal("a transfer's hold vanished"))?;
        let sender: Account = next()
            .map(from_item)
            .transpose()?
            .ok_or_else(|| internal("sender's account vanished"))?;
        let receiver: Account = next()
            .map(from_item)
            .transpose()?
            .ok_or_else(recipient_not_found)?;
        match hold.status_at(ctx.now()) {
            HoldStatus::Open => {}
            HoldStatus::Captured => {
                // Another copy of this request finished it.
                return existing(ctx, &id, &request_sha256)
                    .await?
                    .map(|t| (t, false))
                    .ok_or_else(|| internal("a captured transfer hold without its transfer"));
            }
            _ => {
                return Err(Error::conflict(
                    "transfer_expired",
                    "this transfer did not finish in time and its points were released; send it again with a new reference",
                ))
            }
        }
        let plan = plan_transfer(programme, &hold, &sender, &receiver, &req, ctx.now())?;
        match ctx
            .store
            .commit_transfer(
                &plan,
                hold.version,
                sender.version,
                receiver.version,
                programme.transfers.daily_limit,
            )
            .await?
        {
            TransferCommit::Committed => {
                info!(
                    programme_id = %programme.id,
                    transfer_id = %plan.transfer.transfer_id,
                    points = q.points,
                    fee = q.fee,
                    "points transferred"
                );
                return Ok((plan.transfer, true));
            }
            TransferCommit::DailyLimit => {
                // Racing transfers passed the limit together: this one gives its points back.
                resolve(ctx, &hold, 0, HoldStatus::Voided).await?;
                return Err(Error::conflict(
                    "daily_transfer_limit",
                    format!(
                        "{} points may be sent a day",
                        programme.transfers.daily_limit
                    ),
                ));
            }
            TransferCommit::Retry => retry.backoff(),
        }
    }
    warn!(programme_id = %programme.id, "transfer gave up under contention");
    Err(Error::unavailable())
}

fn conflict() -> Error {
    Error::conflict(
        "transfer_conflict",
        "this reference was used for another transfer",
    )
}

/// The transfer under this id, if it was made by the same request (else a conflict).
async fn existing(ctx: &Ctx, id: &str, request_sha256: &str) -> Result<Option<Transfer>, Error> {
    match ctx.store.get_transfer(id).await? {
        Some(t) if t.request_sha256 == request_sha256 => Ok(Some(t)),
        Some(_) => Err(conflict()),
        None => Ok(None),
    }
}
