//! Partners' outgoing webhooks (`bonus_domain::outgoing`): the consumer of ledger events
//! queues one delivery per subscribed partner the event concerns onto the partner-webhooks
//! queue; the webhook sender posts each, signed with Standard Webhooks (the partner's newest
//! webhook secret, the `webhook-id` the same on every attempt), logs every attempt, and on a
//! failure hides the message for the backoff (30 s, doubling, at most 6 h); after
//! `MAX_ATTEMPTS` receives SQS moves it to the dead-letter queue (alarmed).

use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tracing::{info, warn};

use bonus_domain::events::DomainEvent;
use bonus_domain::member::MemberProfile;
use bonus_domain::outgoing::{self, Delivery};
use bonus_domain::webhook_sig;
use bonus_dynamodb::outgoing::WebhookAttempt;
use bonus_lambda::app::Ctx;
use bonus_sqs as queue;

use crate::NotifyError;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// The partner no longer subscribes to it (or is gone): nothing to send.
    Dropped,
    /// Try again after this many seconds.
    Failed(i64),
}

/// The HTTP client of the sender: a timeout, no redirects (a receiver answers itself).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(outgoing::TIMEOUT_SECS))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("bonus-webhooks/1")
        .build()
        .unwrap_or_default()
}

/// The deliveries a ledger event makes: one per concerned partner that subscribes to its type
/// (`profile`: the member's, as the message delivery read it).
pub async fn deliveries(
    ctx: &Ctx,
    event: &DomainEvent,
    profile: Option<&MemberProfile>,
) -> Result<Vec<Delivery>, NotifyError> {
    if outgoing::event_type(event).is_none() {
        return Ok(Vec::new());
    }
    let enrolled = profile
        .as_ref()
        .map(|p| p.enrolled_with.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for partner_id in outgoing::concerned(event, &enrolled) {
        let Some(cfg) = ctx.partner(&partner_id).await? else {
            continue;
        };
        let p = &cfg.partner;
        let wants = p.programme_id == event.programme_id
            && p.webhooks
                .as_ref()
                .zip(outgoing::event_type(event))
                .is_some_and(|(s, t)| s.wants(t));
        if !wants {
            continue;
        }
        let customer = profile
            .and_then(|pr| pr.external_ids.get(&partner_id))
            .map(String::as_str);
        out.extend(outgoing::delivery(event, &partner_id, customer));
    }
    Ok(out)
}

/// Queue an event's deliveries (the event's delivery, with the profile it read, before the
/// member's messages).
pub async fn enqueue(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    event: &DomainEvent,
    profile: Option<&MemberProfile>,
) -> Result<usize, NotifyError> {
    let list = deliveries(ctx, event, profile).await?;
    let bodies = list
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NotifyError::BadTask(e.to_string()))?;
    queue::send_all(sqs, url, &bodies).await?;
    Ok(bodies.len())
}

