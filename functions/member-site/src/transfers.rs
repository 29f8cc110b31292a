//! `/m/{programme}/{member}/transfer`: sending points to another member, with a
//! confirmation step. The first form names the receiver (a member number, or the e-mail
//! address or mobile number of a member who allows being found) and the points; the
//! confirmation page shows who they are (their display name or a masked number), the fee
//! and the total, and carries a fresh reference, so that sending the confirmation twice is
//! one transfer. Sending goes through the same service as the API
//! (`bonus_services::transfer::send`).

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};
use tracing::info;

use bonus_domain::access::Action;
use bonus_domain::hold::{spendable_available, SpendError};
use bonus_domain::site::{format_points, normalize_phone};
use bonus_domain::transfer::{counterparty_label, quote};
use bonus_lambda::api::{Error, Response};
use bonus_lambda::app::Ctx;
use bonus_services::transfer::{find_recipient, send, Recipient, TransferAsk};

use crate::auth::Authed;
use crate::pages::render_page;
use crate::web::form;
use crate::Site;

/// What the member typed into "to": an address, a number, or a member number.
fn recipient(text: &str) -> Recipient {
    let t = text.trim();
    if t.contains('@') {
        Recipient::Email(t.to_string())
    } else if t.starts_with('+') {
        Recipient::Phone(normalize_phone(t).unwrap_or_else(|| t.to_string()))
    } else {
        Recipient::Member(t.to_string())
    }
}

fn whole_points(text: Option<&String>) -> Result<i64, Error> {
    text.map(|t| t.trim().replace(['.', ',', ' ', '\u{a0}'], ""))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| Error::invalid("invalid_points", "points: a whole number"))
}

async fn page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    me: &Authed,
    status: StatusCode,
    extra: Value,
) -> Result<Response, Error> {
    let s = &me.programme.transfers;
    let p = |n| format_points(me.locale, n);
    let mut vars = json!({
        "enabled": s.enabled,
        "fee_percent": s.fee_percent.normalize().to_string(),
        "min": p(s.min_points), "max": p(s.max_points), "daily": p(s.daily_limit),
        "available": p(me.account.view(&me.programme, ctx.now()).available),
        "to": "", "points": "", "result": null, "confirm": null,
    });
    if let (Value::Object(v), Value::Object(e)) = (&mut vars, extra) {
        v.extend(e);
    }
    render_page(site, req, me, "transfer", status, vars)
}

/// A refusal shown on the page (with the form again), or an error page for the rest.
async fn refused(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    me: &Authed,
    e: Error,
    typed: Value,
) -> Result<Response, Error> {
    if e.is_server_error() || e.code == "member_not_found" {
        return Err(e);
    }
    let status = bonus_lambda::api::status_of(e.kind);
    let mut extra = json!({"result": {"ok": false, "code": e.code}});
    if let (Value::Object(v), Value::Object(t)) = (&mut extra, typed) {
        v.extend(t);
    }
    page(ctx, site, req, me, status, extra).await
}

/// `GET /m/{programme}/{member}/transfer`
pub async fn form_page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let me = member!(ctx, site, req, p, m, Action::ReadBalance, None);
    page(ctx, site, req, &me, StatusCode::OK, json!({})).await
}

/// `POST /m/{programme}/{member}/transfer` `{csrf, to, points}`: the confirmation page.
/// Nothing moves yet.
pub async fn review(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::Transfer, Some(&fields));
    let to_text = fields.get("to").cloned().unwrap_or_default();
    let typed = json!({"to": to_text, "points": fields.get("points").cloned().unwrap_or_default()});
    let checked = async {
        let points = whole_points(fields.get("points"))?;
        let receiver = find_recipient(ctx, p, &recipient(&to_text)).await?;
        let today = ctx
            .now()
            .with_timezone(&me.programme.time_zone)
            .date_naive();
        let sent = ctx.store.sent_on(p, m, today).await?;
        let q = quote(
            &me.programme.transfers,
            &me.account,
            &receiver,
            points,
            sent,
        )?;
        // Said now rather than after the confirmation (sending checks it again).
        let available = spendable_available(&me.account, ctx.now());
        if available < q.total {
            return Err(SpendError::Insufficient {
                available,
                wanted: q.total,
            }
            .into());
        }
        let profile = ctx.store.get_profile(p, &receiver).await?;
        let name = profile
            .as_ref()
            .filter(|p| p.erased_at.is_none())
            .and_then(|p| p.display_name.as_deref());
        Ok::<_, Error>((q, counterparty_label(&receiver, name)))
    };
    match checked.await {
        Ok((q, label)) => {
            let f = |n| format_points(me.locale, n);
            let confirm = json!({
                "points": f(q.points), "fee": f(q.fee), "total": f(q.total), "to": label,
                "recipient": to_text.trim(), "raw_points": q.points,
                "reference": format!("site-{}", ctx.random.hex(12)),
            });
            page(
                ctx,
                site,
                req,
                &me,
                StatusCode::OK,
                json!({"confirm": confirm}),
            )
            .await
        }
        Err(e) => refused(ctx, site, req, &me, e, typed).await,
    }
}

/// `POST /m/{programme}/{member}/transfer/confirm` `{csrf, to, points, reference}`: send.
pub async fn confirm(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    p: &str,
    m: &str,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = member!(ctx, site, req, p, m, Action::Transfer, Some(&fields));
    let to_text = fields.get("to").cloned().unwrap_or_default();
    let typed = json!({"to": to_text});
    let points = match whole_points(fields.get("points")) {
        Ok(n) => n,
        Err(e) => return refused(ctx, site, req, &me, e, typed).await,
    };
    let reference = fields.get("reference").cloned().unwrap_or_default();
    // What the request says, for the retry check: the form's fields, not its CSRF token.
    let body = format!("site|{}|{points}|{reference}", to_text.trim());
    let ask = TransferAsk {
        programme: &me.programme,
        sender_id: m,
        to: recipient(&to_text),
        points,
        reference: &reference,
        body: body.as_bytes(),
        initiated_by: "member",
    };
    let admit = me.admit(Action::Transfer);
    match Box::pin(send(ctx, &ask, &admit)).await {
        Ok((t, _)) => {
            info!(
                programme_id = p,
                points = t.points,
                "points sent on the member site"
            );
            // The balance as it is now.
            let me = member!(ctx, site, req, p, m, Action::ReadBalance, None);
            let done =
                json!({"ok": true, "points": format_points(me.locale, t.points), "to": t.to_label});
            page(
                ctx,
                site,
                req,
                &me,
                StatusCode::CREATED,
                json!({"result": done}),
            )
            .await
        }
        Err(e) => refused(ctx, site, req, &me, e, typed).await,
    }
}
