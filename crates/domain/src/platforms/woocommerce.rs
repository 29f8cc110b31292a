//! WooCommerce's webhooks (REST API v3 order payloads), mapped onto canonical form.
//!
//! WooCommerce posts the whole order on `order.created` and `order.updated`; what happens
//! depends on its status and on whether it was ever paid (`date_paid_gmt`):
//!
//! | status                    | becomes                                              |
//! |---------------------------|------------------------------------------------------|
//! | `processing`, `completed` | `order.paid`, then each entry of `refunds[]`        |
//! | `refunded`, `cancelled`   | each entry of `refunds[]`, then `order.cancelled`    |
//! | anything else             | acknowledged (200) and ignored                        |
//!
//! An order without `date_paid_gmt` (cash on delivery, or never paid) has its reversals
//! applied only if it was booked: a never-paid order that is cancelled leaves nothing behind.
//!
//! `refunds[]` only carries amounts, so a partial refund reverses the same share of every
//! line (`refund total / order total`). Line amounts are WooCommerce's `subtotal` (before
//! discounts) and `total` (after), both without tax; `total_tax` is the line's tax.
//!
//! WooCommerce never retries a delivery, and sends the same order again on every change; a
//! delivery is identified by (order id, `date_modified_gmt`, status).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{explicit_company, explicit_member, id, Exact, Mapped, MemberHints, Step};
use crate::error::Error;
use crate::money::Currency;
use crate::order::{parse_occurred_at, LineIn, OrderEventIn};
use crate::refund::{RefundRequest, CANCEL_ID};

