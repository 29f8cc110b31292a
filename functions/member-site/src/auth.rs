//! Logging in and out: a one-time link by e-mail, a six-digit code by SMS, a partner's
//! signed member token; sessions that end here or everywhere.
//!
//! No answer tells whether an address belongs to a member: a request for a link or a code
//! gets the same page whoever asks, the per-address throttle counts every request, and a
//! wrong code reads the same whether or not one was sent.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::Duration;
use http::StatusCode;
use serde_json::{json, Value};
use tracing::{info, warn};

use bonus_domain::access::{self, Action, Decision, Relation};
use bonus_domain::account::Account;
use bonus_domain::member::MemberProfile;
use bonus_domain::notify::{template_locale, Rendered};
use bonus_domain::pii::normalize_email;
use bonus_domain::programme::Programme;
use bonus_domain::site::{
    self, link_token, normalize_code, normalize_phone, prelogin_csrf, secret_hash, six_digit_code,
    tokens_match, MemberToken, SessionRef, LOGIN_SECRET_MINUTES, PRELOGIN_COOKIE,
};
use bonus_dynamodb::site::{CodeCheck, LoginSecret, Session};
use bonus_lambda::api::{html, Error, Response};
use bonus_lambda::app::Ctx;

use crate::render::{self, words};
use crate::web::{self, cookies, form, page_locale, query, redirect, set_cookie, with_cookies};
use crate::{Site, SITE_PATH};

/// A logged-in member on one of their pages: the session, what the page needs of the member,
/// and the words.
pub struct Authed {
    /// Themself, or a user of this company (by role).
    pub relation: Relation,
    pub session: Session,
    pub sref: SessionRef,
    pub programme: Programme,
    pub account: Account,
    pub profile: MemberProfile,
    pub csrf: String,
    pub locale: &'static str,
    /// The site's base path (links).
    pub base: String,
}

impl Authed {
    /// The access policy's answer for acting on an account as read (spending, sending):
    /// this session's own member, or the same 404 as for a member that does not exist.
    pub fn admit(
        &self,
        action: Action,
    ) -> impl Fn(Option<Account>) -> Result<Account, Error> + Send + Sync + 'static {
        let session = (
            self.session.programme_id.clone(),
            self.session.member_id.clone(),
        );
        // The role this session was let in with (on a company's pages), for this account.
        let role = match self.relation {
            Relation::CompanyUser(r) => Some((self.account.member_id.clone(), r)),
            _ => None,
        };
        move |account: Option<Account>| {
            let relation = account.as_ref().map(|a| {
                let r = role
                    .as_ref()
                    .filter(|(id, _)| *id == a.member_id)
                    .map(|(_, r)| *r);
                access::member_relation(&session.0, &session.1, &a.programme_id, &a.member_id, r)
            });
            match (access::decide_session(relation, action), account) {
                (access::Decision::Allow(_), Some(a)) => Ok(a),
                _ => Err(Error::not_found(
                    "member_not_found",
                    "no such member in this programme",
                )),
            }
        }
    }

    /// `/m/{programme}/{member}`: where this member's pages are.
    pub fn home(&self) -> String {
        format!(
            "{}/{}/{}",
            self.base, self.programme.id, self.account.member_id
        )
    }
}

pub async fn programme(ctx: &Ctx, programme_id: &str) -> Result<Programme, Error> {
    let not_found = || Error::not_found("programme_not_found", "no such programme");
    if !bonus_domain::ids::valid_id(programme_id) {
        return Err(not_found());
    }
    ctx.store
        .get_programme(programme_id)
        .await?
        .ok_or_else(not_found)
}

/// The session the request's cookie names, if it is signed by us and still stored.
pub async fn current_session(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
) -> Result<Option<(SessionRef, Session)>, Error> {
    let Some(value) = cookies(req).remove(web::session_cookie_name(site)) else {
        return Ok(None);
    };
    let Some(sref) = SessionRef::from_cookie(&site.session_key, &value, ctx.now()) else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .session(&sref, ctx.now())
        .await?
        .map(|s| (sref, s)))
}

