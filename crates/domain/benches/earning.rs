//! Earning for a 20-line order: validation of the canonical webhook and the points of every
//! line. Run: `cargo bench -p bonus-domain --bench earning`.

use bonus_domain::account::Account;
use bonus_domain::error::parse_json;
use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;

use bonus_domain::earning::{earn_order, EarnContext};
use bonus_domain::ledger::{plan_order, plan_refund, RefundSource};
use bonus_domain::money::Currency;
use bonus_domain::order::{validate, OrderEventIn};
use bonus_domain::platforms::{shopify, Step};
use bonus_domain::programme::PlatformLink;
use bonus_domain::programme::{Programme, ProgrammeKind};
use bonus_domain::refund::{PaidOrder, RefundItem, RefundRequest};

fn twenty_line_order() -> String {
    let lines: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            serde_json::json!({
                "line_id": i.to_string(), "sku": format!("SKU-{i:04}"), "quantity": 1 + i % 4,
                "unit_price": format!("{}.{:02}", 10 + i * 7, (i * 13) % 100), "discount": "1.50",
                "tax": "2.10", "cost_price": "8.00", "product_group": "bikes"
            })
        })
        .collect();
    serde_json::json!({
        "type": "order.paid", "order_id": "A-1", "member_id": "M-1",
        "occurred_at": "2026-11-23T10:00:00Z", "currency": "EUR", "lines": lines
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let mut programme = Programme::with_defaults(
        "p",
        "P",
        ProgrammeKind::Closed,
        Currency::parse("EUR").unwrap(),
    );
    programme.points_per_unit = "1.25".parse().unwrap();
    let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
    let body = twenty_line_order();
    let order = validate(parse_json::<OrderEventIn>(body.as_bytes()).unwrap(), now).unwrap();
    let lines = order.earn_lines(&programme);
    let account = Account::open("p", "M-1");
    let budgets = BTreeMap::new();
    let local_time = now.naive_utc();

    c.bench_function("earn_order/20 lines", |b| {
        b.iter(|| {
            let ctx = EarnContext {
                programme: &programme,
                tier: &programme.tiers[0],
                local_time,
                campaigns: &[],
            };
            earn_order(&ctx, std::hint::black_box(&lines), &budgets).unwrap()
        })
    });
    c.bench_function("parse+validate+earn+plan/20 lines", |b| {
        b.iter(|| {
            let input: OrderEventIn = parse_json(std::hint::black_box(body.as_bytes())).unwrap();
            let order = validate(input, now).unwrap();
            let ctx = EarnContext {
                programme: &programme,
                tier: &programme.tiers[0],
                local_time,
                campaigns: &[],
            };
            let earning = earn_order(&ctx, &order.earn_lines(&programme), &budgets).unwrap();
            let volume = order.volume_minor(&programme);
            plan_order(
                &programme,
                &account,
                "shop",
                &order.order_id,
                earning.total,
                volume,
                "Silver",
                order.occurred_at,
                now,
            )
            .unwrap()
        })
    });

    // A refund of one unit of every line of the booked order: the shares, then the plan
    // (own lot, entries, event).
    let ctx = EarnContext {
        programme: &programme,
        tier: &programme.tiers[0],
        local_time,
        campaigns: &[],
    };
    let earning = earn_order(&ctx, &lines, &budgets).unwrap();
    let plan = plan_order(
        &programme,
        &account,
        "shop",
        "A-1",
        earning.total,
        order.volume_minor(&programme),
        "Silver",
        order.occurred_at,
        now,
    )
    .unwrap();
    let lot = plan.lot.clone().unwrap();
    let paid = PaidOrder::new(
        Some("M-1".into()),
        Some(lot.lot_id.clone()),
        &order,
        &lines,
        &earning,
    );
    let refund = RefundRequest {
        refund_id: "R-1".into(),
        full: false,
        lines: order
            .lines
            .iter()
            .map(|l| RefundItem {
                line_id: l.line_id.clone(),
                quantity: Some(1),
                amount_minor: None,
            })
            .collect(),
        amount_minor: 0,
        occurred_at: now,
        body_sha256: String::new(),
        only_if_booked: false,
    };
    c.bench_function("refund+plan/20 lines", |b| {
        b.iter(|| {
            let mut book = paid.clone();
            let reversal = book.apply(std::hint::black_box(&refund), true).unwrap();
            let source = RefundSource {
                partner_id: "shop",
                order_id: "A-1",
                refund_id: "R-1",
                order_at: order.occurred_at,
            };
            plan_refund(
                &programme,
                &plan.account,
                Some(&lot),
                &[],
                source,
                reversal.points,
                reversal.volume_minor,
                now,
            )
            .unwrap()
        })
    });

    // A Shopify orders/paid payload: exact money parsing, mapping, validation.
    let shopify_body = include_str!("../../../tests/fixtures/shopify/orders-paid.json");
    let link = PlatformLink {
        secrets: vec!["x".repeat(16)],
        accept_test_orders: false,
    };
    c.bench_function("shopify map+validate/4 lines", |b| {
        b.iter(|| {
            let m = shopify::map(
                "orders/paid",
                std::hint::black_box(shopify_body.as_bytes()),
                &link,
                programme.currency,
                now,
                "",
            )
            .unwrap();
            match m.steps.into_iter().next() {
                Some(Step::Earn(input)) => validate(*input, now).unwrap(),
                _ => unreachable!(),
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
