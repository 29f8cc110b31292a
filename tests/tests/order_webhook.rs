#![recursion_limit = "256"] // the handlers nest deeply; async layouts need the room
//! The order webhook end to end: real handler, real SDK, embedded DynamoDB.

use futures::future::join_all;
use http::StatusCode;
use integration_tests::{order_paid, TestEnv, OTHER_SECRET, SECRET};
use serde_json::Value;

fn two_helmets(order_id: &str) -> String {
    order_paid(order_id, Some("M-1"), &[("HELMET", 2, "49.95")])
}

/// Everything a refused or replayed request must not have changed.
async fn assert_untouched(env: &TestEnv, member: &str) {
    let (_, b) = env.balance(member).await;
    assert_eq!(b["total"], 0, "balance changed: {b}");
    assert!(env.store.lots("velo", member).await.unwrap().is_empty());
    assert!(env.store.entries("velo", member).await.unwrap().is_empty());
}

#[tokio::test]
async fn two_times_49_95_earns_99_pending_points_and_the_balance_says_the_same() {
    let env = TestEnv::new().await;
    let (status, body) = env.order(&two_helmets("A-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "earned");
    assert_eq!(body["points"], 99);
    assert_eq!(body["lines"][0]["points"], 99);
    assert_eq!(body["lines"][0]["exact_points"], "99.9");
    assert_eq!(body["lines"][0]["net_amount"], "99.90");
    assert_eq!(body["available_at"], "2026-12-07T11:00:00Z");
    assert_eq!(body["expires_on"], "2027-11-23");

    let (status, b) = env.balance("M-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            b["pending"].as_i64(),
            b["available"].as_i64(),
            b["total"].as_i64()
        ),
        (Some(99), Some(0), Some(99))
    );
    assert_eq!(b["held"], 0);
    assert_eq!(b["available_value"]["minor"], 0);

    let lots = env.store.lots("velo", "M-1").await.unwrap();
    assert_eq!(lots.len(), 1);
    assert_eq!(
        (
            lots[0].points,
            lots[0].remaining,
            lots[0].partner_id.as_str()
        ),
        (99, 99, "shop")
    );
    let entries = env.store.entries("velo", "M-1").await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].seq, entries[0].points), (1, 99));

    // The outbox holds exactly one PointsEarned event for it.
    let mut events = Vec::new();
    for shard in 0..bonus_dynamodb::keys::OUTBOX_SHARDS {
        events.extend(env.store.outbox_shard(shard).await.unwrap());
    }
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_name(), "PointsEarned");
    assert_eq!(events[0].event_id, "earned:velo:shop:A-1");

    // Fourteen days later the same points are available.
    env.clock.set("2026-12-07T11:00:00Z".parse().unwrap());
    let (_, b) = env.balance("M-1").await;
    assert_eq!(
        (b["pending"].as_i64(), b["available"].as_i64()),
        (Some(0), Some(99))
    );
    assert_eq!(b["available_value"]["amount"], "0.99");
}

#[tokio::test]
async fn the_same_delivery_twenty_times_concurrently_awards_once_and_answers_alike() {
    let env = TestEnv::new().await;
    let body = two_helmets("A-2");
    let headers = env.signed(SECRET, "msg_same", &body, 0);
    let calls = (0..20).map(|_| {
        env.call(
            "POST",
            "/v1/partners/shop/webhooks/orders",
            &headers,
            body.clone(),
        )
    });
    let answers = join_all(calls).await;
    let first = &answers[0];
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer, &first.1);
    }
    assert_eq!(first.1["points"], 99);
    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 99);
    assert_eq!(env.store.lots("velo", "M-1").await.unwrap().len(), 1);
    assert_eq!(env.store.entries("velo", "M-1").await.unwrap().len(), 1);

    // And again later, sequentially: still the first answer.
    let (status, again) = env.order(&body).await;
    assert_eq!((status, &again), (StatusCode::OK, &first.1));
}

#[tokio::test]
async fn concurrent_different_orders_for_one_member_all_count() {
    let env = TestEnv::new().await;
    let bodies: Vec<String> = (0..10)
        .map(|i| order_paid(&format!("C-{i}"), Some("M-1"), &[("X", 1, "10.00")]))
        .collect();
    let answers = join_all(bodies.iter().map(|b| env.order(b))).await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 100);
    let entries = env.store.entries("velo", "M-1").await.unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
}

#[tokio::test]
async fn the_same_order_with_another_body_is_a_conflict_and_changes_nothing() {
    let env = TestEnv::new().await;
    assert_eq!(env.order(&two_helmets("A-3")).await.0, StatusCode::OK);
    let changed = order_paid("A-3", Some("M-1"), &[("HELMET", 3, "49.95")]);
    let (status, body) = env.order(&changed).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "order_conflict");
    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 99);
}

