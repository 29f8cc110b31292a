//! Returns and cancellations through the signed canonical webhook: real handler, real SDK,
//! embedded DynamoDB.

use bonus_domain::events::EntryKind;
use chrono::Duration;
use futures::future::join_all;
use http::StatusCode;
use integration_tests::{order_paid, TestEnv, CONFIG};
use serde_json::{json, Value};

/// 1,000 points: line 1 earns 600 (600.00 EUR), line 2 earns 400 (2 x 200.00 EUR).
fn thousand(order_id: &str) -> String {
    order_paid(
        order_id,
        Some("M-1"),
        &[("BIKE", 1, "600.00"), ("WHEEL", 2, "200.00")],
    )
}

fn refund(order_id: &str, refund_id: &str, lines: Value) -> String {
    json!({
        "type": "order.refunded", "order_id": order_id, "refund_id": refund_id,
        "occurred_at": "2026-11-23T11:30:00Z", "currency": "EUR", "lines": lines,
    })
    .to_string()
}

fn cancel(order_id: &str) -> String {
    json!({"type": "order.cancelled", "order_id": order_id, "occurred_at": "2026-11-23T11:30:00Z"})
        .to_string()
}

async fn totals(env: &TestEnv, member: &str) -> (i64, i64, i64, i64) {
    let (_, b) = env.balance(member).await;
    let n = |k: &str| b[k].as_i64().unwrap_or(i64::MIN);
    (n("pending"), n("available"), n("total"), n("debt"))
}

/// Spend `points` of a lot the way a capture at the till will (issue 5): the account and
/// the lot lose them. Written directly, as a fixture.
async fn spend(env: &TestEnv, member: &str, lot_id: &str, points: i64) {
    let now = env.clock_now();
    let mut account: bonus_domain::account::Account = env
        .store
        .get(bonus_dynamodb::keys::account("velo", member))
        .await
        .unwrap()
        .unwrap();
    let mut lot: bonus_domain::lot::Lot = env
        .store
        .get(bonus_dynamodb::keys::lot("velo", member, lot_id))
        .await
        .unwrap()
        .unwrap();
    account.fold_due(now);
    assert_eq!(
        account.take_from_lot(&mut lot, points, now).unwrap(),
        points
    );
    account.version += 1;
    let keys = bonus_dynamodb::keys::account("velo", member);
    env.store.put(keys, "account", &account).await.unwrap();
    let keys = bonus_dynamodb::keys::lot("velo", member, lot_id);
    env.store.put(keys, "lot", &lot).await.unwrap();
}

#[tokio::test]
async fn refunding_one_of_two_lines_takes_back_exactly_that_lines_points_while_pending() {
    let env = TestEnv::new().await;
    let (status, body) = env.order(&thousand("A-1")).await;
    assert_eq!(
        (status, body["points"].as_i64()),
        (StatusCode::OK, Some(1000))
    );

    env.requests.reset();
    let (status, body) = env
        .order(&refund(
            "A-1",
            "R-1",
            json!([{"line_id": "2", "quantity": 2}]),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "reversed");
    // Warm: record + order state, then account + lot, then one transaction.
    let calls = env.requests.snapshot();
    assert_eq!(
        (
            calls.get("BatchGetItem"),
            calls.get("TransactWriteItems"),
            env.requests.total()
        ),
        (Some(&2), Some(&1), 3),
        "{calls:?}"
    );
    assert_eq!(
        (
            body["points"].as_i64(),
            body["from_own"].as_i64(),
            body["to_debt"].as_i64()
        ),
        (Some(400), Some(400), Some(0))
    );
    assert_eq!(body["lines"], json!([{"line_id": "2", "points": 400}]));
    assert_eq!(totals(&env, "M-1").await, (600, 0, 600, 0));
    let lots = env.store.lots("velo", "M-1").await.unwrap();
    assert_eq!((lots[0].points, lots[0].remaining), (1000, 600));

    // The statement shows the earn and the reversal; the outbox the PointsReversed event.
    let entries = env.store.entries("velo", "M-1").await.unwrap();
    let steps: Vec<(u64, EntryKind, i64)> =
        entries.iter().map(|e| (e.seq, e.kind, e.points)).collect();
    assert_eq!(
        steps,
        vec![(1, EntryKind::Earn, 1000), (2, EntryKind::Reversal, -400)]
    );
    assert_eq!(entries[1].reason, "refund R-1 of order A-1 at shop");
    let mut events = Vec::new();
    for shard in 0..bonus_dynamodb::keys::OUTBOX_SHARDS {
        events.extend(env.store.outbox_shard(shard).await.unwrap());
    }
    let reversed: Vec<_> = events
        .iter()
        .filter(|e| e.type_name() == "PointsReversed")
        .collect();
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0].event_id, "reversed:velo:shop:A-1:R-1");
}