fn member_not_found() -> Error {
    Error::not_found("member_not_found", "no such member in this programme")
}

/// The member's page, if the session may do `action` to them (the access policy); a POST's
/// CSRF token checked against the session. Not logged in: Err(the login page, as a
/// redirect). Anyone else's member, or none: the same 404.
pub async fn authed(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
    member_id: &str,
    action: Action,
    posted: Option<&HashMap<String, String>>,
) -> Result<Result<Authed, Response>, Error> {
    let programme = programme(ctx, programme_id).await?;
    let Some((sref, session)) = current_session(ctx, site, req).await? else {
        return Ok(Err(redirect(
            &format!("{}/{programme_id}/login", site.base_path),
            &[],
        )));
    };
    // Another member's pages: only a company's, for its users (one read of the role).
    let role = if session.member_id != member_id
        && session.programme_id == programme_id
        && bonus_domain::ids::valid_id(member_id)
    {
        ctx.store
            .company_role(programme_id, member_id, &session.member_id)
            .await?
    } else {
        None
    };
    let relation = access::member_relation(
        &session.programme_id,
        &session.member_id,
        programme_id,
        member_id,
        role,
    );
    if access::decide_session(Some(relation), action) == Decision::NotFound
        || !matches!(relation, Relation::Member | Relation::CompanyUser(_))
    {
        return Err(member_not_found());
    }
    let csrf = sref.csrf_token(&site.session_key);
    if let Some(fields) = posted {
        let given = fields.get("csrf").map(String::as_str).unwrap_or("");
        if !tokens_match(&csrf, given) {
            return Err(Error::forbidden(
                "csrf_invalid",
                "the form is out of date; reload the page and try again",
            ));
        }
    }
    let (account, profile) = tokio::try_join!(
        ctx.store.get_account(programme_id, member_id),
        ctx.store.get_profile(programme_id, member_id),
    )?;
    let (Some(account), Some(profile)) = (account, profile) else {
        return Err(member_not_found());
    };
    let locale = page_locale(req, Some(&profile.locale));
    Ok(Ok(Authed {
        relation,
        session,
        sref,
        programme,
        account,
        profile,
        csrf,
        locale,
        base: site.base_path.clone(),
    }))
}

/// What every page's template gets.
pub fn page_vars(
    site: &Site,
    req: &http::Request<Bytes>,
    locale: &str,
    programme: &Programme,
    member: Option<&Authed>,
    page: &str,
) -> serde_json::Map<String, Value> {
    let t = words(locale);
    // Back to the same page after a language switch, as the browser addresses it.
    let path = req.uri().path();
    let back = format!(
        "{}{}",
        site.base_path,
        path.strip_prefix(SITE_PATH).unwrap_or(path)
    );
    let back_q: String = serde_urlencoded::to_string([("back", back.as_str())]).unwrap_or_default();
    let vars = json!({
        "t": t,
        "locale": locale,
        "languages": render::languages(),
        "css": web::stylesheet_name(),
        "base": site.base_path,
        "programme_id": programme.id,
        "programme_name": programme.name,
        "page": page,
        "title": t["titles"][page],
        "back": back_q,
        "member": member.map(|m| json!({
            "member_id": m.account.member_id,
            "home": m.home(),
            // The logged-in member's own pages (log out is theirs, also on a company's pages).
            "own_home": format!("{}/{}/{}", m.base, m.session.programme_id, m.session.member_id),
            "csrf": m.csrf,
            "name": m.profile.name,
            "company": match m.relation {
                Relation::CompanyUser(role) => Some(json!({
                    "name": m.account.company.as_ref().map(|c| c.name.clone()),
                    "role": role,
                })),
                _ => None,
            },
        })),
    });
    match vars {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// `GET /m/{programme}`: the member's account, or the login page.
pub async fn home(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    programme(ctx, programme_id).await?;
    match current_session(ctx, site, req).await? {
        Some((_, s)) if s.programme_id == programme_id => Ok(redirect(
            &format!("{}/{programme_id}/{}", site.base_path, s.member_id),
            &[],
        )),
        _ => Ok(redirect(
            &format!("{}/{programme_id}/login", site.base_path),
            &[],
        )),
    }
}

/// The pre-login cookie (random) and the CSRF token of the login forms bound to it; a new
/// cookie to set when the browser had none.
fn prelogin(ctx: &Ctx, site: &Site, req: &http::Request<Bytes>) -> (String, Option<String>) {
    match cookies(req)
        .remove(PRELOGIN_COOKIE)
        .filter(|c| c.len() == 32)
    {
        Some(c) => (prelogin_csrf(&site.session_key, &c), None),
        None => {
            let c = ctx.random.hex(16);
            let set = set_cookie(site, PRELOGIN_COOKIE, &c, 3600);
            (prelogin_csrf(&site.session_key, &c), Some(set))
        }
    }
}

fn check_prelogin(
    site: &Site,
    req: &http::Request<Bytes>,
    fields: &HashMap<String, String>,
) -> Result<(), Error> {
    let expected = cookies(req)
        .remove(PRELOGIN_COOKIE)
        .map(|c| prelogin_csrf(&site.session_key, &c))
        .unwrap_or_default();
    let given = fields.get("csrf").map(String::as_str).unwrap_or("");
    if tokens_match(&expected, given) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "csrf_invalid",
            "the form is out of date; reload the page and try again",
        ))
    }
}

