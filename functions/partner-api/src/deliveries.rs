//! `GET /v1/partner/webhook-deliveries?limit=50&cursor=...`: every attempt to deliver the
//! partner's outgoing webhooks (subscribed with `PATCH /v1/partner {"webhooks": ...}`),
//! newest first: which webhook, its type, the attempt, the outcome, the receiver's status,
//! and when the next attempt is due.

use base64::Engine;
use bytes::Bytes;
use http::StatusCode;

use bonus_lambda::api::{json, query_param, Error, Response};
use bonus_lambda::app::Ctx;

use crate::authorise;

fn decode_cursor(text: &str) -> Result<String, Error> {
    let bad = || Error::malformed("invalid_cursor", "cursor: not one we gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    // A log key is a time, a webhook id and an attempt: anything else was not ours.
    if key.len() > 300 || key.matches('#').count() != 2 || key.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(key)
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let limit = crate::changes::limit(req)?;
    let before = query_param(req, "cursor").map(decode_cursor).transpose()?;
    let (attempts, next) = ctx
        .store
        .webhook_log(&key.partner.id, limit, before.as_deref())
        .await?;
    let next = next.map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k));
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "deliveries": attempts.iter().map(|a| serde_json::json!({
                "webhook_id": a.webhook_id,
                "type": a.event_type,
                "attempt": a.attempt,
                "at": a.at,
                "outcome": a.outcome,
                "status": a.status,
                "error": a.error,
                "duration_ms": a.duration_ms,
                "next_attempt_at": a.next_attempt_at,
            })).collect::<Vec<_>>(),
            "next_cursor": next,
        }),
    ))
}
