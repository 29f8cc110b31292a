//! A partner with its own valid keys, trying to leave its lane: every member route with
//! another partner's keys, orders that try to grant access, enumeration, made-up keys and
//! partner ids, forged, replayed, stale and topic-swapped shop deliveries, 10 MB bodies and
//! JSON nested 10,000 deep. Exact statuses, and nothing changed (the audit is clean).

use bonus_domain::platforms::sign_base64_hmac;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
const SHOPIFY_SECRET: &str = "shpss_hostile_test_secret_01";
/// Coalition partner p1: every scope; and its shop widget (read_balance only).
const P1: &str = "bk_c35ea30d989f09685928f9f72cbe6ca0ab7e54b8_b39a745c";
const P1_WIDGET: &str = "bk_a0a4fbdce02e253cc4e7a4a079a2ea7d9c5a45b9_9bb8c954";
/// Coalition partner p2, a competitor of p1 in the same coalition: every scope.
const P2: &str = "bk_64de1aafd84d0f80467a43148cdc1f7b6377252f_8477e059";
/// Partners a and b of a closed programme: every scope.
const A: &str = "bk_e02f2a8a8f79862479d4fd13252aead4264d27d9_50c87e09";
const B: &str = "bk_a199f57af6714597a69ce0ae97c5fad0a481802a_9761810c";
const ALL: &str = "[read_balance, read_profile, hold, enrol, erase]";

fn config() -> String {
    format!(
        r#"
programmes:
  - {{id: coal, name: Coalition, kind: coalition, currency: EUR}}
  - {{id: shut, name: Closed, kind: closed, currency: EUR, min_balance_to_redeem: 0}}
partners:
  - id: p1
    programme: coal
    name: P1
    webhook_secrets: [{SECRET}]
    shopify: {{secrets: [{SHOPIFY_SECRET}]}}
    api_keys:
      - {{label: full, key: {P1}, scopes: {ALL}}}
      - {{label: widget, key: {P1_WIDGET}}}
  - id: p2
    programme: coal
    name: P2
    webhook_secrets: [{SECRET}]
    api_keys: [{{label: full, key: {P2}, scopes: {ALL}}}]
  - id: a
    programme: shut
    name: A
    webhook_secrets: [{SECRET}]
    auto_enrol: true
    api_keys: [{{label: full, key: {A}, scopes: {ALL}}}]
  - id: b
    programme: shut
    name: B
    webhook_secrets: [{SECRET}]
    api_keys: [{{label: full, key: {B}, scopes: {ALL}}}]
members:
  - {{id: OPS-1, programme: coal, email: ops.member@example.com}}
rewards:
  - {{id: cup, programme: shut, name: Cup, points: 10, stock: 5}}
"#
    )
}

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    env.call(
        method,
        path,
        &[("authorization", format!("Bearer {key}"))],
        body,
    )
    .await
}

/// A signed canonical order of `euros` at `partner` naming `member`.
async fn order(
    env: &TestEnv,
    partner: &str,
    member: &str,
    id: &str,
    euros: &str,
) -> (StatusCode, Value) {
    let body = json!({
        "type": "order.paid", "order_id": id, "member_id": member,
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "GOODS", "quantity": 1, "unit_price": euros}]
    })
    .to_string();
    let headers = env.signed(SECRET, &format!("msg-{partner}-{id}"), &body, 0);
    env.call(
        "POST",
        &format!("/v1/partners/{partner}/webhooks/orders"),
        &headers,
        body,
    )
    .await
}

async fn enrol(env: &TestEnv, key: &str, body: Value) -> String {
    let (status, p) = call(env, key, "POST", "/v1/members", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["member_id"].as_str().unwrap().to_string()
}

async fn audit_is_clean(env: &TestEnv) {
    let all = ["coal".to_string(), "shut".to_string()];
    let report = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.differences, Vec::<String>::new());
}

/// The 404 of a member that does not exist, for comparison byte for byte.
async fn not_found(env: &TestEnv, key: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, e) = call(env, key, method, path, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {e}");
    e
}

