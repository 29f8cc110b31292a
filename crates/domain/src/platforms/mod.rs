//! Shop platforms' own webhooks (Shopify, WooCommerce), mapped onto the canonical order and
//! refund forms, so that earning and reversing have one implementation.
//!
//! Pure: parsing, signature checks and mapping. The order webhook function routes, matches
//! the member and books.

pub mod shopify;
pub mod woocommerce;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::error::Error;
use crate::money::{Currency, Money};
use crate::order::OrderEventIn;
use crate::refund::RefundRequest;

/// Names of order attributes / metadata that carry our member id explicitly.
pub const MEMBER_ID_KEYS: [&str; 3] = ["bonus_member_id", "member_id", "loyalty_member_id"];

/// Names of order attributes / metadata that name the company an order is bought for.
pub const COMPANY_ID_KEYS: [&str; 2] = ["bonus_company_id", "company_id"];

/// What a shop order says about who the customer is, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberHints {
    /// Our member id, put on the order by the shop (note attribute, metadata).
    pub member_id: Option<String>,
    /// The shop's own customer id.
    pub customer_id: Option<String>,
    pub email: Option<String>,
    /// The company (our member id) the order is bought for, when the shop says so.
    pub company_id: Option<String>,
}

/// What one platform delivery asks for, in canonical form and in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Earn on a paid order.
    Earn(Box<OrderEventIn>),
    /// A refund or cancellation of `order_id`.
    Reverse {
        order_id: String,
        request: RefundRequest,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub hints: MemberHints,
    pub steps: Vec<Step>,
    /// Why nothing is booked (a test order, a status that neither earns nor reverses...).
    pub ignored: Option<String>,
}

/// A shop delivery whose signed body is older than this (by the newest time in it) is
/// acknowledged and ignored: the platforms retry for hours, not days, so an older body is a
/// replay. 200, not an error, so that WooCommerce does not disable the webhook.
pub const MAX_DELIVERY_AGE: chrono::Duration = chrono::Duration::hours(72);

/// Why a delivery is too old to book, if it is: judged by the newest parseable RFC 3339
/// time in its signed body (headers are not signed). A body with no time at all is judged
/// too old as well: it cannot show that it is fresh.
pub fn stale(stamps: &[Option<&str>], now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    let newest = stamps
        .iter()
        .flatten()
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .max();
    match newest {
        None => Some("the body carries no time".into()),
        Some(t) if now - t > MAX_DELIVERY_AGE => Some(format!(
            "the body is older than {} hours (a replay)",
            MAX_DELIVERY_AGE.num_hours()
        )),
        Some(_) => None,
    }
}

/// Verify a base64 HMAC-SHA256 of the raw body (Shopify `X-Shopify-Hmac-Sha256`,
/// WooCommerce `X-WC-Webhook-Signature`) against each secret, in constant time.
pub fn verify_base64_hmac(secrets: &[String], header: Option<&str>, body: &[u8]) -> bool {
    let Some(sig) = header.and_then(|h| {
        base64::engine::general_purpose::STANDARD
            .decode(h.trim())
            .ok()
    }) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

/// The signature header value for `body` (tests, the CLI and the README recipe).
pub fn sign_base64_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A JSON scalar kept as its exact text: `"19.99"`, `19.99` and `1234567890123` all arrive
/// as written, so money in number fields is never read through floating point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exact(pub Option<String>);

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Option<Box<RawValue>> = Option::deserialize(d)?;
        let Some(raw) = raw else {
            return Ok(Exact(None));
        };
        let text = raw.get().trim();
        if text == "null" {
            return Ok(Exact(None));
        }
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(serde::de::Error::custom)?;
            return Ok(Exact(Some(s)));
        }
        if text.starts_with(['{', '[']) || text == "true" || text == "false" {
            return Err(serde::de::Error::custom(format!(
                "expected a number or a string, got {text}"
            )));
        }
        Ok(Exact(Some(text.to_string())))
    }
}

impl Exact {
    pub fn text(&self) -> Option<&str> {
        self.0.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }

