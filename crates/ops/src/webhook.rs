//! `bonus webhook send`: sign a payload as a webshop would and post it: Standard Webhooks
//! for the canonical API, or the way Shopify and WooCommerce sign their own webhooks.

use bonus_domain::platforms::{shopify, sign_base64_hmac, woocommerce};
use bonus_domain::webhook_sig;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::Value;

/// Who signs the delivery, and so which route and headers it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Our canonical webhooks, signed with Standard Webhooks.
    Standard,
    Shopify,
    Woocommerce,
}

impl Platform {
    /// The route under `/v1/partners/{partner}/`.
    pub fn default_path(self) -> &'static str {
        match self {
            Platform::Standard => "webhooks/orders",
            Platform::Shopify => "webhooks/shopify",
            Platform::Woocommerce => "webhooks/woocommerce",
        }
    }

    pub fn default_topic(self) -> &'static str {
        match self {
            Platform::Standard => "",
            Platform::Shopify => "orders/paid",
            Platform::Woocommerce => "order.updated",
        }
    }

    /// The key of the order id in this platform's payloads.
    pub fn order_id_field(self) -> &'static str {
        match self {
            Platform::Standard => "order_id",
            Platform::Shopify | Platform::Woocommerce => "id",
        }
    }
}

/// Headers for one signed delivery.
pub fn headers(
    platform: Platform,
    secret: &str,
    topic: &str,
    body: &[u8],
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let id = hex::encode(rand::random::<[u8; 12]>());
    Ok(match platform {
        Platform::Standard => {
            let id = format!("msg_{id}");
            let ts = Utc::now().timestamp();
            let sig =
                webhook_sig::sign(secret, &id, ts, body).map_err(|e| anyhow::anyhow!("{e}"))?;
            vec![
                (webhook_sig::HEADER_ID, id),
                (webhook_sig::HEADER_TIMESTAMP, ts.to_string()),
                (webhook_sig::HEADER_SIGNATURE, sig),
            ]
        }
        Platform::Shopify => vec![
            (shopify::HEADER_TOPIC, topic.to_string()),
            (shopify::HEADER_HMAC, sign_base64_hmac(secret, body)),
            (shopify::HEADER_WEBHOOK_ID, id),
        ],
        Platform::Woocommerce => vec![
            (woocommerce::HEADER_TOPIC, topic.to_string()),
            (
                woocommerce::HEADER_SIGNATURE,
                sign_base64_hmac(secret, body),
            ),
        ],
    })
}

pub struct Sent {
    pub status: u16,
    pub body: String,
}

pub async fn send(
    url: &str,
    platform: Platform,
    secret: &str,
    topic: &str,
    body: Vec<u8>,
) -> anyhow::Result<Sent> {
    let headers = headers(platform, secret, topic, &body)?;
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req.send().await?;
    Ok(Sent {
        status: resp.status().as_u16(),
        body: resp.text().await?,
    })
}

/// An example payload moved in time so that its newest time is at most `now`, keeping the
/// gaps between its times: the platform refuses old orders (`occurred_at_too_old`) and
/// ignores old shop bodies (replays), so the files in infra/examples are sent as if
/// they had just happened. Canonical payloads move by whole weeks (a weekday campaign still
/// sees its weekday); shop payloads by whole days (their bodies must be under 72 hours old).
/// Times are RFC 3339 strings, and WooCommerce's zone-less `date_*` fields.
pub fn redate(body: &[u8], platform: Platform, now: DateTime<Utc>) -> anyhow::Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body)?;
    let mut newest: Option<DateTime<Utc>> = None;
    visit(&mut v, &mut |key, text| {
        if let Some(t) = parse_time(key, text) {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
        None
    });
    let Some(newest) = newest else {
        return Ok(body.to_vec());
    };
    let step = match platform {
        Platform::Standard => Duration::weeks(1),
        Platform::Shopify | Platform::Woocommerce => Duration::days(1),
    };
    let steps = (now - newest).num_seconds().div_euclid(step.num_seconds());
    let shift = step * i32::try_from(steps).unwrap_or(0);
    if shift.is_zero() {
        return Ok(body.to_vec());
    }
    visit(&mut v, &mut |key, text| shifted(key, text, shift));
    Ok(serde_json::to_vec_pretty(&v)?)
}

/// Call `f` with every string value (and its key); a returned string replaces the value.
fn visit(v: &mut Value, f: &mut dyn FnMut(&str, &str) -> Option<String>) {
    fn go(key: &str, v: &mut Value, f: &mut dyn FnMut(&str, &str) -> Option<String>) {
        match v {
            Value::String(s) => {
                if let Some(new) = f(key, s) {
                    *s = new;
                }
            }
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    go(k, child, f);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|c| go(key, c, f)),
            _ => {}
        }
    }
    go("", v, f)
}

/// WooCommerce's zone-less times: `*_gmt` are UTC; the others are shop-local (moved by the
/// same amount, never used to judge age).
fn naive(key: &str, text: &str) -> Option<NaiveDateTime> {
    key.starts_with("date_")
        .then(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok())
        .flatten()
}

fn parse_time(key: &str, text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    naive(key, text)
        .filter(|_| key.ends_with("_gmt"))
        .map(|t| t.and_utc())
}

fn shifted(key: &str, text: &str, shift: Duration) -> Option<String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        let moved = t + shift;
        return Some(if text.ends_with('Z') {
            moved
                .with_timezone(&Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        } else {
            moved.to_rfc3339()
        });
    }
    naive(key, text).map(|t| (t + shift).format("%Y-%m-%dT%H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_move_by_whole_weeks_or_days_and_keep_their_gaps() {
        let body = br#"{"occurred_at": "2026-11-20T23:30:00Z", "x": {"created_at": "2026-11-13T10:00:00+01:00"}}"#;
        let now: DateTime<Utc> = "2026-12-05T09:00:00Z".parse().unwrap();
        let out: Value =
            serde_json::from_slice(&redate(body, Platform::Standard, now).unwrap()).unwrap();
        // 14 days 9.5 hours later: two weeks (still a Friday night).
        assert_eq!(out["occurred_at"], "2026-12-04T23:30:00Z");
        assert_eq!(out["x"]["created_at"], "2026-11-27T10:00:00+01:00");
        let woo = br#"{"date_modified_gmt": "2026-11-21T08:00:00", "date_modified": "2026-11-21T09:00:00", "number": "2026-11-21T08:00:00"}"#;
        let out: Value =
            serde_json::from_slice(&redate(woo, Platform::Woocommerce, now).unwrap()).unwrap();
        assert_eq!(out["date_modified_gmt"], "2026-12-05T08:00:00");
        assert_eq!(out["date_modified"], "2026-12-05T09:00:00");
        assert_eq!(
            out["number"], "2026-11-21T08:00:00",
            "only date_ fields are times"
        );
        // Already recent: sent as it is, byte for byte.
        let recent: DateTime<Utc> = "2026-11-21T00:00:00Z".parse().unwrap();
        assert_eq!(
            redate(body, Platform::Standard, recent).unwrap(),
            body.to_vec()
        );
    }
}