#[tokio::test]
async fn a_coalition_competitor_reads_the_balance_and_its_own_entries_and_nothing_personal() {
    let env = TestEnv::with_config(&config()).await;
    let m = enrol(
        &env,
        P1,
        json!({"email": "Anna@Example.com", "phone": "+31612345678", "name": "Anna"}),
    )
    .await;
    assert_eq!(
        order(&env, "p1", &m, "O-1", "40.00").await.0,
        StatusCode::OK
    );
    assert_eq!(
        order(&env, "p2", &m, "O-2", "25.00").await.0,
        StatusCode::OK
    );
    let member = format!("/v1/members/{m}");
    let nobody = "/v1/members/M-0000000000000000";

    // Personal data, changes and erasure: p2 gets exactly what a non-existent member gets.
    for (method, body) in [
        ("GET", Value::Null),
        ("PATCH", json!({"email": "thief@example.com"})),
        ("DELETE", Value::Null),
    ] {
        let theirs = not_found(&env, P2, method, &member, body.clone()).await;
        let none = not_found(&env, P2, method, nobody, body).await;
        assert_eq!(theirs, none, "{method}");
        assert_eq!(theirs["error"]["code"], "member_not_found");
    }
    // Ops' member is nobody's personal data either.
    not_found(&env, P1, "GET", "/v1/members/OPS-1", Value::Null).await;
    // The balance is shared in a coalition.
    let (status, b) = call(&env, P2, "GET", &format!("{member}/balance"), Value::Null).await;
    assert_eq!((status, b["pending"].as_i64()), (StatusCode::OK, Some(65)));
    // The statement: p2 sees only what p2 caused; p1 (the enroller) sees both.
    let (status, page) = call(&env, P2, "GET", &format!("{member}/entries"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let theirs: Vec<(i64, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["points"].as_i64().unwrap(),
                e["partner_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(theirs, vec![(25, "p2".to_string())]);
    let (_, page) = call(&env, P1, "GET", &format!("{member}/entries"), Value::Null).await;
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(2));
    // The widget key reads the balance, never the profile (403 before any member is read:
    // the same for an unknown member).
    for path in [member.as_str(), nobody] {
        let (status, e) = call(&env, P1_WIDGET, "GET", path, Value::Null).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("missing_scope")),
            "{path}"
        );
    }
    let (status, _) = call(
        &env,
        P1_WIDGET,
        "GET",
        &format!("{member}/balance"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The enroller sees everything, and the profile is unchanged.
    let (status, p) = call(&env, P1, "GET", &member, Value::Null).await;
    assert_eq!(
        (status, p["email"].as_str(), p["name"].as_str()),
        (StatusCode::OK, Some("anna@example.com"), Some("Anna"))
    );
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn in_a_closed_programme_an_order_grants_nothing_and_tells_nothing() {
    let env = TestEnv::with_config(&config()).await;
    let m = enrol(&env, A, json!({"email": "bo@example.com"})).await;
    assert_eq!(order(&env, "a", &m, "O-1", "30.00").await.0, StatusCode::OK);
    let before = env.store.get_account("shut", &m).await.unwrap().unwrap();

    // b posts a signed 0.00 order naming a's member, and one naming an id nobody has (b
    // does not auto-enrol): the same answer, and neither touches anything.
    let (s1, named) = order(&env, "b", &m, "B-1", "0.00").await;
    let (s2, unknown) = order(&env, "b", "M-FFFFFFFFFFFFFFFF", "B-2", "0.00").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED),
        "{named} {unknown}"
    );
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("order_id");
        v.as_object_mut().unwrap().remove("member_id");
        v
    };
    assert_eq!(strip(named.clone()), strip(unknown));
    assert_eq!(named["status"], "recorded_non_member");
    // Even with real money: the points are not booked on a's member.
    let (status, paid) = order(&env, "b", &m, "B-3", "99.00").await;
    assert_eq!(
        (status, paid["points"].as_i64()),
        (StatusCode::ACCEPTED, Some(0)),
        "{paid}"
    );
    assert_eq!(
        env.store.get_account("shut", &m).await.unwrap().unwrap(),
        before
    );

    // Every member route with b's key: exactly the 404 of a member that does not exist.
    let nobody = "M-0000000000000000";
    for (method, suffix, body) in [
        ("GET", "", Value::Null),
        ("PATCH", "", json!({"name": "x"})),
        ("DELETE", "", Value::Null),
        ("GET", "/balance", Value::Null),
        ("GET", "/entries", Value::Null),
        ("POST", "/holds", json!({"points": 10, "reference": "r-1"})),
        ("POST", "/rewards/cup/claim", json!({"reference": "c-1"})),
    ] {
        let theirs = not_found(
            &env,
            B,
            method,
            &format!("/v1/members/{m}{suffix}"),
            body.clone(),
        )
        .await;
        let none = not_found(
            &env,
            B,
            method,
            &format!("/v1/members/{nobody}{suffix}"),
            body,
        )
        .await;
        assert_eq!(theirs, none, "{method} {suffix}");
    }
    // A partner cannot choose an id (which would tell it that the id is taken).
    let (status, e) = call(&env, B, "POST", "/v1/members", json!({"member_id": m})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("member_id_assigned"))
    );
    // a's hold is not b's to see, capture or void.
    env.clock.advance(chrono::Duration::days(15));
    let (status, h) = call(
        &env,
        A,
        "POST",
        &format!("/v1/members/{m}/holds"),
        json!({"points": 10, "reference": "r-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{h}");
    let hold = h["hold_id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/v1/holds/{hold}")),
        ("POST", format!("/v1/holds/{hold}/capture")),
        ("POST", format!("/v1/holds/{hold}/void")),
    ] {
        let (status, e) = call(&env, B, method, &path, Value::Null).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("hold_not_found")),
            "{path}"
        );
    }
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn made_up_keys_cost_no_read_and_unknown_partners_one_per_cache_period() {
    let env = TestEnv::with_config(&config()).await;
    env.requests.reset();
    let seeded = bonus_domain::random::SeededRandom::new(99);
    let random: &dyn bonus_domain::random::Random = &seeded;
    for i in 0..200 {
        // Random tokens, and tokens shaped like keys with a wrong checksum.
        let token = if i % 2 == 0 {
            random.hex(24)
        } else {
            format!("bk_{}_{}", random.hex(20), random.hex(4))
        };
        let (status, e) = call(
            &env,
            &token,
            "GET",
            "/v1/members/OPS-1/balance",
            Value::Null,
        )
        .await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    assert_eq!(env.requests.total(), 0, "{:?}", env.requests.snapshot());
    println!(
        "FIGURE 200 made-up keys: {} DynamoDB requests",
        env.requests.total()
    );
    // A signed delivery for 200 made-up partner ids: the list of partners is read once.
    for i in 0..200 {
        let (status, _) = order(&env, &format!("nobody-{i}"), "OPS-1", "X-1", "1.00").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let reads = env.requests.snapshot();
    assert_eq!(env.requests.total(), 2, "{reads:?}");
    println!("FIGURE 200 unknown partner ids: {reads:?}");
    assert_eq!(
        (reads.get("GetItem"), reads.get("BatchGetItem")),
        (Some(&1), Some(&1))
    );
    // A real key works, and a real partner still books.
    assert_eq!(
        call(&env, P1, "GET", "/v1/members/OPS-1/balance", Value::Null)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        order(&env, "p1", "OPS-1", "O-1", "10.00").await.0,
        StatusCode::OK
    );
}

async fn shopify(
    env: &TestEnv,
    topic: &str,
    body: &str,
    webhook_id: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let headers = [
        ("content-type", "application/json".to_string()),
        ("x-shopify-topic", topic.to_string()),
        (
            "x-shopify-hmac-sha256",
            sign_base64_hmac(secret, body.as_bytes()),
        ),
        ("x-shopify-webhook-id", webhook_id.to_string()),
    ];
    env.call(
        "POST",
        "/v1/partners/p1/webhooks/shopify",
        &headers,
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn forged_replayed_stale_and_topic_swapped_shop_deliveries_change_nothing() {
    let env = TestEnv::with_config(&config()).await;
    let now = env.clock_now();
    let paid = json!({
        "id": 7001, "email": "ops.member@example.com", "currency": "EUR", "financial_status": "paid",
        "created_at": now.to_rfc3339(), "processed_at": now.to_rfc3339(), "updated_at": now.to_rfc3339(),
        "line_items": [{"id": 1, "sku": "GOODS", "quantity": 1, "price": "50.00"}],
        "note_attributes": [{"name": "bonus_member_id", "value": "OPS-1"}]
    })
    .to_string();
    let total = |env: &TestEnv| {
        let store = env.store.clone();
        async move {
            store
                .get_account("coal", "OPS-1")
                .await
                .unwrap()
                .unwrap()
                .lifetime_earned
        }
    };
    // Forged: another secret.
    let (status, _) = shopify(&env, "orders/paid", &paid, "w-0", "shpss_forged_secret_000").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, first) = shopify(&env, "orders/paid", &paid, "w-1", SHOPIFY_SECRET).await;
    assert_eq!(
        (status, first["points"].as_i64()),
        (StatusCode::OK, Some(50)),
        "{first}"
    );
    // The captured delivery again under a new id, and with the topic swapped: the first
    // answer from memory, nothing reversed.
    for (topic, id) in [("orders/paid", "w-2"), ("orders/cancelled", "w-3")] {
        let (status, again) = shopify(&env, topic, &paid, id, SHOPIFY_SECRET).await;
        assert_eq!((status, &again), (StatusCode::OK, &first), "{topic}");
    }
    // The same order's body, changed a little (so no memory), sent as a cancellation: the
    // body says it is not cancelled, so nothing is reversed.
    let mut touched: Value = serde_json::from_str(&paid).unwrap();
    touched["updated_at"] = json!((now + chrono::Duration::seconds(1)).to_rfc3339());
    let (status, e) = shopify(
        &env,
        "orders/cancelled",
        &touched.to_string(),
        "w-4",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, e["status"].as_str(), e["reason"].as_str()),
        (
            StatusCode::OK,
            Some("ignored"),
            Some("the order in the body is not cancelled (no cancelled_at)")
        )
    );
    assert_eq!(total(&env).await, 50);
    // A stale body (four days old), even correctly signed and never seen: ignored.
    let mut old: Value = serde_json::from_str(&paid).unwrap();
    let four_days = (now - chrono::Duration::days(4)).to_rfc3339();
    for k in ["created_at", "processed_at", "updated_at"] {
        old[k] = json!(four_days);
    }
    old["id"] = json!(7002);
    let (status, e) = shopify(&env, "orders/paid", &old.to_string(), "w-5", SHOPIFY_SECRET).await;
    assert_eq!(
        (status, e["reason"].as_str()),
        (
            StatusCode::OK,
            Some("the body is older than 72 hours (a replay)")
        )
    );
    // A canonical webhook replayed after 10 minutes: its signed timestamp is stale.
    let body = json!({
        "type": "order.paid", "order_id": "O-9", "member_id": "OPS-1",
        "occurred_at": now.to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "GOODS", "quantity": 1, "unit_price": "10.00"}]
    })
    .to_string();
    let headers = env.signed(SECRET, "msg-old", &body, 600);
    let (status, _) = env
        .call("POST", "/v1/partners/p1/webhooks/orders", &headers, body)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Backdated past the allowed delay: refused (it would skip the return window).
    let body = json!({
        "type": "order.paid", "order_id": "O-10", "member_id": "OPS-1",
        "occurred_at": (now - chrono::Duration::days(8)).to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "GOODS", "quantity": 1, "unit_price": "10.00"}]
    })
    .to_string();
    let headers = env.signed(SECRET, "msg-backdated", &body, 0);
    let (status, e) = env
        .call("POST", "/v1/partners/p1/webhooks/orders", &headers, body)
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("occurred_at_too_old")
        )
    );
    assert_eq!(total(&env).await, 50);
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn ten_megabyte_bodies_and_deep_json_are_refused_cleanly() {
    let env = TestEnv::with_config(&config()).await;
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let headers = env.signed(SECRET, "msg-huge", &huge, 0);
    for (path, headers) in [
        ("/v1/partners/p1/webhooks/orders", headers),
        (
            "/v1/members",
            vec![("authorization", format!("Bearer {P1}"))],
        ),
    ] {
        let (status, e) = env.call("POST", path, &headers, huge.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")),
            "{path}"
        );
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let headers = env.signed(SECRET, "msg-deep", &deep, 0);
    let (status, e) = env
        .call(
            "POST",
            "/v1/partners/p1/webhooks/orders",
            &headers,
            deep.clone(),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json")),
        "{e}"
    );
    let (status, e) = call(&env, P1, "POST", "/v1/members", json!({})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an empty enrolment is fine: {e}"
    );
    let (status, e) = env
        .call(
            "POST",
            "/v1/members",
            &[("authorization", format!("Bearer {P1}"))],
            deep,
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json")),
        "{e}"
    );
    audit_is_clean(&env).await;
}
