//! Spending points: holds, captures, voids, expiry, the gift shop and partner isolation,
//! through the real member API and the embedded DynamoDB.

use chrono::Duration;
use futures::future::join_all;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SECRET_A: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
const KEY_A: &str = "bk_5cfe7a8497bbc15c0789802476203e080db6ecb2_1a14dfe1";
const KEY_B: &str = "bk_fb7796ade50e1d1375b3ccf5316fba7313593e04_0efdedd2";
const KEY_CLUB: &str = "bk_490e41a37e9d278bba20203f6ddf0b1bd1214f04_9f7d74c2";
const KEY_READ_ONLY: &str = "bk_6b0cc4ec3e064395f63f888396444ff9aabe05e4_09bb4fcd";
const KEY_OLD: &str = "bk_a1b355ea76b765fd11c66845dc797d8dad37d1ad_15913133";

/// A closed programme with two partners (a, b), and a coalition (club) whose spending
/// minimum is 100 points, with a gift shop.
const CONFIG: &str = r#"
programmes:
  - id: shop
    name: Closed shop programme
    kind: closed
    currency: EUR
  - id: club
    name: Coalition
    kind: coalition
    currency: EUR
    min_balance_to_redeem: 100
    tiers: [{name: Member, threshold: 0, multiplier: 1}]
partners:
  - id: a
    programme: shop
    name: A
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: a, key: bk_5cfe7a8497bbc15c0789802476203e080db6ecb2_1a14dfe1, scopes: [read_balance, read_profile, hold, enrol, erase]}
      - {label: a reports, key: bk_6b0cc4ec3e064395f63f888396444ff9aabe05e4_09bb4fcd}
      - {label: a old, key: bk_a1b355ea76b765fd11c66845dc797d8dad37d1ad_15913133, scopes: [read_balance, hold], revoked: true}
  - id: b
    programme: shop
    name: B
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: b, key: bk_fb7796ade50e1d1375b3ccf5316fba7313593e04_0efdedd2, scopes: [read_balance, read_profile, hold, enrol, erase]}
  - id: club-shop
    programme: club
    name: Club shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: club, key: bk_490e41a37e9d278bba20203f6ddf0b1bd1214f04_9f7d74c2, scopes: [read_balance, read_profile, hold, enrol, erase]}
members:
  - {id: M-A, programme: shop, partner: a, email: anna@example.com, phone: "+31612345678"}
  - {id: M-W, programme: shop}
  - {id: C-1, programme: club}
rewards:
  - {id: mug, programme: club, name: Mug, points: 100, stock: 10}
  - {id: bike, programme: club, name: Bike, points: 200, stock: 5, per_member_limit: 1}
"#;

/// Earn `euros` points for `member` at `partner` (1 point per EUR), available 15 days later.
async fn earn(env: &TestEnv, partner: &str, member: &str, order_id: &str, euros: i64) {
    let body = json!({
        "type": "order.paid", "order_id": order_id, "member_id": member,
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "GOODS", "quantity": 1, "unit_price": format!("{euros}.00")}]
    })
    .to_string();
    let headers = env.signed(SECRET_A, &format!("msg-{order_id}"), &body, 0);
    let (status, answer) = env
        .call(
            "POST",
            &format!("/v1/partners/{partner}/webhooks/orders"),
            &headers,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn call(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let headers = [("authorization", format!("Bearer {key}"))];
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    env.call(method, path, &headers, body).await
}

async fn hold(
    env: &TestEnv,
    key: &str,
    member: &str,
    points: i64,
    reference: &str,
) -> (StatusCode, Value) {
    call(
        env,
        key,
        "POST",
        &format!("/v1/members/{member}/holds"),
        json!({"points": points, "reference": reference}),
    )
    .await
}

async fn balance(env: &TestEnv, key: &str, member: &str) -> Value {
    call(
        env,
        key,
        "GET",
        &format!("/v1/members/{member}/balance"),
        Value::Null,
    )
    .await
    .1
}

fn n(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or(i64::MIN)
}

#[tokio::test]
async fn two_hundred_concurrent_holds_of_100_against_5000_available_reserve_exactly_50() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 5000).await;
    env.clock.advance(Duration::days(15));
    let answers = join_all((0..200).map(|i| {
        let env = &env;
        async move { hold(env, KEY_CLUB, "C-1", 100, &format!("cart-{i}")).await }
    }))
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "insufficient_points")
        .count();
    assert_eq!(
        (created, refused),
        (50, 150),
        "{:?}",
        answers
            .iter()
            .find(|(s, _)| *s != StatusCode::CREATED && *s != StatusCode::CONFLICT)
    );
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!(
        (n(&b, "available"), n(&b, "held"), n(&b, "total")),
        (0, 5000, 5000)
    );
    let account = env.store.get_account("club", "C-1").await.unwrap().unwrap();
    assert!(account.available >= 0);
    account.check().unwrap();
    let lots = env.store.lots("club", "C-1").await.unwrap();
    assert_eq!((lots[0].remaining, lots[0].held), (0, 5000));
}