    /// Money in `currency`, exactly; absent is zero. `field` names it in the 422.
    pub fn money(&self, field: &str, currency: Currency) -> Result<Money, Error> {
        match self.text() {
            None => Ok(Money::zero(currency)),
            Some(t) => Money::parse(t, currency)
                .map_err(|e| Error::invalid("invalid_amount", format!("{field}: {e}"))),
        }
    }
}

/// A platform's id (Shopify ids are numbers, GIDs strings) as our keys accept it.
pub(crate) fn id(field: &str, value: &Exact) -> Result<String, Error> {
    match value.text() {
        Some(t) if crate::ids::valid_external_id(t) => Ok(t.to_string()),
        _ => Err(Error::invalid(
            "invalid_id",
            format!("{field}: missing or not a usable id"),
        )),
    }
}

/// Sum money values exactly.
pub fn sum(values: impl IntoIterator<Item = Money>, currency: Currency) -> Result<Money, Error> {
    values.into_iter().try_fold(Money::zero(currency), |a, b| {
        a.checked_add(b)
            .map_err(|e| Error::invalid("invalid_amount", e.to_string()))
    })
}

/// Parse a platform payload; a body that is not the expected JSON is a 400 naming the field.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    crate::error::parse_json(body)
}

/// The first explicit member id among key/value attributes.
pub fn explicit_member<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<String> {
    explicit(pairs, &MEMBER_ID_KEYS)
}

/// The company id an order carries in its attributes / metadata, if any.
pub fn explicit_company<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<String> {
    explicit(pairs, &COMPANY_ID_KEYS)
}

fn explicit<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    names: &[&str],
) -> Option<String> {
    pairs
        .into_iter()
        .filter(|(k, _)| names.contains(&k.trim().to_lowercase().as_str()))
        .find_map(|(_, v)| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_is_named_by_its_own_attribute_and_nothing_else() {
        let pairs = [
            ("gift_message", Some("ACME rocks")),
            ("Company_ID", Some(" ACME ")),
            ("bonus_member_id", Some("M-1")),
        ];
        assert_eq!(explicit_company(pairs), Some("ACME".to_string()));
        assert_eq!(explicit_member(pairs), Some("M-1".to_string()));
        assert_eq!(explicit_company([("company_id", Some("  "))]), None);
        assert_eq!(explicit_company([("company", Some("ACME"))]), None);
    }

    #[test]
    fn exact_keeps_numbers_and_strings_as_written() {
        #[derive(Deserialize)]
        struct T {
            a: Exact,
            b: Exact,
            c: Exact,
            #[serde(default)]
            d: Exact,
        }
        let t: T = serde_json::from_str(r#"{"a": 19.99, "b": "0.10", "c": null}"#).unwrap();
        assert_eq!(
            (t.a.text(), t.b.text(), t.c.text(), t.d.text()),
            (Some("19.99"), Some("0.10"), None, None)
        );
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(t.a.money("a", eur).unwrap().minor, 1999);
        // 0.1 + 0.2 style values stay exact: 0.30000000000000004 is refused, not rounded.
        let t: T = serde_json::from_str(r#"{"a": 0.30000000000000004, "b": 1e2, "c": 1}"#).unwrap();
        assert_eq!(t.a.money("a", eur).unwrap_err().code, "invalid_amount");
        assert_eq!(t.b.money("b", eur).unwrap_err().code, "invalid_amount");
        assert!(serde_json::from_str::<T>(r#"{"a": [1], "b": 1, "c": 1}"#).is_err());
    }

    #[test]
    fn hmac_signatures_verify_against_any_current_secret() {
        let body = br#"{"id":1}"#;
        let sig = sign_base64_hmac("new-secret-0123456789", body);
        let secrets = vec![
            "old-secret-0123456789".to_string(),
            "new-secret-0123456789".to_string(),
        ];
        assert!(verify_base64_hmac(&secrets, Some(&sig), body));
        assert!(!verify_base64_hmac(&secrets[..1], Some(&sig), body));
        assert!(!verify_base64_hmac(&secrets, Some(&sig), br#"{"id":2}"#));
        assert!(!verify_base64_hmac(&secrets, Some("not base64!"), body));
        assert!(!verify_base64_hmac(&secrets, None, body));
    }
}
