//! Points members send each other (`bonus_domain::transfer`):
//! - `POST /v1/members/{member_id}/transfers`
//!   `{to_member_id | to_email | to_phone, points, reference}`
//!
//! Needs the `transfer` scope, and a sender the key's partner may move points for (the
//! access policy: its own members; never another coalition partner's). The receiver is
//! named by member id, or by the e-mail address or phone number of a member who allowed
//! being found that way; anything else is the same 404 `recipient_not_found`. The same
//! reference again answers the same transfer (200) and moves nothing.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use bonus_domain::access::Action;
use bonus_domain::money::Points;
use bonus_domain::transfer::Transfer;
use bonus_lambda::api::{json, parse_json, Error, Response};
use bonus_lambda::app::Ctx;
use bonus_services::transfer::{send, Recipient, TransferAsk};

use crate::{admit, authorise, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferIn {
    #[serde(default)]
    to_member_id: Option<String>,
    #[serde(default)]
    to_email: Option<String>,
    #[serde(default)]
    to_phone: Option<String>,
    points: Points,
    reference: String,
}

/// A transfer as the API shows it: the receiver by id only if the caller named them by id.
#[derive(Debug, Serialize)]
struct TransferView<'a> {
    transfer_id: &'a str,
    status: &'static str,
    from_member_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_member_id: Option<&'a str>,
    to: &'a str,
    points: Points,
    fee: Points,
    reference: &'a str,
    at: DateTime<Utc>,
}

fn view(t: &Transfer, by_id: bool) -> TransferView<'_> {
    TransferView {
        transfer_id: &t.transfer_id,
        status: "completed",
        from_member_id: &t.from_member,
        to_member_id: by_id.then_some(t.to_member.as_str()),
        to: &t.to_label,
        points: t.points,
        fee: t.fee,
        reference: &t.reference,
        at: t.at,
    }
}

pub(crate) async fn create(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req, Scope::Transfer).await?;
    let input: TransferIn = parse_json(req.body())?;
    let to = match (input.to_member_id, input.to_email, input.to_phone) {
        (Some(id), None, None) => Recipient::Member(id),
        (None, Some(e), None) => Recipient::Email(e),
        (None, None, Some(p)) => Recipient::Phone(p),
        _ => {
            return Err(Error::invalid(
                "invalid_recipient",
                "give exactly one of to_member_id, to_email, to_phone",
            ))
        }
    };
    let by_id = matches!(to, Recipient::Member(_));
    let ask = TransferAsk {
        programme: &key.programme,
        sender_id: member_id,
        to,
        points: input.points,
        reference: &input.reference,
        body: req.body(),
        initiated_by: &key.partner.id,
    };
    // Boxed: the transfer's future (a hold, then its capture) is deep.
    let (transfer, created) = Box::pin(send(ctx, &ask, &|account| {
        Ok(admit(&key, account, Action::Transfer)?.0)
    }))
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view(&transfer, by_id)))
}
