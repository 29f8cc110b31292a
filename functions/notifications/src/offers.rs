//! Offers to members, fanned out like the monthly statements.
//!
//! Sending an offer writes an outbox task in the same transaction as the offer's `sent_at`;
//! the relay brings it here. That task puts one task per member-list shard on the queue; a
//! shard task pages through its members (500 at a time, its own continuation last) and puts
//! one task on the queue per member the segment holds (`bonus_services::offers::in_segment`:
//! the listed facts pass over most, the rest have their accounts read in batches); a member
//! task checks the segment again on the member as they are now, counts the
//! offer against the member's month (once per member and offer, below the programme's cap,
//! in one transaction) and sends it, claimed per channel like every message. So an offer
//! reaches each member once however often any task runs, and never past the cap.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;

use bonus_domain::notify::Channel;
use bonus_domain::offer::{cap_month, facts_of, listed_facts, Offer};
use bonus_dynamodb::keys::MEMBER_LIST_SHARDS;
use bonus_dynamodb::offers::MarketingCount;
use bonus_lambda::app::Ctx;
use bonus_services::offers::Reach;
use bonus_sqs as queue;

use crate::deliver::{self, Message};
use crate::{NotifyError, Outcome, Senders};

/// Members per shard task.
pub const PAGE: i32 = 500;

/// One offer task (body `{"offer": {...}}`): the send (no shard, no member), a shard of the
/// member list from `after`, or one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferTask {
    pub programme_id: String,
    pub partner_id: String,
    pub offer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

fn body(task: &OfferTask) -> Result<String, NotifyError> {
    serde_json::to_string(&json!({ "offer": task }))
        .map_err(|e| NotifyError::Provider(e.to_string()))
}

/// Run one offer task.
pub async fn run(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    task: &OfferTask,
) -> Result<Outcome, NotifyError> {
    let Some(offer) = ctx
        .store
        .get_offer(&task.programme_id, &task.partner_id, &task.offer_id)
        .await?
    else {
        return Ok(Outcome::Sent(0));
    };
    // Not sent (a task from nowhere), or no longer valid: nothing goes out.
    if offer.sent_at.is_none() || ctx.now() >= offer.valid_to {
        return Ok(Outcome::Sent(0));
    }
    let Some(programme) = ctx.store.get_programme(&task.programme_id).await? else {
        return Ok(Outcome::Sent(0));
    };
    let bodies = match (&task.member_id, task.shard) {
        (Some(member), _) => return member_offer(ctx, senders, &programme, &offer, member).await,
        (None, None) => (0..MEMBER_LIST_SHARDS)
            .map(|shard| {
                body(&OfferTask {
                    shard: Some(shard),
                    ..task.clone()
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        (None, Some(shard)) => {
            let (page, next) = ctx
                .store
                .listed_members(&task.programme_id, shard, task.after.as_deref(), PAGE)
                .await?;
            let (members, unlisted) = bonus_services::offers::in_segment(
                &ctx.store,
                &programme,
                &offer,
                &page,
                Reach::OnItsChannels,
                ctx.now(),
            )
            .await?;
            // Members listed before offers: their task reads their profile.
            let ids = members.into_iter().map(|(id, _)| id).chain(unlisted);
            let mut bodies = ids
                .map(|member_id| {
                    body(&OfferTask {
                        member_id: Some(member_id),
                        shard: None,
                        after: None,
                        ..task.clone()
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(after) = next {
                bodies.push(body(&OfferTask {
                    after: Some(after),
                    ..task.clone()
                })?);
            }
            bodies
        }
    };
    queue::send_all(sqs, queue_url, &bodies).await?;
    Ok(Outcome::Sent(0))
}

fn channels_of(offer: &Offer) -> &'static [Channel] {
    match (
        offer.channels.contains(&Channel::Email),
        offer.channels.contains(&Channel::Sms),
    ) {
        (true, true) => deliver::ANY_CHANNEL,
        (false, true) => deliver::SMS_ONLY,
        _ => deliver::EMAIL_ONLY,
    }
}

async fn member_offer(
    ctx: &Ctx,
    senders: &Senders,
    programme: &bonus_domain::programme::Programme,
    offer: &Offer,
    member_id: &str,
) -> Result<Outcome, NotifyError> {
    let p = &programme.id;
    let Some(profile) = ctx.store.get_profile(p, member_id).await? else {
        return Ok(Outcome::Sent(0));
    };
    let now = ctx.now();
    let on = channels_of(offer);
    if !bonus_domain::notify::channels(&profile)
        .iter()
        .any(|c| on.contains(c))
    {
        return Ok(Outcome::Sent(0));
    }
    // The segment on the member as they are now.
    let Some(account) = ctx.store.get_account(p, member_id).await? else {
        return Ok(Outcome::Sent(0));
    };
    let facts = facts_of(&listed_facts(&profile), &account, programme, now);
    let today = now.with_timezone(&programme.time_zone).date_naive();
    if !offer.segment.matches(&facts, today, programme.base_tier()) {
        return Ok(Outcome::Sent(0));
    }
    let tz = deliver::member_tz(&profile, Some(programme));
    let month = cap_month(now.with_timezone(&tz).date_naive());
    let cap = programme.messages.marketing_per_month;
    match ctx
        .store
        .count_marketing(offer, member_id, &month, cap, now)
        .await?
    {
        MarketingCount::Counted | MarketingCount::AlreadyCounted => {}
        MarketingCount::Capped => {
            bonus_metrics::count(bonus_metrics::name::OFFERS_CAPPED, &[], 1);
            info!(offer_id = %offer.offer_id, member_id, cap, "offer not sent: the member's monthly cap is reached");
            return Ok(Outcome::Sent(0));
        }
    }
    let (_, text) = offer.text_for(&profile.locale);
    let partner_name = ctx
        .partner(&offer.partner_id)
        .await?
        .map_or(offer.partner_id.clone(), |c| c.partner.name.clone());
    let valid_to = offer.valid_to.with_timezone(&tz).date_naive();
    let mut vars = json!({
        "title": text.title,
        "text": text.text,
        "partner_name": partner_name,
        "valid_until": bonus_domain::notify::format_date(&profile.locale, valid_to),
    });
    deliver::add_common(ctx, &mut vars, Some(programme), senders, (p, member_id));
    let msg = Message {
        id: offer.message_id(member_id),
        template: "offer",
        vars,
        on,
    };
    deliver::send(ctx, senders, &profile, tz, &msg).await
}
