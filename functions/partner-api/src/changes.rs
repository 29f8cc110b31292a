//! `GET /v1/partner/changes?limit=50&cursor=...`: the partner's audit trail, newest first:
//! every change to its campaigns and settings, who made it, when, through what, and the
//! thing before and after.

use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use bonus_domain::changes::{Change, Subject};
use bonus_lambda::api::{json, query_param, Error, Response};
use bonus_lambda::app::Ctx;

use crate::authorise;

#[derive(Debug, Serialize)]
struct ChangeView<'a> {
    at: chrono::DateTime<chrono::Utc>,
    actor: &'a str,
    via: &'a str,
    subject: Subject,
    subject_id: &'a str,
    action: &'a str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

fn view(c: &Change) -> ChangeView<'_> {
    let value = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str(t).ok());
    ChangeView {
        at: c.at,
        actor: &c.actor,
        via: &c.via,
        subject: c.subject,
        subject_id: &c.subject_id,
        action: &c.action,
        before: value(&c.before),
        after: value(&c.after),
    }
}

/// The page size: 1 to 200 (default 50).
pub(crate) fn limit(req: &http::Request<Bytes>) -> Result<i32, Error> {
    match query_param(req, "limit") {
        None => Ok(50),
        Some(l) => match l.parse::<i32>() {
            Ok(n) if (1..=200).contains(&n) => Ok(n),
            _ => Err(Error::malformed("invalid_limit", "limit: 1 to 200")),
        },
    }
}

fn cursor_of(change_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(change_id)
}

fn decode_cursor(text: &str) -> Result<String, Error> {
    let bad = || Error::malformed("invalid_cursor", "cursor: not one we gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    // A change id is a time and a suffix: anything else was not ours.
    if id.len() > 64 || !id.contains('#') || id.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(id)
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let limit = limit(req)?;
    let before = query_param(req, "cursor").map(decode_cursor).transpose()?;
    let (changes, more) = ctx
        .store
        .changes(&key.partner.id, limit, before.as_deref())
        .await?;
    let next = more
        .then(|| changes.last().map(|c| cursor_of(&c.change_id)))
        .flatten();
    let views: Vec<ChangeView> = changes.iter().map(view).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "changes": views, "next_cursor": next }),
    ))
}
