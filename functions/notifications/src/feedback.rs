//! What SES tells us after a send: a permanent bounce marks the address undeliverable on the
//! member (no more e-mail until they give a new one), a complaint withdraws their e-mail
//! consent. SES publishes these events (configuration set -> SNS topic -> the notifications
//! queue); each names the message id we stored when we sent it.

use serde::Deserialize;
use tracing::info;

use bonus_domain::member::Undeliverable;
use bonus_domain::notify::Channel;
use bonus_lambda::app::Ctx;

use crate::{NotifyError, Outcome};

/// An SES event (event publishing uses `eventType`, identity notifications
/// `notificationType`; both carry the same parts).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesEvent {
    #[serde(alias = "notificationType")]
    pub event_type: String,
    pub mail: SesMail,
    #[serde(default)]
    pub bounce: Option<Bounce>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesMail {
    pub message_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounce {
    pub bounce_type: String,
    #[serde(default)]
    pub bounce_sub_type: Option<String>,
    #[serde(default)]
    pub bounced_recipients: Vec<Recipient>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub email_address: String,
}

/// Apply an SES event to the member the message went to.
pub async fn apply(ctx: &Ctx, event: &SesEvent) -> Result<Outcome, NotifyError> {
    let Some(d) = ctx
        .store
        .delivery_by_provider_id(&event.mail.message_id)
        .await?
    else {
        return Ok(Outcome::Sent(0)); // not ours, or older than we keep
    };
    match (event.event_type.as_str(), &event.bounce) {
        ("Bounce", Some(b)) if b.bounce_type == "Permanent" => {
            let reason = format!(
                "bounce:{}",
                b.bounce_sub_type.as_deref().unwrap_or("General")
            );
            for r in &b.bounced_recipients {
                let Some(address) = bonus_domain::pii::normalize_email(&r.email_address) else {
                    continue;
                };
                let failure = Undeliverable {
                    reason: reason.clone(),
                    at: ctx.now(),
                };
                let marked = ctx
                    .store
                    .mark_undeliverable(
                        &d.programme_id,
                        &d.member_id,
                        Channel::Email,
                        &address,
                        &failure,
                    )
                    .await?;
                info!(programme_id = %d.programme_id, member_id = %d.member_id, marked,
                    reason = %reason, "hard bounce");
            }
        }
        ("Complaint", _) => {
            ctx.store
                .withdraw_email_consent(&d.programme_id, &d.member_id)
                .await?;
            info!(programme_id = %d.programme_id, member_id = %d.member_id,
                "complaint: e-mail consent withdrawn");
        }
        _ => {} // deliveries, soft bounces: nothing to do
    }
    Ok(Outcome::Sent(0))
}