/// A page of the logged-out flow (`page`.html) with the login forms' CSRF token and
/// `extra` variables; the pre-login cookie set when the browser had none.
fn logged_out_page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme: &Programme,
    page: &str,
    status: StatusCode,
    extra: Value,
) -> Result<Response, Error> {
    let locale = page_locale(req, None);
    let (csrf, set) = prelogin(ctx, site, req);
    let mut vars = page_vars(site, req, locale, programme, None, page);
    vars.insert("csrf".into(), json!(csrf));
    if let Value::Object(extra) = extra {
        vars.extend(extra);
    }
    let body = render::page(&format!("{page}.html"), &Value::Object(vars))?;
    Ok(with_cookies(
        html(status, body),
        &set.into_iter().collect::<Vec<_>>(),
    ))
}

fn login_form(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme: &Programme,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, Error> {
    let extra = json!({ "notice": notice, "error": error });
    logged_out_page(ctx, site, req, programme, "login", status, extra)
}

/// `GET /m/{programme}/login`
pub async fn login_page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    let programme = programme(ctx, programme_id).await?;
    let notice = query(req, "bye").map(|_| "logged_out");
    login_form(ctx, site, req, &programme, StatusCode::OK, notice, None)
}

enum Address {
    Email(String),
    Phone(String),
}

/// `POST /m/{programme}/login` `{csrf, address}`: a link by e-mail or a code by SMS, if the
/// address is a member's; the same page either way.
pub async fn request_login(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    let programme = programme(ctx, programme_id).await?;
    let fields = form(req)?;
    check_prelogin(site, req, &fields)?;
    let typed = fields.get("address").map(|a| a.trim()).unwrap_or("");
    let address = if typed.contains('@') {
        normalize_email(typed).map(Address::Email)
    } else {
        normalize_phone(typed).map(Address::Phone)
    };
    let Some(address) = address else {
        return login_form(
            ctx,
            site,
            req,
            &programme,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("address_invalid"),
        );
    };
    let now = ctx.now();
    let (channel, normal) = match &address {
        Address::Email(e) => ("email", e.as_str()),
        Address::Phone(p) => ("sms", p.as_str()),
    };
    // Every request counts against its address, member or not.
    let bucket = site::address_bucket(&site.session_key, channel, normal, now);
    if !ctx
        .store
        .throttle(
            "login-address",
            &bucket,
            site::LOGIN_REQUESTS_PER_ADDRESS_PER_HOUR,
            now,
        )
        .await?
    {
        return Err(Error::new(
            bonus_domain::ErrorKind::TooManyRequests,
            "too_many_login_requests",
            "too many login requests for this address; try again in an hour",
        ));
    }
    let members = match &address {
        Address::Email(e) => ctx.store.members_by_email(programme_id, e).await?,
        Address::Phone(p) => ctx.store.members_by_phone(programme_id, p).await?,
    };
    if let Some(member_id) = members.first() {
        send_login(
            ctx,
            site,
            &site.url_for(req),
            &programme,
            member_id,
            &address,
        )
        .await?;
    }
    let extra = json!({ "channel": channel, "address": normal, "error": Value::Null });
    logged_out_page(
        ctx,
        site,
        req,
        &programme,
        "login_sent",
        StatusCode::OK,
        extra,
    )
}

