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

/// The same over the partner API: the lines go to the deferred-webhooks queue (moto) and are
/// booked there; the summary says what became of each; an import sent twice books nothing
/// twice, and another partner cannot see it.
#[tokio::test]
async fn an_import_over_the_partner_api_is_booked_from_the_queue_once_and_summed_up() {
    use bytes::Bytes;
    let config = integration_tests::CONFIG.replace(
        "        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617\n",
        "        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617\n        scopes: [manage]\n",
    )
    .replace(
        "        key: bk_4055253a26a81c31911b05f2cbd667fd6923a2af_b81e5d11\n",
        "        key: bk_4055253a26a81c31911b05f2cbd667fd6923a2af_b81e5d11\n        scopes: [manage]\n",
    );
    let env = TestEnv::with_config(&config).await;
    let moto = bonus_local_stack::moto::LocalMoto::start()
        .expect("moto (make test installs it into .venv)");
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "deferred", 30, 5)
        .await
        .unwrap();
    let mut ctx = bonus_lambda::app::Ctx::new(
        env.store.clone(),
        env.clock.clone(),
        std::time::Duration::from_secs(3600),
    );
    ctx.deferral = Some(bonus_lambda::app::Deferral::new(sqs.clone(), url.clone()));
    let call = |method: &str, path: &str, key: &str, body: String| {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("bonus-actor", "Ann")
            .body(Bytes::from(body))
            .unwrap();
        let ctx = &ctx;
        async move {
            let resp = bonus_ops::dev::dispatch(ctx, req).await;
            let status = resp.status();
            (
                status,
                serde_json::from_str::<serde_json::Value>(resp.body()).unwrap_or_default(),
            )
        }
    };
    let (status, _) = env.order(&paid("C", 1, &env, "5.00")).await;
    assert_eq!(status, http::StatusCode::OK);
    let mut dollars: serde_json::Value = serde_json::from_str(&paid("D", 1, &env, "7.00")).unwrap();
    dollars["currency"] = json!("USD");
    let file = [
        paid("A", 20, &env, "10.00"),
        paid("B", 3, &env, "30.00"),
        String::new(),
        "{not json".to_string(),
        dollars.to_string(),
        paid("C", 1, &env, "5.00"),
    ]
    .join("\n");
    let shop = integration_tests::API_KEY;
    let (status, answer) = call("POST", "/v1/partner/imports", shop, file.clone()).await;
    assert_eq!(status, http::StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        (
            answer["lines"].as_u64(),
            answer["queued"].as_u64(),
            answer["refused"].as_u64()
        ),
        (Some(5), Some(4), Some(1))
    );
    let id = answer["import_id"].as_str().unwrap().to_string();
    let path = format!("/v1/partner/imports/{id}");
    let (_, running) = call("GET", &path, shop, String::new()).await;
    assert_eq!(
        (running["status"].as_str(), running["done"].as_u64()),
        (Some("running"), Some(1)),
        "{running}"
    );
    assert_eq!(
        order_webhook::defer::consume_all(&ctx, &sqs, &url, 10)
            .await
            .unwrap(),
        4
    );
    let (status, summary) = call("GET", &path, shop, String::new()).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(
        (
            summary["status"].as_str(),
            summary["done"].as_u64(),
            summary["pending"].as_u64(),
            summary["booked"].as_u64()
        ),
        (Some("done"), Some(5), Some(0), Some(3)),
        "A, B booked, C answered as booked before: {summary}"
    );
    assert_eq!(
        summary["refused"],
        json!({"currency_mismatch": 1, "malformed_json": 1})
    );
    assert_eq!(
        summary["refusals"][0]["line"], 4,
        "line numbers count the empty line: {summary}"
    );
    let balance = || async {
        env.store
            .get_account("velo", "M-1")
            .await
            .unwrap()
            .unwrap()
            .lifetime_earned
    };
    assert_eq!(balance().await, 20 + 60 + 10);
    // Sent again: queued again, booked nothing twice.
    let (status, _) = call("POST", "/v1/partner/imports", shop, file).await;
    assert_eq!(status, http::StatusCode::ACCEPTED);
    order_webhook::defer::consume_all(&ctx, &sqs, &url, 10)
        .await
        .unwrap();
    assert_eq!(balance().await, 20 + 60 + 10);
    // Another partner: the same 404 as an import nobody has.
    let theirs = call(
        "GET",
        &path,
        integration_tests::OTHER_API_KEY,
        String::new(),
    )
    .await;
    let nobodys = call(
        "GET",
        "/v1/partner/imports/imp_0000000000000000",
        integration_tests::OTHER_API_KEY,
        String::new(),
    )
    .await;
    assert_eq!(theirs.0, http::StatusCode::NOT_FOUND);
    assert_eq!(theirs, nobodys);
    // Nothing to import, or too much: refused, nothing queued.
    let (status, body) = call("POST", "/v1/partner/imports", shop, "\n\n".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (http::StatusCode::UNPROCESSABLE_ENTITY, Some("no_lines"))
    );
}
