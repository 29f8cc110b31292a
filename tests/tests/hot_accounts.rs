//! One account that many orders go into at once (a company account, a busy shop's regular
//! customer), under DynamoDB's own conflict rule: a transaction that names an item of another
//! transaction in flight is cancelled. The emulator never does that, so [`ConflictRule`] does.

use std::sync::Arc;
use std::time::Duration;

use bonus_domain::random::SeededRandom;
use bonus_lambda::app::Ctx;
use bytes::Bytes;
use futures::future::join_all;
use http::StatusCode;
use integration_tests::{order_paid, TestEnv, SECRET};

fn order(i: usize) -> String {
    order_paid(&format!("H-{i}"), Some("M-1"), &[("BIKE", 1, "10.00")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_orders_into_one_account_are_all_booked() {
    let env = TestEnv::new().await;
    env.conflict_rule.enable();
    let bodies: Vec<String> = (0..64).map(order).collect();
    let answers = join_all(bodies.iter().map(|b| env.order(b))).await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .collect();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        refused.first()
    );
    for (_, answer) in &answers {
        assert_eq!(answer["points"], 10, "{answer}");
    }
    // One process: the orders took turns in the account's lane, none raced.
    assert_eq!(env.conflict_rule.refused(), 0);
    let account = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(account.lifetime_earned, 640);
    assert_eq!(account.pending.values().sum::<i64>(), 640);
    assert_eq!(account.entry_seq, 64);
    assert_eq!(env.store.entries("velo", "M-1").await.unwrap().len(), 64);
    assert_eq!(env.store.lots("velo", "M-1").await.unwrap().len(), 64);
    let all = vec!["velo".to_string(), "other".to_string()];
    let report = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

/// Several Lambda instances (each its own context, as on AWS) booking into one account race
/// each other through DynamoDB: lost races are retried, and every order is booked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_racing_into_one_account_book_every_order_exactly_once() {
    let env = TestEnv::new().await;
    env.conflict_rule.enable();
    let instances: Vec<Arc<Ctx>> = (0..8)
        .map(|i| {
            Arc::new(
                Ctx::new(
                    env.store.clone(),
                    env.clock.clone(),
                    Duration::from_secs(3600),
                )
                .with_random(Arc::new(SeededRandom::new(100 + i))),
            )
        })
        .collect();
    let calls = (0..64).map(|i| {
        let body = order(i);
        let headers = env.signed(SECRET, &format!("msg_{i}"), &body, 0);
        let ctx = instances[i % instances.len()].clone();
        async move {
            let mut req = http::Request::builder()
                .method("POST")
                .uri("/v1/partners/shop/webhooks/orders");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let resp = bonus_ops::dev::dispatch(&ctx, req.body(Bytes::from(body)).unwrap()).await;
            (resp.status(), resp.body().clone())
        }
    });
    let answers = join_all(calls).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    assert!(env.conflict_rule.refused() > 0, "the instances did race");
    eprintln!(
        "HOT instances: conflicts refused by the rule: {}",
        env.conflict_rule.refused()
    );
    let account = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(account.lifetime_earned, 640);
    assert_eq!(account.entry_seq, 64);
    assert_eq!(env.store.lots("velo", "M-1").await.unwrap().len(), 64);
}