/// Store the secret and send it, within the member's own throttle. A send that fails is
/// logged, not shown: the page must not differ for members.
async fn send_login(
    ctx: &Ctx,
    site: &Site,
    site_url: &str,
    programme: &Programme,
    member_id: &str,
    address: &Address,
) -> Result<(), Error> {
    let now = ctx.now();
    let bucket = site::member_bucket(&programme.id, member_id, now);
    if !ctx
        .store
        .throttle(
            "login-member",
            &bucket,
            site::LOGIN_MESSAGES_PER_MEMBER_PER_HOUR,
            now,
        )
        .await?
    {
        info!("login message not sent: the member's hourly limit");
        return Ok(());
    }
    let Some(profile) = ctx.store.get_profile(&programme.id, member_id).await? else {
        return Ok(());
    };
    if profile.erased_at.is_some() {
        return Ok(());
    }
    let locale = template_locale(&profile.locale);
    let t = words(locale);
    let expires_at = now + Duration::minutes(LOGIN_SECRET_MINUTES);
    let sent = match address {
        Address::Email(email) => {
            let token = link_token(ctx.random.as_ref());
            let secret = LoginSecret {
                programme_id: programme.id.clone(),
                member_id: member_id.to_string(),
                channel: "email".into(),
                code_sha256: None,
                attempts: 0,
                expires_at,
            };
            ctx.store
                .put_login_secret(&secret_hash("link", &token), &secret)
                .await?;
            let link = format!(
                "{}/{}/login/link?{}",
                site_url,
                programme.id,
                serde_urlencoded::to_string([("token", token.as_str())]).unwrap_or_default()
            );
            let vars = json!({
                "t": t, "locale": locale, "link": link,
                "programme_name": programme.name, "minutes": LOGIN_SECRET_MINUTES,
            });
            let rendered = Rendered {
                locale: locale.to_string(),
                subject: format!(
                    "{}: {}",
                    programme.name,
                    t["mail"]["subject"].as_str().unwrap_or("")
                ),
                text: render::page("mail_login.txt", &vars)?,
                html: render::page("mail_login.html", &vars)?,
                sms: String::new(),
            };
            bonus_messages::send::with_backoff(|| {
                bonus_messages::send::send_email(&site.senders, email, &rendered, None)
            })
            .await
        }
        Address::Phone(phone) => {
            let code = six_digit_code(ctx.random.as_ref());
            let secret = LoginSecret {
                programme_id: programme.id.clone(),
                member_id: member_id.to_string(),
                channel: "sms".into(),
                code_sha256: Some(secret_hash("code", &code)),
                attempts: 0,
                expires_at,
            };
            ctx.store
                .put_login_secret(&sms_key(site, &programme.id, phone), &secret)
                .await?;
            let vars = json!({
                "t": t, "code": code, "programme_name": programme.name,
                "minutes": LOGIN_SECRET_MINUTES,
            });
            let text = render::page("mail_code.txt", &vars)?;
            bonus_messages::send::with_backoff(|| {
                bonus_messages::send::send_sms(&site.senders, phone, &text)
            })
            .await
        }
    };
    match sent {
        Ok(_) => info!(programme_id = %programme.id, "login message sent"),
        Err(e) => warn!(code = e.code(), "login message not sent"),
    }
    Ok(())
}

