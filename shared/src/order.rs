//! The canonical order webhook: its JSON schema and its validation into an [`Order`].
//!
//! ```json
//! {
//!   "type": "order.paid",
//!   "order_id": "A-1001",
//!   "member_id": "M-1001",
//!   "occurred_at": "2026-11-23T10:00:00Z",
//!   "currency": "EUR",
//!   "lines": [
//!     {"line_id": "1", "sku": "BIKE-HELMET", "quantity": 2, "unit_price": "49.95",
//!      "discount": "0.00", "tax": "0.00", "cost_price": "30.00", "product_group": "accessories"}
//!   ]
//! }
//! ```
//!
//! Amounts are decimal strings in the order currency. `unit_price` is per unit and excludes
//! tax unless `prices_include_tax` is true, in which case the line's `tax` is taken off.
//! A shop that only knows line totals sends `amount` (quantity x unit price) instead of
//! `unit_price`.
//! `discount` and `tax` are totals for the line. The net line amount
//! (`quantity x unit_price - discount [- tax]`) is what earns points.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::earning::EarnLine;
use crate::ids::{require_id, valid_id, ID_RULE};
use crate::money::{Currency, Money, MoneyError};
use crate::programme::Programme;
use crate::refund::{RefundItem, RefundRequest, CANCEL_ID, SHIPPING_LINE};

pub const MAX_LINES: usize = 500;
pub const MAX_QUANTITY: i64 = 1_000_000;
/// How far in the future `occurred_at` may be (clock skew between shop and us).
pub const FUTURE_SKEW: Duration = Duration::minutes(5);

