//! The member site: members log in without a password and see and use their own points.
//! Server-rendered HTML (minijinja, en/de/nl/sv/fi), no JavaScript, under `/m/...`.
//!
//! - Logged out: `/m/{programme}/login` (a one-time link by e-mail or a six-digit code by
//!   SMS), `/m/{programme}/login/link`, `/m/{programme}/login/code`, and
//!   `/m/{programme}/sso` (a partner's signed member token, like Shopify Multipass).
//! - Logged in, under `/m/{programme}/{member_id}/`: account, statement, shop, profile,
//!   send points (with a confirmation step), data (download, erase), log out (here or
//!   everywhere).
//!
//! Every member page asks the one access policy (`bonus_domain::access::decide_session`):
//! a session reaches only its own member; anything else is the same 404 as a member that
//! does not exist. Every form carries a CSRF token; every response a strict CSP.

/// The logged-in member, or the answer to give instead (the login page). Defined before
/// the page modules so that all of them use it.
macro_rules! member {
    ($ctx:expr, $site:expr, $req:expr, $p:expr, $m:expr, $action:expr, $posted:expr) => {
        match crate::auth::authed($ctx, $site, $req, $p, $m, $action, $posted).await? {
            Ok(me) => me,
            Err(login) => return Ok(login),
        }
    };
}

mod auth;
mod pages;
mod render;
mod transfers;
mod web;

use bytes::Bytes;
use http::Method;

use bonus_lambda::api::{segments, Error, Response};
use bonus_lambda::app::Ctx;
use bonus_lambda::run::{required_env, MissingEnv};
use bonus_messages::send::Senders;

pub use web::{LOCALE_COOKIE, SITE_PATH};

/// What the site needs besides the store: its signing key, its public address and the
/// senders of login messages.
pub struct Site {
    /// Signs session cookies and derives CSRF tokens (`SITE_SESSION_KEY`: Secrets Manager on
    /// AWS; at least 32 bytes).
    pub session_key: Vec<u8>,
    /// The site's public root, ending in `/m` (the links in login e-mails). None: from the
    /// request's `Host` (on API Gateway, the address that reached it) and the base path.
    pub url: Option<String>,
    /// Cookies without `Secure` and the `__Host-` prefix: only the local server (plain HTTP).
    pub insecure_cookies: bool,
    /// The path under which browsers reach the site (`/m`; `/{stage}/m` on API Gateway's
    /// own address): what links and redirects start with. Routes always match `/m/...`.
    pub base_path: String,
    pub senders: Senders,
}

/// The shortest session key accepted.
pub const MIN_SESSION_KEY_BYTES: usize = 32;

impl Site {
    /// From the Lambda environment: `SITE_SESSION_KEY`, `SENDER_EMAIL`, and optionally
    /// `SITE_URL` and `SITE_BASE_PATH`.
    pub async fn from_env() -> Result<Site, MissingEnv> {
        let key = required_env("SITE_SESSION_KEY")?;
        if key.len() < MIN_SESSION_KEY_BYTES {
            return Err(MissingEnv("SITE_SESSION_KEY (at least 32 bytes)".into()));
        }
        let url = std::env::var("SITE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .map(|u| u.trim_end_matches('/').to_string());
        let from = required_env("SENDER_EMAIL")?;
        let base_path = std::env::var("SITE_BASE_PATH").unwrap_or_else(|_| SITE_PATH.into());
        let config = bonus_lambda::aws::sdk_config().await;
        Ok(Site {
            session_key: key.into_bytes(),
            url,
            insecure_cookies: false,
            base_path: base_path.trim_end_matches('/').to_string(),
            senders: Senders::from_env(&config, from),
        })
    }
}

impl Site {
    /// The public root of the site as the member's browser reaches it.
    pub fn url_for(&self, req: &http::Request<Bytes>) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        let scheme = if self.insecure_cookies {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}{}", self.base_path)
    }
}