#[tokio::test]
async fn a_hold_nobody_captures_is_released_after_15_minutes() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 500).await;
    env.clock.advance(Duration::days(15));
    let (status, h) = hold(&env, KEY_CLUB, "C-1", 300, "cart-1").await;
    assert_eq!(status, StatusCode::CREATED, "{h}");
    assert_eq!(
        h["expires_at"],
        json!((env.clock_now() + Duration::minutes(15))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!((n(&b, "available"), n(&b, "held")), (200, 300));

    env.clock.advance(Duration::minutes(14));
    assert_eq!(n(&balance(&env, KEY_CLUB, "C-1").await, "held"), 300);
    env.clock.advance(Duration::minutes(1));
    // Nobody acted: the balance already shows the points free again...
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!((n(&b, "available"), n(&b, "held")), (500, 0));
    // ...the sweeper finds it through the open-hold index and releases it for good...
    let lapsed = env.store.lapsed_holds(env.clock_now(), 100).await.unwrap();
    assert_eq!(lapsed, vec![h["hold_id"].as_str().unwrap().to_string()]);
    let swept = bonus_services::holds::sweep(&env.ctx, 100).await.unwrap();
    assert_eq!((swept.lapsed, swept.released), (1, 1));
    let account = env.store.get_account("club", "C-1").await.unwrap().unwrap();
    assert_eq!(
        (account.available, account.held, account.open_holds.len()),
        (500, 0, 0)
    );
    let lots = env.store.lots("club", "C-1").await.unwrap();
    assert_eq!((lots[0].remaining, lots[0].held), (500, 0));
    assert!(env
        .store
        .lapsed_holds(env.clock_now(), 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        bonus_services::holds::sweep(&env.ctx, 100)
            .await
            .unwrap()
            .lapsed,
        0
    );
    // ...and a late capture is refused.
    let id = h["hold_id"].as_str().unwrap();
    let (status, e) = call(
        &env,
        KEY_CLUB,
        "POST",
        &format!("/v1/holds/{id}/capture"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("hold_expired"))
    );
    let (_, shown) = call(
        &env,
        KEY_CLUB,
        "GET",
        &format!("/v1/holds/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(shown["status"], "expired");
    // All 500 can be held again.
    assert_eq!(
        hold(&env, KEY_CLUB, "C-1", 500, "cart-2").await.0,
        StatusCode::CREATED
    );
}

/// Found by the simulation (docs/reliability.md): a refund while a lapsed hold, not yet
/// swept, still reserved the order's points took them from other lots or made them debt.
/// A hold that ran out reserves nothing: the refund releases it and takes the order's own.
#[tokio::test]
async fn a_refund_takes_back_points_a_lapsed_hold_still_reserved_from_the_orders_own_lot() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 500).await;
    env.clock.advance(Duration::days(15));
    let (status, h) = hold(&env, KEY_CLUB, "C-1", 500, "cart-1").await;
    assert_eq!(status, StatusCode::CREATED, "{h}");
    env.clock.advance(Duration::minutes(20));

    let body = json!({"type": "order.cancelled", "order_id": "O-1",
        "occurred_at": env.clock_now().to_rfc3339()})
    .to_string();
    let headers = env.signed(SECRET_A, "msg-cancel", &body, 0);
    let (status, answer) = env
        .call(
            "POST",
            "/v1/partners/club-shop/webhooks/orders",
            &headers,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (
            &answer["points"],
            &answer["from_own"],
            &answer["from_others"],
            &answer["to_debt"]
        ),
        (&json!(500), &json!(500), &json!(0), &json!(0)),
        "{answer}"
    );
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!(
        (n(&b, "available"), n(&b, "held"), n(&b, "debt")),
        (0, 0, 0)
    );
    let account = env.store.get_account("club", "C-1").await.unwrap().unwrap();
    assert!(account.open_holds.is_empty());
    let (_, h) = call(
        &env,
        KEY_CLUB,
        "GET",
        &format!("/v1/holds/{}", h["hold_id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    assert_eq!(h["status"], "expired");
}

#[tokio::test]
async fn capture_twice_takes_the_points_once_and_each_hold_resolves_once() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 1000).await;
    env.clock.advance(Duration::days(15));
    let (_, h) = hold(&env, KEY_CLUB, "C-1", 400, "till-7").await;
    let id = h["hold_id"].as_str().unwrap().to_string();
    // The same request again is the same hold.
    let (status, again) = hold(&env, KEY_CLUB, "C-1", 400, "till-7").await;
    assert_eq!((status, &again["hold_id"]), (StatusCode::OK, &h["hold_id"]));
    assert_eq!(
        hold(&env, KEY_CLUB, "C-1", 401, "till-7").await.1["error"]["code"],
        "hold_conflict"
    );

    let capture = format!("/v1/holds/{id}/capture");
    let (answers, _) = futures::join!(
        join_all((0..5).map(|_| call(&env, KEY_CLUB, "POST", &capture, json!({"points": 250})))),
        async {}
    );
    for (status, body) in &answers {
        assert_eq!(
            (*status, body["status"].as_str(), n(body, "captured")),
            (StatusCode::OK, Some("captured"), 250),
            "{body}"
        );
    }
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!(
        (n(&b, "available"), n(&b, "held"), n(&b, "total")),
        (750, 0, 750)
    );
    let entries = env.store.entries("club", "C-1").await.unwrap();
    let redeemed: Vec<i64> = entries
        .iter()
        .filter(|e| e.kind == bonus_domain::events::EntryKind::Redeem)
        .map(|e| e.points)
        .collect();
    assert_eq!(redeemed, vec![-250]);
    // A void after the capture is refused; a void of a voided hold answers with its state.
    let (status, e) = call(
        &env,
        KEY_CLUB,
        "POST",
        &format!("/v1/holds/{id}/void"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("hold_captured"))
    );
    let (_, h2) = hold(&env, KEY_CLUB, "C-1", 100, "till-8").await;
    let void = format!("/v1/holds/{}/void", h2["hold_id"].as_str().unwrap());
    for _ in 0..2 {
        let (status, v) = call(&env, KEY_CLUB, "POST", &void, Value::Null).await;
        assert_eq!(
            (status, v["status"].as_str()),
            (StatusCode::OK, Some("voided"))
        );
    }
    let capture2 = format!("/v1/holds/{}/capture", h2["hold_id"].as_str().unwrap());
    assert_eq!(
        call(&env, KEY_CLUB, "POST", &capture2, Value::Null).await.1["error"]["code"],
        "hold_voided"
    );
    assert_eq!(n(&balance(&env, KEY_CLUB, "C-1").await, "available"), 750);
    // The event for clearing says who accepted the points and whose they were.
    let mut events = Vec::new();
    for shard in 0..bonus_dynamodb::keys::OUTBOX_SHARDS {
        events.extend(env.store.outbox_shard(shard).await.unwrap());
    }
    let redeemed: Vec<_> = events
        .iter()
        .filter(|e| e.type_name() == "PointsRedeemed")
        .collect();
    assert_eq!(redeemed.len(), 1);
    assert!(
        matches!(&redeemed[0].kind, bonus_domain::events::EventKind::PointsRedeemed { partner_id, by_issuer, .. }
        if partner_id == "club-shop" && by_issuer.get("club-shop") == Some(&250))
    );
}

#[tokio::test]
async fn spending_starts_at_the_minimum_balance() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "a", "M-A", "O-1", 999).await;
    env.clock.advance(Duration::days(15));
    let (status, e) = hold(&env, KEY_A, "M-A", 10, "r-1").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("below_min_balance")),
        "{e}"
    );
    earn(&env, "a", "M-A", "O-2", 1).await;
    env.clock.advance(Duration::days(15));
    assert_eq!(
        hold(&env, KEY_A, "M-A", 10, "r-2").await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn in_a_closed_programme_a_partner_neither_sees_nor_spends_another_partners_points() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "a", "M-A", "O-1", 2000).await;
    earn(&env, "a", "M-W", "O-2", 2000).await;
    env.clock.advance(Duration::days(15));
    // M-A enrolled with a: b cannot read anything about them, nor hold.
    for path in [
        "/v1/members/M-A",
        "/v1/members/M-A/balance",
        "/v1/members/M-A/entries",
    ] {
        let (status, e) = call(&env, KEY_B, "GET", path, Value::Null).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("member_not_found")),
            "{path}"
        );
    }
    assert_eq!(
        hold(&env, KEY_B, "M-A", 1000, "r-1").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, p) = call(&env, KEY_A, "GET", "/v1/members/M-A", Value::Null).await;
    assert_eq!(
        (status, p["email"].as_str()),
        (StatusCode::OK, Some("anna@example.com"))
    );
    // M-W belongs to the whole programme: b sees them but cannot spend a's points.
    let (status, e) = hold(&env, KEY_B, "M-W", 1000, "r-2").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("points_not_spendable_here")),
        "{e}"
    );
    assert_eq!(
        hold(&env, KEY_A, "M-W", 1000, "r-3").await.0,
        StatusCode::CREATED
    );
    // A hold of a's is not b's to capture.
    let (_, h) = hold(&env, KEY_A, "M-A", 1000, "r-4").await;
    let capture = format!("/v1/holds/{}/capture", h["hold_id"].as_str().unwrap());
    assert_eq!(
        call(&env, KEY_B, "POST", &capture, Value::Null).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn thirty_concurrent_claims_on_a_stock_of_ten_issue_exactly_ten_vouchers() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 5000).await;
    env.clock.advance(Duration::days(15));
    let (status, list) = call(&env, KEY_CLUB, "GET", "/v1/rewards", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["rewards"][1]["reward_id"], "mug");
    assert_eq!(list["rewards"][1]["in_stock"], 10);
    let answers = join_all((0..30).map(|i| {
        let env = &env;
        async move {
            call(
                env,
                KEY_CLUB,
                "POST",
                "/v1/members/C-1/rewards/mug/claim",
                json!({"reference": format!("c-{i}")}),
            )
            .await
        }
    }))
    .await;
    let vouchers: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .filter_map(|(_, b)| b["voucher_code"].as_str().map(str::to_string))
        .collect();
    let out = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "out_of_stock")
        .count();
    assert_eq!((vouchers.len(), out), (10, 20));
    let mug = env.store.get_reward("club", "mug").await.unwrap().unwrap();
    assert_eq!(mug.stock, 0);
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!((n(&b, "available"), n(&b, "held")), (4000, 0));
    // The per-member limit: one bike.
    let (status, _) = call(
        &env,
        KEY_CLUB,
        "POST",
        "/v1/members/C-1/rewards/bike/claim",
        json!({"reference": "b-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, e) = call(
        &env,
        KEY_CLUB,
        "POST",
        "/v1/members/C-1/rewards/bike/claim",
        json!({"reference": "b-2"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("claim_limit_reached"))
    );
    assert_eq!(
        env.store
            .get_reward("club", "bike")
            .await
            .unwrap()
            .unwrap()
            .stock,
        4
    );
}

#[tokio::test]
async fn erasure_removes_email_and_phone_everywhere_and_the_ledger_still_adds_up() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "a", "M-A", "O-1", 1500).await;
    env.clock.advance(Duration::days(15));
    let (_, h) = hold(&env, KEY_A, "M-A", 1000, "r-1").await;
    let capture = format!("/v1/holds/{}/capture", h["hold_id"].as_str().unwrap());
    call(&env, KEY_A, "POST", &capture, json!({"points": 600})).await;
    let (status, erased) = call(&env, KEY_A, "DELETE", "/v1/members/M-A", Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(
        (erased["email"].clone(), erased["phone"].clone()),
        (Value::Null, Value::Null)
    );
    // No item in the table holds the address or the number any more.
    let items = env
        .store
        .client
        .scan()
        .table_name(&env.store.table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let dump = format!("{items:?}");
    assert!(!dump.contains("anna@example.com") && !dump.contains("+31612345678"));
    assert!(
        !dump.contains("EMAIL#shop#"),
        "the e-mail index entry is gone"
    );
    // Balance and statement still add up.
    let b = balance(&env, KEY_A, "M-A").await;
    assert_eq!(n(&b, "total"), 900);
    let (_, page) = call(&env, KEY_A, "GET", "/v1/members/M-A/entries", Value::Null).await;
    let sum: i64 = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["points"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 900);
    assert_eq!(
        call(
            &env,
            KEY_A,
            "PATCH",
            "/v1/members/M-A",
            json!({"email": "x@example.com"})
        )
        .await
        .1["error"]["code"],
        "member_erased"
    );
}

#[tokio::test]
async fn enrol_update_read_and_page_the_statement() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, p) = call(&env, KEY_A, "POST", "/v1/members", json!({
        "external_id": "new-1", "email": "New@Example.com", "phone": "+46701234567", "locale": "sv",
        "time_zone": "Europe/Stockholm", "consents": {"email": true, "sms": false},
        "company": {"name": "Acme AB", "vat_id": "SE556677889901"}
    })).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    // The platform assigns the id: 64 random bits, not a caller's guess.
    let id = p["member_id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 18 && id.starts_with("M-") && id[2..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        (
            p["email"].as_str(),
            p["locale"].as_str(),
            p["consents"]["email"].as_bool()
        ),
        (Some("new@example.com"), Some("sv"), Some(true))
    );
    assert_eq!(
        call(
            &env,
            KEY_A,
            "POST",
            "/v1/members",
            json!({"external_id": "new-1"})
        )
        .await
        .1["error"]["code"],
        "member_exists",
        "the partner's own customer id, enrolled before"
    );
    let (status, e) = call(
        &env,
        KEY_A,
        "POST",
        "/v1/members",
        json!({"member_id": "NEW-2"}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("member_id_assigned"))
    );
    for (body, code) in [
        (json!({"email": "nope"}), "invalid_email"),
        (json!({"phone": "0612"}), "invalid_phone"),
        (json!({"time_zone": "Mars/Base"}), "invalid_time_zone"),
        (
            json!({"preferences": {"channel": "pigeon"}}),
            "invalid_preferences",
        ),
    ] {
        assert_eq!(
            call(&env, KEY_A, "PATCH", &format!("/v1/members/{id}"), body)
                .await
                .1["error"]["code"],
            code
        );
    }
    let (_, p) = call(
        &env,
        KEY_A,
        "PATCH",
        &format!("/v1/members/{id}"),
        json!({"consents": {"email": false, "sms": true}, "preferences": {"channel": "sms"}}),
    )
    .await;
    assert_eq!(
        (
            p["consents"]["sms"].as_bool(),
            p["preferences"]["channel"].as_str()
        ),
        (Some(true), Some("sms"))
    );
    // Scopes and revoked keys.
    assert_eq!(
        call(&env, KEY_READ_ONLY, "POST", "/v1/members", json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &env,
            KEY_OLD,
            "GET",
            &format!("/v1/members/{id}"),
            Value::Null
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    for i in 0..5 {
        earn(&env, "a", &id, &format!("P-{i}"), 10 + i).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/members/{id}/entries?limit=2&cursor={c}"),
            None => format!("/v1/members/{id}/entries?limit=2"),
        };
        let (status, page) = call(&env, KEY_A, "GET", &path, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);
    assert_eq!(
        call(
            &env,
            KEY_A,
            "GET",
            &format!("/v1/members/{id}/entries?cursor=bogus"),
            Value::Null
        )
        .await
        .1["error"]["code"],
        "invalid_cursor"
    );
    let b = balance(&env, KEY_A, &id).await;
    assert_eq!(b["tier"]["name"], "Silver");
    assert_eq!(b["tier"]["next"], "Gold");
}

#[tokio::test]
async fn a_warm_hold_and_its_capture_cost_a_handful_of_requests() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 1000).await;
    env.clock.advance(Duration::days(15));
    hold(&env, KEY_CLUB, "C-1", 100, "warm-up").await;
    env.requests.reset();
    let (status, h) = hold(&env, KEY_CLUB, "C-1", 100, "cart-1").await;
    assert_eq!(status, StatusCode::CREATED);
    let placed = env.requests.snapshot();
    env.requests.reset();
    let capture = format!("/v1/holds/{}/capture", h["hold_id"].as_str().unwrap());
    assert_eq!(
        call(&env, KEY_CLUB, "POST", &capture, Value::Null).await.0,
        StatusCode::OK
    );
    let captured = env.requests.snapshot();
    println!("REQUESTS hold {placed:?} capture {captured:?}");
    let count =
        |m: &std::collections::HashMap<String, usize>, k: &str| m.get(k).copied().unwrap_or(0);
    // Hold: the hold id (idempotency), the account, the member's lots, one transaction.
    assert_eq!(
        (
            count(&placed, "GetItem"),
            count(&placed, "Query"),
            count(&placed, "TransactWriteItems"),
            placed.values().sum::<usize>()
        ),
        (2, 1, 1, 4)
    );
    // Capture: the hold, one consistent snapshot (hold, account, lots), one transaction.
    assert_eq!(
        (
            count(&captured, "GetItem"),
            count(&captured, "TransactGetItems"),
            count(&captured, "TransactWriteItems"),
            captured.values().sum::<usize>()
        ),
        (1, 1, 1, 3)
    );
}