/// Post one delivery (attempt `attempt`, from 1) and log it.
pub async fn attempt(
    ctx: &Ctx,
    http: &reqwest::Client,
    d: &Delivery,
    attempt: u32,
) -> Result<Attempt, NotifyError> {
    let now = ctx.now();
    let mut log = WebhookAttempt {
        partner_id: d.partner_id.clone(),
        webhook_id: d.webhook_id.clone(),
        event_type: d.event_type.clone(),
        attempt,
        at: now,
        outcome: "dropped".into(),
        status: None,
        error: None,
        duration_ms: 0,
        next_attempt_at: None,
        expires_ttl: WebhookAttempt::ttl(now),
    };
    let partner = ctx.partner_with_secrets(&d.partner_id).await?;
    let target = partner.as_ref().and_then(|p| {
        let s = p.webhooks.as_ref().filter(|s| s.wants(&d.event_type))?;
        Some((s.url.clone(), p.webhook_secrets.last()?.clone()))
    });
    let Some((url, secret)) = target else {
        ctx.store.log_webhook_attempt(&log).await?;
        return Ok(Attempt::Dropped);
    };
    let body = d.body();
    let timestamp = now.timestamp();
    let signature = webhook_sig::sign(&secret, &d.webhook_id, timestamp, body.as_bytes())
        .map_err(|e| NotifyError::BadTask(format!("partner secret: {e}")))?;
    let started = Instant::now();
    let answer = http
        .post(&url)
        .header("content-type", "application/json")
        .header(webhook_sig::HEADER_ID, &d.webhook_id)
        .header(webhook_sig::HEADER_TIMESTAMP, timestamp.to_string())
        .header(webhook_sig::HEADER_SIGNATURE, signature)
        .body(body)
        .send()
        .await;
    log.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = match answer {
        Ok(r) if r.status().is_success() => {
            log.status = Some(r.status().as_u16());
            Attempt::Delivered
        }
        Ok(r) => {
            log.status = Some(r.status().as_u16());
            log.error = Some(format!("http_{}", r.status().as_u16()));
            Attempt::Failed(0)
        }
        Err(e) => {
            log.error = Some(
                if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                }
                .into(),
            );
            Attempt::Failed(0)
        }
    };
    let result = match result {
        Attempt::Failed(_) => {
            let jitter = u32::try_from(ctx.random.up_to(999)).unwrap_or(0);
            let wait = outgoing::retry_after(attempt, jitter);
            log.outcome = "failed".into();
            log.next_attempt_at = (attempt < outgoing::MAX_ATTEMPTS).then(|| now + wait);
            warn!(partner = %d.partner_id, webhook_id = %d.webhook_id, attempt,
                error = log.error.as_deref().unwrap_or(""), "partner webhook failed; retried later");
            Attempt::Failed(wait.num_seconds())
        }
        other => {
            log.outcome = "delivered".into();
            info!(partner = %d.partner_id, webhook_id = %d.webhook_id, attempt, "partner webhook delivered");
            other
        }
    };
    ctx.store.log_webhook_attempt(&log).await?;
    Ok(result)
}

/// What to do with one queue message of the partner-webhooks queue: done, or hide it this
/// many seconds (and leave it: it comes back, or goes to the dead-letter queue).
async fn step(ctx: &Ctx, http: &reqwest::Client, body: &str, receive_count: u32) -> Option<i64> {
    let d: Delivery = match serde_json::from_str(body) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "unreadable partner webhook; left for the dead-letter queue");
            return Some(0);
        }
    };
    match Box::pin(attempt(ctx, http, &d, receive_count.max(1))).await {
        Ok(Attempt::Delivered | Attempt::Dropped) => None,
        Ok(Attempt::Failed(wait)) => Some(wait),
        Err(e) => {
            warn!(error = %e, webhook_id = %d.webhook_id, "partner webhook not attempted; retried");
            Some(30)
        }
    }
}

/// The webhook sender Lambda (SQS event source with `ReportBatchItemFailures`).
pub async fn handle_sqs(
    ctx: &Ctx,
    http: &reqwest::Client,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let body = record.body.as_deref().unwrap_or("");
        if let Some(wait) = step(ctx, http, body, count).await {
            if let Some(handle) = &record.receipt_handle {
                let _ = hide(sqs, queue_url, handle, wait).await;
            }
            response.add_failure(id);
        }
    }
    response
}

async fn hide(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    handle: &str,
    seconds: i64,
) -> Result<(), bonus_sqs::QueueError> {
    sqs.change_message_visibility()
        .queue_url(url)
        .receipt_handle(handle)
        .visibility_timeout(i32::try_from(seconds.clamp(0, 43_200)).unwrap_or(43_200))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| bonus_sqs::QueueError::Sqs(format!("{e:?}")))
}

/// Send what the queue holds now (locally: `bonus dev` every 2 s). Returns (delivered or
/// dropped, to be retried).
pub async fn consume_all(
    ctx: &Ctx,
    http: &reqwest::Client,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max_batches: usize,
) -> Result<(usize, usize), NotifyError> {
    let (mut done, mut waiting) = (0, 0);
    for _ in 0..max_batches {
        let batch = queue::receive(sqs, url, 0).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            match step(ctx, http, &m.body, m.receive_count).await {
                None => {
                    done += 1;
                    queue::delete(sqs, url, &m.receipt_handle).await?;
                }
                Some(wait) => {
                    waiting += 1;
                    hide(sqs, url, &m.receipt_handle, wait).await?;
                }
            }
        }
    }
    Ok((done, waiting))
}
