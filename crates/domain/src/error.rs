//! The one error type of every rule and handler: what went wrong ([`ErrorKind`]), a stable
//! machine-readable `code`, and a message for the caller. It carries no transport type: the
//! Lambda/HTTP glue maps each kind to a status in exactly one place
//! (`bonus_lambda::api::status_of`).

use std::fmt;

/// What kind of failure an error is. The HTTP status follows from it (and only from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is not readable at all (not JSON, a form we cannot parse).
    Malformed,
    /// Readable, but a rule refuses it: a field out of range, a refund larger than its order,
    /// too few points to spend.
    Invalid,
    /// The caller could not be identified (bad key, bad signature, unknown partner).
    Unauthorized,
    /// Identified, but the key may not do this.
    Forbidden,
    /// No such thing, or not one the caller may see (the two are never told apart).
    NotFound,
    /// The thing exists in a state that refuses this (the same id with another body, a hold
    /// already captured).
    Conflict,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The request is larger than we accept.
    TooLarge,
    /// Contended or throttled for longer than the caller's retry budget: try again.
    Unavailable,
    /// The caller asked too often (login requests per address): wait, then try again.
    TooManyRequests,
    /// A fault on our side; the detail is in the log, never in the answer.
    Internal,
}

impl ErrorKind {
    /// Our fault rather than the caller's.
    pub fn is_server_error(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Internal)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
        }
    }
    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, code, message)
    }
    /// A rule refuses the request (a validation, spending or refund rule).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }
    /// The one answer for every authentication failure: it says nothing about which check failed.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorKind::Unauthorized,
            "unauthorized",
            "missing or invalid credentials",
        )
    }
    pub fn route_not_found() -> Self {
        Self::not_found("route_not_found", "no such route")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            ErrorKind::MethodNotAllowed,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }
    /// Something on our side failed. The detail goes to the log, never to the caller.
    pub fn internal() -> Self {
        Self::new(
            ErrorKind::Internal,
            "internal",
            "internal error; it has been logged",
        )
    }
    pub fn unavailable() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            "unavailable",
            "temporarily unavailable, retry later",
        )
    }
    pub fn is_server_error(&self) -> bool {
        self.kind.is_server_error()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}: {}", self.kind, self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// A fault on our side (a store failure, a broken invariant, a serialisation that cannot
/// fail): logged here with its detail, answered as `internal`.
pub fn internal(e: impl fmt::Display) -> Error {
    tracing::error!(error = %e, "internal error");
    Error::internal()
}

/// Parse a JSON body: bad JSON is a 400 `malformed_json`; JSON of the wrong shape is a 422
/// `invalid_field` naming the field.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::malformed("malformed_json", format!("body is not valid JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid("invalid_field", format!("{path}: {}", e.into_inner()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_told_apart() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: i64,
        }
        assert_eq!(parse_json::<T>(b"{").unwrap_err().code, "malformed_json");
        let e = parse_json::<T>(br#"{"n": "x"}"#).unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::Invalid, "invalid_field"));
        assert!(e.message.starts_with("n:"), "{}", e.message);
    }
}
