//! The unsubscribe link in every member e-mail:
//! `/v1/unsubscribe/{programme_id}/{member_id}/{token}`, the token an HMAC of the member
//! (`bonus_domain::pii::unsubscribe_token`), so the link needs no login and cannot be guessed.
//! GET shows a page with a button (mail scanners that open links unsubscribe nobody); POST
//! unsubscribes at once — the button, and mail clients' one-click unsubscribe (RFC 8058,
//! `List-Unsubscribe-Post`), which every e-mail announces in its headers.

use bytes::Bytes;
use http::StatusCode;
use tracing::info;

use bonus_domain::ids::valid_id;
use bonus_lambda::api::{escape_html, html, Error, Response};
use bonus_lambda::app::Ctx;

fn invalid_link() -> Error {
    Error::not_found(
        "unsubscribe_link_invalid",
        "this unsubscribe link is not valid",
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family: sans-serif\"><h1>{title}</h1>{body}</body></html>"
    )
}

/// The programme's name, if the link is genuine and the member exists.
async fn check(
    ctx: &Ctx,
    programme_id: &str,
    member_id: &str,
    token: &str,
) -> Result<String, Error> {
    let key = ctx.store.email_key.get().ok_or_else(invalid_link)?;
    if !valid_id(programme_id)
        || !valid_id(member_id)
        || !bonus_domain::pii::verify_unsubscribe_token(&key, programme_id, member_id, token)
    {
        return Err(invalid_link());
    }
    let profile = ctx.store.get_profile(programme_id, member_id).await?;
    let programme = ctx.store.get_programme(programme_id).await?;
    match (profile, programme) {
        (Some(_), Some(p)) => Ok(p.name),
        _ => Err(invalid_link()),
    }
}

pub async fn show(
    ctx: &Ctx,
    _req: &http::Request<Bytes>,
    programme_id: &str,
    member_id: &str,
    token: &str,
) -> Result<Response, Error> {
    let name = escape_html(&check(ctx, programme_id, member_id, token).await?);
    let body = format!(
        "<p>No more e-mails from {name}?</p>\
         <form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>"
    );
    Ok(html(StatusCode::OK, page("Unsubscribe", &body)))
}

pub async fn confirm(
    ctx: &Ctx,
    _req: &http::Request<Bytes>,
    programme_id: &str,
    member_id: &str,
    token: &str,
) -> Result<Response, Error> {
    let name = escape_html(&check(ctx, programme_id, member_id, token).await?);
    ctx.store
        .withdraw_email_consent(programme_id, member_id)
        .await?;
    info!(programme_id, member_id, "member unsubscribed from e-mail");
    let body = format!("<p>You will get no more e-mails from {name}.</p>");
    Ok(html(StatusCode::OK, page("Unsubscribed", &body)))
}
