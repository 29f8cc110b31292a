//! Shopify and WooCommerce webhooks end to end: signed fixtures through the real handler and
//! the real SDK against the embedded DynamoDB.

use base64::Engine;
use bonus_domain::platforms::sign_base64_hmac;
use bytes::Bytes;
use http::StatusCode;
use integration_tests::{TestEnv, CONFIG};
use serde_json::{json, Value};

const SHOPIFY_SECRET: &str = "shpss_test_secret_0001";
const SHOPIFY_NEW_SECRET: &str = "shpss_rotated_secret_0002";
const WOO_SECRET: &str = "wc_secret_0123456789abcdef";

const PAID: &str = include_str!("../fixtures/shopify/orders-paid.json");
const ONE_OF_THREE: &str = include_str!("../fixtures/shopify/refunds-create-one-of-three.json");
const SHIPPING_ONLY: &str = include_str!("../fixtures/shopify/refunds-create-shipping-only.json");
const JPY: &str = include_str!("../fixtures/shopify/orders-paid-jpy.json");
const WOO_PROCESSING: &str = include_str!("../fixtures/woocommerce/order-processing.json");
const WOO_PARTIAL: &str = include_str!("../fixtures/woocommerce/order-partial-refund.json");
const WOO_REFUNDED: &str = include_str!("../fixtures/woocommerce/order-refunded.json");

/// The test configuration with the shop linked to Shopify and WooCommerce, members known by
/// e-mail and by customer id, and a yen shop.
fn config() -> String {
    let mut c = CONFIG.replace(
        "    name: Shop\n",
        &format!(
            "    name: Shop\n    shopify: {{secrets: [{SHOPIFY_SECRET}, {SHOPIFY_NEW_SECRET}]}}\n    woocommerce: {{secrets: [{WOO_SECRET}]}}\n"
        ),
    );
    c = c.replace(
        "programmes:\n",
        "programmes:\n  - id: tokyo\n    name: Tokyo\n    kind: closed\n    currency: JPY\n",
    );
    c = c.replace(
        "members:\n",
        &format!(
            "  - id: tokyo-shop\n    programme: tokyo\n    name: Tokyo shop\n    shopify: {{secrets: [{SHOPIFY_SECRET}]}}\nmembers:\n  - id: J-1\n    programme: tokyo\n  - id: ANN\n    programme: velo\n    email: ann.member@example.com\n  - id: CUST\n    programme: velo\n    external_ids: {{shop: \"7390123456\"}}\n"
        ),
    );
    c
}

async fn shopify(
    env: &TestEnv,
    partner: &str,
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
        (
            "x-shopify-shop-domain",
            "velo-test.myshopify.com".to_string(),
        ),
    ];
    env.call(
        "POST",
        &format!("/v1/partners/{partner}/webhooks/shopify"),
        &headers,
        body.to_string(),
    )
    .await
}

async fn woo(env: &TestEnv, body: &str, secret: &str) -> (StatusCode, Value) {
    let headers = [
        ("content-type", "application/json".to_string()),
        ("x-wc-webhook-topic", "order.updated".to_string()),
        (
            "x-wc-webhook-signature",
            sign_base64_hmac(secret, body.as_bytes()),
        ),
        ("x-wc-webhook-delivery-id", "1".to_string()),
    ];
    env.call(
        "POST",
        "/v1/partners/shop/webhooks/woocommerce",
        &headers,
        body.to_string(),
    )
    .await
}

async fn total(env: &TestEnv, member: &str) -> i64 {
    env.balance(member).await.1["total"]
        .as_i64()
        .unwrap_or(i64::MIN)
}

fn without_customer(body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["customer"] = Value::Null;
    v.to_string()
}