#[derive(Debug, Clone, Deserialize)]
pub struct OrderEventIn {
    #[serde(rename = "type")]
    pub event_type: String,
    pub order_id: String,
    #[serde(default)]
    pub member_id: Option<String>,
    /// The shop's own customer id: counts non-member buyers in campaign reports (it is
    /// stored only as a hash).
    #[serde(default)]
    pub customer_id: Option<String>,
    pub occurred_at: String,
    pub currency: String,
    #[serde(default)]
    pub prices_include_tax: bool,
    /// Shipping charged for the order (excluding tax); earns only if the programme says so.
    #[serde(default)]
    pub shipping: Option<String>,
    /// What the customer paid in all (order-level refund amounts are shares of it). Default:
    /// the lines' net amounts and tax plus shipping.
    #[serde(default)]
    pub total: Option<String>,
    #[serde(default)]
    pub lines: Vec<LineIn>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineIn {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    #[serde(default)]
    pub unit_price: Option<String>,
    /// The line amount before discount (quantity x unit price), instead of `unit_price`.
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub discount: Option<String>,
    #[serde(default)]
    pub tax: Option<String>,
    #[serde(default)]
    pub cost_price: Option<String>,
    #[serde(default)]
    pub product_group: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEventType {
    #[serde(rename = "order.paid")]
    Paid,
}

impl OrderEventType {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderEventType::Paid => "order.paid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    /// quantity x unit price, before discount.
    pub gross: Money,
    pub discount: Money,
    pub tax: Money,
    pub net: Money,
    pub cost_price: Option<Money>,
    pub product_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub event: OrderEventType,
    pub order_id: String,
    pub member_id: Option<String>,
    /// The shop's customer id, if it sent one (campaign reports count buyers by it).
    pub customer_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub currency: Currency,
    pub shipping: Money,
    pub lines: Vec<OrderLine>,
    /// What the customer paid, when the shop says so (see [`Order::total_minor`]).
    pub total: Option<Money>,
}

/// SKU of the pseudo-line for shipping, in programmes where shipping earns.
pub const SHIPPING_SKU: &str = "SHIPPING";

impl Order {
    /// The lines that earn, as the programme counts them: tax added back if it counts, and
    /// shipping as one more line if it earns.
    pub fn earn_lines(&self, programme: &Programme) -> Vec<EarnLine> {
        let mut lines: Vec<EarnLine> = self
            .lines
            .iter()
            .map(|l| EarnLine {
                line_id: l.line_id.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
                net: if programme.include_tax {
                    Money::new(l.net.minor + l.tax.minor, l.net.currency)
                } else {
                    l.net
                },
                cost_price: l.cost_price,
                product_group: l.product_group.clone(),
            })
            .collect();
        if programme.include_shipping && self.shipping.minor > 0 {
            lines.push(EarnLine {
                line_id: "shipping".into(),
                sku: SHIPPING_SKU.into(),
                quantity: 1,
                net: self.shipping,
                cost_price: None,
                product_group: None,
            });
        }
        lines
    }

    /// What the customer paid, in minor units: the shop's `total` if it sent one, else every
    /// line's net amount and tax, plus shipping. Order-level refund amounts are shares of it.
    pub fn total_minor(&self) -> i64 {
        if let Some(t) = self.total {
            return t.minor;
        }
        self.lines
            .iter()
            .map(|l| l.net.minor.saturating_add(l.tax.minor))
            .fold(self.shipping.minor, i64::saturating_add)
    }

    /// Net purchase volume of the order (towards tiers): the sum of what its lines earn on.
    pub fn volume_minor(&self, programme: &Programme) -> i64 {
        self.earn_lines(programme).iter().map(|l| l.net.minor).sum()
    }
}

fn money(field: &str, text: &str, currency: Currency) -> Result<Money, ApiError> {
    Money::parse(text, currency).map_err(|e| match e {
        MoneyError::TooManyDecimals { .. }
        | MoneyError::NotADecimal(_)
        | MoneyError::OutOfRange(_) => {
            ApiError::unprocessable("invalid_amount", format!("{field}: {e}"))
        }
        other => ApiError::unprocessable("invalid_amount", format!("{field}: {other}")),
    })
}

fn non_negative(field: &str, text: Option<&str>, currency: Currency) -> Result<Money, ApiError> {
    let m = match text {
        Some(t) => money(field, t, currency)?,
        None => Money::zero(currency),
    };
    if m.minor < 0 {
        return Err(ApiError::unprocessable(
            "invalid_amount",
            format!("{field}: must not be negative"),
        ));
    }
    Ok(m)
}

fn valid_sku(sku: &str) -> bool {
    !sku.is_empty() && sku.len() <= 128 && !sku.chars().any(|c| c.is_control() || c == '#')
}

/// `occurred_at` of a webhook: RFC 3339, and not more than [`FUTURE_SKEW`] ahead of `now`.
pub fn parse_occurred_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| {
            ApiError::unprocessable(
                "invalid_occurred_at",
                "occurred_at: must be an RFC 3339 timestamp",
            )
        })?
        .with_timezone(&Utc);
    if at > now + FUTURE_SKEW {
        return Err(ApiError::unprocessable(
            "occurred_at_in_future",
            "occurred_at: lies in the future",
        ));
    }
    Ok(at)
}

