//! A partner over its limit (WAF marks the request): a signed delivery is accepted and queued
//! (202), never refused, and booked from the queue exactly once, judged at its acceptance;
//! anything that does not verify gets 429 with Retry-After.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bonus_domain::platforms::sign_base64_hmac;
use bonus_lambda::app::{Ctx, Deferral};
use bonus_local_stack::moto::LocalMoto;
use integration_tests::{order_paid, TestEnv, CONFIG, SECRET};
use order_webhook::defer::{handle_deferred, OVER_LIMIT_HEADER};

const SHOPIFY_SECRET: &str = "shpss_limits_test_secret_01";

async fn points(env: &TestEnv) -> i64 {
    let a = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    a.lifetime_earned
}

#[tokio::test]
async fn deliveries_over_the_limit_are_queued_and_booked_once_later() {
    let config = CONFIG.replace(
        "    name: Shop\n",
        &format!("    name: Shop\n    shopify: {{secrets: [{SHOPIFY_SECRET}]}}\n"),
    );
    let env = TestEnv::with_config(&config).await;
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "deferred-webhooks", 30, 5)
        .await
        .unwrap();
    let mut ctx = Ctx::new(
        env.store.clone(),
        env.clock.clone(),
        Duration::from_secs(60),
    );
    ctx.deferral = Some(Deferral::new(sqs.clone(), url.clone()));
    let ctx = Arc::new(ctx);
    let call = |headers: Vec<(&'static str, String)>, path: &'static str, body: String| {
        let ctx = ctx.clone();
        async move {
            let mut req = http::Request::builder().method("POST").uri(path);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            bonus_ops::dev::dispatch(&ctx, req.body(body.into()).unwrap()).await
        }
    };

    // A signed canonical order over the limit: 202, nothing booked yet.
    let body = order_paid("A-1", Some("M-1"), &[("X", 1, "40.00")]);
    let mut headers = env.signed(SECRET, "msg-a1", &body, 0);
    headers.push((OVER_LIMIT_HEADER, "1".into()));
    let resp = call(
        headers.clone(),
        "/v1/partners/shop/webhooks/orders",
        body.clone(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.body());
    assert!(resp.body().contains("\"queued\""));
    assert_eq!(points(&env).await, 0);
    // The same delivery sent again over the limit: queued again (booked once, below).
    assert_eq!(
        call(headers, "/v1/partners/shop/webhooks/orders", body.clone())
            .await
            .status()
            .as_u16(),
        202
    );
    // A Shopify delivery over the limit.
    let now = env.clock_now().to_rfc3339();
    let paid = serde_json::json!({
        "id": 9001, "currency": "EUR", "financial_status": "paid",
        "created_at": now, "processed_at": now, "updated_at": now,
        "line_items": [{"id": 1, "sku": "S", "quantity": 1, "price": "10.00"}],
        "note_attributes": [{"name": "bonus_member_id", "value": "M-1"}]
    })
    .to_string();
    let shopify = vec![
        ("x-shopify-topic", "orders/paid".to_string()),
        (
            "x-shopify-hmac-sha256",
            sign_base64_hmac(SHOPIFY_SECRET, paid.as_bytes()),
        ),
        (OVER_LIMIT_HEADER, "1".to_string()),
    ];
    let resp = call(shopify, "/v1/partners/shop/webhooks/shopify", paid).await;
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.body());

    // Over the limit without a valid signature: 429 with Retry-After, nothing queued.
    let forged = env.signed("whsec_d3Jvbmctc2VjcmV0LTAxMjM0NTY3ODk=", "msg-x", &body, 0);
    let mut forged_headers = forged;
    forged_headers.push((OVER_LIMIT_HEADER, "1".into()));
    let resp = call(
        forged_headers,
        "/v1/partners/shop/webhooks/orders",
        body.clone(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );
    assert!(resp.body().contains("rate_limited"));

    // Ten minutes later (the signature's 5-minute window is long past) the consumer books
    // them, judged at their acceptance: 40 + 10 points, the repeat once.
    env.clock.advance(chrono::Duration::minutes(10));
    let mut records = Vec::new();
    for _ in 0..5 {
        for m in bonus_sqs::receive(&sqs, &url, 1).await.unwrap() {
            let mut message = SqsMessage::default();
            message.message_id = Some(m.message_id.clone());
            message.body = Some(m.body.clone());
            records.push(message);
        }
        if records.len() >= 3 {
            break;
        }
    }
    assert_eq!(records.len(), 3);
    let mut event = SqsEvent::default();
    event.records = records.clone();
    let answer = handle_deferred(&ctx, event).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(points(&env).await, 50);
    // SQS delivers at least once: the same messages again book nothing more.
    let mut event = SqsEvent::default();
    event.records = records;
    assert!(handle_deferred(&ctx, event)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(points(&env).await, 50);

    // Under the limit, nothing changes: booked at once.
    let body = order_paid("A-2", Some("M-1"), &[("X", 1, "5.00")]);
    let headers = env.signed(SECRET, "msg-a2", &body, 0);
    let resp = call(headers, "/v1/partners/shop/webhooks/orders", body).await;
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.body());
    assert_eq!(points(&env).await, 55);
}
