//! Earning for a 20-line order: validation of the canonical webhook and the points of every
//! line. Run: `cargo bench -p shared --bench earning`.

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use shared::account::Account;
use shared::api::parse_json;
use shared::earning::earn_order;
use shared::ledger::plan_accrual;
use shared::money::Currency;
use shared::order::{validate, OrderEventIn};
use shared::programme::{Programme, ProgrammeKind};

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
    let lines = order.earn_lines();
    let account = Account::open("p", "M-1");

    c.bench_function("earn_order/20 lines", |b| {
        b.iter(|| earn_order(&programme, std::hint::black_box(&lines)).unwrap())
    });
    c.bench_function("parse+validate+earn+plan/20 lines", |b| {
        b.iter(|| {
            let input: OrderEventIn = parse_json(std::hint::black_box(body.as_bytes())).unwrap();
            let order = validate(input, now).unwrap();
            let earning = earn_order(&programme, &order.earn_lines()).unwrap();
            plan_accrual(
                &programme,
                &account,
                "shop",
                &order.order_id,
                earning.total,
                order.occurred_at,
                now,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
