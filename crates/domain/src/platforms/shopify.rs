//! Shopify's webhooks (REST payloads, as Shopify posts them), mapped onto canonical form.
//!
//! | topic              | becomes                                              |
//! |--------------------|------------------------------------------------------|
//! | `orders/paid`      | `order.paid` (test orders ignored unless allowed)    |
//! | `refunds/create`   | `order.refunded`: refunded line items by quantity, shipping refunds |
//! | `orders/cancelled` | `order.cancelled`: everything not reversed yet       |
//! | anything else      | acknowledged (200) and ignored                        |
//!
//! The topic header is not signed, so the signed body decides: an order earns only if its
//! `financial_status` says it was paid and it is not cancelled; a cancellation needs
//! `cancelled_at`; a refund needs a refund body. A body older than
//! [`super::MAX_DELIVERY_AGE`] is ignored. Anything else is acknowledged and ignored.
//!
//! Money: Shopify sends strings in most fields (`"price": "19.99"`) and numbers in some
//! (`"subtotal": 19.99` on refund line items); both are read exactly ([`Exact`]).
//! Line amounts: `price x quantity`, less the line's `discount_allocations` (or
//! `total_discount`), less its tax when `taxes_included`. Gift cards never earn.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{explicit_company, explicit_member, id, sum, Exact, Mapped, MemberHints, Step};
use crate::error::Error;
use crate::money::{Currency, Money};
use crate::order::{parse_occurred_at, LineIn, OrderEventIn};
use crate::programme::PlatformLink;
use crate::refund::{RefundItem, RefundRequest, CANCEL_ID, SHIPPING_LINE};

pub const HEADER_HMAC: &str = "x-shopify-hmac-sha256";
pub const HEADER_TOPIC: &str = "x-shopify-topic";
pub const HEADER_WEBHOOK_ID: &str = "x-shopify-webhook-id";
/// The topics that book anything; every other topic is acknowledged and ignored.
pub const USED_TOPICS: [&str; 3] = ["orders/paid", "orders/cancelled", "refunds/create"];