#[tokio::test]
async fn refunding_one_of_two_lines_after_the_points_became_available() {
    let env = TestEnv::new().await;
    env.order(&thousand("A-1")).await;
    env.clock.advance(Duration::days(15));
    assert_eq!(totals(&env, "M-1").await, (0, 1000, 1000, 0));
    let (status, body) = env
        .order(&refund(
            "A-1",
            "R-1",
            json!([{"line_id": "1", "quantity": 1}]),
        ))
        .await;
    assert_eq!(
        (status, body["points"].as_i64()),
        (StatusCode::OK, Some(600)),
        "{body}"
    );
    assert_eq!(totals(&env, "M-1").await, (0, 400, 400, 0));
}

#[tokio::test]
async fn spent_points_that_are_refunded_become_a_debt_that_the_next_order_pays_off_first() {
    let env = TestEnv::new().await;
    env.order(&thousand("A-1")).await;
    env.clock.advance(Duration::days(15));
    spend(&env, "M-1", "shop:A-1", 900).await;
    assert_eq!(totals(&env, "M-1").await, (0, 100, 100, 0));

    let (status, body) = env.order(&cancel("A-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["points"].as_i64(),
            body["from_own"].as_i64(),
            body["from_others"].as_i64(),
            body["to_debt"].as_i64()
        ),
        (Some(1000), Some(100), Some(0), Some(900))
    );
    assert_eq!(totals(&env, "M-1").await, (0, 0, 0, 900));
    let kinds: Vec<(EntryKind, i64)> = env
        .store
        .entries("velo", "M-1")
        .await
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.points))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EntryKind::Earn, 1000),
            (EntryKind::Reversal, -100),
            (EntryKind::Debt, -900)
        ]
    );

    // The next order earns 1,000 and pays off the 900 first.
    let mut next = thousand("A-2");
    next = next.replace("2026-11-23T11:00:00Z", "2026-12-08T11:00:00Z");
    let (status, body) = env.order(&next).await;
    assert_eq!(
        (status, body["points"].as_i64()),
        (StatusCode::OK, Some(1000)),
        "{body}"
    );
    assert_eq!(totals(&env, "M-1").await, (100, 0, 100, 0));
}

#[tokio::test]
async fn when_the_own_lot_was_spent_other_available_points_pay_first() {
    let env = TestEnv::new().await;
    env.order(&order_paid("A-0", Some("M-1"), &[("BELL", 1, "300.00")]))
        .await;
    env.order(&thousand("A-1")).await;
    env.clock.advance(Duration::days(15));
    spend(&env, "M-1", "shop:A-1", 1000).await;
    let (_, body) = env
        .order(&refund(
            "A-1",
            "R-1",
            json!([{"line_id": "2", "quantity": 1}]),
        ))
        .await;
    assert_eq!(
        (
            body["points"].as_i64(),
            body["from_own"].as_i64(),
            body["from_others"].as_i64(),
            body["to_debt"].as_i64()
        ),
        (Some(200), Some(0), Some(200), Some(0)),
        "{body}"
    );
    assert_eq!(totals(&env, "M-1").await, (0, 100, 100, 0));
    let entries = env.store.entries("velo", "M-1").await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(
        (last.kind, last.points, last.lot_id.as_deref()),
        (EntryKind::Reversal, -200, Some("shop:A-0"))
    );
}

