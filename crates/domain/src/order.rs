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

use crate::earning::EarnLine;
use crate::error::Error;
use crate::ids::{require_id, valid_id, ID_RULE};
use crate::money::{Currency, Money, MoneyError};
use crate::programme::Programme;

pub const MAX_LINES: usize = 500;
pub const MAX_QUANTITY: i64 = 1_000_000;
/// The longest product group name (it is stored with every order line).
pub const MAX_PRODUCT_GROUP: usize = 64;
/// How far in the future `occurred_at` may be (clock skew between shop and us).
pub const FUTURE_SKEW: Duration = Duration::minutes(5);
/// How long before it reaches us an order may have been paid. The return window counts from
/// `occurred_at`, so a backdated order would otherwise skip it; a week covers a shop's
/// outage and retries.
pub const MAX_ORDER_DELAY: Duration = Duration::days(7);
/// How old an order a bulk import of missed deliveries may book (an import is the partner's
/// or ops' own act, not a live delivery; older points would mostly be expiring).
pub const MAX_IMPORT_DELAY: Duration = Duration::days(90);

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
    /// The company the buyer buys for (a member of kind company); default: the buyer's own
    /// default company, if they have one.
    #[serde(default)]
    pub company_id: Option<String>,
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
    /// The company the order names (validated as an id).
    pub company_id: Option<String>,
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

fn money(field: &str, text: &str, currency: Currency) -> Result<Money, Error> {
    Money::parse(text, currency).map_err(|e| match e {
        MoneyError::TooManyDecimals { .. }
        | MoneyError::NotADecimal(_)
        | MoneyError::OutOfRange(_) => Error::invalid("invalid_amount", format!("{field}: {e}")),
        other => Error::invalid("invalid_amount", format!("{field}: {other}")),
    })
}

pub(crate) fn non_negative(
    field: &str,
    text: Option<&str>,
    currency: Currency,
) -> Result<Money, Error> {
    let m = match text {
        Some(t) => money(field, t, currency)?,
        None => Money::zero(currency),
    };
    if m.minor < 0 {
        return Err(Error::invalid(
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
pub fn parse_occurred_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| {
            Error::invalid(
                "invalid_occurred_at",
                "occurred_at: must be an RFC 3339 timestamp",
            )
        })?
        .with_timezone(&Utc);
    if at > now + FUTURE_SKEW {
        return Err(Error::invalid(
            "occurred_at_in_future",
            "occurred_at: lies in the future",
        ));
    }
    Ok(at)
}

/// Validate a parsed event. Every refusal is a 422 with a code and the field it is about.
pub fn validate(input: OrderEventIn, now: DateTime<Utc>) -> Result<Order, Error> {
    validate_within(input, now, MAX_ORDER_DELAY)
}

/// [`validate`], for an order paid up to `max_delay` before `now` (imports).
pub fn validate_within(
    input: OrderEventIn,
    now: DateTime<Utc>,
    max_delay: Duration,
) -> Result<Order, Error> {
    let event = match input.event_type.as_str() {
        "order.paid" => OrderEventType::Paid,
        other => {
            return Err(Error::invalid(
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
            return Err(Error::invalid(
                "invalid_member_id",
                format!("member_id: {ID_RULE}"),
            ))
        }
    };
    let company_id = match input.company_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) if valid_id(c) => Some(c.to_string()),
        Some(_) => {
            return Err(Error::invalid(
                "invalid_company_id",
                format!("company_id: {ID_RULE}"),
            ))
        }
    };
    let occurred_at = parse_occurred_at(&input.occurred_at, now)?;
    if occurred_at < now - max_delay {
        return Err(Error::invalid(
            "occurred_at_too_old",
            format!(
                "occurred_at: more than {} days ago; an order is booked within {} days of being paid (the return window counts from it)",
                max_delay.num_days(),
                max_delay.num_days()
            ),
        ));
    }
    let currency = Currency::parse(&input.currency)
        .map_err(|e| Error::invalid("invalid_currency", format!("currency: {e}")))?;
    if input.lines.is_empty() {
        return Err(Error::invalid(
            "no_lines",
            "lines: an order needs at least one line",
        ));
    }
    if input.lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "too_many_lines",
            format!("lines: at most {MAX_LINES}"),
        ));
    }
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, l) in input.lines.into_iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        require_id(&l.line_id, &f("line_id"), "invalid_line_id")?;
        if lines.iter().any(|o: &OrderLine| o.line_id == l.line_id) {
            return Err(Error::invalid(
                "duplicate_line_id",
                format!("{}: '{}' appears twice", f("line_id"), l.line_id),
            ));
        }
        if !valid_sku(&l.sku) {
            return Err(Error::invalid(
                "invalid_sku",
                format!("{}: 1-128 characters, no '#'", f("sku")),
            ));
        }
        if l.quantity <= 0 || l.quantity > MAX_QUANTITY {
            return Err(Error::invalid(
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
                return Err(Error::invalid(
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
            Error::invalid(
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
            return Err(Error::invalid(
                "discount_exceeds_amount",
                format!(
                    "{}: discount and tax exceed the line amount, or the line is out of range",
                    f("discount")
                ),
            ));
        }
        let product_group = l.product_group.filter(|g| !g.is_empty());
        if product_group.as_deref().is_some_and(|g| {
            g.chars().count() > MAX_PRODUCT_GROUP || g.chars().any(char::is_control)
        }) {
            return Err(Error::invalid(
                "invalid_product_group",
                format!(
                    "{}: at most {MAX_PRODUCT_GROUP} characters, no control characters",
                    f("product_group")
                ),
            ));
        }
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
        company_id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::parse_json;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn body(line: &str) -> String {
        format!(
            r#"{{"type":"order.paid","order_id":"A-1","member_id":"M-1","occurred_at":"2026-11-23T10:00:00+01:00",
                "currency":"EUR","lines":[{line}]}}"#
        )
    }

    fn check(json: &str) -> Result<Order, Error> {
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

    #[test]
    fn refusals_have_codes() {
        let long_group = format!(
            r#"{{"line_id":"1","sku":"S","quantity":1,"unit_price":"1","product_group":"{}"}}"#,
            "g".repeat(MAX_PRODUCT_GROUP + 1)
        );
        assert_eq!(
            check(&body(&long_group)).unwrap_err().code,
            "invalid_product_group"
        );
        let ok_group = long_group.replace(
            &"g".repeat(MAX_PRODUCT_GROUP + 1),
            &"g".repeat(MAX_PRODUCT_GROUP),
        );
        assert!(check(&body(&ok_group)).is_ok());
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
        // Backdated past the allowed delay (it would skip the return window): refused; a
        // week late is still booked.
        let line = r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"}"#;
        let late = body(line).replace("2026-11-23T10:00", "2026-11-16T13:00");
        assert!(check(&late).is_ok(), "{late}");
        let backdated = body(line).replace("2026-11-23T10:00", "2026-11-16T12:59");
        assert_eq!(check(&backdated).unwrap_err().code, "occurred_at_too_old");
        let refund = body(r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"}"#)
            .replace("order.paid", "order.shipped");
        assert_eq!(check(&refund).unwrap_err().code, "unsupported_event_type");
        let sek = body(r#"{"line_id":"1","sku":"S","quantity":1,"unit_price":"1"}"#)
            .replace("EUR", "EURO");
        assert_eq!(check(&sek).unwrap_err().code, "invalid_currency");
    }
}
