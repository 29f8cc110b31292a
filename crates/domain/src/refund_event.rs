//! The refund and cancellation webhook (`order.refunded`, `order.cancelled`): its schema and
//! its validation into the [`RefundRequest`] every dialect (canonical, Shopify, WooCommerce)
//! is mapped to. What a request takes back is `crate::refund`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::Error;
use crate::ids::require_id;
use crate::money::Currency;
use crate::order::{non_negative, parse_occurred_at, MAX_LINES, MAX_QUANTITY};
use crate::refund::{RefundItem, RefundRequest, CANCEL_ID, SHIPPING_LINE};

/// `order.refunded` and `order.cancelled`:
///
/// ```json
/// {"type": "order.refunded", "order_id": "A-1001", "refund_id": "R-1",
///  "occurred_at": "2026-11-24T10:00:00Z", "currency": "EUR",
///  "lines": [{"line_id": "1", "quantity": 1}, {"line_id": "2", "amount": "5.00"}],
///  "shipping": "4.95", "amount": "10.00"}
/// {"type": "order.cancelled", "order_id": "A-1001", "occurred_at": "2026-11-24T10:00:00Z"}
/// ```
///
/// A line names units returned (`quantity`) or a net amount refunded on it (`amount`);
/// `shipping` refunds shipping; `amount` is an order-level amount, a share of the order total.
#[derive(Debug, Clone, Deserialize)]
pub struct RefundEventIn {
    #[serde(rename = "type")]
    pub event_type: String,
    pub order_id: String,
    #[serde(default)]
    pub refund_id: Option<String>,
    pub occurred_at: String,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Vec<RefundLineIn>,
    #[serde(default)]
    pub shipping: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundLineIn {
    pub line_id: String,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub amount: Option<String>,
}

/// Validate a refund or cancellation against the programme currency. Returns the order id
/// and the request in the form every dialect is mapped to.
pub fn validate_refund(
    input: RefundEventIn,
    programme_currency: Currency,
    now: DateTime<Utc>,
    body_sha256: &str,
) -> Result<(String, RefundRequest), Error> {
    require_id(&input.order_id, "order_id", "invalid_order_id")?;
    let occurred_at = parse_occurred_at(&input.occurred_at, now)?;
    let full = match input.event_type.as_str() {
        "order.cancelled" => true,
        "order.refunded" => false,
        other => {
            return Err(Error::invalid(
                "unsupported_event_type",
                format!("type: '{other}' is not a refund"),
            ))
        }
    };
    let refund_id = if full {
        CANCEL_ID.to_string()
    } else {
        let id = input.refund_id.unwrap_or_default();
        require_id(&id, "refund_id", "invalid_refund_id")?;
        if id == CANCEL_ID {
            return Err(Error::invalid(
                "invalid_refund_id",
                format!("refund_id: '{CANCEL_ID}' is reserved for cancellations"),
            ));
        }
        id
    };
    let currency = match input.currency.as_deref() {
        None => programme_currency,
        Some(c) => Currency::parse(c)
            .map_err(|e| Error::invalid("invalid_currency", format!("currency: {e}")))?,
    };
    if currency != programme_currency {
        return Err(Error::invalid(
            "currency_mismatch",
            format!(
                "currency: {} is not the programme currency {}",
                currency, programme_currency
            ),
        ));
    }
    let positive = |field: &str, text: &str| -> Result<i64, Error> {
        let m = non_negative(field, Some(text), currency)?;
        if m.minor == 0 {
            return Err(Error::invalid(
                "invalid_amount",
                format!("{field}: must be more than zero"),
            ));
        }
        Ok(m.minor)
    };
    let mut lines: Vec<RefundItem> = Vec::new();
    if input.lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "too_many_lines",
            format!("lines: at most {MAX_LINES}"),
        ));
    }
    for (i, l) in input.lines.into_iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        require_id(&l.line_id, &f("line_id"), "invalid_line_id")?;
        if lines.iter().any(|o| o.line_id == l.line_id) {
            return Err(Error::invalid(
                "duplicate_line_id",
                format!("{}: '{}' appears twice", f("line_id"), l.line_id),
            ));
        }
        let item = match (l.quantity, l.amount.as_deref()) {
            (Some(q), None) if (1..=MAX_QUANTITY).contains(&q) => RefundItem {
                line_id: l.line_id,
                quantity: Some(q),
                amount_minor: None,
            },
            (Some(_), None) => {
                return Err(Error::invalid(
                    "invalid_quantity",
                    format!(
                        "{}: must be a whole number from 1 to {MAX_QUANTITY}",
                        f("quantity")
                    ),
                ))
            }
            (None, Some(a)) => RefundItem {
                line_id: l.line_id,
                quantity: None,
                amount_minor: Some(positive(&f("amount"), a)?),
            },
            _ => {
                return Err(Error::invalid(
                    "invalid_refund_line",
                    format!("{}: give either quantity or amount", f("line_id")),
                ))
            }
        };
        lines.push(item);
    }
    if let Some(s) = input.shipping.as_deref() {
        let minor = non_negative("shipping", Some(s), currency)?.minor;
        if minor > 0 {
            lines.push(RefundItem {
                line_id: SHIPPING_LINE.to_string(),
                quantity: None,
                amount_minor: Some(minor),
            });
        }
    }
    let amount_minor = match input.amount.as_deref() {
        Some(a) => positive("amount", a)?,
        None => 0,
    };
    if !full && lines.is_empty() && amount_minor == 0 {
        return Err(Error::invalid(
            "empty_refund",
            "a refund needs lines, shipping or an amount",
        ));
    }
    Ok((
        input.order_id,
        RefundRequest {
            refund_id,
            full,
            lines,
            amount_minor,
            occurred_at,
            body_sha256: body_sha256.to_string(),
            only_if_booked: false,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::parse_json;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn refund(json: &str) -> Result<(String, RefundRequest), Error> {
        validate_refund(
            parse_json(json.as_bytes())?,
            Currency::parse("EUR").unwrap(),
            now(),
            "sha",
        )
    }

    #[test]
    fn refunds_validate_into_requests() {
        let (order, r) = refund(
            r#"{"type":"order.refunded","order_id":"A-1","refund_id":"R-1","occurred_at":"2026-11-23T11:00:00Z",
                "lines":[{"line_id":"1","quantity":1},{"line_id":"2","amount":"5.05"}],"shipping":"4.95"}"#,
        )
        .unwrap();
        assert_eq!(order, "A-1");
        let lines: Vec<(&str, Option<i64>, Option<i64>)> = r
            .lines
            .iter()
            .map(|l| (l.line_id.as_str(), l.quantity, l.amount_minor))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("1", Some(1), None),
                ("2", None, Some(505)),
                ("shipping", None, Some(495))
            ]
        );
        assert_eq!(
            (r.refund_id.as_str(), r.full, r.record_event().as_str()),
            ("R-1", false, "order.refunded#R-1")
        );
        let (_, c) = refund(
            r#"{"type":"order.cancelled","order_id":"A-1","occurred_at":"2026-11-23T11:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.refund_id.as_str(), c.full, c.record_event().as_str()),
            ("cancel", true, "order.cancelled")
        );
    }

    #[test]
    fn refund_refusals_have_codes() {
        let base = r#"{"type":"order.refunded","order_id":"A-1","refund_id":"R-1","occurred_at":"2026-11-23T11:00:00Z","#;
        let cases = [
            (r#""lines":[]}"#, "empty_refund"),
            (r#""lines":[{"line_id":"1"}]}"#, "invalid_refund_line"),
            (
                r#""lines":[{"line_id":"1","quantity":1,"amount":"1"}]}"#,
                "invalid_refund_line",
            ),
            (
                r#""lines":[{"line_id":"1","quantity":0}]}"#,
                "invalid_quantity",
            ),
            (
                r#""lines":[{"line_id":"1","amount":"0.00"}]}"#,
                "invalid_amount",
            ),
            (
                r#""lines":[{"line_id":"1","amount":"1.001"}]}"#,
                "invalid_amount",
            ),
            (
                r#""lines":[{"line_id":"1","quantity":1},{"line_id":"1","quantity":1}]}"#,
                "duplicate_line_id",
            ),
            (r#""currency":"SEK","amount":"1"}"#, "currency_mismatch"),
            (r#""amount":"-1"}"#, "invalid_amount"),
        ];
        for (tail, code) in cases {
            assert_eq!(
                refund(&format!("{base}{tail}")).unwrap_err().code,
                code,
                "{tail}"
            );
        }
        let no_id = r#"{"type":"order.refunded","order_id":"A-1","occurred_at":"2026-11-23T11:00:00Z","amount":"1"}"#;
        assert_eq!(refund(no_id).unwrap_err().code, "invalid_refund_id");
    }
}
