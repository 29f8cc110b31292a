//! `bonus import orders`: the deliveries a shop lost, booked from JSON lines through the
//! order webhook's own handler, idempotent on the same business keys as webhooks.

use integration_tests::{order_paid, TestEnv};
use serde_json::json;

fn paid(id: &str, days_ago: i64, env: &TestEnv, price: &str) -> String {
    let at = env.clock_now() - chrono::Duration::days(days_ago);
    let mut v: serde_json::Value =
        serde_json::from_str(&order_paid(id, Some("M-1"), &[("A", 2, price)])).unwrap();
    v["occurred_at"] = json!(at.to_rfc3339());
    v.to_string()
}

#[tokio::test]
async fn missed_orders_and_refunds_are_booked_once_however_often_imported() {
    let env = TestEnv::new().await;
    // C arrived by webhook; A and B (20 and 3 days ago) and a refund of A were lost.
    let (status, _) = env.order(&paid("C", 1, &env, "5.00")).await;
    assert_eq!(status, http::StatusCode::OK);
    let refund = json!({"type": "order.refunded", "order_id": "A", "refund_id": "R-1",
        "occurred_at": env.clock_now().to_rfc3339(), "lines": [{"line_id": "1", "quantity": 1}]})
    .to_string();
    let mut dollars: serde_json::Value = serde_json::from_str(&paid("D", 1, &env, "7.00")).unwrap();
    dollars["currency"] = json!("USD");
    let lines = vec![
        paid("A", 20, &env, "10.00"),
        paid("B", 3, &env, "30.00"),
        String::new(),
        refund,
        "{not json".to_string(),
        dollars.to_string(),
        paid("C", 1, &env, "5.00"),
        paid("OLD", 100, &env, "10.00"),
    ];
    let seen = std::sync::Mutex::new(0);
    let first =
        bonus_ops::import::import(&env.ctx, "shop", &lines, |n| *seen.lock().unwrap() = n).await;
    assert_eq!(
        *seen.lock().unwrap(),
        lines.len(),
        "progress reaches the last line"
    );
    assert_eq!(
        (
            first.lines,
            first.booked,
            first.already_booked,
            first.failed
        ),
        (7, 3, 1, 0),
        "{first:?}"
    );
    let refused: Vec<(&str, usize)> = first
        .refused
        .iter()
        .map(|(c, n)| (c.as_str(), *n))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("currency_mismatch", 1),
            ("malformed_json", 1),
            ("occurred_at_too_old", 1)
        ]
    );
    assert_eq!(first.refusals[0].0, 5, "line numbers count from 1");
    // A: 20 - 10 refunded; B: 60; C: 10.
    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 80, "{b}");
    // Again: nothing more is booked.
    let again = bonus_ops::import::import(&env.ctx, "shop", &lines, |_| {}).await;
    assert_eq!((again.booked, again.already_booked), (0, 4), "{again:?}");
    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 80);
    let all = ["velo".to_string()];
    let report = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.differences, Vec::<String>::new());
}