#[tokio::test]
async fn a_signed_shopify_paid_order_earns_and_a_forged_one_gets_401() {
    let env = TestEnv::with_config(&config()).await;
    // Forged: signed with another secret, or tampered after signing.
    let (status, _) = shopify(
        &env,
        "shop",
        "orders/paid",
        PAID,
        "w-0",
        "shpss_forged_secret_123",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let headers = [
        ("x-shopify-topic", "orders/paid".to_string()),
        (
            "x-shopify-hmac-sha256",
            sign_base64_hmac(SHOPIFY_SECRET, PAID.as_bytes()),
        ),
    ];
    let tampered = PAID.replace("\"59.95\"", "\"599.50\"");
    let (status, _) = env
        .call(
            "POST",
            "/v1/partners/shop/webhooks/shopify",
            &headers,
            tampered,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A partner without Shopify gets the same 401.
    let (status, _) = shopify(
        &env,
        "other-shop",
        "orders/paid",
        PAID,
        "w-0",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(total(&env, "CUST").await, 0);

    // Signed: matched by the shop's customer id; 90 (helmets) + 30 (bottles) + 0 (free socks).
    let (status, body) = shopify(&env, "shop", "orders/paid", PAID, "w-1", SHOPIFY_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["member_id"].as_str(), body["points"].as_i64()),
        (Some("CUST"), Some(120))
    );
    assert_eq!(total(&env, "CUST").await, 120);

    // The rotated secret works as well; the same order again changes nothing.
    let (status, again) =
        shopify(&env, "shop", "orders/paid", PAID, "w-2", SHOPIFY_NEW_SECRET).await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    // Shopify's retry of the same delivery is answered from memory.
    let (status, again) = shopify(&env, "shop", "orders/paid", PAID, "w-1", SHOPIFY_SECRET).await;
    assert_eq!((status, &again), (StatusCode::OK, &body));
    assert_eq!(total(&env, "CUST").await, 120);
    assert_eq!(env.store.entries("velo", "CUST").await.unwrap().len(), 1);
}

#[tokio::test]
async fn members_are_matched_by_explicit_id_then_customer_id_then_email() {
    let env = TestEnv::with_config(&config()).await;
    // No customer: the e-mail address finds ANN (through the keyed hash, any case).
    let by_email = without_customer(PAID);
    let (_, body) = shopify(
        &env,
        "shop",
        "orders/paid",
        &by_email,
        "w-1",
        SHOPIFY_SECRET,
    )
    .await;
    // The points go to ANN, but the answer never names a member found by e-mail address: an
    // address must not lead a partner to a member id.
    assert_eq!(
        (body["member_id"].as_str(), body["points"].as_i64()),
        (None, Some(120)),
        "{body}"
    );
    assert!(!body.to_string().contains("ANN"), "{body}");
    assert_eq!(total(&env, "ANN").await, 120);

    // An explicit member id in the note attributes wins over everything.
    let mut explicit: Value = serde_json::from_str(PAID).unwrap();
    explicit["id"] = json!(5012345678902u64);
    explicit["note_attributes"] = json!([{"name": "bonus_member_id", "value": "M-2"}]);
    let (_, body) = shopify(
        &env,
        "shop",
        "orders/paid",
        &explicit.to_string(),
        "w-2",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(body["member_id"], "M-2", "{body}");

    // Nobody known: recorded as a non-member's order (202, nothing earned).
    let mut stranger: Value = serde_json::from_str(&without_customer(PAID)).unwrap();
    stranger["id"] = json!(5012345678903u64);
    stranger["email"] = json!("nobody@example.org");
    stranger["contact_email"] = Value::Null;
    let (status, body) = shopify(
        &env,
        "shop",
        "orders/paid",
        &stranger.to_string(),
        "w-3",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("recorded_non_member"))
    );
}

#[tokio::test]
async fn shopify_refunds_and_cancellation_reverse_what_they_cover() {
    let env = TestEnv::with_config(&config()).await;
    shopify(&env, "shop", "orders/paid", PAID, "w-1", SHOPIFY_SECRET).await;
    // One bottle of three: 10 of the line's 30 points.
    let (status, body) = shopify(
        &env,
        "shop",
        "refunds/create",
        ONE_OF_THREE,
        "w-2",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["points"].as_i64()),
        (StatusCode::OK, Some(10)),
        "{body}"
    );
    assert_eq!(total(&env, "CUST").await, 110);
    // Only shipping refunded: shipping does not earn in this programme, so nothing comes off.
    let (status, body) = shopify(
        &env,
        "shop",
        "refunds/create",
        SHIPPING_ONLY,
        "w-3",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["points"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{body}"
    );
    // Cancelled: everything left.
    let mut cancelled: Value = serde_json::from_str(PAID).unwrap();
    cancelled["cancelled_at"] = json!("2026-11-23T12:40:00+01:00");
    let (status, body) = shopify(
        &env,
        "shop",
        "orders/cancelled",
        &cancelled.to_string(),
        "w-4",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["points"].as_i64()),
        (StatusCode::OK, Some(110)),
        "{body}"
    );
    assert_eq!(total(&env, "CUST").await, 0);
    // Topics we do not use are acknowledged, so Shopify does not retry them.
    let (status, body) = shopify(
        &env,
        "shop",
        "customers/update",
        "{}",
        "w-5",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );
}

#[tokio::test]
async fn shopify_test_orders_are_ignored_and_a_yen_shop_earns_whole_yen() {
    let env = TestEnv::with_config(&config()).await;
    let test = PAID.replace(r#""test": false"#, r#""test": true"#);
    let (status, body) = shopify(&env, "shop", "orders/paid", &test, "w-1", SHOPIFY_SECRET).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (StatusCode::OK, Some("test order"))
    );
    assert_eq!(total(&env, "CUST").await, 0);

    let (status, body) = shopify(
        &env,
        "tokyo-shop",
        "orders/paid",
        JPY,
        "w-2",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["member_id"].as_str(), body["points"].as_i64()),
        (Some("J-1"), Some(3618))
    );
}

