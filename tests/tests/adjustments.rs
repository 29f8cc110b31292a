//! Adjustments over the partner API (functions/partner-api, crates/services/src/adjust.rs):
//! credits and debits with reason codes, idempotent on a reference, approval by a second
//! person above the threshold, debts only where the reason allows, in the statement, the
//! audit trail and the clearing, and never for another partner's members.

use bytes::Bytes;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SHOP_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const RIVAL_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";
const WIDGET_KEY: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: coalition
    currency: EUR
    release_days: 0
    time_zone: Europe/Amsterdam
    adjustments: {approval_threshold: 10000}
partners:
  - id: shop
    programme: velo
    name: Shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: service desk, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
      - {label: widget, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [read_balance]}
  - id: rival
    programme: velo
    name: Rival
    webhook_secrets: [whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==]
    api_keys:
      - {label: service desk, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
members:
  - {id: M-1, programme: velo, partner: shop}
"#;

async fn call(
    env: &TestEnv,
    key: &str,
    who: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    env.call_as(key, who, method, path, body).await
}

async fn adjust(env: &TestEnv, key: &str, who: &str, body: Value) -> (StatusCode, Value) {
    call(env, key, who, "POST", "/v1/partner/adjustments", body).await
}

async fn balance(env: &TestEnv) -> Value {
    let (_, b) = env.balance_with("M-1", WIDGET_KEY).await;
    b
}

async fn audit_is_clean(env: &TestEnv) {
    let all = ["velo".to_string()];
    let report = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.differences, Vec::<String>::new());
}