#[tokio::test]
async fn a_hold_for_an_amount_is_that_many_points_at_the_point_value() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "club-shop", "C-1", "O-1", 2000).await;
    env.clock.advance(Duration::days(15));
    let path = "/v1/members/C-1/holds";
    let (status, h) = call(
        &env,
        KEY_CLUB,
        "POST",
        path,
        json!({"amount": "12.50", "reference": "r-1"}),
    )
    .await;
    assert_eq!(
        (status, n(&h, "points")),
        (StatusCode::CREATED, 1250),
        "{h}"
    );
    for (body, code) in [
        (
            json!({"amount": "1.005", "reference": "r-2"}),
            "invalid_amount",
        ),
        (
            json!({"amount": "-1.00", "reference": "r-2"}),
            "invalid_amount",
        ),
        (json!({"points": 0, "reference": "r-2"}), "invalid_points"),
        (
            json!({"points": 5, "amount": "1.00", "reference": "r-2"}),
            "invalid_field",
        ),
        (
            json!({"points": 5, "reference": "bad ref"}),
            "invalid_reference",
        ),
        (json!({"points": 5}), "invalid_field"),
    ] {
        let (status, e) = call(&env, KEY_CLUB, "POST", path, body.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }
    let b = balance(&env, KEY_CLUB, "C-1").await;
    assert_eq!((n(&b, "available"), n(&b, "held")), (750, 1250));
}

