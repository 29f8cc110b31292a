//! The demo that `make run` seeds and prints: every example payload in infra/examples, signed
//! as the CLI signs it, gives the points the "Try:" list promises.

use bonus_ops::webhook::{headers, Platform};
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::Value;

const DEMO: &str = include_str!("../../infra/demo.yaml");
const STANDARD_SECRET: &str = "whsec_ZGVtby12ZWxvLXNob3Atd2ViaG9vay1zZWNyZXQ=";
const SHOPIFY_SECRET: &str = "shpss_demo_velo_shop_secret_0001";
const WOO_SECRET: &str = "wc_demo_velo_shop_secret_0001";

fn example(name: &str) -> String {
    let path = format!("{}/../infra/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An example as `bonus webhook send` sends it: moved in time to the (test) clock's now.
fn example_now(env: &TestEnv, platform: Platform, name: &str) -> String {
    let body = bonus_ops::webhook::redate(example(name).as_bytes(), platform, env.clock_now());
    String::from_utf8(body.unwrap()).unwrap()
}

async fn send(env: &TestEnv, platform: Platform, topic: &str, name: &str) -> (StatusCode, Value) {
    let body = example_now(env, platform, name);
    let signed = match platform {
        Platform::Standard => env.signed(STANDARD_SECRET, "msg_demo", &body, 0),
        Platform::Shopify => headers(platform, SHOPIFY_SECRET, topic, body.as_bytes()).unwrap(),
        Platform::Woocommerce => headers(platform, WOO_SECRET, topic, body.as_bytes()).unwrap(),
    };
    let path = format!("/v1/partners/velo-shop/{}", platform.default_path());
    env.call("POST", &path, &signed, body).await
}

async fn total(env: &TestEnv) -> i64 {
    let headers = [(
        "authorization",
        "Bearer bk_524fbb972e11442b95a797fe0cb7b75f7e85ddcd_a8887692".to_string(),
    )];
    let (_, b) = env
        .call(
            "GET",
            "/v1/members/M-1001/balance",
            &headers,
            bytes::Bytes::new(),
        )
        .await;
    b["total"].as_i64().unwrap_or(i64::MIN)
}

#[tokio::test]
async fn the_demo_examples_earn_and_reverse_what_the_dev_server_says() {
    let env = TestEnv::with_config(DEMO).await;
    let steps = [
        (Platform::Standard, "", "order-paid.json", 99, 99),
        (Platform::Standard, "", "refund.json", 49, 50),
        (
            Platform::Shopify,
            "orders/paid",
            "shopify-orders-paid.json",
            120,
            170,
        ),
        (
            Platform::Shopify,
            "refunds/create",
            "shopify-refund.json",
            10,
            160,
        ),
        (
            Platform::Woocommerce,
            "order.updated",
            "woocommerce-order.json",
            90,
            250,
        ),
        (
            Platform::Woocommerce,
            "order.updated",
            "woocommerce-refunded.json",
            90,
            160,
        ),
    ];
    for (platform, topic, name, points, balance) in steps {
        let (status, body) = send(&env, platform, topic, name).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let got = body["points"].as_i64().or_else(|| {
            body["steps"]
                .as_array()
                .map(|s| s.iter().filter_map(|x| x["points"].as_i64()).sum())
        });
        assert_eq!(got, Some(points), "{name}: {body}");
        assert_eq!(total(&env).await, balance, "after {name}");
    }
    // M-1002 buys for ACME: 150 points, 29 of them M-1002's (the README's numbers).
    let (status, body) = send(&env, Platform::Standard, "", "order-company.json").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["points"].as_i64(),
            body["employee_points"].as_i64(),
            body["earned_for"].as_str()
        ),
        (Some(150), Some(29), Some("ACME")),
        "{body}"
    );
}

