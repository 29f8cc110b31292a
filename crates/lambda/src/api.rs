//! HTTP plumbing shared by the functions: the domain's [`Error`] mapped to a status and the
//! JSON error body `{"error": {"code", "message"}}` in exactly one place ([`status_of`]).

use http::{HeaderMap, StatusCode};
use serde::Serialize;

pub use bonus_domain::error::{internal, parse_json, Error, ErrorKind};

pub type Response = http::Response<String>;

/// The HTTP status of each kind of error: the one place where errors become statuses.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Malformed => StatusCode::BAD_REQUEST,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error as the caller sees it: its status and `{"error": {"code", "message"}}`.
pub fn error_response(e: &Error) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        code: &'a str,
        message: &'a str,
    }
    let status = status_of(e.kind);
    let metric = if status.is_server_error() {
        bonus_metrics::name::SERVER_ERRORS
    } else {
        bonus_metrics::name::CLIENT_ERRORS
    };
    bonus_metrics::count(metric, &[("Code", e.code), ("Status", status.as_str())], 1);
    let mut resp = json(
        status,
        &Body {
            error: Inner {
                code: e.code,
                message: &e.message,
            },
        },
    );
    // Every 503 says when to come back; nothing was written (a booking is one transaction).
    if e.kind == ErrorKind::Unavailable {
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECONDS),
        );
    }
    resp
}

/// The `Retry-After` of a 503.
pub const RETRY_AFTER_UNAVAILABLE_SECONDS: u32 = 1;

/// A handler's result as a response; server-side failures are logged with the function's
/// name (the detail was logged where it happened).
pub fn respond(function: &'static str, result: Result<Response, Error>) -> Response {
    result.unwrap_or_else(|e| {
        if e.is_server_error() {
            tracing::error!(code = e.code, function, "request failed");
        }
        error_response(&e)
    })
}

/// A JSON response. Serialising our own types cannot fail; if it ever did, the caller gets a
/// plain 500 rather than a panic.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_string(),
        ),
    };
    let mut resp = http::Response::new(text);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response from a status and an already serialised JSON body (a stored idempotent answer).
pub fn raw_json(status: StatusCode, body: String) -> Response {
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response of another type (a report's CSV or SVG).
pub fn typed(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// A query-string parameter, as given (`?limit=50&cursor=...`).
pub fn query_param<'a>(req: &'a http::Request<bytes::Bytes>, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// An HTML page (the unsubscribe pages people open from an e-mail).
pub fn html(status: StatusCode, body: String) -> Response {
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// Text made safe to put into HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The non-empty segments of a path: "/v1/members/M1/balance" -> ["v1", "members", "M1", "balance"].
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// A 405 names the methods the route takes (RFC 9110 requires `Allow`), from the function's
/// route table of (method, template) pairs; `{name}` in a template matches any one segment.
pub fn with_allow(mut resp: Response, routes: &[(&str, &str)], path: &str) -> Response {
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let asked = segments(path);
    let methods: Vec<&str> = routes
        .iter()
        .filter(|(_, template)| {
            let parts = segments(template);
            parts.len() == asked.len()
                && parts
                    .iter()
                    .zip(&asked)
                    .all(|(t, a)| t.starts_with('{') || t == a)
        })
        .map(|(method, _)| *method)
        .collect();
    if let Ok(allow) = http::HeaderValue::from_str(&methods.join(", ")) {
        resp.headers_mut().insert(http::header::ALLOW, allow);
    }
    resp
}

/// The largest request body any function takes. API Gateway lets up to 10 MB through;
/// every real request (a webhook, an API call) is a few KB, so a larger body is refused
/// before anything parses it.
pub const MAX_BODY: usize = 1024 * 1024;

/// 413 `body_too_large` for a body over [`MAX_BODY`].
pub fn check_body_size(body: &[u8]) -> Result<(), Error> {
    if body.len() > MAX_BODY {
        return Err(Error::new(
            ErrorKind::TooLarge,
            "body_too_large",
            "body over 1 MiB",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_405_names_the_methods_its_route_takes_and_nothing_else_gets_allow() {
        let routes = [
            ("GET", "/v1/members/{member_id}"),
            ("PATCH", "/v1/members/{member_id}"),
            ("GET", "/v1/members/{member_id}/balance"),
        ];
        let refused = error_response(&Error::method_not_allowed());
        let refused = with_allow(refused, &routes, "/v1/members/M-1");
        assert_eq!(
            refused
                .headers()
                .get(http::header::ALLOW)
                .map(|v| v.as_bytes()),
            Some(&b"GET, PATCH"[..])
        );
        let missing = error_response(&Error::new(ErrorKind::NotFound, "not_found", "no"));
        let missing = with_allow(missing, &routes, "/v1/members/M-1");
        assert!(missing.headers().get(http::header::ALLOW).is_none());
    }

    #[test]
    fn a_503_says_when_to_come_back_and_nothing_else_does() {
        let busy = error_response(&Error::unavailable());
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            busy.headers()
                .get(http::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let missing = error_response(&Error::new(ErrorKind::NotFound, "not_found", "no"));
        assert!(missing.headers().get(http::header::RETRY_AFTER).is_none());
    }

    #[test]
    fn errors_have_the_documented_shape() {
        let r = error_response(&Error::invalid(
            "invalid_quantity",
            "lines[0].quantity must be positive",
        ));
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_quantity");
        assert_eq!(v["error"]["message"], "lines[0].quantity must be positive");
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
