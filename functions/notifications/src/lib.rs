//! Member messages from the ledger's events.
//!
//! - [`relay_once`]: outbox events to the notifications queue. An event is deleted from the
//!   outbox only after SQS took it, so a crash in between sends it again, never loses it.
//! - [`deliver`]: one event to a member: the message it becomes (`shared::notify`), the
//!   channels the member consented to, the rendered e-mail (SES v2) or SMS (SNS). A claim per
//!   event and channel is written before the send, so a duplicate event sends nothing. SMS in
//!   the member's quiet hours wait (the message is put back on the queue until 08:00).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use tracing::{info, warn};

use shared::app::Ctx;
use shared::events::{DomainEvent, EventKind};
use shared::notify::{self, Channel};
use shared::queue::{self, QueueError};
use shared::store::notify::Delivery;
use shared::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("render: {0}")]
    Render(#[from] notify::RenderError),
    #[error("provider: {0}")]
    Provider(String),
}

/// The providers and the sender identity.
pub struct Senders {
    pub ses: aws_sdk_sesv2::Client,
    pub sns: aws_sdk_sns::Client,
    /// The verified sender address (template parameter `SenderEmail`).
    pub from: String,
    /// Where members unsubscribe; `{member_id}` is replaced.
    pub unsubscribe_url: String,
}

/// Move up to `limit` events per outbox shard to the notifications queue. Returns how many.
pub async fn relay_once(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    limit: i32,
) -> Result<usize, NotifyError> {
    let mut moved = 0;
    for shard in 0..shared::store::keys::OUTBOX_SHARDS {
        let page = ctx.store.outbox_page(shard, limit).await?;
        if page.is_empty() {
            continue;
        }
        let bodies = page
            .iter()
            .map(|(_, e)| serde_json::to_string(e).unwrap_or_default())
            .collect::<Vec<_>>();
        queue::send_all(sqs, queue_url, &bodies).await?;
        for (k, _) in &page {
            ctx.store.delete_outbox(k).await?;
        }
        moved += page.len();
    }
    Ok(moved)
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Messages sent now (0 when the member hears about nothing, or all was sent before).
    Sent(usize),
    /// An SMS waits for the end of the member's quiet hours.
    Deferred(DateTime<Utc>),
}

fn date_in(tz: Tz, locale: &str, at: DateTime<Utc>) -> String {
    notify::format_date(locale, at.with_timezone(&tz).date_naive())
}

