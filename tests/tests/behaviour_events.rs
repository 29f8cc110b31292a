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

/// A behaviour campaign with a budget of 1,200 points at 500 an event: two events earn, the
/// third finds 200 left and earns nothing (`budget_exhausted`); ten racing events never take
/// more than the budget; `bonus apply` with a larger budget tops it up, a smaller one is
/// refused.
#[tokio::test]
async fn a_behaviour_budget_pays_whole_events_and_is_never_overspent() {
    let budgeted = config().replace("    points: 500\n", "    points: 500\n    budget: 1200\n");
    let env = std::sync::Arc::new(TestEnv::with_config(&budgeted).await);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move {
                let member = if i % 2 == 0 { "M-1" } else { "M-2" };
                Box::pin(post(
                    &env,
                    &event("elearning.completed", &format!("E-{i}"), member),
                ))
                .await
            })
        })
        .collect();
    let mut earned = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        match body["status"].as_str() {
            Some("earned") => earned += body["points"].as_i64().unwrap(),
            Some("budget_exhausted") => assert_eq!(body["points"], 0),
            other => panic!("{other:?}: {body}"),
        }
    }
    assert_eq!(earned, 1_000, "two events of 500 fit into 1,200");
    let left = env
        .store
        .get(bonus_dynamodb::keys::budget_shard(
            "shop",
            "elearning#behaviour",
            0,
        ))
        .await
        .unwrap();
    let left: bonus_domain::budget::BudgetShard = left.unwrap();
    assert_eq!((left.remaining, left.spent), (200, 1_000));
    // Topped up by applying a larger budget; a smaller one is refused.
    let more = budgeted.replace("budget: 1200", "budget: 1700");
    let plan = bonus_ops::apply::plan_file(&more).unwrap();
    bonus_ops::apply::apply(&env.store, &plan).await.unwrap();
    let (_, body) = post(&env, &event("elearning.completed", "E-after", "M-1")).await;
    assert_eq!(
        (body["status"].as_str(), body["points"].as_i64()),
        (Some("earned"), Some(500)),
        "{body}"
    );
    let less = budgeted.replace("budget: 1200", "budget: 100");
    let plan = bonus_ops::apply::plan_file(&less).unwrap();
    let refused = bonus_ops::apply::apply(&env.store, &plan)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("budgets only grow"), "{refused}");
}

/// A behaviour campaign made over the partner API pays at once (the process forgets its
/// cached configuration), its budget only grows, and another partner never sees it.
#[tokio::test]
async fn a_behaviour_campaign_over_the_partner_api_pays_within_its_budget_and_tops_up() {
    let config = CONFIG
        .replace(
            "        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617\n",
            "        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617\n        scopes: [manage]\n",
        )
        .replace(
            "        key: bk_4055253a26a81c31911b05f2cbd667fd6923a2af_b81e5d11\n",
            "        key: bk_4055253a26a81c31911b05f2cbd667fd6923a2af_b81e5d11\n        scopes: [manage]\n",
        );
    let env = TestEnv::with_config(&config).await;
    let shop = integration_tests::API_KEY;
    let body = json!({"id": "course", "name": "Bike care course", "event_type": "course.completed",
        "points": 300, "per_member_cap": 1, "starts_on": "2026-11-01", "ends_on": "2026-12-31", "budget": 500});
    let (status, created) = env
        .call_as(
            shop,
            "Eva",
            "POST",
            "/v1/partner/behaviour-campaigns",
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        env.call_as(shop, "Eva", "POST", "/v1/partner/behaviour-campaigns", body)
            .await
            .0,
        StatusCode::OK
    );
    let (_, paid) = post(&env, &event("course.completed", "C-1", "M-1")).await;
    assert_eq!(
        (paid["status"].as_str(), paid["points"].as_i64()),
        (Some("earned"), Some(300)),
        "{paid}"
    );
    // 200 left: the next member's 300 do not fit.
    let (_, short) = post(&env, &event("course.completed", "C-2", "M-2")).await;
    assert_eq!(
        (short["status"].as_str(), short["points"].as_i64()),
        (Some("budget_exhausted"), Some(0)),
        "{short}"
    );
    let (status, shrink) = env
        .call_as(
            shop,
            "Eva",
            "PATCH",
            "/v1/partner/behaviour-campaigns/course",
            json!({"budget": 400}),
        )
        .await;
    assert_eq!(
        (status, shrink["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("budget_shrinks"))
    );
    let (status, topped) = env
        .call_as(
            shop,
            "Eva",
            "PATCH",
            "/v1/partner/behaviour-campaigns/course",
            json!({"budget": 1100}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{topped}");
    assert_eq!(
        (
            topped["budget"].as_i64(),
            topped["budget_remaining"].as_i64()
        ),
        (Some(1100), Some(800))
    );
    let (_, now) = post(&env, &event("course.completed", "C-3", "M-2")).await;
    assert_eq!(now["points"], 300, "{now}");
    // Validation as in the config file; the audit trail has all three writes.
    let (status, bad) = env
        .call_as(
            shop,
            "Eva",
            "PATCH",
            "/v1/partner/behaviour-campaigns/course",
            json!({"event_type": "Course Done"}),
        )
        .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    let (_, changes) = env
        .call_as(
            shop,
            "Eva",
            "GET",
            "/v1/partner/changes",
            serde_json::Value::Null,
        )
        .await;
    let ours = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["subject"] == "behaviour_campaign")
        .count();
    assert_eq!(ours, 2, "created and topped up: {changes}");
    // Another partner: the same 404 as a campaign nobody has.
    let other = integration_tests::OTHER_API_KEY;
    let theirs = env
        .call_as(
            other,
            "Rex",
            "GET",
            "/v1/partner/behaviour-campaigns/course",
            serde_json::Value::Null,
        )
        .await;
    let nobodys = env
        .call_as(
            other,
            "Rex",
            "GET",
            "/v1/partner/behaviour-campaigns/nothing",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(theirs.0, StatusCode::NOT_FOUND);
    assert_eq!(theirs, nobodys);
}