/// Where a phone number's pending SMS code is kept (by the number's keyed hash).
fn sms_key(site: &Site, programme_id: &str, phone: &str) -> String {
    let h = site::phone_hash(&site.session_key, phone).unwrap_or_default();
    secret_hash("sms", &format!("{programme_id}\0{h}"))
}

/// `GET /m/{programme}/login/link?token=`: a button that logs in (a GET never uses the link
/// up: mail scanners open links before people do).
pub async fn link_page(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    let programme = programme(ctx, programme_id).await?;
    let token = query(req, "token").unwrap_or_default();
    let extra = json!({ "token": token });
    logged_out_page(ctx, site, req, &programme, "link", StatusCode::OK, extra)
}

/// `POST /m/{programme}/login/link` `{csrf, token}`: the link is used up; a session starts.
pub async fn use_link(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    let programme = programme(ctx, programme_id).await?;
    let fields = form(req)?;
    check_prelogin(site, req, &fields)?;
    let token = fields.get("token").map(String::as_str).unwrap_or("");
    let secret = if token.is_empty() || token.len() > 100 {
        None
    } else {
        ctx.store
            .take_login_secret(&secret_hash("link", token), ctx.now())
            .await?
    };
    match secret.filter(|s| s.programme_id == programme_id && s.channel == "email") {
        Some(s) => start_session(ctx, site, &programme, &s.member_id, "email").await,
        None => login_form(
            ctx,
            site,
            req,
            &programme,
            StatusCode::BAD_REQUEST,
            None,
            Some("link_invalid"),
        ),
    }
}

/// `POST /m/{programme}/login/code` `{csrf, phone, code}`
pub async fn use_code(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    let programme = programme(ctx, programme_id).await?;
    let fields = form(req)?;
    check_prelogin(site, req, &fields)?;
    let phone = fields.get("phone").and_then(|p| normalize_phone(p));
    let code = fields.get("code").and_then(|c| normalize_code(c));
    let check = match (&phone, &code) {
        (Some(phone), Some(code)) => {
            ctx.store
                .check_login_code(
                    &sms_key(site, programme_id, phone),
                    &secret_hash("code", code),
                    ctx.now(),
                )
                .await?
        }
        _ => CodeCheck::Void,
    };
    match check {
        CodeCheck::Accepted(s) if s.programme_id == programme_id => {
            start_session(ctx, site, &programme, &s.member_id, "sms").await
        }
        // Wrong or void read the same: the page must not tell whether a code was sent.
        _ => {
            let extra = json!({
                "channel": "sms", "address": phone.unwrap_or_default(), "error": "code_wrong",
            });
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            logged_out_page(ctx, site, req, &programme, "login_sent", status, extra)
        }
    }
}

/// A new session for the member: stored, its signed cookie set, off to their account.
async fn start_session(
    ctx: &Ctx,
    site: &Site,
    programme: &Programme,
    member_id: &str,
    via: &str,
) -> Result<Response, Error> {
    let now = ctx.now();
    let sref = SessionRef::new(ctx.random.as_ref(), &programme.id, member_id, now);
    ctx.store
        .put_session(&Session {
            session_id: sref.session_id.clone(),
            programme_id: programme.id.clone(),
            member_id: member_id.to_string(),
            created_at: now,
            expires_at: sref.expires_at,
            via: via.to_string(),
            locale: None,
        })
        .await?;
    info!(programme_id = %programme.id, via, "member logged in");
    let cookie = set_cookie(
        site,
        web::session_cookie_name(site),
        &sref.to_cookie(&site.session_key),
        (sref.expires_at - now).num_seconds(),
    );
    let gone = set_cookie(site, PRELOGIN_COOKIE, "", 0);
    Ok(redirect(
        &format!("{}/{}/{member_id}", site.base_path, programme.id),
        &[cookie, gone],
    ))
}

