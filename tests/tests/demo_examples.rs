//! The demo that `make run` seeds and prints: every example payload in infra/examples, signed
//! as the CLI signs it, gives the points the "Try:" list promises.

use bonus_cli::webhook::{headers, Platform};
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

async fn send(env: &TestEnv, platform: Platform, topic: &str, name: &str) -> (StatusCode, Value) {
    let body = example(name);
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
        "Bearer demo-velo-widget-key-0001".to_string(),
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
}