#[tokio::test]
async fn the_same_refund_posted_ten_times_concurrently_reverses_once() {
    let env = TestEnv::new().await;
    env.order(&thousand("A-1")).await;
    let body = refund("A-1", "R-1", json!([{"line_id": "2", "quantity": 1}]));
    let answers = join_all((0..10).map(|_| env.order(&body))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer, &answers[0].1);
    }
    assert_eq!(answers[0].1["points"], 200);
    assert_eq!(totals(&env, "M-1").await, (800, 0, 800, 0));
    assert_eq!(env.store.entries("velo", "M-1").await.unwrap().len(), 2);
    // Ten different refunds of one unit each at the same time: exactly 2 units exist... one left.
    let bodies: Vec<String> = (0..10)
        .map(|i| {
            refund(
                "A-1",
                &format!("R-x{i}"),
                json!([{"line_id": "2", "quantity": 1}]),
            )
        })
        .collect();
    let answers = join_all(bodies.iter().map(|b| env.order(b))).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = answers
        .iter()
        .filter(|(s, b)| {
            *s == StatusCode::UNPROCESSABLE_ENTITY && b["error"]["code"] == "refund_exceeds_order"
        })
        .count();
    assert_eq!((ok, refused), (1, 9));
    assert_eq!(totals(&env, "M-1").await, (600, 0, 600, 0));
}

#[tokio::test]
async fn refusals_change_nothing() {
    let env = TestEnv::new().await;
    env.order(&thousand("A-1")).await;
    let cases = [
        (
            refund("A-1", "R-1", json!([{"line_id": "2", "quantity": 3}])),
            "refund_exceeds_order",
        ),
        (
            refund("A-1", "R-1", json!([{"line_id": "9", "quantity": 1}])),
            "unknown_line",
        ),
        (
            refund("A-1", "R-1", json!([{"line_id": "1", "amount": "600.01"}])),
            "refund_exceeds_order",
        ),
        (refund("A-1", "R-1", json!([])), "empty_refund"),
    ];
    for (body, code) in cases {
        let (status, answer) = env.order(&body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }
    assert_eq!(totals(&env, "M-1").await, (1000, 0, 1000, 0));
    assert_eq!(env.store.entries("velo", "M-1").await.unwrap().len(), 1);
    // The same refund id with another body is a conflict.
    let first = refund("A-1", "R-1", json!([{"line_id": "2", "quantity": 1}]));
    assert_eq!(env.order(&first).await.0, StatusCode::OK);
    let other = refund("A-1", "R-1", json!([{"line_id": "1", "quantity": 1}]));
    let (status, answer) = env.order(&other).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_conflict"))
    );
    assert_eq!(totals(&env, "M-1").await, (800, 0, 800, 0));
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_order_is_applied_when_the_order_comes() {
    let env = TestEnv::new().await;
    let early = refund("A-1", "R-1", json!([{"line_id": "1", "quantity": 1}]));
    let (status, body) = env.order(&early).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("waiting_for_order")),
        "{body}"
    );
    // Repeated while waiting: the same answer, still nothing booked.
    assert_eq!(env.order(&early).await.0, StatusCode::ACCEPTED);
    assert_eq!(totals(&env, "M-1").await, (0, 0, 0, 0));

    let (status, body) = env.order(&thousand("A-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["points"], 1000);
    assert_eq!(body["refunds_applied"][0]["refund_id"], "R-1");
    assert_eq!(body["refunds_applied"][0]["points"], 600);
    assert_eq!(totals(&env, "M-1").await, (400, 0, 400, 0));
    let kinds: Vec<(EntryKind, i64)> = env
        .store
        .entries("velo", "M-1")
        .await
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.points))
        .collect();
    assert_eq!(
        kinds,
        vec![(EntryKind::Earn, 1000), (EntryKind::Reversal, -600)]
    );
    // The refund replayed now gets the applied answer.
    let (status, body) = env.order(&early).await;
    assert_eq!(
        (status, body["status"].as_str(), body["points"].as_i64()),
        (StatusCode::OK, Some("reversed"), Some(600))
    );

    // A cancellation before its order: the order earns and is taken back in one go.
    assert_eq!(env.order(&cancel("B-1")).await.0, StatusCode::ACCEPTED);
    let (_, body) = env.order(&thousand("B-1")).await;
    assert_eq!(body["refunds_applied"][0]["points"], 1000);
    assert_eq!(totals(&env, "M-1").await, (400, 0, 400, 0));
    // Refunds after a cancellation take nothing more.
    let (status, body) = env
        .order(&refund(
            "B-1",
            "R-9",
            json!([{"line_id": "1", "quantity": 1}]),
        ))
        .await;
    assert_eq!(
        (status, body["status"].as_str(), body["points"].as_i64()),
        (StatusCode::OK, Some("already_cancelled"), Some(0))
    );
}

