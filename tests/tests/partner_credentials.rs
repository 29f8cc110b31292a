//! A partner rotates its own API keys and webhook secrets over the partner API: a new key
//! works at once and is shown once; a revoked key is refused at once; `bonus apply` never
//! brings a revoked key back; a new webhook secret verifies next to the old one until the
//! old one is removed; the last one cannot be removed; another partner touches none of it.

use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SHOP_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const RIVAL_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";
const WIDGET_KEY: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";
const SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";

const CONFIG: &str = r#"
programmes:
  - {id: velo, name: Velo, kind: coalition, currency: EUR}
partners:
  - id: shop
    programme: velo
    name: Shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: office, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
      - {label: widget, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [read_balance]}
  - id: rival
    programme: velo
    name: Rival
    api_keys:
      - {label: office, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
members:
  - {id: M-1, programme: velo}
"#;

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    env.call_as(key, "Ops Olga", method, path, body).await
}

async fn order(env: &TestEnv, secret: &str, id: &str) -> StatusCode {
    let body = integration_tests::order_paid(id, Some("M-1"), &[("A", 1, "10.00")]);
    let headers = env.signed(secret, &format!("msg-{id}"), &body, 0);
    env.call("POST", "/v1/partners/shop/webhooks/orders", &headers, body)
        .await
        .0
}

#[tokio::test]
async fn keys_are_made_once_and_revoked_at_once_and_apply_never_revives_them() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, made) = call(
        &env,
        SHOP_KEY,
        "POST",
        "/v1/partner/keys",
        json!({"label": "till 2", "scopes": ["read_balance", "hold"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let new_key = made["key"].as_str().unwrap().to_string();
    let id = made["key_id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &env,
            &new_key,
            "GET",
            "/v1/members/M-1/balance",
            Value::Null
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "POST",
        "/v1/partner/keys",
        json!({"label": "till 2", "scopes": ["hold"]}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("key_label_taken"))
    );
    let (_, list) = call(&env, SHOP_KEY, "GET", "/v1/partner/keys", Value::Null).await;
    let labels: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 3, "{list}");
    assert!(
        !list.to_string().contains(&new_key),
        "the key itself is never listed"
    );
    // Another partner cannot revoke it.
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "DELETE",
        &format!("/v1/partner/keys/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("key_not_found"))
    );
    let (status, _) = call(
        &env,
        SHOP_KEY,
        "DELETE",
        &format!("/v1/partner/keys/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        call(
            &env,
            &new_key,
            "GET",
            "/v1/members/M-1/balance",
            Value::Null
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // The widget key from the config file, revoked over the API, stays revoked after apply.
    let (_, list) = call(&env, SHOP_KEY, "GET", "/v1/partner/keys", Value::Null).await;
    let widget = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "widget")
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &env,
        SHOP_KEY,
        "DELETE",
        &format!("/v1/partner/keys/{widget}"),
        Value::Null,
    )
    .await;
    let plan = bonus_ops::apply::plan_file(CONFIG).unwrap();
    bonus_ops::apply::apply(&env.store, &plan).await.unwrap();
    let hash = bonus_domain::member::hash_api_key(WIDGET_KEY);
    assert!(env.store.get_api_key(&hash).await.unwrap().unwrap().revoked);
    let (_, trail) = call(&env, SHOP_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    assert_eq!(
        trail["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == "key_revoked")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_webhook_secret_is_rotated_without_refusing_a_delivery() {
    let env = TestEnv::with_config(CONFIG).await;
    let (_, before) = call(
        &env,
        SHOP_KEY,
        "GET",
        "/v1/partner/webhook-secrets",
        Value::Null,
    )
    .await;
    let old_id = before["secret_ids"][0].as_str().unwrap().to_string();
    let (status, added) = call(
        &env,
        SHOP_KEY,
        "POST",
        "/v1/partner/webhook-secrets",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let new_secret = added["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_"));
    assert_eq!(added["secret_ids"].as_array().unwrap().len(), 2);
    // Both verify during the rotation.
    assert_eq!(order(&env, SECRET, "O-1").await, StatusCode::OK);
    assert_eq!(order(&env, &new_secret, "O-2").await, StatusCode::OK);
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "POST",
        "/v1/partner/webhook-secrets",
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("too_many_secrets"))
    );
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "DELETE",
        &format!("/v1/partner/webhook-secrets/{old_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("secret_not_found"))
    );
    let (status, _) = call(
        &env,
        SHOP_KEY,
        "DELETE",
        &format!("/v1/partner/webhook-secrets/{old_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        order(&env, SECRET, "O-3").await,
        StatusCode::UNAUTHORIZED,
        "the old secret is gone"
    );
    assert_eq!(order(&env, &new_secret, "O-4").await, StatusCode::OK);
    let new_id = added["secret_id"].as_str().unwrap();
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "DELETE",
        &format!("/v1/partner/webhook-secrets/{new_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_secret"))
    );
    // Stored sealed, never in plain text.
    let stored = env.store.get_partner("shop").await.unwrap().unwrap();
    assert!(stored
        .webhook_secrets
        .iter()
        .all(|s| !s.contains(&new_secret[6..])));
}