#[tokio::test]
async fn one_hold_that_cannot_be_released_does_not_stop_the_sweep() {
    let config = CONFIG.replace(
        "  - {id: C-1, programme: club}\n",
        "  - {id: C-1, programme: club}\n  - {id: C-2, programme: club}\n",
    );
    let env = TestEnv::with_config(&config).await;
    earn(&env, "club-shop", "C-1", "O-1", 500).await;
    earn(&env, "club-shop", "C-2", "O-2", 500).await;
    env.clock.advance(Duration::days(15));
    let (s1, h1) = hold(&env, KEY_CLUB, "C-1", 300, "cart-1").await;
    let (s2, _) = hold(&env, KEY_CLUB, "C-2", 300, "cart-2").await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    // C-1's account item is gone (a broken item): its hold cannot be settled.
    let (pk, sk) = bonus_dynamodb::keys::account("club", "C-1");
    env.store
        .client
        .delete_item()
        .table_name(&env.store.table)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(sk))
        .send()
        .await
        .unwrap();
    env.clock.advance(Duration::minutes(16));
    let swept = bonus_services::holds::sweep(&env.ctx, 100).await.unwrap();
    assert_eq!(
        (swept.lapsed, swept.released, swept.failed),
        (2, 1, 1),
        "the broken hold is counted, the other one released"
    );
    let c2 = env.store.get_account("club", "C-2").await.unwrap().unwrap();
    assert_eq!((c2.available, c2.held, c2.open_holds.len()), (500, 0, 0));
    // The broken one stays in the index for the next sweep.
    let left = env.store.lapsed_holds(env.clock_now(), 100).await.unwrap();
    assert_eq!(left, vec![h1["hold_id"].as_str().unwrap().to_string()]);
}