/// Every route: (method, path template).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/m/static/{file}"),
    ("GET", "/m/{programme_id}"),
    ("GET", "/m/{programme_id}/login"),
    ("POST", "/m/{programme_id}/login"),
    ("GET", "/m/{programme_id}/login/link"),
    ("POST", "/m/{programme_id}/login/link"),
    ("POST", "/m/{programme_id}/login/code"),
    ("GET", "/m/{programme_id}/sso"),
    ("GET", "/m/{programme_id}/lang/{locale}"),
    ("GET", "/m/{programme_id}/{member_id}"),
    ("GET", "/m/{programme_id}/{member_id}/statement"),
    ("GET", "/m/{programme_id}/{member_id}/shop"),
    ("POST", "/m/{programme_id}/{member_id}/shop/{reward_id}"),
    ("GET", "/m/{programme_id}/{member_id}/transfer"),
    ("POST", "/m/{programme_id}/{member_id}/transfer"),
    ("POST", "/m/{programme_id}/{member_id}/transfer/confirm"),
    ("GET", "/m/{programme_id}/{member_id}/profile"),
    ("POST", "/m/{programme_id}/{member_id}/profile"),
    ("POST", "/m/{programme_id}/{member_id}/profile/contact"),
    (
        "POST",
        "/m/{programme_id}/{member_id}/profile/contact/confirm",
    ),
    ("GET", "/m/{programme_id}/{member_id}/data"),
    ("GET", "/m/{programme_id}/{member_id}/data.json"),
    ("POST", "/m/{programme_id}/{member_id}/erase"),
    ("POST", "/m/{programme_id}/{member_id}/logout"),
    ("POST", "/m/{programme_id}/{member_id}/logout-everywhere"),
];

/// Entry point for every route of the site.
pub async fn handle(ctx: &Ctx, site: &Site, req: http::Request<Bytes>) -> Response {
    let path = segments(req.uri().path());
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let post = req.method() == Method::POST;
    let result = match path.as_slice() {
        ["m", "static", file] if get => web::static_file(file),
        ["m", programme] if get => auth::home(ctx, site, &req, programme).await,
        ["m", p, "login"] if get => auth::login_page(ctx, site, &req, p).await,
        ["m", p, "login"] if post => auth::request_login(ctx, site, &req, p).await,
        ["m", p, "login", "link"] if get => auth::link_page(ctx, site, &req, p).await,
        ["m", p, "login", "link"] if post => auth::use_link(ctx, site, &req, p).await,
        ["m", p, "login", "code"] if post => auth::use_code(ctx, site, &req, p).await,
        ["m", p, "sso"] if get => auth::member_token(ctx, site, &req, p).await,
        ["m", p, "lang", locale] if get => web::switch_locale(site, &req, p, locale),
        ["m", p, m] if get => pages::account(ctx, site, &req, p, m).await,
        ["m", p, m, "statement"] if get => pages::statement(ctx, site, &req, p, m).await,
        ["m", p, m, "shop"] if get => pages::shop(ctx, site, &req, p, m, None).await,
        ["m", p, m, "shop", reward] if post => pages::claim(ctx, site, &req, p, m, reward).await,
        ["m", p, m, "transfer"] if get => transfers::form_page(ctx, site, &req, p, m).await,
        ["m", p, m, "transfer"] if post => transfers::review(ctx, site, &req, p, m).await,
        ["m", p, m, "transfer", "confirm"] if post => {
            transfers::confirm(ctx, site, &req, p, m).await
        }
        ["m", p, m, "profile"] if get => pages::profile(ctx, site, &req, p, m, None).await,
        ["m", p, m, "profile"] if post => pages::save_settings(ctx, site, &req, p, m).await,
        ["m", p, m, "profile", "contact"] if post => {
            pages::change_contact(ctx, site, &req, p, m).await
        }
        ["m", p, m, "profile", "contact", "confirm"] if post => {
            pages::confirm_contact(ctx, site, &req, p, m).await
        }
        ["m", p, m, "data"] if get => pages::my_data(ctx, site, &req, p, m).await,
        ["m", p, m, "data.json"] if get => pages::download(ctx, site, &req, p, m).await,
        ["m", p, m, "erase"] if post => pages::erase(ctx, site, &req, p, m).await,
        ["m", p, m, "logout"] if post => auth::logout(ctx, site, &req, p, m, false).await,
        ["m", p, m, "logout-everywhere"] if post => auth::logout(ctx, site, &req, p, m, true).await,
        _ if known_path(&path) => Err(Error::method_not_allowed()),
        _ => Err(Error::route_not_found()),
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => web::error_page(site, &req, path.get(1).copied(), &e),
    };
    web::with_security_headers(bonus_lambda::api::with_allow(
        resp,
        ROUTES,
        req.uri().path(),
    ))
}

fn known_path(path: &[&str]) -> bool {
    ROUTES.iter().any(|(_, template)| {
        let parts = segments(template);
        parts.len() == path.len()
            && parts
                .iter()
                .zip(path)
                .all(|(t, a)| t.starts_with('{') || t == a)
    })
}
