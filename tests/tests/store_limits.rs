//! DynamoDB's request limits hold for reads of any size.

use bonus_dynamodb::to_item;
use integration_tests::{TestEnv, CONFIG};

#[tokio::test]
async fn a_read_of_more_than_100_keys_is_split_into_requests_of_100() {
    let env = TestEnv::with_config(CONFIG).await;
    let keys: Vec<(String, String)> = (0..250)
        .map(|i| ("LIMITS#test".to_string(), format!("ITEM#{i:04}")))
        .collect();
    for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 5 != 0) {
        let item = to_item(k.clone(), "test", &serde_json::json!({ "n": i })).unwrap();
        env.store
            .client
            .put_item()
            .table_name(&env.store.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    env.requests.reset();
    let found = env.store.batch_get(&keys).await.unwrap();
    // 200 of the 250 exist; every one is found, in three requests.
    assert_eq!(found.len(), 200);
    assert!(keys
        .iter()
        .enumerate()
        .all(|(i, k)| found.contains_key(k) == (i % 5 != 0)));
    assert_eq!(
        env.requests.snapshot().get("BatchGetItem").copied(),
        Some(3)
    );
}

/// An order of 150 SKUs at 2.00 each (300 points): more than one transaction holds.
fn order_of_150_skus() -> String {
    let lines: Vec<serde_json::Value> = (0..150)
        .map(|i| {
            serde_json::json!({"line_id": format!("{i}"), "sku": format!("SKU-{i:03}"),
                "quantity": 1, "unit_price": "2.00"})
        })
        .collect();
    serde_json::json!({
        "type": "order.paid", "order_id": "BIG-1", "member_id": "M-1",
        "occurred_at": "2026-11-23T11:00:00Z", "currency": "EUR", "lines": lines
    })
    .to_string()
}

/// An order with more SKUs than one transaction holds: booked with a pending-sales item in
/// its own transaction; when writing the sales right after fails, the answer is still the
/// booking's 200, and the hold sweeper finishes the sales exactly once.
#[tokio::test]
async fn sales_of_an_order_with_150_skus_are_never_lost_nor_doubled() {
    let env = TestEnv::with_config(CONFIG).await;
    let body = order_of_150_skus();
    // The booking commits; every try of the first chunk of sales then fails.
    env.conflicts
        .inject_after(1, bonus_domain::retry::MAX_ATTEMPTS as usize);
    let (status, answer) = env.order(&body).await;
    assert_eq!(
        (status.as_u16(), answer["points"].as_i64()),
        (200, Some(300)),
        "{answer}"
    );
    assert_eq!(env.conflicts.remaining(), 0);
    let day: chrono::NaiveDate = "2026-11-23".parse().unwrap();
    let sold = |sku: String| {
        let store = env.store.clone();
        async move {
            store
                .sales("shop", &sku, day, day)
                .await
                .unwrap()
                .values()
                .map(|d| (d.quantity, d.turnover_minor))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
    };
    assert_eq!(sold("SKU-000".into()).await, (0, 0), "nothing written yet");
    // The sweeper finishes them; a second sweep and a redelivery add nothing.
    let swept = bonus_services::holds::sweep(&env.ctx, 100).await.unwrap();
    assert_eq!((swept.sales_finished, swept.sales_failed), (1, 0));
    let again = bonus_services::holds::sweep(&env.ctx, 100).await.unwrap();
    assert_eq!((again.sales_finished, again.sales_failed), (0, 0));
    let (status, repeat) = env.order(&body).await;
    assert_eq!((status.as_u16(), &repeat), (200, &answer));
    for i in [0, 98, 99, 149] {
        assert_eq!(sold(format!("SKU-{i:03}")).await, (1, 200), "SKU-{i:03}");
    }
}

/// The same order with a crash after each write its booking makes (the booking with the
/// pending-sales item, each chunk of sales, taking it out of the pending index): the shop
/// sends it again, the sweeper finishes what was left, and the sales and the points are
/// there exactly once.
#[tokio::test]
async fn a_150_sku_order_crashed_after_any_of_its_writes_books_and_sells_once() {
    let body = order_of_150_skus();
    let day: chrono::NaiveDate = "2026-11-23".parse().unwrap();
    let reference = TestEnv::with_config(CONFIG).await;
    reference.writes.take();
    assert_eq!(reference.order(&body).await.0.as_u16(), 200);
    let writes = reference.writes.take().len();
    assert_eq!(writes, 4, "the booking, two chunks of sales, the index");

    for crash_after in 1..=writes {
        let env = TestEnv::with_config(CONFIG).await;
        env.faults.crash_after_writes(crash_after);
        let (status, _) = env.order(&body).await;
        assert!(
            env.faults.restart(),
            "crash after write {crash_after}: the process stopped"
        );
        // The booking's own answer may have gone out before a later step crashed.
        assert!(
            status.is_server_error() || status.as_u16() == 200,
            "crash after write {crash_after}: {status}"
        );
        let (status, answer) = env.order(&body).await;
        assert_eq!(
            (status.as_u16(), answer["points"].as_i64()),
            (200, Some(300)),
            "crash after write {crash_after}: {answer}"
        );
        bonus_services::holds::sweep(&env.ctx, 100).await.unwrap();
        for i in [0, 98, 99, 149] {
            let sold = env
                .store
                .sales("shop", &format!("SKU-{i:03}"), day, day)
                .await
                .unwrap()
                .values()
                .map(|d| (d.quantity, d.turnover_minor))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            assert_eq!(
                sold,
                (1, 200),
                "crash after write {crash_after}: SKU-{i:03}"
            );
        }
        assert_eq!(env.balance("M-1").await.1["total"], 300);
        let all = ["velo".to_string(), "other".to_string()];
        let audit = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            audit.differences,
            Vec::<String>::new(),
            "crash after write {crash_after}"
        );
    }
}