#[tokio::test]
async fn a_goodwill_credit_is_applied_once_and_shows_in_the_statement_and_the_trail() {
    let env = TestEnv::with_config(CONFIG).await;
    let body = json!({"member_id": "M-1", "points": 500, "reason": "goodwill",
        "note": "Sorry for the late delivery", "reference": "ticket-4711"});
    let (status, first) = adjust(&env, SHOP_KEY, "Ann", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "applied");
    assert_eq!(
        (first["applied"].clone(), first["requested_by"].clone()),
        (json!(500), json!("Ann"))
    );
    let (status, again) = adjust(&env, SHOP_KEY, "Ann", body.clone()).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    let mut other = body.clone();
    other["points"] = json!(600);
    let (status, e) = adjust(&env, SHOP_KEY, "Ann", other).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("adjustment_conflict"))
    );
    assert_eq!(balance(&env).await["available"], 500);

    let (_, entries) = env
        .call(
            "GET",
            "/v1/members/M-1/entries",
            &[("authorization", format!("Bearer {WIDGET_KEY}"))],
            Bytes::new(),
        )
        .await;
    let e = &entries["entries"][0];
    assert_eq!(
        (e["kind"].as_str(), e["points"].as_i64()),
        (Some("adjustment"), Some(500)),
        "{entries}"
    );
    assert_eq!(
        e["reason"],
        "adjustment (goodwill) at shop: Sorry for the late delivery"
    );
    assert_eq!(e["partner_id"], "shop");

    let (_, trail) = call(
        &env,
        SHOP_KEY,
        "Ann",
        "GET",
        "/v1/partner/changes",
        Value::Null,
    )
    .await;
    assert_eq!(trail["changes"][0]["subject"], "adjustment");
    assert_eq!(trail["changes"][0]["action"], "requested");
    assert_eq!(trail["changes"][0]["actor"], "Ann");
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn above_the_threshold_a_second_person_approves_and_never_the_first() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, asked) = adjust(&env, SHOP_KEY, "Ann", json!({"member_id": "M-1",
        "points": 25000, "reason": "migration", "note": "points from the old card", "reference": "mig-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{asked}");
    assert_eq!(
        (asked["status"].as_str(), asked["applied"].as_i64()),
        (Some("pending_approval"), Some(0))
    );
    assert_eq!(
        balance(&env).await["available"],
        0,
        "nothing is written before the approval"
    );
    let id = asked["adjustment_id"].as_str().unwrap();
    let (_, pending) = call(
        &env,
        SHOP_KEY,
        "Ann",
        "GET",
        "/v1/partner/adjustments?status=pending_approval",
        Value::Null,
    )
    .await;
    assert_eq!(pending["adjustments"].as_array().unwrap().len(), 1);
    let approve = format!("/v1/partner/adjustments/{id}/approve");
    let (status, e) = call(&env, SHOP_KEY, "Ann", "POST", &approve, Value::Null).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("same_person"))
    );
    // Another partner cannot even see it.
    let (status, e) = call(&env, RIVAL_KEY, "Eve", "POST", &approve, Value::Null).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("adjustment_not_found"))
    );
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "Eve",
        "GET",
        &format!("/v1/partner/adjustments/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("adjustment_not_found"))
    );
    env.clock.advance(chrono::Duration::minutes(5));
    let (status, done) = call(&env, SHOP_KEY, "Bob", "POST", &approve, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (
            done["status"].as_str(),
            done["decided_by"].as_str(),
            done["applied"].as_i64()
        ),
        (Some("applied"), Some("Bob"), Some(25000))
    );
    assert_eq!(balance(&env).await["available"], 25000);
    // Approved again by Bob: as it stands; rejected by someone else now: too late.
    let (status, again) = call(&env, SHOP_KEY, "Bob", "POST", &approve, Value::Null).await;
    assert_eq!(
        (status, again["applied"].as_i64()),
        (StatusCode::OK, Some(25000))
    );
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "Cy",
        "POST",
        &format!("/v1/partner/adjustments/{id}/reject"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("adjustment_not_pending"))
    );
    assert_eq!(balance(&env).await["available"], 25000);
    // A rejected one writes nothing.
    env.clock.advance(chrono::Duration::minutes(5));
    let (_, asked) = adjust(
        &env,
        SHOP_KEY,
        "Ann",
        json!({"member_id": "M-1",
        "points": 50000, "reason": "goodwill", "note": "too generous", "reference": "big-2"}),
    )
    .await;
    let id = asked["adjustment_id"].as_str().unwrap();
    env.clock.advance(chrono::Duration::minutes(5));
    let (status, rejected) = call(
        &env,
        SHOP_KEY,
        "Cy",
        "POST",
        &format!("/v1/partner/adjustments/{id}/reject"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, rejected["status"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    assert_eq!(balance(&env).await["available"], 25000);
    let (_, trail) = call(
        &env,
        SHOP_KEY,
        "Ann",
        "GET",
        "/v1/partner/changes",
        Value::Null,
    )
    .await;
    let actions: Vec<(String, String)> = trail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["actor"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("Cy".into(), "rejected".into()),
            ("Ann".into(), "requested".into()),
            ("Bob".into(), "approved".into()),
            ("Ann".into(), "requested".into())
        ]
    );
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn debits_stop_at_zero_unless_the_reason_allows_a_debt() {
    let env = TestEnv::with_config(CONFIG).await;
    adjust(
        &env,
        SHOP_KEY,
        "Ann",
        json!({"member_id": "M-1", "points": 200, "reason": "goodwill",
        "note": "welcome", "reference": "w-1"}),
    )
    .await;
    let (status, e) = adjust(
        &env,
        SHOP_KEY,
        "Ann",
        json!({"member_id": "M-1", "points": -300,
        "reason": "correction", "note": "double booking", "reference": "c-1"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_points"))
    );
    let (status, e) = adjust(
        &env,
        SHOP_KEY,
        "Ann",
        json!({"member_id": "M-1", "points": -300,
        "reason": "goodwill", "note": "x", "reference": "c-2"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_reason"))
    );
    assert_eq!(
        balance(&env).await["available"],
        200,
        "refusals change nothing"
    );
    let (status, fraud) = adjust(
        &env,
        SHOP_KEY,
        "Ann",
        json!({"member_id": "M-1", "points": -300,
        "reason": "fraud", "note": "stolen card", "reference": "f-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{fraud}");
    assert_eq!(
        (fraud["applied"].as_i64(), fraud["debt"].as_i64()),
        (Some(200), Some(100))
    );
    let b = balance(&env).await;
    assert_eq!(
        (b["available"].as_i64(), b["debt"].as_i64()),
        (Some(0), Some(100))
    );
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn a_coalition_partner_may_credit_any_member_but_debit_only_its_own() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, c) = adjust(
        &env,
        RIVAL_KEY,
        "Eve",
        json!({"member_id": "M-1", "points": 100,
        "reason": "compensation", "note": "broken coffee machine", "reference": "r-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let (status, e) = adjust(
        &env,
        RIVAL_KEY,
        "Eve",
        json!({"member_id": "M-1", "points": -50,
        "reason": "correction", "note": "oops", "reference": "r-2"}),
    )
    .await;
    let (_, missing) = adjust(
        &env,
        RIVAL_KEY,
        "Eve",
        json!({"member_id": "NOBODY", "points": -50,
        "reason": "correction", "note": "oops", "reference": "r-3"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e, missing, "another partner's member answers as no member");
    assert_eq!(balance(&env).await["available"], 100);
    // The shop debits its member: the rival's points are reversed, the rival issued them.
    let (status, d) = adjust(
        &env,
        SHOP_KEY,
        "Ann",
        json!({"member_id": "M-1", "points": -40,
        "reason": "correction", "note": "wrong credit", "reference": "s-1"}),
    )
    .await;
    assert_eq!(
        (status, d["applied"].as_i64()),
        (StatusCode::CREATED, Some(40))
    );
    let (status, e) = adjust(
        &env,
        WIDGET_KEY,
        "Ann",
        json!({"member_id": "M-1", "points": 1,
        "reason": "goodwill", "note": "x", "reference": "w-9"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("missing_scope"))
    );
    audit_is_clean(&env).await;
}
