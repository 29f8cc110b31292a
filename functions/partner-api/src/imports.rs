//! Missed orders over the partner API, as `bonus import orders` books them from a file:
//! - `POST /v1/partner/imports`: JSON lines (one canonical `order.paid`, `order.refunded` or
//!   `order.cancelled` event a line, paid up to 90 days ago), at most [`MAX_LINES`]; every
//!   line is queued on the deferred-webhooks queue and booked there through the order
//!   webhook's own handler, idempotent on the same business keys as webhooks (an import
//!   sent twice, or of orders that did arrive, books nothing twice). Answers 202 with the
//!   import's id; lines that are not an event at all are refused at once.
//! - `GET /v1/partner/imports/{id}`: the progress and the summary: lines done, booked,
//!   refused by code with their line numbers.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;
use tracing::info;

use bonus_dynamodb::imports::{ImportJob, LineOutcome};
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::{Ctx, ImportLine};

use crate::{actor, authorise};

/// Lines per request (a larger file goes in several).
pub const MAX_LINES: usize = 5_000;
/// A line's refusals listed in the summary (all are counted).
const LISTED_REFUSALS: usize = 100;

fn import_not_found() -> Error {
    Error::not_found("import_not_found", "no such import of this partner")
}

/// Why a line is not an event at all (refused before it is queued).
fn early_refusal(text: &str) -> Option<(&'static str, String)> {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(("malformed_json", format!("not JSON: {e}"))),
    };
    let field = |name: &str| v.get(name).and_then(serde_json::Value::as_str).is_some();
    if !field("type") || !field("order_id") {
        return Some(("invalid_field", "type and order_id: required".into()));
    }
    None
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let text = std::str::from_utf8(req.body())
        .map_err(|_| Error::malformed("malformed_body", "JSON lines in UTF-8"))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(Error::invalid(
            "no_lines",
            "one event (a JSON object) a line",
        ));
    }
    if lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "too_many_lines",
            format!("at most {MAX_LINES} lines an import; send the rest in another"),
        ));
    }
    let import_id = format!("imp_{}", ctx.random.hex(8));
    let now = ctx.now();
    let mut refused_early = Vec::new();
    let mut bodies = Vec::new();
    for (n, line) in &lines {
        if let Some((code, message)) = early_refusal(line) {
            refused_early.push(LineOutcome {
                line: *n,
                status: 422,
                code: Some(code.into()),
                message: Some(message),
            });
            continue;
        }
        let queued = json!({
            "path": "", "headers": [], "body": line, "accepted_at": now,
            "import": ImportLine { partner_id: key.partner.id.clone(), import_id: import_id.clone(), line: *n },
        });
        bodies.push(queued.to_string());
    }
    let job = ImportJob {
        partner_id: key.partner.id.clone(),
        import_id: import_id.clone(),
        lines: lines.len(),
        refused_early,
        created_at: now,
        created_by: who.name.clone(),
        expires_ttl: (now + chrono::Duration::days(bonus_dynamodb::imports::KEEP_DAYS)).timestamp(),
    };
    // Lines to book need the queue (every deployment has it; a process without one can only
    // refuse them).
    let queue = match (&ctx.deferral, bodies.is_empty()) {
        (Some(q), _) => Some(q),
        (None, true) => None,
        (None, false) => return Err(Error::unavailable()),
    };
    if !ctx.store.create_import(&job).await? {
        return Err(Error::unavailable());
    }
    if let Some(queue) = queue {
        bonus_sqs::send_all(queue.sqs(), &queue.url, &bodies)
            .await
            .map_err(bonus_lambda::api::internal)?;
    }
    info!(partner = %key.partner.id, import_id = %import_id, lines = lines.len(), "import queued");
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({
            "import_id": import_id,
            "lines": lines.len(),
            "queued": bodies.len(),
            "refused": job.refused_early.len(),
        }),
    ))
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    if !bonus_domain::ids::valid_id(id) {
        return Err(import_not_found());
    }
    let (job, mut outcomes) = ctx
        .store
        .import_state(&key.partner.id, id)
        .await?
        .ok_or_else(import_not_found)?;
    outcomes.extend(job.refused_early.iter().cloned());
    outcomes.sort_by_key(|o| o.line);
    let booked = outcomes.iter().filter(|o| o.status < 300).count();
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.status >= 400) {
        *refused
            .entry(o.code.clone().unwrap_or_else(|| "refused".into()))
            .or_default() += 1;
    }
    let refusals: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status >= 400)
        .take(LISTED_REFUSALS)
        .map(|o| json!({"line": o.line, "code": o.code, "message": o.message}))
        .collect();
    let done = outcomes.len();
    Ok(json(
        StatusCode::OK,
        &json!({
            "import_id": job.import_id,
            "status": if done >= job.lines { "done" } else { "running" },
            "lines": job.lines,
            "done": done,
            "pending": job.lines.saturating_sub(done),
            "booked": booked,
            "refused": refused,
            "refusals": refusals,
            "created_at": job.created_at,
            "created_by": job.created_by,
        }),
    ))
}
