//! One message to one member: the channels they may be reached on, the rendered text, quiet
//! hours for SMS, the claim that makes it go once, the providers, and what a failure means.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use tracing::{info, warn};

use bonus_domain::member::{MemberProfile, Undeliverable};
use bonus_domain::notify::{self, Channel};
use bonus_dynamodb::notify::{Claim, Delivery};
use bonus_lambda::app::Ctx;

use bonus_messages::send::{send_email, send_sms, with_backoff, SendError, Senders};

use crate::{NotifyError, Outcome};

/// A claim still `sending` after this long belongs to a process that died mid-send (a Lambda
/// runs at most 15 minutes); the next delivery of the event takes it over.
pub const CLAIM_LEASE_MINUTES: i64 = 15;

/// Every channel; e-mail alone; SMS alone.
pub const ANY_CHANNEL: &[Channel] = &[Channel::Email, Channel::Sms];
pub const EMAIL_ONLY: &[Channel] = &[Channel::Email];
pub const SMS_ONLY: &[Channel] = &[Channel::Sms];

/// A message to send: its id (the event's, or the digest's or statement's) keys the claim.
pub struct Message {
    pub id: String,
    pub template: &'static str,
    pub vars: Value,
    /// The channels it may go on (statements by e-mail only; an offer on those it names);
    /// the member's consent and preference decide among them.
    pub on: &'static [Channel],
}

/// The member's time zone for dates and quiet hours: theirs, else the programme's.
pub fn member_tz(
    profile: &MemberProfile,
    programme: Option<&bonus_domain::programme::Programme>,
) -> Tz {
    profile
        .time_zone
        .as_deref()
        .and_then(|t| t.parse().ok())
        .or(programme.map(|p| p.time_zone))
        .unwrap_or(chrono_tz::UTC)
}

/// A member's unsubscribe link: the sender's URL template with `{programme_id}`,
/// `{member_id}` and `{token}` (the member's HMAC token) filled in.
pub fn unsubscribe_link(
    ctx: &Ctx,
    senders: &Senders,
    programme_id: &str,
    member_id: &str,
) -> String {
    let token = ctx
        .store
        .email_key
        .get()
        .map(|k| bonus_domain::pii::unsubscribe_token(&k, programme_id, member_id))
        .unwrap_or_default();
    senders
        .unsubscribe_url
        .replace("{programme_id}", programme_id)
        .replace("{member_id}", member_id)
        .replace("{token}", &token)
}

/// Variables every template has.
pub fn add_common(
    ctx: &Ctx,
    vars: &mut Value,
    programme: Option<&bonus_domain::programme::Programme>,
    senders: &Senders,
    (programme_id, member_id): (&str, &str),
) {
    if let Some(o) = vars.as_object_mut() {
        o.insert(
            "programme_name".into(),
            json!(programme.map_or("", |p| p.name.as_str())),
        );
        o.insert(
            "unsubscribe_url".into(),
            json!(unsubscribe_link(ctx, senders, programme_id, member_id)),
        );
    }
}

/// Send a message to a member on every channel they may be reached on.
pub async fn send(
    ctx: &Ctx,
    senders: &Senders,
    profile: &MemberProfile,
    tz: Tz,
    msg: &Message,
) -> Result<Outcome, NotifyError> {
    let now = ctx.now();
    let mut channels = notify::channels(profile);
    channels.retain(|c| msg.on.contains(c));
    if channels.is_empty() {
        // Erased, opted out, unreachable: dropped, cleanly.
        return Ok(Outcome::Sent(0));
    }
    let rendered = bonus_messages::render(
        bonus_messages::templates(),
        msg.template,
        &profile.locale,
        &msg.vars,
    )?;
    let sms = notify::sms(&rendered.sms);
    let mut sent = 0;
    for channel in channels {
        if channel == Channel::Sms {
            let at = notify::sms_send_at(now, tz, notify::QUIET_HOURS);
            if at > now {
                return Ok(Outcome::Deferred(at));
            }
        }
        let mut d = Delivery {
            event_id: msg.id.clone(),
            channel: channel.as_str().into(),
            programme_id: profile.programme_id.clone(),
            member_id: profile.member_id.clone(),
            message: msg.template.to_string(),
            locale: rendered.locale.clone(),
            status: "sending".into(),
            provider_id: None,
            at: now,
            summary: match channel {
                Channel::Email => rendered.subject.clone(),
                Channel::Sms => sms.text.clone(),
            },
            failure: None,
            expires_ttl: (now + Duration::days(bonus_dynamodb::notify::KEEP_DAYS)).timestamp(),
        };
        let lease = Duration::minutes(CLAIM_LEASE_MINUTES);
        match ctx.store.claim_delivery(&d, now - lease).await? {
            Claim::Claimed => {}
            Claim::Done => continue, // this message went out on this channel before
            // Someone else is sending it; if they died, it is ours once the lease ran out.
            Claim::Busy(since) => {
                return Ok(Outcome::Deferred(since + lease + Duration::seconds(1)))
            }
        }
        let address = match channel {
            Channel::Email => profile.email.as_deref(),
            Channel::Sms => profile.phone.as_deref(),
        }
        .unwrap_or_default();
        let unsubscribe = msg.vars.get("unsubscribe_url").and_then(Value::as_str);
        let result = with_backoff(|| async {
            match channel {
                Channel::Email => send_email(senders, address, &rendered, unsubscribe).await,
                Channel::Sms => send_sms(senders, address, &sms.text).await,
            }
        })
        .await;
        let metric = if result.is_ok() {
            bonus_metrics::name::MESSAGES_SENT
        } else {
            bonus_metrics::name::MESSAGES_FAILED
        };
        bonus_metrics::count(metric, &[("Channel", channel.as_str())], 1);
        match result {
            Ok(id) => {
                d.status = "sent".into();
                d.provider_id = id;
                sent += 1;
            }
            Err(SendError::Permanent(code)) => {
                warn!(message_id = %msg.id, channel = channel.as_str(), code = %code,
                    "address failed for good; recorded on the member");
                let failure = Undeliverable {
                    reason: code.clone(),
                    at: now,
                };
                ctx.store
                    .mark_undeliverable(
                        &profile.programme_id,
                        &profile.member_id,
                        channel,
                        address,
                        &failure,
                    )
                    .await?;
                d.status = "undeliverable".into();
                d.failure = Some(code);
            }
            Err(e) => {
                // Worth another try later: give the claim back, the queue redelivers.
                warn!(message_id = %msg.id, channel = channel.as_str(), code = %e.code(),
                    "send failed; the event goes back to the queue");
                ctx.store.release_delivery(&d).await?;
                return Err(NotifyError::Provider(e.code().to_string()));
            }
        }
        ctx.store.finish_delivery(&d).await?;
    }
    info!(message_id = %msg.id, template = msg.template, sent, "member notified");
    Ok(Outcome::Sent(sent))
}

/// A local time for a date in templates.
pub fn date_in(tz: Tz, locale: &str, at: DateTime<Utc>) -> String {
    notify::format_date(locale, at.with_timezone(&tz).date_naive())
}
