//! Deliveries over their partner's limit: accepted now, booked a little later.
//!
//! The per-partner limit itself is kept by AWS WAF in front of the API (a rate-based rule
//! keyed on the partner's path, across every Lambda instance, with no DynamoDB write per
//! request): over the limit, WAF lets the request through with the header
//! [`OVER_LIMIT_HEADER`]. A signed delivery that carries it is verified as usual, then put on
//! the deferred-webhooks queue and answered `202 {"status": "queued"}`: never refused,
//! because WooCommerce never retries and disables a webhook that keeps failing. A request
//! whose signature does not verify gets `429` with `Retry-After`.
//!
//! The queue's consumer ([`handle_deferred`]) books each delivery through the same handler,
//! judged at the instant it was accepted (its signature was fresh then), and idempotently
//! (the same delivery twice books once). Failures are retried by SQS and then kept in the
//! queue's dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use bonus_lambda::api::{raw_json, Error, Response};
use bonus_lambda::app::Ctx;

/// Inserted by the WAF rate-based rule (WAF prefixes custom headers with `x-amzn-waf-`).
pub const OVER_LIMIT_HEADER: &str = "x-amzn-waf-bonus-over-limit";
/// How long an over-limit caller should wait (the WAF rule's window).
pub const RETRY_AFTER_SECONDS: u32 = 60;
/// Bodies up to this size are queued (SQS takes 256 KB per message); a larger one is booked
/// at once.
const MAX_QUEUED_BODY: usize = 200 * 1024;

/// The instant a delivery is judged at: its acceptance, when it comes from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedAt(pub DateTime<Utc>);

/// The instant to judge `req` at: now, or when it was accepted if it was queued.
pub(crate) fn judged_at(ctx: &Ctx, req: &http::Request<Bytes>) -> DateTime<Utc> {
    req.extensions()
        .get::<AcceptedAt>()
        .map_or_else(|| ctx.now(), |a| a.0)
}

/// A queued delivery: what its handler needs, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub accepted_at: DateTime<Utc>,
    /// A line of a partner's bulk import (no signature: the partner API's key admitted it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<bonus_lambda::app::ImportLine>,
}

/// Is this request over its partner's limit (and not itself from the queue)?
pub(crate) fn over_limit(req: &http::Request<Bytes>) -> bool {
    req.headers().contains_key(OVER_LIMIT_HEADER) && req.extensions().get::<AcceptedAt>().is_none()
}

/// 429 with `Retry-After`, for over-limit traffic that is not a verified delivery.
pub(crate) fn too_many() -> Response {
    let mut resp = raw_json(
        StatusCode::TOO_MANY_REQUESTS,
        serde_json::json!({"error": {"code": "rate_limited",
            "message": format!("over this partner's limit; retry after {RETRY_AFTER_SECONDS} s")}})
        .to_string(),
    );
    resp.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from(RETRY_AFTER_SECONDS),
    );
    resp
}

/// Queue a verified delivery and answer 202; None when it cannot be queued here (no queue
/// configured, a large or non-text body): then it is booked at once.
pub(crate) async fn queue(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Option<Response>, Error> {
    let Some(deferral) = &ctx.deferral else {
        return Ok(None);
    };
    let Ok(body) = std::str::from_utf8(req.body()) else {
        return Ok(None);
    };
    if body.len() > MAX_QUEUED_BODY {
        return Ok(None);
    }
    let headers = req
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != OVER_LIMIT_HEADER)
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let message = Deferred {
        path: req.uri().path().to_string(),
        headers,
        body: body.to_string(),
        accepted_at: ctx.now(),
        import: None,
    };
    let text = serde_json::to_string(&message).map_err(bonus_lambda::api::internal)?;
    deferral
        .sqs()
        .send_message()
        .queue_url(&deferral.url)
        .message_body(text)
        .send()
        .await
        .map_err(|e| bonus_lambda::api::internal(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    info!(partner_id, "delivery over the partner's limit queued");
    Ok(Some(raw_json(
        StatusCode::ACCEPTED,
        serde_json::json!({"status": "queued",
            "message": "accepted over this partner's limit; it is booked within minutes"})
        .to_string(),
    )))
}

/// The deferred-webhooks consumer: each record booked through the same handler, judged at
/// its acceptance. 2xx and 4xx answers are final (a 4xx is logged: the delivery was bad
/// when it came); a 5xx is reported as a failure, so SQS retries it (then its DLQ).
pub async fn handle_deferred(ctx: &Ctx, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let parsed: Result<Deferred, _> =
            serde_json::from_str(record.body.as_deref().unwrap_or_default());
        let status = match parsed {
            Ok(d) => Box::pin(book(ctx, &d)).await,
            Err(_) => StatusCode::BAD_REQUEST,
        };
        if status.is_server_error() {
            warn!(message_id = %id, status = status.as_u16(), "deferred delivery failed; retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        } else if status.is_client_error() {
            warn!(message_id = %id, status = status.as_u16(), "deferred delivery refused");
        } else {
            info!(message_id = %id, status = status.as_u16(), "deferred delivery booked");
        }
    }
    response
}

/// Book one queued delivery (or import line); its answer's status.
async fn book(ctx: &Ctx, d: &Deferred) -> StatusCode {
    if let Some(line) = &d.import {
        let answer = crate::book_imported(ctx, &line.partner_id, d.body.as_bytes()).await;
        let status = answer.status();
        if !status.is_server_error() {
            // The line's outcome for the import's summary (a redelivery writes the same).
            let error: Option<serde_json::Value> =
                serde_json::from_str::<serde_json::Value>(answer.body())
                    .ok()
                    .and_then(|v| v.get("error").cloned());
            let outcome = bonus_dynamodb::imports::LineOutcome {
                line: line.line,
                status: status.as_u16(),
                code: error
                    .as_ref()
                    .and_then(|e| e["code"].as_str())
                    .map(str::to_string),
                message: error
                    .as_ref()
                    .and_then(|e| e["message"].as_str())
                    .map(str::to_string),
            };
            if let Err(e) = ctx
                .store
                .put_import_line(&line.partner_id, &line.import_id, &outcome)
                .await
            {
                warn!(error = %e, "import line outcome not recorded; retried");
                return StatusCode::SERVICE_UNAVAILABLE;
            }
        }
        return status;
    }
    match request(d) {
        Some(req) => crate::handle(ctx, req).await.status(),
        None => StatusCode::BAD_REQUEST,
    }
}

/// Book what the deferred-webhooks queue holds now (locally: `bonus dev` every 2 s; on AWS
/// the queue's event source does this). Returns how many messages were handled.
pub async fn consume_all(
    ctx: &Ctx,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max_batches: usize,
) -> Result<usize, bonus_sqs::QueueError> {
    let mut done = 0;
    for _ in 0..max_batches {
        let batch = bonus_sqs::receive(sqs, url, 0).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let status = match serde_json::from_str::<Deferred>(&m.body) {
                Ok(d) => Box::pin(book(ctx, &d)).await,
                Err(_) => StatusCode::BAD_REQUEST,
            };
            if !status.is_server_error() {
                bonus_sqs::delete(sqs, url, &m.receipt_handle).await?;
                done += 1;
            }
        }
    }
    Ok(done)
}

fn request(d: &Deferred) -> Option<http::Request<Bytes>> {
    let mut req = http::Request::builder().method("POST").uri(&d.path);
    for (k, v) in &d.headers {
        req = req.header(k, v);
    }
    let mut req = req.body(Bytes::from(d.body.clone())).ok()?;
    req.extensions_mut().insert(AcceptedAt(d.accepted_at));
    Some(req)
}