/// Validate a parsed event. Every refusal is a 422 with a code and the field it is about.
pub fn validate(input: OrderEventIn, now: DateTime<Utc>) -> Result<Order, ApiError> {
    let event = match input.event_type.as_str() {
        "order.paid" => OrderEventType::Paid,
        other => {
            return Err(ApiError::unprocessable(
                "unsupported_event_type",
                format!("type: '{other}' is not supported; supported: order.paid, order.refunded, order.cancelled"),
            ))
        }
    };
    require_id(&input.order_id, "order_id", "invalid_order_id")?;
    let member_id = match input.member_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(m) if valid_id(m) => Some(m.to_string()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_member_id",
                format!("member_id: {ID_RULE}"),
            ))
        }
    };
    let occurred_at = parse_occurred_at(&input.occurred_at, now)?;
    let currency = Currency::parse(&input.currency)
        .map_err(|e| ApiError::unprocessable("invalid_currency", format!("currency: {e}")))?;
    if input.lines.is_empty() {
        return Err(ApiError::unprocessable(
            "no_lines",
            "lines: an order needs at least one line",
        ));
    }
    if input.lines.len() > MAX_LINES {
        return Err(ApiError::unprocessable(
            "too_many_lines",
            format!("lines: at most {MAX_LINES}"),
        ));
    }
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.into_iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        require_id(&l.line_id, &f("line_id"), "invalid_line_id")?;
        if lines.iter().any(|o: &OrderLine| o.line_id == l.line_id) {
            return Err(ApiError::unprocessable(
                "duplicate_line_id",
                format!("{}: '{}' appears twice", f("line_id"), l.line_id),
            ));
        }
        if !valid_sku(&l.sku) {
            return Err(ApiError::unprocessable(
                "invalid_sku",
                format!("{}: 1-128 characters, no '#'", f("sku")),
            ));
        }
        if l.quantity <= 0 || l.quantity > MAX_QUANTITY {
            return Err(ApiError::unprocessable(
                "invalid_quantity",
                format!(
                    "{}: must be a whole number from 1 to {MAX_QUANTITY}",
                    f("quantity")
                ),
            ));
        }
        let unit_price = match (l.unit_price.as_deref(), l.amount.as_deref()) {
            (Some(p), None) => Some(non_negative(&f("unit_price"), Some(p), currency)?),
            (None, Some(_)) => None,
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_amount",
                    format!("{}: give either unit_price or amount", f("unit_price")),
                ))
            }
        };
        let discount = non_negative(&f("discount"), l.discount.as_deref(), currency)?;
        let tax = non_negative(&f("tax"), l.tax.as_deref(), currency)?;
        let cost_price = match l.cost_price.as_deref() {
            Some(c) => Some(non_negative(&f("cost_price"), Some(c), currency)?),
            None => None,
        };
        let overflow = || {
            ApiError::unprocessable(
                "invalid_amount",
                format!("{}: amount out of range", f("unit_price")),
            )
        };
        let gross = match unit_price {
            Some(p) => p.checked_mul(l.quantity).map_err(|_| overflow())?,
            None => non_negative(&f("amount"), l.amount.as_deref(), currency)?,
        };
        let mut net = gross.checked_sub(discount).map_err(|_| overflow())?;
        if input.prices_include_tax {
            net = net.checked_sub(tax).map_err(|_| overflow())?;
        }
        if net.minor < 0 || net.minor > crate::money::MAX_MINOR {
            return Err(ApiError::unprocessable(
                "discount_exceeds_amount",
                format!(
                    "{}: discount and tax exceed the line amount, or the line is out of range",
                    f("discount")
                ),
            ));
        }
        let product_group = l.product_group.filter(|g| !g.is_empty());
        lines.push(OrderLine {
            line_id: l.line_id,
            sku: l.sku,
            quantity: l.quantity,
            gross,
            discount,
            tax,
            net,
            cost_price,
            product_group,
        });
    }
    let shipping = non_negative("shipping", input.shipping.as_deref(), currency)?;
    let total = match input.total.as_deref() {
        Some(t) => Some(non_negative("total", Some(t), currency)?),
        None => None,
    };
    Ok(Order {
        event,
        order_id: input.order_id,
        member_id,
        customer_id: input
            .customer_id
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty() && c.len() <= 256),
        occurred_at,
        currency,
        shipping,
        lines,
        total,
    })
}