/// A paid order's stored answer carries a TTL of 30 days; once DynamoDB has deleted it, the
/// order's state (kept) still refuses a second booking, whatever date a sender puts on it.
#[tokio::test]
async fn a_paid_orders_answer_expires_after_30_days_and_the_order_is_never_booked_again() {
    let env = TestEnv::new().await;
    let first = two_helmets("A-9");
    let (status, answer) = env.order(&first).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let record = env
        .store
        .get_order_record("shop", "A-9", "order.paid")
        .await
        .unwrap()
        .unwrap();
    let kept_until: chrono::DateTime<chrono::Utc> = "2026-12-23T12:00:00Z".parse().unwrap();
    assert_eq!(record.expires_ttl, Some(kept_until.timestamp()));
    // Within the window a redelivery gets the stored answer.
    assert_eq!(env.order(&first).await, (StatusCode::OK, answer));

    // DynamoDB's TTL deleted the record; a month later the same order comes again.
    let (pk, sk) = bonus_dynamodb::keys::order_event("shop", "A-9", "order.paid");
    env.store
        .client
        .delete_item()
        .table_name(&env.store.table)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(sk))
        .send()
        .await
        .unwrap();
    env.clock.set("2026-12-24T12:00:00Z".parse().unwrap());
    let fresh_date = first.replace("2026-11-23T11:00:00Z", "2026-12-24T11:00:00Z");
    let (status, body) = env.order(&fresh_date).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "order_already_booked");
    let (status, body) = env.order(&first).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "occurred_at_too_old");

    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 99);
    assert_eq!(env.store.entries("velo", "M-1").await.unwrap().len(), 1);
    assert_eq!(env.store.lots("velo", "M-1").await.unwrap().len(), 1);
    let all = vec!["velo".to_string(), "other".to_string()];
    let report = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_unknown_partners_get_the_same_401() {
    let env = TestEnv::new().await;
    let body = two_helmets("A-4");
    let path = "/v1/partners/shop/webhooks/orders";
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "wrong secret",
            env.signed(OTHER_SECRET, "m", &body, 0),
            path,
        ),
        (
            "6 minutes old",
            env.signed(SECRET, "m", &body, 6 * 60),
            path,
        ),
        (
            "6 minutes ahead",
            env.signed(SECRET, "m", &body, -6 * 60),
            path,
        ),
        ("no headers", vec![], path),
        (
            "unknown partner",
            env.signed(SECRET, "m", &body, 0),
            "/v1/partners/nobody/webhooks/orders",
        ),
        (
            "bad partner id",
            env.signed(SECRET, "m", &body, 0),
            "/v1/partners/a%23b/webhooks/orders",
        ),
    ];
    for (what, headers, path) in cases {
        let (status, b) = env.call("POST", path, &headers, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {b}");
        assert_eq!(b["error"]["code"], "unauthorized", "{what}");
        assert_eq!(
            b["error"]["message"], "missing or invalid credentials",
            "{what}"
        );
    }
    // A tampered body under a valid signature.
    let mut headers = env.signed(SECRET, "m", &body, 0);
    headers.retain(|(k, _)| *k != "content-type");
    let (status, _) = env
        .call("POST", path, &headers, body.replace("49.95", "99.95"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // 4 minutes old is inside the window.
    let (status, _) = env
        .call(
            "POST",
            path,
            &env.signed(SECRET, "m", &body, 4 * 60),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_changes_nothing() {
    let env = TestEnv::new().await;
    let cases = [
        (
            "{\"type\": \"order.paid\",",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            r#"{"type":"order.paid"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            &order_paid("B-1", Some("M-1"), &[("X", -1, "10.00")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
        ),
        (
            &order_paid("B-2", Some("M-1"), &[("X", 1, "10.001")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            &order_paid("B-3", Some("M-1"), &[("X", 1, "ten")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
        ),
        (
            &order_paid("B-4", Some("M-1"), &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_lines",
        ),
        (
            &order_paid("B 5", Some("M-1"), &[("X", 1, "1")]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_order_id",
        ),
        (
            &order_paid("B-6", Some("M-1"), &[("X", 1, "1")]).replace("EUR", "SEK"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
        ),
        (
            &order_paid("B-7", Some("M-1"), &[("X", 1, "1")])
                .replace("order.paid", "order.exploded"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_event_type",
        ),
        (
            "\u{0}\u{1}binary",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
    ];
    for (body, want_status, want_code) in cases {
        let (status, b) = env.order(body).await;
        assert_eq!(
            (status, b["error"]["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}: {b}"
        );
        assert!(b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_untouched(&env, "M-1").await;
    // None of them left an idempotency record behind: the same ids can still be used.
    assert!(env
        .store
        .get_order_record("shop", "B-1", "order.paid")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_non_members_order_is_recorded_with_zero_points_and_202() {
    let env = TestEnv::new().await;
    for member in [Some("NOBODY"), None] {
        let order_id = format!("N-{}", member.unwrap_or("anon"));
        let body = order_paid(&order_id, member, &[("X", 1, "25.00")]);
        let (status, b) = env.order(&body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{b}");
        assert_eq!(
            (b["status"].as_str(), b["points"].as_i64()),
            (Some("recorded_non_member"), Some(0))
        );
        assert_eq!(b["lines"][0]["points"], 0);
        let record = env
            .store
            .get_order_record("shop", &order_id, "order.paid")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((record.points, record.status), (0, 202));
        // A retry gets the same answer.
        assert_eq!(env.order(&body).await, (StatusCode::ACCEPTED, b));
    }
}

#[tokio::test]
async fn a_member_of_another_programme_is_not_found_through_this_partner() {
    let env = TestEnv::new().await;
    // X-1 belongs to programme "other"; through "shop" (programme velo) it is a non-member.
    let (status, _) = env
        .order(&order_paid("P-1", Some("X-1"), &[("X", 1, "25.00")]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, b) = env
        .balance_with("X-1", integration_tests::OTHER_API_KEY)
        .await;
    assert_eq!((status, b["total"].as_i64()), (StatusCode::OK, Some(0)));
}

#[tokio::test]
async fn transaction_conflicts_are_retried_and_the_points_land_once() {
    let env = TestEnv::new().await;
    env.conflicts.inject(3);
    let (status, body) = env.order(&two_helmets("R-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.conflicts.remaining(), 0);
    assert_eq!(env.requests.snapshot().get("TransactWriteItems"), Some(&4));
    let (_, b) = env.balance("M-1").await;
    assert_eq!(b["total"], 99);
    assert_eq!(env.store.entries("velo", "M-1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn endless_conflicts_end_in_a_503_and_nothing_written() {
    let env = TestEnv::new().await;
    env.conflicts.inject(1000);
    let (status, body) = env.order(&two_helmets("R-2")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
    env.conflicts.inject(0);
    assert_untouched(&env, "M-1").await;
}

/// The cost of one webhook in DynamoDB requests, once the partner's configuration is cached:
/// one read round trip (BatchGetItem) and one TransactWriteItems. Printed for
/// docs/benchmarks.md.
#[tokio::test]
async fn a_webhook_costs_one_read_round_trip_and_one_transaction() {
    let env = TestEnv::new().await;
    // Cold: the partner and programme are read once and then cached.
    env.order(&two_helmets("Q-0")).await;
    let cold = env.requests.snapshot();
    env.requests.reset();

    let (status, _) = env.order(&two_helmets("Q-1")).await;
    assert_eq!(status, StatusCode::OK);
    let warm = env.requests.snapshot();
    assert_eq!(warm.get("BatchGetItem"), Some(&1), "{warm:?}");
    assert_eq!(warm.get("TransactWriteItems"), Some(&1), "{warm:?}");
    assert_eq!(env.requests.total(), 2, "{warm:?}");

    env.requests.reset();
    let (status, _) = env.order(&two_helmets("Q-1")).await;
    assert_eq!(status, StatusCode::OK);
    let replay = env.requests.snapshot();
    assert_eq!(
        replay,
        [("BatchGetItem".to_string(), 1)].into_iter().collect(),
        "a replay only reads"
    );

    env.requests.reset();
    env.order(&order_paid("Q-2", Some("NOBODY"), &[("X", 1, "1.00")]))
        .await;
    let non_member = env.requests.snapshot();
    assert_eq!(env.requests.total(), 2, "{non_member:?}");

    env.requests.reset();
    env.balance("M-1").await;
    let cold_balance = env.requests.snapshot();
    env.requests.reset();
    env.balance("M-1").await;
    let balance = env.requests.snapshot();
    assert_eq!(env.requests.total(), 1, "{balance:?}");
    assert_eq!(balance.get("GetItem"), Some(&1), "{balance:?}");

    println!("REQUESTS cold webhook: {cold:?}");
    println!("REQUESTS warm webhook: {warm:?}");
    println!("REQUESTS replayed webhook: {replay:?}");
    println!("REQUESTS non-member webhook: {non_member:?}");
    println!("REQUESTS cold balance read: {cold_balance:?}");
    println!("REQUESTS warm balance read: {balance:?}");
}

#[tokio::test]
async fn wrong_routes_and_methods_get_json_errors() {
    let env = TestEnv::new().await;
    let (status, b) = env
        .call("GET", "/v1/partners/shop/webhooks/orders", &[], "")
        .await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let (status, b) = env.call("GET", "/nope", &[], "").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("route_not_found"))
    );
    let _: Value = b;
}
