//! The balance endpoint: authentication by partner API key, and what it may see.

use http::StatusCode;
use integration_tests::{order_paid, TestEnv, API_KEY, OTHER_API_KEY};

#[tokio::test]
async fn the_balance_needs_a_known_api_key_and_says_the_same_401_otherwise() {
    let env = TestEnv::new().await;
    let path = "/v1/members/M-1/balance";
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("authorization", "Bearer not-a-key".into())],
        vec![("authorization", format!("Basic {API_KEY}"))],
        vec![("authorization", "Bearer ".into())],
    ];
    for headers in cases {
        let (status, b) = env.call("GET", path, &headers, "").await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{headers:?}"
        );
    }
    let (status, b) = env.balance("M-1").await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(
        (b["member_id"].as_str(), b["programme_id"].as_str()),
        (Some("M-1"), Some("velo"))
    );
    assert_eq!(
        (
            b["available"].as_i64(),
            b["pending"].as_i64(),
            b["held"].as_i64(),
            b["total"].as_i64()
        ),
        (Some(0), Some(0), Some(0), Some(0))
    );
    assert_eq!(b["available_value"]["currency"], "EUR");
}

#[tokio::test]
async fn a_partner_sees_only_members_of_its_programme() {
    let env = TestEnv::new().await;
    let (status, b) = env.balance("NOBODY").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("member_not_found"))
    );
    // X-1 exists, but in the other programme.
    let (status, _) = env.balance("X-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.balance_with("M-1", OTHER_API_KEY).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.balance("a%23b").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, b) = env
        .call(
            "POST",
            "/v1/members/M-1/balance",
            &[("authorization", format!("Bearer {API_KEY}"))],
            "",
        )
        .await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn balances_are_per_member_and_show_releases_and_value() {
    let env = TestEnv::new().await;
    env.order(&order_paid("A-1", Some("M-1"), &[("X", 1, "12.34")]))
        .await;
    env.order(&order_paid("A-2", Some("M-2"), &[("X", 3, "100.00")]))
        .await;
    let (_, one) = env.balance("M-1").await;
    let (_, two) = env.balance("M-2").await;
    assert_eq!(
        (one["pending"].as_i64(), two["pending"].as_i64()),
        (Some(12), Some(300))
    );
    assert_eq!(two["releases"][0]["points"], 300);
    env.clock.set("2026-12-08T00:00:00Z".parse().unwrap());
    let (_, two) = env.balance("M-2").await;
    assert_eq!(
        (
            two["available"].as_i64(),
            two["available_value"]["amount"].as_str()
        ),
        (Some(300), Some("3.00"))
    );
}