#[tokio::test]
async fn a_refund_gives_back_campaign_budget_and_tier_volume() {
    let mut config = CONFIG.to_string();
    config.push_str(
        r#"campaigns:
  - id: bikes
    partner: shop
    name: Bikes double
    skus: [BIKE]
    starts_on: 2026-11-01
    ends_on: 2026-11-30
    rule: {kind: per_currency_unit, points: "1"}
    budget: 10000
"#,
    );
    let env = TestEnv::with_config(&config).await;
    let (_, body) = env.order(&thousand("A-1")).await;
    assert_eq!(body["points"], 1600, "{body}");
    let volume = |a: &bonus_domain::account::Account| a.volume.values().sum::<i64>();
    let account: bonus_domain::account::Account = env
        .store
        .get(bonus_dynamodb::keys::account("velo", "M-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(volume(&account), 100_000);
    let campaign = env
        .store
        .get_campaign("shop", "bikes")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(env.store.budget_status(&campaign).await.unwrap().spent, 600);

    let (_, body) = env
        .order(&refund(
            "A-1",
            "R-1",
            json!([{"line_id": "1", "quantity": 1}]),
        ))
        .await;
    assert_eq!(body["points"], 1200, "{body}");
    let status = env.store.budget_status(&campaign).await.unwrap();
    assert_eq!((status.spent, status.remaining), (0, 10_000));
    let account: bonus_domain::account::Account = env
        .store
        .get(bonus_dynamodb::keys::account("velo", "M-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(volume(&account), 40_000);
}

#[tokio::test]
async fn an_order_and_its_refund_arriving_together_book_the_difference_whoever_wins() {
    let env = TestEnv::new().await;
    for i in 0..8 {
        let order_id = format!("T-{i}");
        let order = thousand(&order_id);
        let early = refund(&order_id, "R-1", json!([{"line_id": "1", "quantity": 1}]));
        let (a, b) = futures::join!(env.order(&order), env.order(&early));
        assert_eq!(a.0, StatusCode::OK, "{}", a.1);
        assert!(
            matches!(b.0, StatusCode::OK | StatusCode::ACCEPTED),
            "{}",
            b.1
        );
        // Either way, after both: 1,000 earned, 600 reversed once.
        assert_eq!(totals(&env, "M-1").await.2, 400 * (i + 1), "round {i}");
        let (status, again) = env.order(&early).await;
        assert_eq!(
            (status, again["status"].as_str(), again["points"].as_i64()),
            (StatusCode::OK, Some("reversed"), Some(600))
        );
    }
}
