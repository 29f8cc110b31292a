//! Partner secrets at rest: stored sealed (no item holds one in plain text), opened only to
//! verify a webhook; secrets written in plain text by an earlier version are sealed by
//! `bonus migrate`; and the same with KMS (moto's).

use bonus_dynamodb::{keys, to_item, Item};
use bonus_local_stack::moto::LocalMoto;
use bonus_secrets::Sealer;
use integration_tests::{order_paid, TestEnv, CONFIG, SECRET};

/// The base64 part of the test partners' Standard Webhooks secret.
const SECRET_KEY_PART: &str = "dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";

async fn items(env: &TestEnv) -> Vec<Item> {
    env.all_items().await
}

/// How many stored items hold `text` anywhere (as a string attribute or inside one).
async fn holding(env: &TestEnv, text: &str) -> usize {
    items(env)
        .await
        .iter()
        .filter(|i| format!("{i:?}").contains(text))
        .count()
}

#[tokio::test]
async fn partner_secrets_are_stored_sealed_and_webhooks_still_verify() {
    let env = TestEnv::with_config(CONFIG).await;
    assert!(SECRET.ends_with(SECRET_KEY_PART));
    assert_eq!(
        holding(&env, SECRET_KEY_PART).await,
        0,
        "no item holds the secret"
    );
    assert!(holding(&env, "sealed:aes:").await >= 2);
    let (status, body) = env
        .order(&order_paid("A-1", Some("M-1"), &[("X", 1, "10.00")]))
        .await;
    assert_eq!((status.as_u16(), body["points"].as_i64()), (200, Some(10)));
    // A wrong secret is still refused.
    let body = order_paid("A-2", Some("M-1"), &[("X", 1, "10.00")]);
    let headers = env.signed("whsec_d3Jvbmctc2VjcmV0LTAxMjM0NTY3ODk=", "m-2", &body, 0);
    let (status, _) = env
        .call("POST", "/v1/partners/shop/webhooks/orders", &headers, body)
        .await;
    assert_eq!(status.as_u16(), 401);
}

#[tokio::test]
async fn secrets_written_in_plain_text_are_sealed_by_migrate() {
    let env = TestEnv::with_config(CONFIG).await;
    // The partner as an earlier version stored it: the secret in plain text.
    let stored = env.store.get_partner("shop").await.unwrap().unwrap();
    let mut old = bonus_secrets::open_partner(&Sealer::local_default(), &stored)
        .await
        .unwrap();
    assert_eq!(old.webhook_secrets, vec![SECRET.to_string()]);
    old.webhook_secrets = vec![SECRET.to_string()];
    let mut item = to_item(keys::partner("shop"), "partner", &old).unwrap();
    item.remove(bonus_dynamodb::SCHEMA_ATTRIBUTE);
    env.store
        .client
        .put_item()
        .table_name(&env.store.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    assert_eq!(holding(&env, SECRET_KEY_PART).await, 1);
    let m = bonus_ops::migrate::migrate(&env.store, &|_| {})
        .await
        .unwrap();
    assert_eq!((m.upgraded, m.left), (1, 0), "{m:?}");
    assert_eq!(holding(&env, SECRET_KEY_PART).await, 0);
    let again = bonus_ops::migrate::migrate(&env.store, &|_| {})
        .await
        .unwrap();
    assert_eq!((again.upgraded, again.marked, again.left), (0, 0, 0));
    let (status, _) = env
        .order(&order_paid("A-1", Some("M-1"), &[("X", 1, "10.00")]))
        .await;
    assert_eq!(status.as_u16(), 200);
}

#[tokio::test]
async fn with_kms_the_secrets_are_sealed_by_the_key_and_open_only_with_it() {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let creds = aws_sdk_kms::config::Credentials::new("local", "local", None, None, "bonus-local");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("eu-west-1"))
        .credentials_provider(creds)
        .endpoint_url(&moto.endpoint)
        .build();
    let client = aws_sdk_kms::Client::from_conf(config);
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata.unwrap().key_id;
    let kms = Sealer::Kms { client, key_id };
    let sealed = kms.seal(SECRET).await.unwrap();
    assert!(sealed.starts_with("sealed:kms:") && !sealed.contains(SECRET_KEY_PART));
    assert_eq!(kms.open(&sealed).await.unwrap(), SECRET);
    // The local key cannot open it (nor anything else without kms:Decrypt on this key).
    assert!(Sealer::local_default().open(&sealed).await.is_err());

    // A partner applied with KMS verifies its webhooks through a context that opens with KMS.
    let env = TestEnv::with_config(CONFIG).await;
    let plan = bonus_ops::apply::plan_file(CONFIG).unwrap();
    bonus_ops::apply::apply_with(&env.store, &plan, &kms)
        .await
        .unwrap();
    assert!(holding(&env, "sealed:kms:").await >= 2);
    let mut ctx = bonus_lambda::app::Ctx::new(
        env.store.clone(),
        env.clock.clone(),
        std::time::Duration::from_secs(60),
    );
    ctx.sealer = kms;
    let body = order_paid("K-1", Some("M-1"), &[("X", 1, "10.00")]);
    let mut req = http::Request::builder()
        .method("POST")
        .uri("/v1/partners/shop/webhooks/orders");
    for (k, v) in env.signed(SECRET, "m-k1", &body, 0) {
        req = req.header(k, v);
    }
    let resp = bonus_ops::dev::dispatch(&ctx, req.body(body.into()).unwrap()).await;
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.body());
    // A function whose key cannot open the sealed secret (misconfigured) fails loudly, a 500
    // that raises its errors alarm, never a quiet 401 that looks like the partner's fault.
    let body = order_paid("K-2", Some("M-1"), &[("X", 1, "10.00")]);
    let headers = env.signed(SECRET, "m-k2", &body, 0);
    let (status, e) = env
        .call("POST", "/v1/partners/shop/webhooks/orders", &headers, body)
        .await;
    assert_eq!(status.as_u16(), 500, "{e}");
}
