//! Partners' outgoing webhooks end to end: a partner subscribes over the partner API; a
//! booking's ledger events pass the outbox, the notifications consumer (moto SQS) queues one
//! delivery per subscribed partner; the sender posts it to a real local HTTP receiver,
//! signed with Standard Webhooks; a receiver's failure is retried with backoff under the
//! same webhook id, and every attempt is in the partner's delivery log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use bonus_lambda::app::{Ctx, Deferral};
use bonus_local_stack::moto::LocalMoto;
use http::StatusCode;
use integration_tests::{order_paid, TestEnv};
use serde_json::{json, Value};

const SHOP_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const RIVAL_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";
const SHOP_SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: coalition
    currency: EUR
    time_zone: Europe/Amsterdam
    tiers: [{name: Basic, threshold: 0, multiplier: 1}, {name: Gold, threshold: 150, multiplier: 1}]
partners:
  - id: shop
    programme: velo
    name: Shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: backoffice, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
  - id: rival
    programme: velo
    name: Rival
    webhook_secrets: [whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==]
    api_keys:
      - {label: backoffice, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
members:
  - id: M-1
    programme: velo
    partner: shop
    external_ids: {shop: "C-77"}
"#;

/// What the receiver got: (headers, body); it fails the first `fail` requests with a 500.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail: Arc<Mutex<usize>>,
}

async fn receiver(fail: usize) -> (Receiver, String) {
    let r = Receiver::default();
    *r.fail.lock().unwrap() = fail;
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                state.got.lock().unwrap().push((headers, body));
                let mut fail = state.fail.lock().unwrap();
                if *fail > 0 {
                    *fail -= 1;
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxumStatus::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, format!("http://{addr}/hooks"))
}

struct Queues {
    _moto: LocalMoto,
    sqs: aws_sdk_sqs::Client,
    notify: String,
    webhooks: String,
    senders: notifications::Senders,
    /// The notifications consumer's context: the test's store and clock, with the queue.
    ctx: Ctx,
}

async fn queues(env: &TestEnv) -> Queues {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let senders = bonus_local_stack::moto::local_senders(&moto.endpoint, "points@example.com")
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let notify = bonus_sqs::ensure_queue(&sqs, "notifications", 30, 5)
        .await
        .unwrap();
    let webhooks = bonus_sqs::ensure_queue(&sqs, "partner-webhooks", 30, 8)
        .await
        .unwrap();
    let mut ctx = Ctx::new(
        env.store.clone(),
        env.clock.clone(),
        Duration::from_secs(3600),
    );
    ctx.partner_webhooks = Some(Deferral::new(sqs.clone(), webhooks.clone()));
    Queues {
        _moto: moto,
        sqs,
        notify,
        webhooks,
        senders,
        ctx,
    }
}

