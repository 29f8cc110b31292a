//! Ledger events to member messages: the template variables of each event, and points-earned
//! messages per order or as a daily digest (as the programme, or the member, chose).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use bonus_domain::events::{DomainEvent, EventKind};
use bonus_domain::member::MemberProfile;
use bonus_domain::notify;
use bonus_domain::programme::{EarnedMessages, Programme};
use bonus_dynamodb::notify::DigestAdd;
use bonus_lambda::app::Ctx;

use crate::deliver::{self, date_in, Message};
use crate::{NotifyError, Outcome, Senders};

/// The template variables for an event.
async fn vars(
    ctx: &Ctx,
    event: &DomainEvent,
    locale: &str,
    tz: Tz,
    programme: Option<&Programme>,
) -> Result<Value, NotifyError> {
    let partner_name = |id: &str| {
        let id = id.to_string();
        async move {
            // Through the function's partner cache: warm, no read.
            Ok::<String, NotifyError>(
                ctx.partner(&id)
                    .await?
                    .map_or(id.clone(), |c| c.partner.name.clone()),
            )
        }
    };
    let balance = || async {
        Ok::<i64, NotifyError>(
            ctx.store
                .get_account(&event.programme_id, &event.member_id)
                .await?
                .zip(programme)
                .map_or(0, |(a, p)| a.view(p, ctx.now()).available),
        )
    };
    Ok(match &event.kind {
        EventKind::PointsEarned {
            partner_id,
            order_id,
            points,
            available_at,
            ..
        } => json!({
            "points": points, "order_id": order_id,
            "partner_name": partner_name(partner_id).await?,
            "available_on": date_in(tz, locale, *available_at),
        }),
        EventKind::PointsAvailable { points, .. } => {
            json!({"points": points, "balance": balance().await?})
        }
        EventKind::ExpiryWarning {
            points,
            expires_on,
            days,
        } => json!({"points": points, "days": days,
            "expires_on": notify::format_date(locale, *expires_on)}),
        EventKind::PointsExpired { points, expires_on } => json!({"points": points,
            "expires_on": notify::format_date(locale, *expires_on), "balance": balance().await?}),
        EventKind::TierChanged { from, to, .. } => json!({"tier": to, "previous_tier": from}),
        EventKind::PointsRedeemed {
            partner_id,
            points,
            voucher_code,
            ..
        } => json!({"points": points, "partner_name": partner_name(partner_id).await?,
            "voucher_code": voucher_code}),
        EventKind::PointsReversed { .. } => json!({}),
        EventKind::PointsSent {
            points, fee, to, ..
        } => json!({"points": points, "fee": fee, "other": to, "balance": balance().await?}),
        EventKind::PointsReceived { points, from, .. } => {
            json!({"points": points, "other": from, "balance": balance().await?})
        }
    })
}

/// How this member hears about points earned: their own preference, else the programme's.
pub fn earned_messages(profile: &MemberProfile, programme: Option<&Programme>) -> EarnedMessages {
    profile
        .preferences
        .earned_messages
        .as_deref()
        .and_then(EarnedMessages::parse)
        .or(programme.map(|p| p.messages.earned))
        .unwrap_or_default()
}

/// Deliver one ledger event to its member.
pub async fn deliver(
    ctx: &Ctx,
    senders: &Senders,
    event: &DomainEvent,
) -> Result<Outcome, NotifyError> {
    let webhooks = ctx
        .partner_webhooks
        .as_ref()
        .filter(|_| bonus_domain::outgoing::event_type(event).is_some());
    let template = notify::message_for(event);
    if template.is_none() && webhooks.is_none() {
        return Ok(Outcome::Sent(0));
    }
    let profile = ctx
        .store
        .get_profile(&event.programme_id, &event.member_id)
        .await?;
    // Partners' webhooks first, from the profile read once: a retry of a failed message
    // queues them again, and their receivers deduplicate on `webhook-id`.
    if let Some(q) = webhooks {
        Box::pin(crate::outgoing::enqueue(
            ctx,
            q.sqs(),
            &q.url,
            event,
            profile.as_ref(),
        ))
        .await?;
    }
    let (Some(template), Some(profile)) = (template, profile) else {
        return Ok(Outcome::Sent(0));
    };
    if notify::channels(&profile).is_empty() {
        // Erased, opted out, or nothing to reach them on: dropped, cleanly.
        return Ok(Outcome::Sent(0));
    }
    let programme = ctx.store.get_programme(&event.programme_id).await?;
    let tz = deliver::member_tz(&profile, programme.as_ref());
    if let EventKind::PointsEarned {
        points,
        available_at,
        ..
    } = &event.kind
    {
        match earned_messages(&profile, programme.as_ref()) {
            EarnedMessages::Off => return Ok(Outcome::Sent(0)),
            EarnedMessages::DailyDigest => {
                let hour = programme.as_ref().map_or(18, |p| p.messages.digest_hour);
                let earned = (*points, *available_at);
                return digest(
                    ctx,
                    senders,
                    &profile,
                    programme.as_ref(),
                    tz,
                    hour,
                    event,
                    earned,
                )
                .await;
            }
            EarnedMessages::PerOrder => {}
        }
    }
    let mut vars = vars(ctx, event, &profile.locale, tz, programme.as_ref()).await?;
    deliver::add_common(
        ctx,
        &mut vars,
        programme.as_ref(),
        senders,
        (&event.programme_id, &event.member_id),
    );
    let msg = Message {
        id: event.event_id.clone(),
        template,
        vars,
        on: deliver::ANY_CHANNEL,
    };
    deliver::send(ctx, senders, &profile, tz, &msg).await
}

/// A points-earned event in a daily digest: counted into the digest of the next digest hour
/// (exactly once, even if delivered again), then held back until that hour; the first of the
/// digest's events to come back after it closes the digest and sends its sums, the others
/// find the message claimed.
#[allow(clippy::too_many_arguments)]
async fn digest(
    ctx: &Ctx,
    senders: &Senders,
    profile: &MemberProfile,
    programme: Option<&Programme>,
    tz: Tz,
    hour: u32,
    event: &DomainEvent,
    (points, available_at): (i64, DateTime<Utc>),
) -> Result<Outcome, NotifyError> {
    let now = ctx.now();
    let (p, m) = (&event.programme_id, &event.member_id);
    let mut slot = notify::next_digest_slot(now, tz, hour);
    for _ in 0..3 {
        match ctx
            .store
            .add_to_digest(p, m, &event.event_id, slot, points, available_at)
            .await?
        {
            DigestAdd::Added => break,
            DigestAdd::AlreadyIn(s) => {
                slot = s;
                break;
            }
            // Only if clocks disagree: that digest went out, the next one takes it.
            DigestAdd::Closed => slot = notify::next_digest_slot(slot, tz, hour),
        }
    }
    if now < slot {
        return Ok(Outcome::Deferred(slot));
    }
    let sums = ctx.store.close_digest(p, m, slot).await?;
    if sums.orders == 0 {
        return Ok(Outcome::Sent(0));
    }
    let mut vars = json!({
        "points": sums.points,
        "orders": sums.orders,
        "available_on": date_in(tz, &profile.locale, sums.first_available.unwrap_or(available_at)),
    });
    deliver::add_common(ctx, &mut vars, programme, senders, (p, m));
    let msg = Message {
        id: format!("digest:{p}:{m}:{}", bonus_domain::clock::ts(slot)),
        template: "points_earned_digest",
        vars,
        on: deliver::ANY_CHANNEL,
    };
    deliver::send(ctx, senders, profile, tz, &msg).await
}
