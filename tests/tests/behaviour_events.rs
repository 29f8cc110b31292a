//! Behaviour events: fixed points for non-purchase events, capped per member, idempotent on
//! the event reference.

use futures::future::join_all;
use http::StatusCode;
use integration_tests::{TestEnv, CONFIG, SECRET};
use serde_json::json;

fn config() -> String {
    format!(
        "{CONFIG}behaviour_campaigns:
  - id: webinars
    partner: shop
    name: Webinar attendance
    event_type: webinar.attended
    points: 250
    per_member_cap: 2
    starts_on: 2026-01-01
    ends_on: 2026-12-31
  - id: elearning
    partner: shop
    name: E-learning
    event_type: elearning.completed
    points: 500
    starts_on: 2026-01-01
    ends_on: 2026-12-31
"
    )
}

fn event(kind: &str, reference: &str, member: &str) -> String {
    json!({"type": kind, "event_ref": reference, "member_id": member, "occurred_at": "2026-11-23T10:00:00Z"}).to_string()
}

async fn post(env: &TestEnv, body: &str) -> (StatusCode, serde_json::Value) {
    let headers = env.signed(SECRET, "msg_evt", body, 0);
    env.call(
        "POST",
        "/v1/partners/shop/events",
        &headers,
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_webinar_earns_fixed_points_up_to_the_cap_per_member() {
    let env = TestEnv::with_config(&config()).await;
    let (status, first) = post(&env, &event("webinar.attended", "W-1", "M-1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (
            first["status"].as_str(),
            first["points"].as_i64(),
            first["campaign_id"].as_str()
        ),
        (Some("earned"), Some(250), Some("webinars"))
    );
    assert_eq!(first["available_at"], "2026-12-07T10:00:00Z");
    let (_, second) = post(&env, &event("webinar.attended", "W-2", "M-1")).await;
    assert_eq!(second["points"], 250);
    let (status, third) = post(&env, &event("webinar.attended", "W-3", "M-1")).await;
    assert_eq!(
        (status, third["status"].as_str(), third["points"].as_i64()),
        (StatusCode::OK, Some("cap_reached"), Some(0))
    );
    // The cap is per member and per campaign.
    assert_eq!(
        post(&env, &event("webinar.attended", "W-4", "M-2")).await.1["points"],
        250
    );
    assert_eq!(
        post(&env, &event("elearning.completed", "E-1", "M-1"))
            .await
            .1["points"],
        500
    );

    let (_, balance) = env.balance("M-1").await;
    assert_eq!(balance["pending"], 1000);
    let entries = env.store.entries("velo", "M-1").await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.points).collect::<Vec<_>>(),
        vec![250, 250, 500]
    );
    assert_eq!(entries[0].reason, "webinar.attended W-1 at shop");
    let account = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(account.behaviour.get("webinars"), Some(&2));
}

#[tokio::test]
async fn the_same_event_reference_ten_times_concurrently_pays_once() {
    let env = TestEnv::with_config(&config()).await;
    let body = event("elearning.completed", "E-42", "M-1");
    let headers = env.signed(SECRET, "msg_same", &body, 0);
    let answers = join_all(
        (0..10).map(|_| env.call("POST", "/v1/partners/shop/events", &headers, body.clone())),
    )
    .await;
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].1["points"], 500);
    assert_eq!(env.balance("M-1").await.1["pending"], 500);
    // The same reference with another body is a conflict.
    let (status, b) = post(&env, &event("elearning.completed", "E-42", "M-2")).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_conflict"))
    );
}

#[tokio::test]
async fn refusals_unsigned_unknown_types_and_non_members() {
    let env = TestEnv::with_config(&config()).await;
    let body = event("webinar.attended", "W-9", "M-1");
    let (status, _) = env
        .call("POST", "/v1/partners/shop/events", &[], body.clone())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, b) = post(&env, &event("event.attended", "V-1", "M-1")).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_active_campaign"))
    );
    let (status, b) = post(&env, &event("Webinar", "V-2", "M-1")).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event_type"))
    );
    let (status, b) = post(&env, &event("webinar.attended", "V 3", "M-1")).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event_ref"))
    );
    let (status, b) = post(&env, &event("webinar.attended", "V-4", "GHOST")).await;
    assert_eq!(
        (status, b["status"].as_str(), b["points"].as_i64()),
        (StatusCode::ACCEPTED, Some("recorded_non_member"), Some(0))
    );
    assert_eq!(env.balance("M-1").await.1["total"], 0);
}