/// Relay the outbox and consume the notifications queue (which queues the deliveries), then
/// post what the partner-webhooks queue holds: (delivered, waiting).
async fn pump(q: &Queues) -> (usize, usize) {
    notifications::relay_once(&q.ctx, &q.sqs, &q.notify, 100, None)
        .await
        .unwrap();
    notifications::consume_all(&q.ctx, &q.senders, &q.sqs, &q.notify, 100)
        .await
        .unwrap();
    let http = notifications::outgoing::http_client();
    notifications::outgoing::consume_all(&q.ctx, &http, &q.sqs, &q.webhooks, 10)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscribed_partner_gets_its_members_events_signed_and_a_failure_is_retried_under_the_same_id(
) {
    let env = TestEnv::with_config(CONFIG).await;
    let q = queues(&env).await;
    let (r, url) = receiver(1).await;
    // Subscriptions are checked: https, or a local address; known event types.
    for (bad, field) in [
        (
            json!({"url": "http://hooks.example/x", "events": ["points.earned"]}),
            "webhooks.url",
        ),
        (
            json!({"url": url, "events": ["points.spent"]}),
            "webhooks.events",
        ),
    ] {
        let (status, body) = env
            .call_as(
                SHOP_KEY,
                "Eva",
                "PATCH",
                "/v1/partner",
                json!({"webhooks": bad}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}"
        );
    }
    let (status, body) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "PATCH",
            "/v1/partner",
            json!({"webhooks": {"url": url, "events": ["points.earned", "tier.changed"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["webhooks"]["events"],
        json!(["points.earned", "tier.changed"])
    );

    // 200.00 EUR: 200 points earned and Basic -> Gold; two webhooks, both to the shop.
    let (status, body) = env
        .order(&order_paid("A-1", Some("M-1"), &[("HELMET", 1, "200.00")]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (delivered, waiting) = pump(&q).await;
    assert_eq!(
        (delivered, waiting),
        (1, 1),
        "the receiver failed the first one"
    );
    // The failed one comes back after its backoff (30 s), under the same webhook id.
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let first_id = got[0].0["webhook-id"].to_str().unwrap().to_string();

    let (_, log) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "GET",
            "/v1/partner/webhook-deliveries",
            Value::Null,
        )
        .await;
    let attempts = log["deliveries"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{log}");
    let failed = attempts.iter().find(|a| a["outcome"] == "failed").unwrap();
    assert_eq!(
        (failed["status"].as_u64(), failed["error"].as_str()),
        (Some(500), Some("http_500"))
    );
    assert_eq!(failed["webhook_id"], first_id.as_str());
    assert!(failed["next_attempt_at"].is_string());
    // Redelivered by SQS once its visibility (the backoff: 30 s and up to a quarter more
    // jitter) ends.
    let http = notifications::outgoing::http_client();
    let mut delivered = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (d, w) = notifications::outgoing::consume_all(&q.ctx, &http, &q.sqs, &q.webhooks, 10)
            .await
            .unwrap();
        assert_eq!(w, 0);
        delivered += d;
        if delivered > 0 {
            break;
        }
    }
    assert_eq!(delivered, 1);
    let got = r.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2].0["webhook-id"].to_str().unwrap(),
        first_id,
        "the same id on every attempt"
    );

    // Every delivery verifies against the shop's secret, and says what happened.
    let mut types = Vec::new();
    for (headers, body) in &got {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        bonus_domain::webhook_sig::verify(
            &[SHOP_SECRET.to_string()],
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            body.as_bytes(),
            env.clock_now(),
        )
        .expect("signed with the shop's secret");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["data"]["member_id"], "M-1");
        assert_eq!(v["data"]["customer_id"], "C-77");
        assert!(!body.contains('@'), "no addresses: {body}");
        types.push(v["type"].as_str().unwrap().to_string());
    }
    types.sort();
    types.dedup();
    assert_eq!(types, ["points.earned", "tier.changed"]);
    let earned: Value = got
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|v| v["type"] == "points.earned")
        .unwrap();
    assert_eq!(earned["data"]["points"], 200);
    assert_eq!(earned["data"]["order_id"], "A-1");

    let (_, log) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "GET",
            "/v1/partner/webhook-deliveries?limit=2",
            Value::Null,
        )
        .await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 2);
    assert!(log["next_cursor"].is_string(), "{log}");
    // The rival subscribed to nothing and sees no delivery of the shop's.
    let (_, theirs) = env
        .call_as(
            RIVAL_KEY,
            "Rex",
            "GET",
            "/v1/partner/webhook-deliveries",
            Value::Null,
        )
        .await;
    assert_eq!(theirs["deliveries"], json!([]));

    // Unsubscribed: the next order sends nothing.
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "PATCH",
            "/v1/partner",
            json!({"webhooks": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = env
        .order(&order_paid("A-2", Some("M-1"), &[("HELMET", 1, "20.00")]))
        .await;
    assert_eq!(status, StatusCode::OK);
    q.ctx.forget_partner("shop");
    assert_eq!(pump(&q).await, (0, 0));
    assert_eq!(r.got.lock().unwrap().len(), 3);
}
