//! Earning rules end to end through signed webhooks: product groups and tiers.

use http::StatusCode;
use integration_tests::{order_paid, TestEnv};
use serde_json::Value;

async fn outbox(env: &TestEnv) -> Vec<bonus_domain::events::DomainEvent> {
    let mut events = Vec::new();
    for shard in 0..bonus_dynamodb::keys::OUTBOX_SHARDS {
        events.extend(env.store.outbox_shard(shard).await.unwrap());
    }
    events
}

#[tokio::test]
async fn an_order_that_lifts_a_member_from_silver_to_gold_earns_at_gold() {
    let env = TestEnv::new().await;
    let (status, first) = env
        .order(&order_paid("T-1", Some("M-1"), &[("BIKE", 1, "4900.00")]))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["points"].as_i64(), first["tier"].as_str()),
        (Some(4900), Some("Silver"))
    );

    // 4,900 + 200 crosses Gold (5,000): this order's own points earn x1.25.
    let (status, second) = env
        .order(&order_paid("T-2", Some("M-1"), &[("BIKE", 1, "200.00")]))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(
        (second["points"].as_i64(), second["tier"].as_str()),
        (Some(250), Some("Gold"))
    );
    let line = &second["lines"][0];
    assert_eq!(
        (
            line["tier"].as_str(),
            line["tier_multiplier"].as_str(),
            line["exact_points"].as_str()
        ),
        (Some("Gold"), Some("1.25"), Some("250"))
    );

    let account = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!((account.tier.as_str(), account.entry_seq), ("Gold", 2));
    let tier_events: Vec<_> = outbox(&env)
        .await
        .into_iter()
        .filter(|e| e.type_name() == "TierChanged")
        .collect();
    assert_eq!(tier_events.len(), 1);
    match &tier_events[0].kind {
        bonus_domain::events::EventKind::TierChanged { from, to, .. } => {
            assert_eq!((from.as_str(), to.as_str()), ("Silver", "Gold"))
        }
        other => panic!("unexpected {other:?}"),
    }
    // The next order stays Gold and makes no new TierChanged.
    let (_, third) = env
        .order(&order_paid("T-3", Some("M-1"), &[("BIKE", 1, "10.00")]))
        .await;
    assert_eq!(
        (third["points"].as_i64(), third["tier"].as_str()),
        (Some(12), Some("Gold"))
    );
    assert_eq!(
        outbox(&env)
            .await
            .iter()
            .filter(|e| e.type_name() == "TierChanged")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_product_group_earns_ten_points_per_euro_and_says_why() {
    let env = TestEnv::new().await;
    let body: Value = serde_json::json!({
        "type": "order.paid", "order_id": "G-1", "member_id": "M-2",
        "occurred_at": "2026-11-23T11:00:00Z", "currency": "EUR",
        "lines": [
            {"line_id": "1", "sku": "MOJITO", "quantity": 2, "unit_price": "7.45", "product_group": "cocktails"},
            {"line_id": "2", "sku": "WATER", "quantity": 1, "unit_price": "2.50", "product_group": "soft"}
        ]
    });
    let (status, b) = env.order(&body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["lines"][0]["points"].as_i64(),
            b["lines"][0]["coefficient"].as_str()
        ),
        (Some(149), Some("10"))
    );
    assert_eq!(
        (
            b["lines"][1]["points"].as_i64(),
            b["lines"][1]["coefficient"].as_str()
        ),
        (Some(2), Some("1"))
    );
    assert_eq!(b["points"], 151);
    let (_, balance) = env.balance("M-2").await;
    assert_eq!(balance["pending"], 151);
}

#[tokio::test]
async fn a_non_member_order_adds_no_volume_and_no_tier() {
    let env = TestEnv::new().await;
    let (status, b) = env
        .order(&order_paid(
            "NM-1",
            Some("GHOST"),
            &[("BIKE", 1, "60000.00")],
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(b.get("tier").is_none(), "{b}");
    assert_eq!(b["lines"][0]["points"], 0);
    assert!(outbox(&env).await.is_empty());
}

#[tokio::test]
async fn a_partner_with_auto_enrolment_enrols_a_new_member_from_the_first_order() {
    let config = integration_tests::CONFIG
        .replace("    name: Shop\n", "    name: Shop\n    auto_enrol: true\n");
    let env = TestEnv::with_config(&config).await;
    // Two first orders of the same new member at once: one enrols, both earn.
    let first = order_paid("E-1", Some("NEW-1"), &[("BIKE", 1, "10.00")]);
    let second = order_paid("E-2", Some("NEW-1"), &[("BIKE", 1, "20.00")]);
    let (a, b) = futures::join!(env.order(&first), env.order(&second));
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{a:?} {b:?}");
    let enrolled = [&a.1, &b.1]
        .iter()
        .filter(|x| x["enrolled"] == true)
        .count();
    assert_eq!(enrolled, 1, "{a:?} {b:?}");
    assert_eq!(
        a.1["points"].as_i64().unwrap() + b.1["points"].as_i64().unwrap(),
        30
    );
    let (status, balance) = env.balance("NEW-1").await;
    assert_eq!(
        (status, balance["pending"].as_i64()),
        (StatusCode::OK, Some(30))
    );
    let profile = env
        .store
        .get_profile("velo", "NEW-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (profile.member_id.as_str(), profile.email.as_deref()),
        ("NEW-1", None)
    );
    // Without a member id it is still a non-member order.
    let (status, _) = env
        .order(&order_paid("E-3", None, &[("BIKE", 1, "10.00")]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
