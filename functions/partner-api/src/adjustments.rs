//! Adjustments by the partner's customer service (`bonus_domain::adjustment`):
//! - `POST /v1/partner/adjustments` `{member_id, points, reason, note, reference}`: a
//!   credit (points above 0) or a debit (below), idempotent on the reference: applied at
//!   once, or `pending_approval` above the programme's threshold;
//! - `GET /v1/partner/adjustments?status=pending_approval`: its adjustments, newest first;
//! - `GET /v1/partner/adjustments/{id}`;
//! - `POST /v1/partner/adjustments/{id}/approve` and `.../reject`: by a second person (the
//!   `Bonus-Actor` header; never the one who asked).
//!
//! Which members a partner may adjust is the access policy's (docs/security.md): credit any
//! member it may touch (a coalition partner any member of the programme: it pays for the
//! points), debit only its own; anything else is the same 404 as no member.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use bonus_domain::access::Action;
use bonus_domain::account::Account;
use bonus_domain::adjustment::{Adjustment, Reason, Status};
use bonus_domain::error::parse_json;
use bonus_domain::money::Points;
use bonus_lambda::api::{json, query_param, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};
use bonus_services::adjust::{self, AdjustAsk};

use crate::{actor, authorise};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustIn {
    member_id: String,
    points: Points,
    reason: String,
    note: String,
    reference: String,
}

#[derive(Debug, Serialize)]
struct AdjustmentView<'a> {
    adjustment_id: &'a str,
    member_id: &'a str,
    points: Points,
    reason: Reason,
    note: &'a str,
    reference: &'a str,
    status: Status,
    requested_by: &'a str,
    requested_at: DateTime<Utc>,
    decided_by: Option<&'a str>,
    decided_at: Option<DateTime<Utc>>,
    /// Points written (a debit: taken from the member's lots).
    applied: Points,
    /// Of a debit: what became a debt (chargeback, fraud).
    debt: Points,
    /// Of a debit: what the member no longer had when it was written.
    shortfall: Points,
    applied_at: Option<DateTime<Utc>>,
}

fn view(a: &Adjustment) -> AdjustmentView<'_> {
    AdjustmentView {
        adjustment_id: &a.adjustment_id,
        member_id: &a.member_id,
        points: a.points,
        reason: a.reason,
        note: &a.note,
        reference: &a.reference,
        status: a.status,
        requested_by: &a.requested_by,
        requested_at: a.requested_at,
        decided_by: a.decided_by.as_deref(),
        decided_at: a.decided_at,
        applied: a.applied,
        debt: a.debt,
        shortfall: a.shortfall,
        applied_at: a.applied_at,
    }
}

/// The access policy's answer for adjusting a member as read (None: no such member).
fn admit(key: &KeyConfig, action: Action, account: Option<Account>) -> Result<Account, Error> {
    key.admit(account, action).map(|(a, _)| a)
}

pub(crate) async fn create(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let input: AdjustIn = parse_json(req.body())?;
    let reason = Reason::parse(&input.reason).ok_or_else(|| {
        Error::invalid(
            "invalid_reason",
            "reason: goodwill, compensation, correction, migration, chargeback or fraud",
        )
    })?;
    let action = if input.points < 0 {
        Action::Debit
    } else {
        Action::Credit
    };
    let ask = AdjustAsk {
        member_id: &input.member_id,
        points: input.points,
        reason,
        note: &input.note,
        reference: &input.reference,
    };
    let admit = |account: Option<Account>| admit(&key, action, account);
    let (adj, created) = Box::pin(adjust::request(
        ctx,
        &key.programme,
        &key.partner.id,
        &who,
        &ask,
        &admit,
    ))
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view(&adj)))
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let status = match query_param(req, "status") {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<Status>(serde_json::Value::String(s.to_string())).map_err(
                |_| {
                    Error::malformed(
                        "invalid_status",
                        "status: pending_approval, applying, applied or rejected",
                    )
                },
            )?,
        ),
    };
    let limit = crate::changes::limit(req)?;
    let found = ctx
        .store
        .adjustments(
            &key.partner.id,
            status,
            usize::try_from(limit).unwrap_or(50),
        )
        .await?;
    let views: Vec<AdjustmentView> = found.iter().map(view).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "adjustments": views }),
    ))
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let found = if bonus_domain::ids::valid_id(id) {
        ctx.store.get_adjustment(&key.partner.id, id).await?
    } else {
        None
    };
    let adj = found.ok_or_else(adjust::not_found)?;
    Ok(json(StatusCode::OK, &view(&adj)))
}

pub(crate) async fn decide(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
    approve: bool,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let adj = Box::pin(adjust::decide(
        ctx,
        &key.programme,
        &key.partner.id,
        id,
        approve,
        &who,
    ))
    .await?;
    Ok(json(StatusCode::OK, &view(&adj)))
}