/// Just the `type` of a canonical webhook, to pick the schema of the rest.
#[derive(Debug, Clone, Deserialize)]
pub struct EventType {
    #[serde(rename = "type")]
    pub event_type: String,
}

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
) -> Result<(String, RefundRequest), ApiError> {
    require_id(&input.order_id, "order_id", "invalid_order_id")?;
    let occurred_at = parse_occurred_at(&input.occurred_at, now)?;
    let full = match input.event_type.as_str() {
        "order.cancelled" => true,
        "order.refunded" => false,
        other => {
            return Err(ApiError::unprocessable(
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
            return Err(ApiError::unprocessable(
                "invalid_refund_id",
                format!("refund_id: '{CANCEL_ID}' is reserved for cancellations"),
            ));
        }
        id
    };
    let currency = match input.currency.as_deref() {
        None => programme_currency,
        Some(c) => Currency::parse(c)
            .map_err(|e| ApiError::unprocessable("invalid_currency", format!("currency: {e}")))?,
    };
    if currency != programme_currency {
        return Err(ApiError::unprocessable(
            "currency_mismatch",
            format!(
                "currency: {} is not the programme currency {}",
                currency, programme_currency
            ),
        ));
    }
    let positive = |field: &str, text: &str| -> Result<i64, ApiError> {
        let m = non_negative(field, Some(text), currency)?;
        if m.minor == 0 {
            return Err(ApiError::unprocessable(
                "invalid_amount",
                format!("{field}: must be more than zero"),
            ));
        }
        Ok(m.minor)
    };
    let mut lines: Vec<RefundItem> = Vec::new();
    if input.lines.len() > MAX_LINES {
        return Err(ApiError::unprocessable(
            "too_many_lines",
            format!("lines: at most {MAX_LINES}"),
        ));
    }
    for (i, l) in input.lines.into_iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        require_id(&l.line_id, &f("line_id"), "invalid_line_id")?;
        if lines.iter().any(|o| o.line_id == l.line_id) {
            return Err(ApiError::unprocessable(
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
                return Err(ApiError::unprocessable(
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
                return Err(ApiError::unprocessable(
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
        return Err(ApiError::unprocessable(
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
    use crate::api::parse_json;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn body(line: &str) -> String {
        format!(
            r#"{{"type":"order.paid","order_id":"A-1","member_id":"M-1","occurred_at":"2026-11-23T10:00:00+01:00",
                "currency":"EUR","lines":[{line}]}}"#
        )
    }

    fn check(json: &str) -> Result<Order, ApiError> {
        validate(parse_json(json.as_bytes())?, now())
    }

    #[test]
    fn a_good_order_validates() {
        let o = check(&body(
            r#"{"line_id":"1","sku":"S","quantity":2,"unit_price":"49.95","discount":"5.00"}"#,
        ))
        .unwrap();
        assert_eq!(o.lines[0].net.minor, 9490);
        assert_eq!(
            o.occurred_at,
            "2026-11-23T09:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(o.member_id.as_deref(), Some("M-1"));
    }

    #[test]
    fn tax_inclusive_prices_take_the_tax_off() {
        let json =
            body(r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"121.00","tax":"21.00"}"#)
                .replace(r#""currency""#, r#""prices_include_tax":true,"currency""#);
        assert_eq!(check(&json).unwrap().lines[0].net.minor, 10000);
    }

    fn refund(json: &str) -> Result<(String, RefundRequest), ApiError> {
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

    #[test]
    fn refusals_have_codes() {
        let cases = [
            (
                r#"{"line_id":"1","sku":"S","quantity":-1,"unit_price":"1"}"#,
                "invalid_quantity",
            ),
            (
                r#"{"line_id":"1","sku":"S","quantity":0,"unit_price":"1"}"#,
                "invalid_quantity",
            ),
            (
                r#"{"line_id":"1","sku":"S","quantity":1.5,"unit_price":"1"}"#,
                "invalid_field",
            ),
            (
                r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1.234"}"#,
                "invalid_amount",
            ),
            (
                r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"-1"}"#,
                "invalid_amount",
            ),
            (
                r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1","discount":"2"}"#,
                "discount_exceeds_amount",
            ),
            (
                r#"{"line_id":"a#b","sku":"S","quantity":1,"unit_price":"1"}"#,
                "invalid_line_id",
            ),
            (
                r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"},{"line_id":"1","sku":"T","quantity":1,"unit_price":"1"}"#,
                "duplicate_line_id",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(check(&body(line)).unwrap_err().code, want, "{line}");
        }
        assert_eq!(check(&body("")).unwrap_err().code, "no_lines");
        assert_eq!(check(&body(r#"{}"#)).unwrap_err().code, "invalid_field");
        let future = body(r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"}"#)
            .replace("2026-11-23T10:00", "2026-11-24T10:00");
        assert_eq!(check(&future).unwrap_err().code, "occurred_at_in_future");
        let refund = body(r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"}"#)
            .replace("order.paid", "order.shipped");
        assert_eq!(check(&refund).unwrap_err().code, "unsupported_event_type");
        let sek = body(r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"}"#)
            .replace("EUR", "EURO");
        assert_eq!(check(&sek).unwrap_err().code, "invalid_currency");
    }
}