#[tokio::test]
async fn the_demo_checkout_and_gift_shop_work_with_the_demo_keys() {
    let env = TestEnv::with_config(DEMO).await;
    let body = example_now(&env, Platform::Standard, "bonvito-birthday-cake.json");
    let headers = env.signed(
        "whsec_ZGVtby1ib252aXRvLWJha2VyeS1zZWNyZXQ=",
        "msg_bv",
        &body,
        0,
    );
    let (status, answer) = env
        .call(
            "POST",
            "/v1/partners/bonvito-bakery/webhooks/orders",
            &headers,
            body,
        )
        .await;
    assert_eq!(
        (status, answer["points"].as_i64()),
        (StatusCode::OK, Some(1500)),
        "{answer}"
    );
    // Earned at the bakery (available at once: release_days 0), spent at the café (a coalition).
    let cafe = [(
        "authorization",
        "Bearer bk_7d5431b4b3f1054964a339c38c77f9b5b1f83e4e_947ed219".to_string(),
    )];
    let (status, hold) = env
        .call(
            "POST",
            "/v1/members/B-2001/holds",
            &cafe,
            r#"{"points": 1000, "reference": "receipt-42"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let capture = format!("/v1/holds/{}/capture", hold["hold_id"].as_str().unwrap());
    let (status, done) = env
        .call("POST", &capture, &cafe, r#"{"points": 300}"#)
        .await;
    assert_eq!(
        (status, done["captured"].as_i64()),
        (StatusCode::OK, Some(300)),
        "{done}"
    );
    let bakery = [(
        "authorization",
        "Bearer bk_d7a80e3ae3f22fd210cb0bc29169db8f958f76f0_9dda6a6c".to_string(),
    )];
    let (_, rewards) = env.call("GET", "/v1/rewards", &bakery, "").await;
    assert_eq!(rewards["rewards"].as_array().map(Vec::len), Some(2));
    let (status, claim) = env
        .call(
            "POST",
            "/v1/members/B-2001/rewards/espresso-cup/claim",
            &bakery,
            r#"{"reference":"web-1"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    assert!(claim["voucher_code"]
        .as_str()
        .is_some_and(|v| v.len() == 19));
    let (_, b) = env
        .call("GET", "/v1/members/B-2001/balance", &bakery, "")
        .await;
    assert_eq!(b["available"], 700);
    // Below the 1,000-point minimum now: no more spending.
    let (status, e) = env
        .call(
            "POST",
            "/v1/members/B-2001/rewards/espresso-cup/claim",
            &bakery,
            r#"{"reference":"web-2"}"#,
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("below_min_balance"))
    );
}

/// The README's transfer: B-2002 (the bakery's member) earns from the catering example and
/// sends 1,500 points to B-2001 with the bakery's till key: a 2% fee of 30.
#[tokio::test]
async fn the_demo_transfer_works_as_the_readme_shows() {
    let env = TestEnv::with_config(DEMO).await;
    let body = example_now(&env, Platform::Standard, "bonvito-catering.json");
    let signed = env.signed(
        "whsec_ZGVtby1ib252aXRvLWJha2VyeS1zZWNyZXQ=",
        "msg_cat",
        &body,
        0,
    );
    let (status, answer) = env
        .call(
            "POST",
            "/v1/partners/bonvito-bakery/webhooks/orders",
            &signed,
            body,
        )
        .await;
    assert_eq!(
        (status, answer["points"].as_i64()),
        (StatusCode::OK, Some(40_000)),
        "{answer}"
    );
    let key = [(
        "authorization",
        "Bearer bk_d7a80e3ae3f22fd210cb0bc29169db8f958f76f0_9dda6a6c".to_string(),
    )];
    let body = r#"{"to_member_id":"B-2001","points":1500,"reference":"gift-1"}"#;
    let (status, t) = env
        .call("POST", "/v1/members/B-2002/transfers", &key, body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(
        (t["points"].as_i64(), t["fee"].as_i64(), t["to"].as_str()),
        (Some(1500), Some(30), Some("B-•••01"))
    );
}

/// The bakery's own rate (`rates` in infra/demo.yaml, or `PATCH /v1/partner`): bread at 5
/// points per euro there, cocktails at the programme's 10, as the README's table says.
#[tokio::test]
async fn the_bakery_earns_bread_at_its_own_rate() {
    let env = TestEnv::with_config(DEMO).await;
    let body = example_now(&env, Platform::Standard, "bonvito-cocktails.json");
    let headers = env.signed(
        "whsec_ZGVtby1ib252aXRvLWJha2VyeS1zZWNyZXQ=",
        "msg_bread",
        &body,
        0,
    );
    let (status, answer) = env
        .call(
            "POST",
            "/v1/partners/bonvito-bakery/webhooks/orders",
            &headers,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["lines"][0]["points"], 149, "{answer}");
    assert_eq!(answer["lines"][1]["points"], 19, "{answer}");
    assert_eq!(answer["lines"][1]["coefficient"], "5", "{answer}");
    assert_eq!(answer["points"], 168, "{answer}");
    // The bakery's till has no `manage`: the partner API refuses it. The back-office key is
    // velo-shop's.
    let till = [(
        "authorization",
        "Bearer bk_d7a80e3ae3f22fd210cb0bc29169db8f958f76f0_9dda6a6c".to_string(),
    )];
    let (status, _) = env.call("GET", "/v1/partner", &till, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let office = [(
        "authorization",
        "Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898".to_string(),
    )];
    let (status, me) = env.call("GET", "/v1/partner", &office, "").await;
    assert_eq!(
        (status, me["partner_id"].as_str()),
        (StatusCode::OK, Some("velo-shop"))
    );
}

/// README "A vendor's campaign": velo-shop's back office creates a campaign over the partner
/// API, `infra/examples/order-race-helmets.json` earns 258 + 2 x 130, and the report shows it.
#[tokio::test]
async fn the_readme_vendor_campaign_pays_130_points_per_helmet() {
    let env = TestEnv::with_config(DEMO).await;
    let office = [
        (
            "authorization",
            "Bearer bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898".to_string(),
        ),
        ("bonus-actor", "Jana Novak".to_string()),
    ];
    let campaign = serde_json::json!({"id": "race-helmets", "name": "Race helmets, 1.3% of cost",
        "skus": ["HELMET-RACE"], "starts_on": "2026-01-01", "ends_on": "2027-12-31",
        "rule": {"kind": "cost_percent", "percent": "1.3"}, "budget": 150000});
    let (status, created) = env
        .call(
            "POST",
            "/v1/partner/campaigns",
            &office,
            campaign.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, answer) = send(&env, Platform::Standard, "", "order-race-helmets.json").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["points"], 518, "{answer}");
    assert_eq!(
        answer["lines"][0]["campaigns"][0]["campaign_id"],
        "race-helmets"
    );
    assert_eq!(answer["lines"][0]["campaigns"][0]["points"], 260);
    let (status, report) = env
        .call(
            "GET",
            "/v1/partner/campaigns/race-helmets/report",
            &office,
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["periods"][3]["points_issued"], 260);
    assert_eq!(report["periods"][3]["quantity"], 2);
    // The README's goodwill credit: pending above the threshold, approved by Bob.
    let body = serde_json::json!({"member_id": "M-1001", "points": 15000, "reason": "goodwill",
        "note": "Sorry about the lost parcel", "reference": "ticket-4711"});
    let ann = [office[0].clone(), ("bonus-actor", "Ann".to_string())];
    let (status, asked) = env
        .call("POST", "/v1/partner/adjustments", &ann, body.to_string())
        .await;
    assert_eq!(
        (status, asked["status"].as_str()),
        (StatusCode::CREATED, Some("pending_approval")),
        "{asked}"
    );
    let bob = [office[0].clone(), ("bonus-actor", "Bob".to_string())];
    let path = format!(
        "/v1/partner/adjustments/{}/approve",
        asked["adjustment_id"].as_str().unwrap()
    );
    let (status, done) = env.call("POST", &path, &bob, "").await;
    assert_eq!(
        (status, done["applied"].as_i64()),
        (StatusCode::OK, Some(15000)),
        "{done}"
    );
    assert_eq!(total(&env).await, 518 + 15000);
}
