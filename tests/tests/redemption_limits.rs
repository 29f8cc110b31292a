//! A partner's redemption limits (bonVito), set over the partner API: points per
//! transaction, per member and day, and the weekdays and hours when points can be spent.
//! Each refuses with its own 409 code and changes nothing; a released hold gives its points
//! back to the day; racing holds cannot together pass the daily limit.

use std::sync::Arc;

use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const OFFICE: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const TILL: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";

const CONFIG: &str = r#"
programmes:
  - id: bonvito
    name: bonVito
    kind: coalition
    currency: EUR
    release_days: 0
    time_zone: Europe/Berlin
partners:
  - id: bakery
    programme: bonvito
    name: Bakery
    time_zone: Europe/Berlin
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: office, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
      - {label: till, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [read_balance, hold]}
members:
  - id: B-1
    programme: bonvito
"#;

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    env.call_as(key, "Till", method, path, body).await
}

async fn hold(env: &TestEnv, points: i64, reference: &str) -> (StatusCode, Value) {
    call(
        env,
        TILL,
        "POST",
        "/v1/members/B-1/holds",
        json!({"points": points, "reference": reference}),
    )
    .await
}

async fn available(env: &TestEnv) -> i64 {
    let (_, b) = call(env, TILL, "GET", "/v1/members/B-1/balance", Value::Null).await;
    b["available"].as_i64().unwrap()
}

/// B-1 with 3,000 points available at once, and the bakery's limits set by its office.
async fn setup() -> TestEnv {
    let env = TestEnv::with_config(CONFIG).await;
    let body = json!({"type": "order.paid", "order_id": "O-1", "member_id": "B-1",
        "occurred_at": "2026-11-23T09:00:00Z", "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "CATERING", "quantity": 1, "unit_price": "3000.00"}]})
    .to_string();
    let headers = env.signed("whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5", "m1", &body, 0);
    let (status, _) = env
        .call(
            "POST",
            "/v1/partners/bakery/webhooks/orders",
            &headers,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, s) = call(
        &env,
        OFFICE,
        "PATCH",
        "/v1/partner",
        json!({"redemption": {
        "max_points_per_transaction": 500, "max_points_per_member_day": 800,
        "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat"], "hours": {"from": 8, "to": 20}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["redemption"]["max_points_per_member_day"], 800);
    env
}

#[tokio::test]
async fn each_limit_refuses_with_its_code_and_a_void_gives_the_day_back() {
    let env = setup().await;
    // Monday 23 Nov 2026, 13:00 in Berlin.
    env.clock.set("2026-11-23T12:00:00Z".parse().unwrap());
    assert_eq!(available(&env).await, 3000);
    let (status, e) = hold(&env, 501, "big").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("redemption_limit_per_transaction")
        )
    );
    let (status, first) = hold(&env, 500, "a").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, e) = hold(&env, 400, "b").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("redemption_limit_per_day"))
    );
    assert_eq!(
        e["error"]["message"],
        "at most 800 points per member and day at this partner (300 left today)"
    );
    assert_eq!(
        available(&env).await,
        2500,
        "a refused hold reserves nothing"
    );
    // The same request again is the same hold, not a second count.
    let (status, again) = hold(&env, 500, "a").await;
    assert_eq!(
        (status, again["hold_id"].clone()),
        (StatusCode::OK, first["hold_id"].clone())
    );
    // Voided: its 500 go back to the day.
    let hold_id = first["hold_id"].as_str().unwrap();
    let (status, _) = call(
        &env,
        TILL,
        "POST",
        &format!("/v1/holds/{hold_id}/void"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, b) = hold(&env, 400, "b").await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    // Captured in part: what it did not take goes back too (400 held, 100 spent).
    let id = b["hold_id"].as_str().unwrap();
    let (status, _) = call(
        &env,
        TILL,
        "POST",
        &format!("/v1/holds/{id}/capture"),
        json!({"points": 100}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, c) = hold(&env, 500, "c").await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let (status, e) = hold(&env, 201, "d").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("redemption_limit_per_day"))
    );
    // The next day the count starts again.
    env.clock.set("2026-11-24T07:30:00Z".parse().unwrap());
    let (status, _) = hold(&env, 500, "tuesday").await;
    assert_eq!(status, StatusCode::CREATED);
    // 19:59 open, 20:00 closed (Berlin); Sunday closed.
    env.clock.set("2026-11-25T18:59:00Z".parse().unwrap());
    let (status, _) = hold(&env, 10, "late").await;
    assert_eq!(status, StatusCode::CREATED);
    env.clock.set("2026-11-25T19:00:00Z".parse().unwrap());
    let (status, e) = hold(&env, 10, "closed").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("redemption_closed"))
    );
    env.clock.set("2026-11-29T12:00:00Z".parse().unwrap());
    let (status, e) = hold(&env, 10, "sunday").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("redemption_closed"))
    );
    // Limits removed: anything goes.
    let (status, _) = call(
        &env,
        OFFICE,
        "PATCH",
        "/v1/partner",
        json!({"redemption": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hold(&env, 900, "sunday").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn racing_holds_cannot_together_pass_the_daily_limit() {
    let env = Arc::new(setup().await);
    env.clock.set("2026-11-23T12:00:00Z".parse().unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move { Box::pin(hold(&env, 300, &format!("race-{i}"))).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "redemption_limit_per_day"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 2, "800 a day holds two holds of 300");
    assert_eq!(available(&env).await, 2400);
}