/// `GET /m/{programme}/sso?partner=&member=&expires=&sig=`: a partner's logged-in shop
/// customer opens the site. Signed with the partner's signing secret, valid for at most ten
/// minutes, used once, and only for a member the partner enrolled or knows by its own
/// customer id. Every refusal reads the same.
pub async fn member_token(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
) -> Result<Response, Error> {
    let programme = programme(ctx, programme_id).await?;
    let refused = || {
        Error::forbidden(
            "member_token_invalid",
            "this link from the shop is not valid (any more); log in here instead",
        )
    };
    let (Some(partner_id), Some(member_id), Some(expires), Some(sig)) = (
        query(req, "partner"),
        query(req, "member"),
        query(req, "expires").and_then(|e| e.parse::<i64>().ok()),
        query(req, "sig"),
    ) else {
        return Err(refused());
    };
    let token = MemberToken {
        partner_id: partner_id.clone(),
        member_id: member_id.clone(),
        expires,
    };
    if !bonus_domain::ids::valid_id(&partner_id) {
        return Err(refused());
    }
    let Some(cfg) = ctx.partner(&partner_id).await? else {
        return Err(refused());
    };
    if cfg.programme.id != programme_id {
        return Err(refused());
    }
    let Some(partner) = ctx.partner_with_secrets(&partner_id).await? else {
        return Err(refused());
    };
    let secrets: Vec<Vec<u8>> = partner
        .webhook_secrets
        .iter()
        .filter_map(|s| bonus_domain::webhook_sig::decode_secret(s).ok())
        .collect();
    let now = ctx.now();
    if token.verify(&secrets, &sig, now).is_err() {
        warn!(partner_id = %partner_id, "member token refused");
        return Err(refused());
    }
    let (account, profile) = tokio::try_join!(
        ctx.store.get_account(programme_id, &member_id),
        ctx.store.get_profile(programme_id, &member_id),
    )?;
    let (Some(account), Some(profile)) = (account, profile) else {
        return Err(refused());
    };
    let relation = access::relation(
        &partner_id,
        &cfg.programme.id,
        cfg.programme.kind,
        &account.programme_id,
        &account.enrolled_with,
    );
    let its_customer =
        relation == Relation::Enroller || profile.external_ids.contains_key(&partner_id);
    if !its_customer || profile.erased_at.is_some() {
        return Err(refused());
    }
    let expires_at = chrono::DateTime::from_timestamp(expires, 0).unwrap_or(now);
    if !ctx
        .store
        .use_once(&secret_hash("member-token", &sig), expires_at)
        .await?
    {
        return Err(refused());
    }
    start_session(
        ctx,
        site,
        &programme,
        &member_id,
        &format!("partner:{partner_id}"),
    )
    .await
}

/// `POST .../logout` and `.../logout-everywhere` `{csrf}`
pub async fn logout(
    ctx: &Ctx,
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
    member_id: &str,
    everywhere: bool,
) -> Result<Response, Error> {
    let fields = form(req)?;
    let me = match authed(
        ctx,
        site,
        req,
        programme_id,
        member_id,
        Action::ReadBalance,
        Some(&fields),
    )
    .await?
    {
        Ok(me) => me,
        Err(login) => return Ok(login),
    };
    if everywhere {
        let ended = ctx
            .store
            .delete_all_sessions(programme_id, member_id)
            .await?;
        info!(
            programme_id,
            sessions = ended,
            "member logged out everywhere"
        );
    } else {
        ctx.store.delete_session(&me.sref).await?;
        info!(programme_id, "member logged out");
    }
    let gone = set_cookie(site, web::session_cookie_name(site), "", 0);
    Ok(redirect(
        &format!("{}/{programme_id}/login?bye=1", site.base_path),
        &[gone],
    ))
}