#[tokio::test]
async fn a_replaced_customer_id_leaves_no_link_and_a_change_racing_an_erasure_writes_nothing_back_even_through_conflicts(
) {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, p) = call(
        &env,
        KEY_A,
        "POST",
        "/v1/members",
        json!({"email": "x1@example.com", "external_id": "cust-old"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = p["member_id"].as_str().unwrap().to_string();
    let path = format!("/v1/members/{id}");
    let link = |c: &'static str| {
        let store = env.store.clone();
        async move { store.member_by_external_id("a", c).await.unwrap() }
    };
    assert_eq!(
        link("cust-old").await.map(|l| l.member_id),
        Some(id.clone())
    );
    // Two transaction conflicts on the way: tried again, not an internal error.
    env.conflicts.inject(2);
    let (status, _) = call(
        &env,
        KEY_A,
        "PATCH",
        &path,
        json!({"external_id": "cust-new"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.conflicts.remaining(), 0);
    assert_eq!(
        link("cust-old").await,
        None,
        "the replaced id points nowhere"
    );
    assert_eq!(
        link("cust-new").await.map(|l| l.member_id),
        Some(id.clone())
    );

    // A change read before an erasure and written after it is refused; the erasure stands.
    let before = env.store.get_profile("shop", &id).await.unwrap().unwrap();
    env.conflicts.inject(2);
    let (status, _) = call(&env, KEY_A, "DELETE", &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.conflicts.remaining(), 0);
    let mut stale = before.clone();
    stale.name = Some("Written back".into());
    assert!(!env.store.save_profile(&before, &stale).await.unwrap());
    let after = env.store.get_profile("shop", &id).await.unwrap().unwrap();
    assert!(after.erased_at.is_some());
    assert_eq!((after.email, after.name), (None, None));
    assert_eq!(
        link("cust-new").await,
        None,
        "erasure removed the current link"
    );
    let (status, e) = call(&env, KEY_A, "PATCH", &path, json!({"name": "Again"})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("member_erased"))
    );
}

/// A claim is two steps: a hold that takes a unit of stock, then its capture. A crash after
/// each write the claim makes, then the same claim sent again (as a till does when its answer
/// never came): one voucher, one unit of stock, the price spent once.
#[tokio::test]
async fn a_claim_that_crashed_after_any_of_its_writes_completes_once_when_sent_again() {
    async fn claim(env: &TestEnv) -> (StatusCode, Value) {
        call(
            env,
            KEY_CLUB,
            "POST",
            "/v1/members/C-1/rewards/mug/claim",
            json!({"reference": "till-7"}),
        )
        .await
    }
    async fn earned(env: &TestEnv) {
        earn(env, "club-shop", "C-1", "O-1", 1000).await;
        env.clock.advance(Duration::days(15));
        env.writes.take();
    }
    let reference = TestEnv::with_config(CONFIG).await;
    earned(&reference).await;
    let (status, first) = claim(&reference).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let writes = reference.writes.take().len();
    assert!(writes >= 2, "a hold, then its capture: {writes}");

    for crash_after in 1..=writes {
        let env = TestEnv::with_config(CONFIG).await;
        earned(&env).await;
        env.faults.crash_after_writes(crash_after);
        let (status, _) = claim(&env).await;
        assert!(
            status.is_server_error(),
            "crash after write {crash_after}: {status}"
        );
        assert!(env.faults.restart(), "the process stopped");
        let (status, again) = claim(&env).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::CREATED,
            "crash after write {crash_after}: {status} {again}"
        );
        assert_eq!(
            (again["status"].as_str(), n(&again, "points")),
            (Some("captured"), 100),
            "{again}"
        );
        assert!(again["voucher_code"].is_string(), "{again}");
        // Sent a third time: the same claim, nothing more spent.
        let (_, third) = claim(&env).await;
        assert_eq!(third["hold_id"], again["hold_id"]);
        let b = balance(&env, KEY_CLUB, "C-1").await;
        assert_eq!(
            (n(&b, "available"), n(&b, "held")),
            (900, 0),
            "crash after write {crash_after}"
        );
        let mug = env.store.get_reward("club", "mug").await.unwrap().unwrap();
        assert_eq!(mug.stock, 9, "crash after write {crash_after}");
        let all = ["club".to_string(), "shop".to_string()];
        let audit = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
            .await
            .unwrap();
        assert_eq!(audit.differences, Vec::<String>::new());
    }
}
