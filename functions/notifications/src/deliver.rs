//! One message to one member: the channels they may be reached on, the rendered text, quiet
//! hours for SMS, the claim that makes it go once, the providers, and what a failure means.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use tracing::{info, warn};

use shared::app::Ctx;
use shared::notify::{self, Channel};
use shared::store::config::{MemberProfile, Undeliverable};
use shared::store::notify::{Claim, Delivery};

use crate::{NotifyError, Outcome, Senders};

/// A claim still `sending` after this long belongs to a process that died mid-send (a Lambda
/// runs at most 15 minutes); the next delivery of the event takes it over.
pub const CLAIM_LEASE_MINUTES: i64 = 15;
/// Tries per send while the provider throttles, before the event goes back to the queue.
pub const SEND_ATTEMPTS: u32 = 4;

/// A message to send: its id (the event's, or the digest's or statement's) keys the claim.
pub struct Message {
    pub id: String,
    pub template: &'static str,
    pub vars: Value,
    /// Statements go by e-mail only.
    pub email_only: bool,
}

/// How a send failed, by the provider's error code (never its message: it may quote the
/// address or number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Slow down and try again.
    Throttled(String),
    /// This address or number will never work.
    Permanent(String),
    /// Anything else (an outage, our configuration): the queue retries, then the DLQ.
    Failed(String),
}

impl SendError {
    pub fn code(&self) -> &str {
        match self {
            SendError::Throttled(c) | SendError::Permanent(c) | SendError::Failed(c) => c,
        }
    }
}

/// What a provider's error code means for a channel.
pub fn classify(channel: Channel, code: Option<&str>) -> SendError {
    let Some(code) = code else {
        return SendError::Failed("no_response".into());
    };
    let throttled = code.contains("Throttl")
        || code.contains("TooManyRequests")
        || code.contains("LimitExceeded");
    // SNS answers an invalid or unreachable number with InvalidParameter; the text is ours
    // and within limits, so the number is what it rejects. SES reports bad addresses later,
    // as bounces (see `feedback`).
    let permanent = channel == Channel::Sms
        && matches!(
            code,
            "InvalidParameter" | "InvalidParameterValue" | "InvalidParameterException"
        );
    if throttled {
        SendError::Throttled(code.into())
    } else if permanent {
        SendError::Permanent(code.into())
    } else {
        SendError::Failed(code.into())
    }
}

/// Run a send, retrying throttling with jittered exponential backoff (160 ms .. 1 s).
pub async fn with_backoff<T, F, Fut>(mut send: F) -> Result<T, SendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SendError>>,
{
    let mut attempt = 0;
    loop {
        match send().await {
            Err(SendError::Throttled(_)) if attempt + 1 < SEND_ATTEMPTS => {
                shared::store::retry::sleep_backoff(attempt + 4).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The member's time zone for dates and quiet hours: theirs, else the programme's.
pub fn member_tz(profile: &MemberProfile, programme: Option<&shared::programme::Programme>) -> Tz {
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
        .as_ref()
        .map(|k| shared::pii::unsubscribe_token(k, programme_id, member_id))
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
    programme: Option<&shared::programme::Programme>,
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
    if msg.email_only {
        channels.retain(|c| *c == Channel::Email);
    }
    if channels.is_empty() {
        // Erased, opted out, unreachable: dropped, cleanly.
        return Ok(Outcome::Sent(0));
    }
    let rendered = notify::render(
        notify::templates(),
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
            expires_ttl: (now + Duration::days(shared::store::notify::KEEP_DAYS)).timestamp(),
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

fn error_code<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(e: &E) -> Option<String> {
    e.code().map(str::to_string)
}

pub(crate) async fn send_email(
    s: &Senders,
    to: &str,
    r: &notify::Rendered,
    unsubscribe: Option<&str>,
) -> Result<Option<String>, SendError> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader};
    // One-click unsubscribe in the mail client (RFC 2369 and RFC 8058).
    let headers = unsubscribe
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|u| {
            [
                ("List-Unsubscribe", format!("<{u}>")),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ]
            .into_iter()
            .filter_map(|(n, v)| MessageHeader::builder().name(n).value(v).build().ok())
            .collect::<Vec<_>>()
        });
    let content = |text: &str| {
        Content::builder()
            .data(text)
            .charset("UTF-8")
            .build()
            .map_err(|_| SendError::Failed("build".into()))
    };
    let out = s
        .ses
        .send_email()
        .from_email_address(&s.from)
        .destination(Destination::builder().to_addresses(to).build())
        .set_configuration_set_name(s.configuration_set.clone())
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
                        .set_headers(headers)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify(Channel::Email, error_code(&e).as_deref()))?;
    Ok(out.message_id)
}

async fn send_sms(s: &Senders, to: &str, text: &str) -> Result<Option<String>, SendError> {
    let out = s
        .sns
        .publish()
        .phone_number(to)
        .message(text)
        .send()
        .await
        .map_err(|e| classify(Channel::Sms, error_code(&e).as_deref()))?;
    Ok(out.message_id)
}

/// A local time for a date in templates.
pub fn date_in(tz: Tz, locale: &str, at: DateTime<Utc>) -> String {
    notify::format_date(locale, at.with_timezone(&tz).date_naive())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn provider_codes_mean_what_they_say() {
        let sms = |c| classify(Channel::Sms, Some(c));
        assert_eq!(sms("Throttled"), SendError::Throttled("Throttled".into()));
        assert_eq!(
            classify(Channel::Email, Some("TooManyRequestsException")),
            SendError::Throttled("TooManyRequestsException".into())
        );
        assert_eq!(
            sms("InvalidParameter"),
            SendError::Permanent("InvalidParameter".into())
        );
        // An e-mail the provider refuses is not the address's fault (bounces say that).
        assert_eq!(
            classify(Channel::Email, Some("MessageRejected")),
            SendError::Failed("MessageRejected".into())
        );
        assert_eq!(
            classify(Channel::Sms, None),
            SendError::Failed("no_response".into())
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_then_given_back_and_other_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out = with_backoff(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                Err(SendError::Throttled("Throttled".into()))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(out, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let out: Result<(), _> = with_backoff(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(SendError::Throttled("Throttled".into()))
        })
        .await;
        assert_eq!(out, Err(SendError::Throttled("Throttled".into())));
        assert_eq!(calls.load(Ordering::SeqCst), SEND_ATTEMPTS);

        calls.store(0, Ordering::SeqCst);
        let out: Result<(), _> = with_backoff(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(SendError::Permanent("InvalidParameter".into()))
        })
        .await;
        assert_eq!(out, Err(SendError::Permanent("InvalidParameter".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
