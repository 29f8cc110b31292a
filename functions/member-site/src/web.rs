//! HTTP plumbing of the site: cookies, forms, redirects, the security headers, the static
//! stylesheet, the locale switch and error pages.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use bonus_domain::notify::template_locale;
use bonus_domain::site::{LOCAL_SESSION_COOKIE, SESSION_COOKIE, SITE_LOCALES};
use bonus_lambda::api::{html, status_of, Error, Response};

use crate::Site;

/// Where the site lives.
pub const SITE_PATH: &str = "/m";
/// The language chosen with the switch (not personal data; a year).
pub const LOCALE_COOKIE: &str = "bonus_locale";

/// Content-Security-Policy of every page: nothing but our own stylesheet; no scripts, no
/// frames, forms only to ourselves.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../static/site.css");

/// The stylesheet's name carries its hash, so it can be cached for a year.
pub fn stylesheet_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let h = hex::encode(Sha256::digest(STYLESHEET));
        format!("site-{}.css", &h[..12])
    })
}

pub fn static_file(file: &str) -> Result<Response, Error> {
    if file != stylesheet_name() {
        return Err(Error::not_found("not_found", "no such file"));
    }
    let mut resp = http::Response::new(STYLESHEET.to_string());
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(resp)
}

/// Security headers on every answer; pages are never cached (they hold personal data).
pub fn with_security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000"),
    );
    if !h.contains_key(http::header::CACHE_CONTROL) {
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    resp
}

/// The cookies of a request, by name.
pub fn cookies(req: &http::Request<Bytes>) -> HashMap<String, String> {
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn session_cookie_name(site: &Site) -> &'static str {
    if site.insecure_cookies {
        LOCAL_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure (but locally), path `/`.
pub fn set_cookie(site: &Site, name: &str, value: &str, max_age_seconds: i64) -> String {
    let secure = if site.insecure_cookies {
        ""
    } else {
        "; Secure"
    };
    format!("{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Lax{secure}")
}

/// The form fields of a POST body (`application/x-www-form-urlencoded`).
pub fn form(req: &http::Request<Bytes>) -> Result<HashMap<String, String>, Error> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(req.body())
        .map(|v| v.into_iter().collect())
        .map_err(|_| Error::malformed("invalid_form", "the form could not be read"))
}

/// A query parameter, decoded.
pub fn query(req: &http::Request<Bytes>, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// 303 See Other to `location` (after a form post, or to the login page).
pub fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut resp = http::Response::new(String::new());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    resp
}

pub fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    resp
}

/// The locale a page is shown in: the switch's cookie, else the member's own (if known),
/// else the browser's first site locale, else English.
pub fn page_locale(req: &http::Request<Bytes>, member_locale: Option<&str>) -> &'static str {
    if let Some(l) = cookies(req).get(LOCALE_COOKIE) {
        if SITE_LOCALES.contains(&l.as_str()) {
            return template_locale(l);
        }
    }
    if let Some(l) = member_locale {
        return template_locale(l);
    }
    let accepted = req
        .headers()
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for tag in accepted.split(',') {
        let lang = tag.split(';').next().unwrap_or("").trim();
        let lang = lang.split('-').next().unwrap_or("").to_ascii_lowercase();
        if SITE_LOCALES.contains(&lang.as_str()) {
            return template_locale(&lang);
        }
    }
    "en"
}

/// `GET /m/{programme}/lang/{locale}?back=/m/...`: remember the language, go back.
pub fn switch_locale(
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: &str,
    locale: &str,
) -> Result<Response, Error> {
    if !SITE_LOCALES.contains(&locale) {
        return Err(Error::not_found("not_found", "no such language"));
    }
    // Only back into the site: never an open redirect.
    let base = format!("{}/", site.base_path);
    let back = query(req, "back")
        .filter(|b| b.starts_with(&base) && !b.starts_with("//") && !b.contains(['\\', '\r', '\n']))
        .unwrap_or_else(|| format!("{}/{programme_id}", site.base_path));
    let cookie = format!(
        "{LOCALE_COOKIE}={locale}; Path=/; Max-Age=31536000; SameSite=Lax{}",
        if site.insecure_cookies {
            ""
        } else {
            "; Secure"
        }
    );
    Ok(redirect(&back, &[cookie]))
}

/// An error as a page: its status, a sentence in the page's language, a way back.
pub fn error_page(
    site: &Site,
    req: &http::Request<Bytes>,
    programme_id: Option<&str>,
    e: &Error,
) -> Response {
    let status = status_of(e.kind);
    if status.is_server_error() {
        tracing::error!(code = e.code, function = "member-site", "request failed");
    }
    bonus_metrics::count(
        if status.is_server_error() {
            bonus_metrics::name::SERVER_ERRORS
        } else {
            bonus_metrics::name::CLIENT_ERRORS
        },
        &[("Code", e.code), ("Status", status.as_str())],
        1,
    );
    let locale = page_locale(req, None);
    let programme_id = programme_id.filter(|p| bonus_domain::ids::valid_id(p));
    let body = crate::render::error(
        &site.base_path,
        locale,
        programme_id,
        status.as_u16(),
        e.code,
    );
    let mut resp = html(status, body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("3600"));
    }
    resp
}
