//! The gift-shop catalogue at its real size (ALSO: about 1,200 items): a partner manages its
//! own rewards over the partner API (categories, pictures, stock once per reference), and
//! members' shops page through the catalogue, 50 at a time, each page one Query, by category
//! too.

use std::collections::BTreeSet;

use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SHOP_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const RIVAL_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";
const WIDGET_KEY: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";

const CONFIG: &str = r#"
programmes:
  - id: also
    name: ALSO Bonus Club
    kind: coalition
    currency: EUR
partners:
  - id: vendor
    programme: also
    name: Vendor
    api_keys:
      - {label: marketing, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
      - {label: shop, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [read_balance, hold]}
  - id: rival
    programme: also
    name: Rival
    api_keys:
      - {label: marketing, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
rewards:
  - {id: mug, programme: also, name: Mug, points: 500, stock: 10, category: kitchen}
"#;

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    env.call_as(key, "Kim", method, path, body).await
}

#[tokio::test]
async fn a_partner_manages_its_own_rewards_and_nobody_elses() {
    let env = TestEnv::with_config(CONFIG).await;
    let headset = json!({"id": "headset", "name": "Headset", "description": "Wireless",
        "category": "audio", "image_url": "https://cdn.example/headset.png", "points": 12000,
        "stock": 20, "per_member_limit": 1});
    let (status, created) = call(
        &env,
        SHOP_KEY,
        "POST",
        "/v1/partner/rewards",
        headset.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["in_stock"].as_i64(), created["category"].as_str()),
        (Some(20), Some("audio"))
    );
    let (status, again) = call(
        &env,
        SHOP_KEY,
        "POST",
        "/v1/partner/rewards",
        headset.clone(),
    )
    .await;
    assert_eq!((status, &again), (StatusCode::OK, &created));
    let (status, e) = call(
        &env,
        RIVAL_KEY,
        "POST",
        "/v1/partner/rewards",
        headset.clone(),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("reward_exists"))
    );
    for (bad, field) in [
        (
            json!({"image_url": "http://cdn.example/x.png"}),
            "image_url",
        ),
        (json!({"points": 0}), "points"),
        (json!({"category": "a b"}), "category"),
        (json!({"name": ""}), "name"),
    ] {
        let mut body = headset.clone();
        body["id"] = json!("other");
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, e) = call(&env, SHOP_KEY, "POST", "/v1/partner/rewards", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().starts_with(field),
            "{e}"
        );
    }
    // Stock once per reference.
    let restock = "/v1/partner/rewards/headset/stock";
    let (status, r) = call(
        &env,
        SHOP_KEY,
        "POST",
        restock,
        json!({"units": 30, "reference": "delivery-7"}),
    )
    .await;
    assert_eq!(
        (status, r["in_stock"].as_i64(), r["granted"].as_i64()),
        (StatusCode::CREATED, Some(50), Some(50))
    );
    let (status, r) = call(
        &env,
        SHOP_KEY,
        "POST",
        restock,
        json!({"units": 30, "reference": "delivery-7"}),
    )
    .await;
    assert_eq!((status, r["in_stock"].as_i64()), (StatusCode::OK, Some(50)));
    let (status, e) = call(
        &env,
        SHOP_KEY,
        "POST",
        restock,
        json!({"units": 5, "reference": "delivery-7"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("restock_conflict"))
    );
    // A patch: price and category; the stock stays.
    let (status, p) = call(
        &env,
        SHOP_KEY,
        "PATCH",
        "/v1/partner/rewards/headset",
        json!({"points": 9900, "category": "sale"}),
    )
    .await;
    assert_eq!(
        (status, p["points"].as_i64(), p["in_stock"].as_i64()),
        (StatusCode::OK, Some(9900), Some(50)),
        "{p}"
    );
    // Another partner, and the programme's own reward: the same 404 as none.
    let (_, none) = call(
        &env,
        RIVAL_KEY,
        "PATCH",
        "/v1/partner/rewards/nothing",
        json!({"points": 1}),
    )
    .await;
    for (key, path, body) in [
        (
            RIVAL_KEY,
            "/v1/partner/rewards/headset",
            json!({"points": 1}),
        ),
        (RIVAL_KEY, restock, json!({"units": 1, "reference": "x"})),
        (SHOP_KEY, "/v1/partner/rewards/mug", json!({"points": 1})),
    ] {
        let method = if path.ends_with("stock") {
            "POST"
        } else {
            "PATCH"
        };
        let (status, e) = call(&env, key, method, path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(e, none);
    }
    let (_, mine) = call(&env, SHOP_KEY, "GET", "/v1/partner/rewards", Value::Null).await;
    assert_eq!(mine["rewards"].as_array().unwrap().len(), 1);
    let (_, theirs) = call(&env, RIVAL_KEY, "GET", "/v1/partner/rewards", Value::Null).await;
    assert_eq!(theirs["rewards"], json!([]));
    // In the members' catalogue, by category.
    let (_, sale) = call(
        &env,
        WIDGET_KEY,
        "GET",
        "/v1/rewards?category=sale",
        Value::Null,
    )
    .await;
    assert_eq!(sale["rewards"].as_array().unwrap().len(), 1);
    assert_eq!(
        sale["rewards"][0]["image_url"],
        "https://cdn.example/headset.png"
    );
    let (_, audio) = call(
        &env,
        WIDGET_KEY,
        "GET",
        "/v1/rewards?category=audio",
        Value::Null,
    )
    .await;
    assert_eq!(audio["rewards"], json!([]), "it left its old category");
    let (_, trail) = call(&env, SHOP_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    let actions: Vec<&str> = trail["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(
        actions.contains(&"created")
            && actions.contains(&"restocked")
            && actions.contains(&"updated")
    );
}

/// 1,200 rewards in three categories (and none); a member's shop pages through all of them
/// and through one category, 50 a page: every page is one DynamoDB request.
#[tokio::test]
async fn a_page_of_50_of_1200_rewards_is_one_query() {
    let env = TestEnv::with_config(CONFIG).await;
    for i in 0..1_200 {
        let category = ["coffee", "bikes", "audio", ""][i % 4];
        let r = bonus_domain::reward::Reward {
            programme_id: "also".into(),
            reward_id: format!("item-{i:04}"),
            name: format!("Item {i}"),
            description: None,
            points: 100 + i as i64,
            granted: 5,
            stock: 5,
            per_member_limit: None,
            category: (!category.is_empty()).then(|| category.to_string()),
            image_url: None,
            partner_id: Some("vendor".into()),
        };
        env.store.put_reward(&r).await.unwrap();
    }
    // The key is read once (then cached for the configuration period).
    call(&env, WIDGET_KEY, "GET", "/v1/rewards?limit=1", Value::Null).await;
    for (category, expected) in [(None, 1_201), (Some("coffee"), 300)] {
        let mut seen = BTreeSet::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = "/v1/rewards?limit=50".to_string();
            if let Some(c) = category {
                path.push_str(&format!("&category={c}"));
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            env.requests.reset();
            let (status, page) = call(&env, WIDGET_KEY, "GET", &path, Value::Null).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert_eq!(
                env.requests.snapshot().get("Query").copied(),
                Some(1),
                "{path}"
            );
            assert_eq!(env.requests.total(), 1, "{path}: one read round trip");
            let items = page["rewards"].as_array().unwrap();
            assert!(items.len() <= 50);
            for r in items {
                assert!(
                    seen.insert(r["reward_id"].as_str().unwrap().to_string()),
                    "a reward on two pages"
                );
                if let Some(c) = category {
                    assert_eq!(r["category"], c);
                }
            }
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), expected, "{category:?}");
        assert!(pages <= expected / 50 + 2, "{pages} pages");
    }
}