#[tokio::test]
async fn a_base64_encoded_body_from_api_gateway_verifies_and_earns() {
    let env = TestEnv::with_config(&config()).await;
    let sig = sign_base64_hmac(SHOPIFY_SECRET, PAID.as_bytes());
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /v1/partners/{partner_id}/webhooks/shopify",
        "rawPath": "/v1/partners/shop/webhooks/shopify",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-shopify-topic": "orders/paid",
            "x-shopify-hmac-sha256": sig,
            "x-shopify-webhook-id": "w-b64"
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "POST /v1/partners/{partner_id}/webhooks/shopify",
            "stage": "$default", "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1795435200000i64,
            "http": {"method": "POST", "path": "/v1/partners/shop/webhooks/shopify", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.1", "userAgent": "Shopify-Captain-Hook"}
        },
        "body": base64::engine::general_purpose::STANDARD.encode(PAID),
        "isBase64Encoded": true
    });
    let req = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    let resp = bonus_ops::dev::dispatch(&env.ctx, bonus_lambda::run::to_http(req)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.body());
    assert_eq!(total(&env, "CUST").await, 120);
}

#[tokio::test]
async fn woocommerce_ping_earn_partial_refund_and_refunded_status() {
    let env = TestEnv::with_config(&config()).await;
    // The activation ping: unsigned form body, exactly 200.
    let headers = [(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let (status, _) = env
        .call(
            "POST",
            "/v1/partners/shop/webhooks/woocommerce",
            &headers,
            Bytes::from_static(b"webhook_id=17"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        woo(&env, WOO_PROCESSING, "wc_wrong_secret_0000000").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = woo(&env, WOO_PROCESSING, WOO_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["member_id"].as_str(), body["points"].as_i64()),
        (Some("M-1"), Some(90))
    );
    // The same delivery again (same order, modification time and status): same answer.
    assert_eq!(woo(&env, WOO_PROCESSING, WOO_SECRET).await.1, body);
    assert_eq!(total(&env, "M-1").await, 90);

    // Completed with a refund of half the order total: half of every line's points.
    let (status, body) = woo(&env, WOO_PARTIAL, WOO_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["steps"][1]["points"], 45, "{body}");
    assert_eq!(total(&env, "M-1").await, 45);

    // Refunded: the second refund and the cancellation take back the rest, exactly once.
    let (status, body) = woo(&env, WOO_REFUNDED, WOO_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(total(&env, "M-1").await, 0);
    let reversed: i64 = env
        .store
        .entries("velo", "M-1")
        .await
        .unwrap()
        .iter()
        .filter(|e| e.points < 0)
        .map(|e| e.points)
        .sum();
    assert_eq!(reversed, -90);
}

#[tokio::test]
async fn a_customer_id_added_later_to_an_enrolled_member_matches_their_orders() {
    let env = TestEnv::with_config(&config()).await;
    let later = config().replace(
        "  - id: M-2\n    programme: velo\n",
        "  - id: M-2\n    programme: velo\n    external_ids: {shop: \"555\"}\n",
    );
    let plan = bonus_ops::apply::plan_file(&later).unwrap();
    bonus_ops::apply::apply(&env.store, &plan).await.unwrap();
    let mut order: Value = serde_json::from_str(PAID).unwrap();
    order["customer"] = json!({"id": 555, "email": null});
    order["email"] = Value::Null;
    let (status, body) = shopify(
        &env,
        "shop",
        "orders/paid",
        &order.to_string(),
        "w-1",
        SHOPIFY_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["member_id"].as_str()),
        (StatusCode::OK, Some("M-2")),
        "{body}"
    );
}

#[tokio::test]
async fn a_woocommerce_cash_on_delivery_order_is_reversed_but_a_never_paid_one_leaves_nothing() {
    let env = TestEnv::with_config(&config()).await;
    let unpaid = |status: &str, id: u64, modified: &str| {
        let mut v: Value = serde_json::from_str(WOO_PROCESSING).unwrap();
        v["id"] = json!(id);
        v["status"] = json!(status);
        v["date_paid_gmt"] = Value::Null;
        v["date_modified_gmt"] = json!(modified);
        v.to_string()
    };
    // Cash on delivery: processing before payment earns; cancelled takes it back.
    let (_, body) = woo(
        &env,
        &unpaid("processing", 5001, "2026-11-23T10:00:00"),
        WOO_SECRET,
    )
    .await;
    assert_eq!(body["points"], 90, "{body}");
    let (_, body) = woo(
        &env,
        &unpaid("cancelled", 5001, "2026-11-23T11:00:00"),
        WOO_SECRET,
    )
    .await;
    assert_eq!(
        (body["status"].as_str(), body["points"].as_i64()),
        (Some("reversed"), Some(90)),
        "{body}"
    );
    assert_eq!(total(&env, "M-1").await, 0);
    // Never paid, never booked, cancelled: nothing is kept for it.
    let (status, body) = woo(
        &env,
        &unpaid("cancelled", 5002, "2026-11-23T11:00:00"),
        WOO_SECRET,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("not_booked")),
        "{body}"
    );
    let state: Option<bonus_domain::refund::OrderBook> = env
        .store
        .get(bonus_dynamodb::keys::order_book("shop", "5002"))
        .await
        .unwrap();
    assert!(state.is_none());
}
