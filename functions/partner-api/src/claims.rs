//! Gift-shop claims at a partner's return desk, found by their voucher code:
//! - `GET /v1/partner/claims/{voucher_code}`: the claim (reward, member, points, status);
//! - `POST /v1/partner/claims/{voucher_code}/return` `{note?}`: return it once. The points
//!   go back into the lots the claim took (a share whose lot expired meanwhile expires at
//!   once), the reward's stock and the member's claim count go up, the statement says so,
//!   and the clearing takes the redemption back in this month. Again: 200, the same answer.
//!
//! The partner where the claim was made and the partner whose reward it is may handle it;
//! for anyone else a code is the same 404 as a code that does not exist.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use bonus_domain::changes::Subject;
use bonus_domain::claim_return::{ClaimReturned, ReturnRequest};
use bonus_domain::error::parse_json;
use bonus_domain::hold::{Hold, HoldStatus};
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::Ctx;
use bonus_services::claims;

use crate::{actor, authorise};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ClaimView<'a> {
    voucher_code: &'a str,
    reward_id: &'a str,
    member_id: &'a str,
    /// Where it was claimed (the partner whose redemption it is).
    partner_id: &'a str,
    points: i64,
    status: HoldStatus,
    claimed_at: DateTime<Utc>,
    returned: Option<&'a ClaimReturned>,
}

pub(crate) fn view(h: &Hold, now: DateTime<Utc>) -> ClaimView<'_> {
    let (reward_id, voucher_code) = h
        .reward
        .as_ref()
        .map(|r| (r.reward_id.as_str(), r.voucher_code.as_str()))
        .unwrap_or_default();
    ClaimView {
        voucher_code,
        reward_id,
        member_id: &h.member_id,
        partner_id: &h.partner_id,
        points: h.points,
        status: h.status_at(now),
        claimed_at: h.created_at,
        returned: h.returned.as_ref(),
    }
}

pub(crate) async fn show(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    code: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let claim = claims::find(ctx, &key.programme.id, Some(&key.partner.id), code).await?;
    Ok(json(StatusCode::OK, &view(&claim, ctx.now())))
}

pub(crate) async fn return_claim(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    code: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let body: ReturnBody = if req.body().is_empty() {
        ReturnBody::default()
    } else {
        parse_json(req.body())?
    };
    let ask = ReturnRequest {
        partner_id: key.partner.id.clone(),
        by: who.name.clone(),
        note: body.note,
    };
    ask.validate()?;
    let claim = claims::find(ctx, &key.programme.id, Some(&key.partner.id), code).await?;
    let audit = crate::Audit {
        ctx,
        partner_id: &key.partner.id,
        who: &who,
    };
    let now = ctx.now();
    let change = |after: &Hold| {
        audit.change(
            Subject::Claim,
            &claim.hold_id,
            "returned",
            Some(&view(&claim, now)),
            Some(&view(after, now)),
        )
    };
    let (claim, _) =
        claims::return_claim(ctx, key.programme.time_zone, &claim, &ask, Some(&change)).await?;
    Ok(json(StatusCode::OK, &view(&claim, ctx.now())))
}