pub const HEADER_SIGNATURE: &str = "x-wc-webhook-signature";
pub const HEADER_TOPIC: &str = "x-wc-webhook-topic";

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Exact,
    pub status: String,
    pub currency: String,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub date_modified_gmt: Option<String>,
    #[serde(default)]
    pub date_paid_gmt: Option<String>,
    #[serde(default)]
    pub customer_id: Exact,
    #[serde(default)]
    pub billing: Option<Billing>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub shipping_total: Exact,
    #[serde(default)]
    pub total: Exact,
    #[serde(default)]
    pub meta_data: Vec<Meta>,
    #[serde(default)]
    pub refunds: Vec<RefundRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Billing {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineItem {
    pub id: Exact,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub product_id: Exact,
    pub quantity: i64,
    #[serde(default)]
    pub subtotal: Exact,
    #[serde(default)]
    pub total: Exact,
    #[serde(default)]
    pub total_tax: Exact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    pub key: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundRef {
    pub id: Exact,
    /// Negative in WooCommerce's payloads ("-10.00").
    pub total: Exact,
}

/// WooCommerce's `_gmt` dates carry no offset: they are UTC.
fn gmt(text: &Option<String>) -> Option<String> {
    let t = text.as_deref()?.trim();
    if t.is_empty() {
        return None;
    }
    Some(if t.ends_with('Z') || t.contains('+') {
        t.to_string()
    } else {
        format!("{t}Z")
    })
}

impl Order {
    /// The delivery key: WooCommerce sends the same order again on every change.
    pub fn delivery_id(&self) -> Result<String, Error> {
        Ok(format!(
            "{}:{}:{}",
            id("id", &self.id)?,
            self.date_modified_gmt.as_deref().unwrap_or(""),
            self.status
        ))
    }

    fn hints(&self) -> MemberHints {
        let metas: Vec<(&str, Option<String>)> = self
            .meta_data
            .iter()
            .map(|m| {
                let v = match &m.value {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                };
                (m.key.trim_start_matches('_'), v)
            })
            .collect();
        MemberHints {
            member_id: explicit_member(metas.iter().map(|(k, v)| (*k, v.as_deref()))),
            company_id: explicit_company(metas.iter().map(|(k, v)| (*k, v.as_deref()))),
            customer_id: self
                .customer_id
                .text()
                .filter(|c| *c != "0")
                .map(str::to_string),
            email: self
                .billing
                .as_ref()
                .and_then(|b| b.email.clone())
                .filter(|e| !e.trim().is_empty()),
        }
    }

    /// The canonical `order.paid` (member id left to the matching).
    pub fn canonical(&self) -> Result<OrderEventIn, Error> {
        let currency = Currency::parse(&self.currency)
            .map_err(|e| Error::invalid("invalid_currency", format!("currency: {e}")))?;
        let mut lines = Vec::new();
        for (i, l) in self.line_items.iter().enumerate() {
            if l.quantity <= 0 {
                continue;
            }
            let f = |name: &str| format!("line_items[{i}].{name}");
            let total = l.total.money(&f("total"), currency)?;
            let subtotal = l.subtotal.money(&f("subtotal"), currency)?;
            // A line priced up after the fact has no discount: its total is what counts.
            let gross = if subtotal.minor >= total.minor {
                subtotal
            } else {
                total
            };
            let discount = gross
                .checked_sub(total)
                .map_err(|e| Error::invalid("invalid_amount", e.to_string()))?;
            let sku = l
                .sku
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('#', "_"))
                .or_else(|| l.product_id.text().map(|p| format!("product-{p}")))
                .unwrap_or_else(|| "unknown".into());
            lines.push(LineIn {
                line_id: id(&f("id"), &l.id)?,
                sku,
                quantity: l.quantity,
                unit_price: None,
                amount: Some(gross.amount_string()),
                discount: Some(discount.amount_string()),
                tax: Some(
                    l.total_tax
                        .money(&f("total_tax"), currency)?
                        .amount_string(),
                ),
                cost_price: None,
                product_group: None,
            });
        }
        Ok(OrderEventIn {
            event_type: "order.paid".into(),
            order_id: id("id", &self.id)?,
            member_id: None,
            // Set from the member hints by the webhook (one place for both platforms).
            customer_id: None,
            company_id: None,
            occurred_at: gmt(&self.date_paid_gmt)
                .or_else(|| gmt(&self.date_created_gmt))
                .unwrap_or_default(),
            currency: self.currency.clone(),
            prices_include_tax: false,
            shipping: self.shipping_total.text().map(str::to_string),
            total: self.total.text().map(str::to_string),
            lines,
        })
    }
}

/// Map one delivery (`order.created` / `order.updated`).
pub fn map(
    topic: &str,
    body: &[u8],
    currency: Currency,
    now: DateTime<Utc>,
    body_sha256: &str,
) -> Result<(Mapped, Option<String>), Error> {
    let ignored = |why: String| Mapped {
        ignored: Some(why),
        ..Mapped::default()
    };
    if !matches!(topic, "order.created" | "order.updated") {
        return Ok((ignored(format!("topic '{topic}' is not used")), None));
    }
    let order: Order = super::parse(body)?;
    let delivery = order.delivery_id()?;
    // WooCommerce never retries; a body modified more than the window ago is a replay.
    if let Some(why) = super::stale(&[gmt(&order.date_modified_gmt).as_deref()], now) {
        return Ok((ignored(why), Some(delivery)));
    }
    let order_id = id("id", &order.id)?;
    let paid = gmt(&order.date_paid_gmt).is_some();
    let earns = matches!(order.status.as_str(), "processing" | "completed");
    let reverses = matches!(order.status.as_str(), "refunded" | "cancelled");
    if !(earns || reverses) {
        let why = format!("status '{}' neither earns nor reverses", order.status);
        return Ok((ignored(why), Some(delivery)));
    }
    let mut steps = Vec::new();
    if earns {
        steps.push(Step::Earn(Box::new(order.canonical()?)));
    }
    let at = gmt(&order.date_modified_gmt).unwrap_or_default();
    let occurred_at = parse_occurred_at(&at, now).unwrap_or(now);
    for (i, r) in order.refunds.iter().enumerate() {
        let amount = r
            .total
            .money(&format!("refunds[{i}].total"), currency)?
            .minor
            .abs();
        if amount == 0 {
            continue;
        }
        steps.push(Step::Reverse {
            order_id: order_id.clone(),
            request: RefundRequest {
                refund_id: id(&format!("refunds[{i}].id"), &r.id)?,
                full: false,
                lines: Vec::new(),
                amount_minor: amount,
                occurred_at,
                body_sha256: body_sha256.to_string(),
                only_if_booked: !paid,
            },
        });
    }
    if reverses {
        steps.push(Step::Reverse {
            order_id,
            request: RefundRequest {
                refund_id: CANCEL_ID.into(),
                full: true,
                lines: Vec::new(),
                amount_minor: 0,
                occurred_at,
                body_sha256: body_sha256.to_string(),
                only_if_booked: !paid,
            },
        });
    }
    Ok((
        Mapped {
            hints: order.hints(),
            steps,
            ignored: None,
        },
        Some(delivery),
    ))
}

/// The activation ping WooCommerce sends when a webhook is saved: an unsigned form body
/// `webhook_id=N`.
pub fn is_ping(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let mut pairs = text.trim().split('&');
    matches!(
        pairs.next().and_then(|p| p.split_once('=')),
        Some(("webhook_id", n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    ) && pairs.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::validate;

    const PROCESSING: &str =
        include_str!("../../../../tests/fixtures/woocommerce/order-processing.json");
    const PARTIAL: &str =
        include_str!("../../../../tests/fixtures/woocommerce/order-partial-refund.json");
    const REFUNDED: &str =
        include_str!("../../../../tests/fixtures/woocommerce/order-refunded.json");

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn a_processing_order_earns_on_line_totals_without_tax() {
        let (m, delivery) =
            map("order.updated", PROCESSING.as_bytes(), eur(), now(), "sha").unwrap();
        assert_eq!(
            delivery.as_deref(),
            Some("4321:2026-11-23T10:00:00:processing")
        );
        assert_eq!(m.hints.member_id.as_deref(), Some("M-1"));
        assert_eq!(m.hints.customer_id.as_deref(), Some("12"));
        let Step::Earn(input) = &m.steps[0] else {
            panic!("an earn step")
        };
        let order = validate((**input).clone(), now()).unwrap();
        let lines: Vec<(&str, i64, i64, i64)> = order
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.gross.minor, l.discount.minor, l.net.minor))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("BIKE-HELMET", 10_000, 1_000, 9_000),
                ("product-502", 999, 999, 0)
            ]
        );
        assert_eq!((order.shipping.minor, order.total_minor()), (495, 11_489));
        assert_eq!(
            order.occurred_at,
            "2026-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn statuses_map_to_earn_refunds_and_cancellation() {
        let (m, _) = map("order.updated", PARTIAL.as_bytes(), eur(), now(), "sha").unwrap();
        assert_eq!(m.steps.len(), 2);
        assert!(
            matches!(&m.steps[1], Step::Reverse { request, .. } if request.refund_id == "77" && request.amount_minor == 5_745 && !request.full)
        );
        let (m, _) = map("order.updated", REFUNDED.as_bytes(), eur(), now(), "sha").unwrap();
        let ids: Vec<String> = m
            .steps
            .iter()
            .map(|s| match s {
                Step::Earn(_) => "earn".to_string(),
                Step::Reverse { request, .. } => request.refund_id.clone(),
            })
            .collect();
        assert_eq!(ids, vec!["78", "77", CANCEL_ID]);
        // Not paid (yet), now cancelled: reversed only if it was booked (cash on delivery).
        let unpaid = PROCESSING
            .replace(r#""status": "processing""#, r#""status": "cancelled""#)
            .replace(
                r#""date_paid_gmt": "2026-11-23T10:00:00""#,
                r#""date_paid_gmt": null"#,
            );
        let (m, _) = map("order.updated", unpaid.as_bytes(), eur(), now(), "sha").unwrap();
        assert!(
            matches!(&m.steps[..], [Step::Reverse { request, .. }] if request.full && request.only_if_booked)
        );
        let on_hold = PROCESSING.replace(r#""status": "processing""#, r#""status": "on-hold""#);
        let (m, _) = map("order.created", on_hold.as_bytes(), eur(), now(), "sha").unwrap();
        assert!(m.ignored.is_some());
    }

    #[test]
    fn the_activation_ping_is_recognised() {
        assert!(is_ping(b"webhook_id=17"));
        assert!(!is_ping(b"webhook_id="));
        assert!(!is_ping(b"webhook_id=17&x=1"));
        assert!(!is_ping(PROCESSING.as_bytes()));
    }
}