#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Exact,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub contact_email: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub processed_at: Option<String>,
    #[serde(default)]
    pub cancelled_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub financial_status: Option<String>,
    pub currency: String,
    #[serde(default)]
    pub taxes_included: bool,
    #[serde(default)]
    pub test: bool,
    #[serde(default)]
    pub total_price: Exact,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub shipping_lines: Vec<ShippingLine>,
    #[serde(default)]
    pub customer: Option<Customer>,
    #[serde(default)]
    pub note_attributes: Vec<NoteAttribute>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineItem {
    pub id: Exact,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub variant_id: Exact,
    #[serde(default)]
    pub product_id: Exact,
    pub quantity: i64,
    pub price: Exact,
    #[serde(default)]
    pub total_discount: Exact,
    #[serde(default)]
    pub discount_allocations: Option<Vec<Amount>>,
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
    #[serde(default)]
    pub gift_card: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Amount {
    pub amount: Exact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaxLine {
    pub price: Exact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShippingLine {
    #[serde(default)]
    pub price: Exact,
    #[serde(default)]
    pub discounted_price: Exact,
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    #[serde(default)]
    pub id: Exact,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NoteAttribute {
    pub name: String,
    #[serde(default)]
    pub value: Exact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: Exact,
    pub order_id: Exact,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub processed_at: Option<String>,
    #[serde(default)]
    pub refund_line_items: Vec<RefundLineItem>,
    #[serde(default)]
    pub order_adjustments: Vec<Adjustment>,
    #[serde(default)]
    pub refund_shipping_lines: Vec<RefundShippingLine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundLineItem {
    pub line_item_id: Exact,
    pub quantity: i64,
    /// A number in Shopify's payloads; read exactly, informational.
    #[serde(default)]
    pub subtotal: Exact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Adjustment {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub amount: Exact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundShippingLine {
    #[serde(default)]
    pub subtotal_amount_set: Option<MoneySet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MoneySet {
    pub shop_money: Amount,
}

fn when(primary: &Option<String>, fallback: &Option<String>) -> String {
    primary
        .clone()
        .or_else(|| fallback.clone())
        .unwrap_or_default()
}

/// A SKU our keys accept: Shopify SKUs may be empty or contain '#'.
fn sku(line: &LineItem) -> String {
    let own = line
        .sku
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('#', "_"));
    own.or_else(|| line.variant_id.text().map(|v| format!("variant-{v}")))
        .or_else(|| line.product_id.text().map(|p| format!("product-{p}")))
        .unwrap_or_else(|| "unknown".into())
}

/// Financial statuses of an order that was paid (a paid order may be refunded since).
const PAID_STATUSES: [&str; 3] = ["paid", "partially_refunded", "refunded"];

impl Order {
    fn stale(&self, now: DateTime<Utc>) -> Option<String> {
        super::stale(
            &[
                self.updated_at.as_deref(),
                self.cancelled_at.as_deref(),
                self.processed_at.as_deref(),
                self.created_at.as_deref(),
            ],
            now,
        )
    }

    fn cancelled(&self) -> bool {
        self.cancelled_at
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
    }

    fn paid(&self) -> bool {
        self.financial_status
            .as_deref()
            .is_some_and(|s| PAID_STATUSES.contains(&s))
    }

    fn hints(&self) -> MemberHints {
        MemberHints {
            member_id: explicit_member(
                self.note_attributes
                    .iter()
                    .map(|a| (a.name.as_str(), a.value.text())),
            ),
            company_id: explicit_company(
                self.note_attributes
                    .iter()
                    .map(|a| (a.name.as_str(), a.value.text())),
            ),
            customer_id: self
                .customer
                .as_ref()
                .and_then(|c| c.id.text())
                .map(str::to_string),
            email: self
                .email
                .clone()
                .or_else(|| self.contact_email.clone())
                .or_else(|| self.customer.as_ref().and_then(|c| c.email.clone()))
                .filter(|e| !e.trim().is_empty()),
        }
    }

    /// The canonical `order.paid` for this order (member id left to the matching).
    pub fn canonical(&self) -> Result<OrderEventIn, Error> {
        let currency = Currency::parse(&self.currency)
            .map_err(|e| Error::invalid("invalid_currency", format!("currency: {e}")))?;
        let mut lines = Vec::new();
        for (i, l) in self.line_items.iter().enumerate() {
            if l.gift_card || l.quantity <= 0 {
                continue; // gift cards are money, not purchases; removed lines earn nothing
            }
            let f = |name: &str| format!("line_items[{i}].{name}");
            let price = l.price.money(&f("price"), currency)?;
            let discount = match &l.discount_allocations {
                Some(allocs) => sum(
                    allocs
                        .iter()
                        .map(|a| a.amount.money(&f("discount_allocations"), currency))
                        .collect::<Result<Vec<_>, _>>()?,
                    currency,
                )?,
                None => l.total_discount.money(&f("total_discount"), currency)?,
            };
            let tax = sum(
                l.tax_lines
                    .iter()
                    .map(|t| t.price.money(&f("tax_lines"), currency))
                    .collect::<Result<Vec<_>, _>>()?,
                currency,
            )?;
            lines.push(LineIn {
                line_id: id(&f("id"), &l.id)?,
                sku: sku(l),
                quantity: l.quantity,
                unit_price: Some(price.amount_string()),
                amount: None,
                discount: Some(discount.amount_string()),
                tax: Some(tax.amount_string()),
                cost_price: None,
                product_group: None,
            });
        }
        let mut shipping = Money::zero(currency);
        for (i, s) in self.shipping_lines.iter().enumerate() {
            let f = format!("shipping_lines[{i}]");
            let charged = if s.discounted_price.text().is_some() {
                s.discounted_price.money(&f, currency)?
            } else {
                s.price.money(&f, currency)?
            };
            let mut net = charged;
            if self.taxes_included {
                for t in &s.tax_lines {
                    net = net
                        .checked_sub(t.price.money(&f, currency)?)
                        .map_err(|e| Error::invalid("invalid_amount", e.to_string()))?;
                }
            }
            shipping = shipping
                .checked_add(Money::new(net.minor.max(0), currency))
                .map_err(|e| Error::invalid("invalid_amount", e.to_string()))?;
        }
        Ok(OrderEventIn {
            event_type: "order.paid".into(),
            order_id: id("id", &self.id)?,
            member_id: None,
            // Set from the member hints by the webhook (one place for both platforms).
            customer_id: None,
            company_id: None,
            occurred_at: when(&self.processed_at, &self.created_at),
            currency: self.currency.clone(),
            prices_include_tax: self.taxes_included,
            shipping: Some(shipping.amount_string()),
            total: self.total_price.text().map(str::to_string),
            lines,
        })
    }
}

impl Refund {
    /// The canonical refund: line items by quantity, and shipping refunded.
    pub fn request(
        &self,
        currency: Currency,
        now: DateTime<Utc>,
        body_sha256: &str,
    ) -> Result<(String, RefundRequest), Error> {
        let mut lines: Vec<RefundItem> = Vec::new();
        for (i, r) in self.refund_line_items.iter().enumerate() {
            if r.quantity <= 0 {
                continue;
            }
            let line_id = id(
                &format!("refund_line_items[{i}].line_item_id"),
                &r.line_item_id,
            )?;
            match lines.iter_mut().find(|l| l.line_id == line_id) {
                Some(l) => l.quantity = Some(l.quantity.unwrap_or(0) + r.quantity),
                None => lines.push(RefundItem {
                    line_id,
                    quantity: Some(r.quantity),
                    amount_minor: None,
                }),
            }
        }
        // Shipping: refund_shipping_lines (API 2024-10 on), else shipping_refund adjustments.
        let mut shipping = 0i64;
        for (i, s) in self.refund_shipping_lines.iter().enumerate() {
            if let Some(set) = &s.subtotal_amount_set {
                shipping += set
                    .shop_money
                    .amount
                    .money(&format!("refund_shipping_lines[{i}]"), currency)?
                    .minor
                    .abs();
            }
        }
        if self.refund_shipping_lines.is_empty() {
            for (i, a) in self.order_adjustments.iter().enumerate() {
                if a.kind.as_deref() == Some("shipping_refund") {
                    shipping += a
                        .amount
                        .money(&format!("order_adjustments[{i}].amount"), currency)?
                        .minor
                        .abs();
                }
            }
        }
        if shipping > 0 {
            lines.push(RefundItem {
                line_id: SHIPPING_LINE.into(),
                quantity: None,
                amount_minor: Some(shipping),
            });
        }
        let occurred_at = parse_occurred_at(&when(&self.processed_at, &self.created_at), now)?;
        Ok((
            id("order_id", &self.order_id)?,
            RefundRequest {
                refund_id: id("id", &self.id)?,
                full: false,
                lines,
                amount_minor: 0,
                occurred_at,
                body_sha256: body_sha256.to_string(),
                only_if_booked: false,
            },
        ))
    }
}

/// Map one delivery of `topic`.
pub fn map(
    topic: &str,
    body: &[u8],
    link: &PlatformLink,
    currency: Currency,
    now: DateTime<Utc>,
    body_sha256: &str,
) -> Result<Mapped, Error> {
    let ignored = |why: String| Mapped {
        ignored: Some(why),
        ..Mapped::default()
    };
    match topic {
        "orders/paid" => {
            let order: Order = super::parse(body)?;
            if let Some(why) = order.stale(now) {
                return Ok(ignored(why));
            }
            if order.test && !link.accept_test_orders {
                return Ok(ignored("test order".into()));
            }
            if order.cancelled() {
                return Ok(ignored("the order in the body is cancelled".into()));
            }
            if !order.paid() {
                return Ok(ignored(format!(
                    "financial_status '{}' is not paid",
                    order.financial_status.as_deref().unwrap_or("")
                )));
            }
            Ok(Mapped {
                hints: order.hints(),
                steps: vec![Step::Earn(Box::new(order.canonical()?))],
                ignored: None,
            })
        }
        "orders/cancelled" => {
            let order: Order = super::parse(body)?;
            if let Some(why) = order.stale(now) {
                return Ok(ignored(why));
            }
            if !order.cancelled() {
                return Ok(ignored(
                    "the order in the body is not cancelled (no cancelled_at)".into(),
                ));
            }
            let at = when(&order.cancelled_at, &order.processed_at);
            Ok(Mapped {
                hints: order.hints(),
                steps: vec![Step::Reverse {
                    order_id: id("id", &order.id)?,
                    request: RefundRequest {
                        refund_id: CANCEL_ID.into(),
                        full: true,
                        lines: Vec::new(),
                        amount_minor: 0,
                        occurred_at: parse_occurred_at(&at, now).unwrap_or(now),
                        body_sha256: body_sha256.to_string(),
                        only_if_booked: false,
                    },
                }],
                ignored: None,
            })
        }
        "refunds/create" => {
            let refund: Refund = super::parse(body)?;
            if let Some(why) = super::stale(
                &[refund.processed_at.as_deref(), refund.created_at.as_deref()],
                now,
            ) {
                return Ok(ignored(why));
            }
            let (order_id, request) = refund.request(currency, now, body_sha256)?;
            if request.lines.is_empty() {
                return Ok(ignored(
                    "refund without line items or shipping (an amount-only adjustment)".into(),
                ));
            }
            Ok(Mapped {
                hints: MemberHints::default(),
                steps: vec![Step::Reverse { order_id, request }],
                ignored: None,
            })
        }
        other => Ok(ignored(format!("topic '{other}' is not used"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::validate;

    const PAID: &str = include_str!("../../../../tests/fixtures/shopify/orders-paid.json");
    const ONE_OF_THREE: &str =
        include_str!("../../../../tests/fixtures/shopify/refunds-create-one-of-three.json");
    const SHIPPING_ONLY: &str =
        include_str!("../../../../tests/fixtures/shopify/refunds-create-shipping-only.json");
    const JPY: &str = include_str!("../../../../tests/fixtures/shopify/orders-paid-jpy.json");

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn link() -> PlatformLink {
        PlatformLink {
            secrets: vec!["s".repeat(16)],
            accept_test_orders: false,
        }
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn a_paid_order_maps_lines_discounts_taxes_and_shipping_exactly() {
        let m = map("orders/paid", PAID.as_bytes(), &link(), eur(), now(), "sha").unwrap();
        assert_eq!(m.hints.customer_id.as_deref(), Some("7390123456"));
        assert_eq!(m.hints.email.as_deref(), Some("Ann.Member@Example.com"));
        assert_eq!(m.hints.member_id, None);
        let Step::Earn(input) = &m.steps[0] else {
            panic!("an earn step")
        };
        let order = validate((**input).clone(), now()).unwrap();
        assert_eq!(order.order_id, "5012345678901");
        let nets: Vec<(&str, &str, i64)> = order
            .lines
            .iter()
            .map(|l| (l.line_id.as_str(), l.sku.as_str(), l.net.minor))
            .collect();
        // The gift card is left out; the free socks stay with a net of 0.
        assert_eq!(
            nets,
            vec![
                ("13001", "BIKE-HELMET", 9083),
                ("13002", "WATER-BOTTLE", 3000),
                ("13003", "variant-9003", 0)
            ]
        );
        assert_eq!((order.shipping.minor, order.total_minor()), (409, 17615));
    }

    #[test]
    fn test_orders_are_ignored_unless_the_partner_accepts_them() {
        let test = PAID.replace(r#""test": false"#, r#""test": true"#);
        let m = map("orders/paid", test.as_bytes(), &link(), eur(), now(), "sha").unwrap();
        assert_eq!(m.ignored.as_deref(), Some("test order"));
        let mut accepting = link();
        accepting.accept_test_orders = true;
        let m = map(
            "orders/paid",
            test.as_bytes(),
            &accepting,
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        assert!(m.ignored.is_none() && m.steps.len() == 1);
    }

    #[test]
    fn refunds_map_line_quantities_and_shipping_with_numbers_read_exactly() {
        let m = map(
            "refunds/create",
            ONE_OF_THREE.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        let Step::Reverse { order_id, request } = &m.steps[0] else {
            panic!("a reverse step")
        };
        assert_eq!(
            (order_id.as_str(), request.refund_id.as_str()),
            ("5012345678901", "880001")
        );
        assert_eq!(request.lines.len(), 1);
        assert_eq!(
            (request.lines[0].line_id.as_str(), request.lines[0].quantity),
            ("13002", Some(1))
        );

        let m = map(
            "refunds/create",
            SHIPPING_ONLY.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        let Step::Reverse { request, .. } = &m.steps[0] else {
            panic!("a reverse step")
        };
        assert_eq!(
            (
                request.lines[0].line_id.as_str(),
                request.lines[0].amount_minor
            ),
            (SHIPPING_LINE, Some(495))
        );
        // The 2024-10 form: refund_shipping_lines instead of an adjustment.
        let newer = SHIPPING_ONLY.replace(
            r#""order_adjustments""#,
            r#""refund_shipping_lines": [{"subtotal_amount_set": {"shop_money": {"amount": 4.09}}}], "old_adjustments""#,
        );
        let m = map(
            "refunds/create",
            newer.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        let Step::Reverse { request, .. } = &m.steps[0] else {
            panic!("a reverse step")
        };
        assert_eq!(request.lines[0].amount_minor, Some(409));
    }

    #[test]
    fn a_zero_decimal_currency_and_awkward_skus() {
        let jpy = Currency::parse("JPY").unwrap();
        let m = map("orders/paid", JPY.as_bytes(), &link(), jpy, now(), "sha").unwrap();
        assert_eq!(m.hints.member_id.as_deref(), Some("J-1"));
        let Step::Earn(input) = &m.steps[0] else {
            panic!("an earn step")
        };
        let order = validate((**input).clone(), now()).unwrap();
        let nets: Vec<(&str, i64)> = order
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.net.minor))
            .collect();
        assert_eq!(nets, vec![("TEA_GREEN", 2727), ("CUP", 891)]);
    }

    #[test]
    fn cancellations_and_unknown_topics() {
        // The topic is not signed: a paid order's body sent as a cancellation cancels nothing.
        let m = map(
            "orders/cancelled",
            PAID.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        assert_eq!(
            (m.ignored.as_deref(), m.steps.len()),
            (
                Some("the order in the body is not cancelled (no cancelled_at)"),
                0
            )
        );
        let mut cancelled: serde_json::Value = serde_json::from_str(PAID).unwrap();
        cancelled["cancelled_at"] = serde_json::json!("2026-11-23T12:40:00+01:00");
        let cancelled = cancelled.to_string();
        let m = map(
            "orders/cancelled",
            cancelled.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        assert!(
            matches!(&m.steps[0], Step::Reverse { request, .. } if request.full && request.refund_id == CANCEL_ID)
        );
        // ...and a cancelled order's body sent as paid earns nothing.
        let m = map(
            "orders/paid",
            cancelled.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        assert_eq!(
            (m.ignored.as_deref(), m.steps.len()),
            (Some("the order in the body is cancelled"), 0)
        );
        let m = map("products/update", b"{}", &link(), eur(), now(), "sha").unwrap();
        assert!(m.ignored.is_some() && m.steps.is_empty());
        assert_eq!(
            map("orders/paid", b"{", &link(), eur(), now(), "sha")
                .unwrap_err()
                .code,
            "malformed_json"
        );
    }

    #[test]
    fn only_a_paid_status_earns_and_old_bodies_are_replays() {
        let pending = PAID.replace(
            r#""financial_status": "paid""#,
            r#""financial_status": "pending""#,
        );
        assert_ne!(pending, PAID);
        let m = map(
            "orders/paid",
            pending.as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        assert_eq!(
            (m.ignored.as_deref(), m.steps.len()),
            (Some("financial_status 'pending' is not paid"), 0)
        );
        // The newest time in the body (updated_at 12:00:03+01:00) decides its age.
        let newest: DateTime<Utc> = "2026-11-23T11:00:03Z".parse().unwrap();
        let at_limit = newest + super::super::MAX_DELIVERY_AGE;
        let m = map(
            "orders/paid",
            PAID.as_bytes(),
            &link(),
            eur(),
            at_limit,
            "sha",
        )
        .unwrap();
        assert_eq!((m.ignored, m.steps.len()), (None, 1));
        let later = at_limit + chrono::Duration::seconds(1);
        for (topic, body) in [("orders/paid", PAID), ("refunds/create", ONE_OF_THREE)] {
            let m = map(
                topic,
                body.as_bytes(),
                &link(),
                eur(),
                later + chrono::Duration::days(1),
                "sha",
            )
            .unwrap();
            assert_eq!(
                (m.ignored.as_deref(), m.steps.len()),
                (Some("the body is older than 72 hours (a replay)"), 0),
                "{topic}"
            );
        }
        let m = map("orders/paid", PAID.as_bytes(), &link(), eur(), later, "sha").unwrap();
        assert!(m.ignored.is_some());
        // A body without any time cannot show it is fresh.
        let mut timeless: serde_json::Value = serde_json::from_str(PAID).unwrap();
        for k in ["updated_at", "created_at", "processed_at"] {
            timeless.as_object_mut().unwrap().remove(k);
        }
        let m = map(
            "orders/paid",
            timeless.to_string().as_bytes(),
            &link(),
            eur(),
            now(),
            "sha",
        )
        .unwrap();
        assert_eq!(m.ignored.as_deref(), Some("the body carries no time"));
    }
}