/// The template variables for an event.
async fn vars(
    ctx: &Ctx,
    event: &DomainEvent,
    locale: &str,
    tz: Tz,
    programme: Option<&shared::programme::Programme>,
    unsubscribe_url: &str,
) -> Result<Value, NotifyError> {
    let programme_name = programme.map_or("", |p| p.name.as_str());
    let partner_name = |id: &str| {
        let id = id.to_string();
        async move {
            Ok::<String, NotifyError>(
                ctx.store
                    .get_partner(&id)
                    .await?
                    .map_or(id.clone(), |p| p.name),
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
    let mut v = match &event.kind {
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
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("programme_name".into(), json!(programme_name));
        o.insert(
            "unsubscribe_url".into(),
            json!(unsubscribe_url.replace("{member_id}", &event.member_id)),
        );
    }
    Ok(v)
}

/// Deliver one event to its member.
pub async fn deliver(
    ctx: &Ctx,
    senders: &Senders,
    event: &DomainEvent,
) -> Result<Outcome, NotifyError> {
    let now = ctx.now();
    let Some(message) = notify::message_for(event) else {
        return Ok(Outcome::Sent(0));
    };
    let Some(profile) = ctx
        .store
        .get_profile(&event.programme_id, &event.member_id)
        .await?
    else {
        return Ok(Outcome::Sent(0));
    };
    let channels = notify::channels(&profile);
    if channels.is_empty() {
        // Erased, opted out, or nothing to reach them on: dropped, cleanly.
        return Ok(Outcome::Sent(0));
    }
    let programme = ctx.store.get_programme(&event.programme_id).await?;
    let tz: Tz = profile
        .time_zone
        .as_deref()
        .and_then(|t| t.parse().ok())
        .or(programme.as_ref().map(|p| p.time_zone))
        .unwrap_or(chrono_tz::UTC);
    let vars = vars(
        ctx,
        event,
        &profile.locale,
        tz,
        programme.as_ref(),
        &senders.unsubscribe_url,
    )
    .await?;
    let env = notify::environment();
    let rendered = notify::render(&env, message, &profile.locale, &vars)?;
    let mut sent = 0;
    for channel in channels {
        if channel == Channel::Sms {
            let at = notify::sms_send_at(now, tz, notify::QUIET_HOURS);
            if at > now {
                return Ok(Outcome::Deferred(at));
            }
        }
        let sms = notify::sms(&rendered.sms);
        let mut d = Delivery {
            event_id: event.event_id.clone(),
            channel: format!("{channel:?}").to_lowercase(),
            programme_id: event.programme_id.clone(),
            member_id: event.member_id.clone(),
            message: message.to_string(),
            locale: rendered.locale.clone(),
            status: "sending".into(),
            provider_id: None,
            at: now,
            summary: match channel {
                Channel::Email => rendered.subject.clone(),
                Channel::Sms => sms.text.clone(),
            },
        };
        if !ctx.store.claim_delivery(&d).await? {
            continue; // this event went out on this channel before
        }
        let provider_id = match channel {
            Channel::Email => send_email(senders, profile.email.as_deref(), &rendered).await,
            Channel::Sms => send_sms(senders, profile.phone.as_deref(), &sms.text).await,
        };
        match provider_id {
            Ok(id) => {
                d.status = "sent".into();
                d.provider_id = id;
                sent += 1;
            }
            Err(e) => {
                // Recorded, not retried without end: the claim stays, with the failure.
                warn!(event_id = %event.event_id, channel = %d.channel, error = %e, "message failed");
                d.status = "failed".into();
            }
        }
        ctx.store.finish_delivery(&d).await?;
    }
    info!(event_id = %event.event_id, message, sent, "member notified");
    Ok(Outcome::Sent(sent))
}

async fn send_email(
    s: &Senders,
    to: Option<&str>,
    r: &notify::Rendered,
) -> Result<Option<String>, NotifyError> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let to = to.ok_or_else(|| NotifyError::Provider("no address".into()))?;
    let content = |text: &str| {
        Content::builder()
            .data(text)
            .charset("UTF-8")
            .build()
            .map_err(|e| NotifyError::Provider(e.to_string()))
    };
    let out = s
        .ses
        .send_email()
        .from_email_address(&s.from)
        .destination(Destination::builder().to_addresses(to).build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(content(&r.subject)?)
                        .body(
                            Body::builder()
                                .text(content(&r.text)?)
                                .html(content(&r.html)?)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| NotifyError::Provider(format!("{:?}", e.into_service_error())))?;
    Ok(out.message_id)
}

async fn send_sms(
    s: &Senders,
    to: Option<&str>,
    text: &str,
) -> Result<Option<String>, NotifyError> {
    let to = to.ok_or_else(|| NotifyError::Provider("no number".into()))?;
    let out = s
        .sns
        .publish()
        .phone_number(to)
        .message(text)
        .send()
        .await
        .map_err(|e| NotifyError::Provider(format!("{:?}", e.into_service_error())))?;
    Ok(out.message_id)
}

/// Consume the notifications queue once (locally; on AWS the Lambda event source does the
/// receiving): deliver each event, delete it when done, put a deferred one back until its
/// time (at most 12 hours, SQS's limit). Returns (sent, deferred).
pub async fn consume_once(
    ctx: &Ctx,
    senders: &Senders,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<(usize, usize), NotifyError> {
    let (mut sent, mut deferred) = (0, 0);
    for m in queue::receive(sqs, queue_url, 0).await? {
        let event: DomainEvent = match serde_json::from_str(&m.body) {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "not an event; left for the dead-letter queue");
                continue;
            }
        };
        match deliver(ctx, senders, &event).await? {
            Outcome::Sent(n) => {
                sent += n;
                queue::delete(sqs, queue_url, &m.receipt_handle).await?;
            }
            Outcome::Deferred(at) => {
                deferred += 1;
                let wait = (at - ctx.now()).num_seconds().clamp(0, 12 * 3600);
                sqs.change_message_visibility()
                    .queue_url(queue_url)
                    .receipt_handle(&m.receipt_handle)
                    .visibility_timeout(i32::try_from(wait).unwrap_or(43_200))
                    .send()
                    .await
                    .map_err(|e| NotifyError::Queue(QueueError::Sqs(format!("{e:?}"))))?;
            }
        }
    }
    Ok((sent, deferred))
}
