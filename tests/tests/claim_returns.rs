//! Returning a gift-shop claim over the partner API (`/v1/partner/claims/{voucher_code}`,
//! crates/domain/src/claim_return.rs): the points go back into the lots the claim took,
//! once; the reward's stock and the member's claim limit come back; the statement, the
//! audit trail and the month's clearing say so; a share whose lot expired meanwhile
//! expires at once; a claim on more lots than one transaction holds returns in chunks; and
//! another partner cannot see or return it.

use bytes::Bytes;
use chrono::Duration;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const BAKERY_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const CAFE_KEY: &str = "bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9";
const VENDOR_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";
const RIVAL_KEY: &str = "bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617";

const CONFIG: &str = r#"
programmes:
  - id: club
    name: Club
    kind: coalition
    currency: EUR
    release_days: 0
    min_balance_to_redeem: 0
    time_zone: Europe/Amsterdam
partners:
  - id: bakery
    programme: club
    name: Bakery
    api_keys:
      - {label: desk, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage, hold, read_balance]}
  - id: cafe
    programme: club
    name: Cafe
    api_keys:
      - {label: desk, key: bk_7152bb0f7c5736bd80207e1df0f5646d2b349107_c84a70d9, scopes: [manage, hold, read_balance]}
  - id: vendor
    programme: club
    name: Vendor
    api_keys:
      - {label: desk, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
  - id: rival
    programme: club
    name: Rival
    api_keys:
      - {label: desk, key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617, scopes: [manage, hold, read_balance]}
members:
  - {id: M-1, programme: club, partner: bakery}
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

/// Credit M-1 `points` as `key`'s partner (its lot, available at once).
async fn credit(env: &TestEnv, key: &str, points: i64, reference: &str) {
    let body = json!({"member_id": "M-1", "points": points, "reason": "goodwill",
        "note": "start", "reference": reference});
    let (status, a) = call(env, key, "POST", "/v1/partner/adjustments", body).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
}

async fn balance(env: &TestEnv) -> Value {
    let (status, b) = env.balance_with("M-1", BAKERY_KEY).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    b
}

/// The vendor's headset (700 points, 2 in stock, 1 per member), over the partner API.
async fn headset(env: &TestEnv) {
    let body = json!({"id": "headset", "name": "Headset", "points": 700, "stock": 2,
        "per_member_limit": 1});
    let (status, r) = call(env, VENDOR_KEY, "POST", "/v1/partner/rewards", body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
}

async fn claim(env: &TestEnv, reference: &str) -> (StatusCode, Value) {
    call(
        env,
        BAKERY_KEY,
        "POST",
        "/v1/members/M-1/rewards/headset/claim",
        json!({"reference": reference}),
    )
    .await
}

async fn in_stock(env: &TestEnv) -> i64 {
    env.store
        .get_reward("club", "headset")
        .await
        .unwrap()
        .unwrap()
        .stock
}

async fn audit_is_clean(env: &TestEnv) {
    let report = bonus_ops::audit::audit(
        &env.store,
        &["club".to_string()],
        env.clock_now(),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(report.differences, Vec::<String>::new());
}

#[tokio::test]
async fn a_returned_claim_gives_the_points_and_the_unit_back_once() {
    let env = TestEnv::with_config(CONFIG).await;
    headset(&env).await;
    credit(&env, CAFE_KEY, 500, "c-1").await;
    env.clock.advance(Duration::days(1));
    credit(&env, BAKERY_KEY, 1600, "b-1").await;
    let (status, claimed) = claim(&env, "r-1").await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    let code = claimed["voucher_code"].as_str().unwrap().to_string();
    assert_eq!(balance(&env).await["available"], 1400);
    assert_eq!(in_stock(&env).await, 1);
    // The limit of one per member holds until the return.
    let (status, e) = claim(&env, "r-2").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("claim_limit_reached"))
    );

    // The return desk finds it by its code (in any case), the vendor's and the bakery's.
    let path = format!("/v1/partner/claims/{}", code.to_lowercase());
    for key in [VENDOR_KEY, BAKERY_KEY] {
        let (status, found) = call(&env, key, "GET", &path, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(
            (
                found["status"].as_str(),
                found["points"].as_i64(),
                found["reward_id"].as_str(),
                found["partner_id"].as_str()
            ),
            (Some("captured"), Some(700), Some("headset"), Some("bakery"))
        );
    }
    // Another partner, a well-formed code that does not exist and a malformed one: one 404.
    for (key, p) in [
        (RIVAL_KEY, path.clone()),
        (
            VENDOR_KEY,
            "/v1/partner/claims/AAAA-BBBB-CCCC-DDDD".to_string(),
        ),
        (VENDOR_KEY, "/v1/partner/claims/nope".to_string()),
    ] {
        let (status, e) = call(&env, key, "GET", &p, Value::Null).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("claim_not_found")),
            "{p}"
        );
        let (status, e) = call(&env, key, "POST", &format!("{p}/return"), Value::Null).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("claim_not_found")),
            "{p}"
        );
    }
    // A note too long changes nothing.
    let (status, e) = call(
        &env,
        VENDOR_KEY,
        "POST",
        &format!("{path}/return"),
        json!({"note": "x".repeat(501)}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    assert_eq!(balance(&env).await["available"], 1400);

    env.clock.advance(Duration::days(40));
    let (status, returned) = call(
        &env,
        VENDOR_KEY,
        "POST",
        &format!("{path}/return"),
        json!({"note": "unopened"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(returned["status"], "returned");
    assert_eq!(
        (
            returned["returned"]["points"].as_i64(),
            returned["returned"]["expired"].as_i64(),
            returned["returned"]["by"].as_str(),
            returned["returned"]["partner_id"].as_str()
        ),
        (Some(700), Some(0), Some("Kim"), Some("vendor"))
    );
    let (status, again) = call(
        &env,
        VENDOR_KEY,
        "POST",
        &format!("{path}/return"),
        Value::Null,
    )
    .await;
    assert_eq!((status, &again), (StatusCode::OK, &returned));
    let b = balance(&env).await;
    assert_eq!(b["available"], 2100);
    assert_eq!(in_stock(&env).await, 2);

    // The statement: the return, 700 back, from the bakery where they were spent.
    let (_, entries) = env
        .call(
            "GET",
            "/v1/members/M-1/entries",
            &[("authorization", format!("Bearer {BAKERY_KEY}"))],
            Bytes::new(),
        )
        .await;
    let e = &entries["entries"][0];
    assert_eq!(
        (
            e["kind"].as_str(),
            e["points"].as_i64(),
            e["partner_id"].as_str()
        ),
        (Some("claim_return"), Some(700), Some("bakery")),
        "{entries}"
    );
    assert_eq!(e["reason"], "returned to vendor: reward headset");

    // The month's clearing takes the redemptions back at the bakery: the cafe's 500 (it
    // pays the bakery back) and the bakery's 200 of its own.
    let month =
        bonus_domain::month::Month::of(env.clock_now(), chrono_tz::Europe::Amsterdam).to_string();
    let cafe = env
        .store
        .partner_counters("club", &month, "cafe")
        .await
        .unwrap();
    let bakery = env
        .store
        .partner_counters("club", &month, "bakery")
        .await
        .unwrap();
    assert_eq!(cafe.returned_at.get("bakery"), Some(&500));
    assert_eq!(bakery.returned_at.get("bakery"), Some(&200));

    // The vendor's audit trail.
    let (_, trail) = call(&env, VENDOR_KEY, "GET", "/v1/partner/changes", Value::Null).await;
    let c = &trail["changes"][0];
    assert_eq!(
        (
            c["subject"].as_str(),
            c["action"].as_str(),
            c["actor"].as_str()
        ),
        (Some("claim"), Some("returned"), Some("Kim")),
        "{trail}"
    );

    // The limit counts it no more: the member may claim the headset again.
    let (status, again) = claim(&env, "r-3").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(balance(&env).await["available"], 1400);
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn points_whose_lot_expired_meanwhile_expire_at_once() {
    let env = TestEnv::with_config(CONFIG).await;
    headset(&env).await;
    credit(&env, CAFE_KEY, 500, "c-1").await;
    // Four months on: the bakery's lot lasts that much longer.
    env.clock.advance(Duration::days(120));
    credit(&env, BAKERY_KEY, 600, "b-1").await;
    let (status, claimed) = claim(&env, "r-1").await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    let code = claimed["voucher_code"].as_str().unwrap().to_string();
    // Past the cafe lot's last day (12 months), before the bakery's (whether the nightly
    // job ran or not: the share expires with the return).
    env.clock.advance(Duration::days(250));
    let (status, returned) = call(
        &env,
        BAKERY_KEY,
        "POST",
        &format!("/v1/partner/claims/{code}/return"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(
        (
            returned["returned"]["points"].as_i64(),
            returned["returned"]["expired"].as_i64()
        ),
        (Some(200), Some(500))
    );
    assert_eq!(balance(&env).await["available"], 600);
    let (_, entries) = env
        .call(
            "GET",
            "/v1/members/M-1/entries",
            &[("authorization", format!("Bearer {BAKERY_KEY}"))],
            Bytes::new(),
        )
        .await;
    let kinds: Vec<(String, i64)> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["points"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("expire".to_string(), -500),
            ("claim_return".to_string(), 700)
        ]
    );
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn a_claim_on_more_lots_than_one_transaction_holds_returns_whole() {
    let env = TestEnv::with_config(CONFIG).await;
    headset(&env).await;
    // 150 lots of 5 points: the claim takes 140 of them.
    for i in 0..150 {
        credit(
            &env,
            if i % 2 == 0 { CAFE_KEY } else { BAKERY_KEY },
            5,
            &format!("l-{i}"),
        )
        .await;
    }
    let (status, claimed) = claim(&env, "r-1").await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    assert_eq!(balance(&env).await["available"], 50);
    let code = claimed["voucher_code"].as_str().unwrap().to_string();
    let (status, returned) = call(
        &env,
        VENDOR_KEY,
        "POST",
        &format!("/v1/partner/claims/{code}/return"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{returned}");
    assert_eq!(balance(&env).await["available"], 750);
    // Every lot has its points back, and none is left in the sweeper's index.
    let lots = env.store.lots("club", "M-1").await.unwrap();
    assert_eq!(
        lots.iter()
            .map(|l| (l.remaining, l.held))
            .filter(|p| *p != (5, 0))
            .count(),
        0
    );
    assert!(env.store.unsettled_holds(10).await.unwrap().is_empty());
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn claims_made_before_codes_were_looked_up_are_found_after_a_migration() {
    let env = TestEnv::with_config(CONFIG).await;
    headset(&env).await;
    credit(&env, BAKERY_KEY, 1000, "b-1").await;
    let (status, claimed) = claim(&env, "r-1").await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    let code = claimed["voucher_code"].as_str().unwrap().to_string();
    // As an earlier version left it: no voucher item.
    let key = bonus_dynamodb::keys::voucher("club", &code);
    env.store
        .client
        .delete_item()
        .table_name(&env.store.table)
        .set_key(Some(bonus_dynamodb::key_map(&key)))
        .send()
        .await
        .unwrap();
    let path = format!("/v1/partner/claims/{code}");
    let (status, _) = call(&env, VENDOR_KEY, "GET", &path, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let first = bonus_ops::migrate::migrate(&env.store, &|_| {})
        .await
        .unwrap();
    assert!(first.upgraded >= 1, "{first:?}");
    let (status, found) = call(&env, VENDOR_KEY, "GET", &path, Value::Null).await;
    assert_eq!(
        (status, found["status"].as_str()),
        (StatusCode::OK, Some("captured"))
    );
    // Once: the next run finds the voucher there.
    let again = bonus_ops::migrate::migrate(&env.store, &|_| {})
        .await
        .unwrap();
    assert_eq!(again.upgraded, 0, "{again:?}");
}

/// Send until the answer is not a 503 and the process did not stop on the way (a client
/// retrying, a Lambda started again); the answer.
async fn resend(
    env: &TestEnv,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    for _ in 0..30 {
        let crashes = env.faults.crashes();
        let answer = call(env, key, method, path, body.clone()).await;
        let crashed = env.faults.crashes() != crashes;
        if crashed {
            env.faults.restart();
        }
        if !crashed && answer.0 != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
    }
    panic!("{method} {path} never answered");
}

#[tokio::test]
async fn a_return_under_crashes_and_faults_gives_the_points_back_exactly_once() {
    let env = TestEnv::with_config(CONFIG).await;
    let body = json!({"id": "voucher", "name": "Voucher", "points": 700, "stock": 10});
    let (status, r) = call(&env, VENDOR_KEY, "POST", "/v1/partner/rewards", body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    // 150 lots of 5 points: a claim takes 140, more than one transaction holds.
    for i in 0..150 {
        credit(
            &env,
            if i % 2 == 0 { CAFE_KEY } else { BAKERY_KEY },
            5,
            &format!("l-{i}"),
        )
        .await;
    }
    let claim_path = "/v1/members/M-1/rewards/voucher/claim";
    let check = |round: String| {
        let env = &env;
        async move {
            env.faults.pause(true);
            assert_eq!(balance(env).await["available"], 750, "{round}");
            let lots = env.store.lots("club", "M-1").await.unwrap();
            assert!(
                lots.iter().all(|l| (l.remaining, l.held) == (5, 0)),
                "{round}"
            );
            assert_eq!(
                env.store
                    .get_reward("club", "voucher")
                    .await
                    .unwrap()
                    .unwrap()
                    .stock,
                10,
                "{round}"
            );
            assert!(
                env.store.unsettled_holds(10).await.unwrap().is_empty(),
                "{round}"
            );
            audit_is_clean(env).await;
            env.faults.pause(false);
        }
    };
    // A crash after each write of the return: the first transaction (the account, the
    // statement, the clearing and the first lots), then the chunk of the other lots.
    for n in 1..=2 {
        let (status, claimed) = call(
            &env,
            BAKERY_KEY,
            "POST",
            claim_path,
            json!({"reference": format!("crash-{n}")}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{claimed}");
        let path = format!(
            "/v1/partner/claims/{}/return",
            claimed["voucher_code"].as_str().unwrap()
        );
        env.faults.crash_after_writes(n);
        let (status, returned) = resend(&env, VENDOR_KEY, "POST", &path, Value::Null).await;
        env.faults.crash_after_writes(0);
        assert_eq!(
            (status, returned["returned"]["points"].as_i64()),
            (StatusCode::OK, Some(700)),
            "{returned}"
        );
        assert_eq!(env.faults.crashes(), n, "the crash happened");
        check(format!("crash after write {n}")).await;
    }
    // Throttling, 5xx, conflicts and ambiguous commits on 30 % of the requests.
    for seed in [3, 11, 29] {
        env.faults.start(seed, 300);
        let (status, claimed) = resend(
            &env,
            BAKERY_KEY,
            "POST",
            claim_path,
            json!({"reference": format!("faults-{seed}")}),
        )
        .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status} {claimed}"
        );
        let path = format!(
            "/v1/partner/claims/{}/return",
            claimed["voucher_code"].as_str().unwrap()
        );
        let (status, first) = resend(&env, VENDOR_KEY, "POST", &path, Value::Null).await;
        let (_, again) = resend(&env, VENDOR_KEY, "POST", &path, Value::Null).await;
        env.faults.stop();
        assert_eq!(
            (status, first["returned"]["points"].as_i64()),
            (StatusCode::OK, Some(700)),
            "{first}"
        );
        assert_eq!(first, again);
        check(format!("seed {seed}")).await;
    }
    assert!(
        env.faults.counts().values().sum::<usize>() > 10,
        "{:?}",
        env.faults.counts()
    );
}

#[tokio::test]
async fn what_a_return_costs() {
    let env = TestEnv::with_config(CONFIG).await;
    headset(&env).await;
    credit(&env, CAFE_KEY, 500, "c-1").await;
    credit(&env, BAKERY_KEY, 600, "b-1").await;
    let (_, claimed) = claim(&env, "r-1").await;
    let path = format!(
        "/v1/partner/claims/{}/return",
        claimed["voucher_code"].as_str().unwrap()
    );
    env.requests.reset();
    let (status, _) = call(&env, VENDOR_KEY, "POST", &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let mut counted: Vec<(String, usize)> = env.requests.snapshot().into_iter().collect();
    counted.sort();
    println!("FIGURE a claim's return on 2 lots: {counted:?}");
    // The voucher, the claim, the reward's owner (the access policy), the claim and its
    // account as of one instant; one transaction writes it all.
    assert_eq!(
        counted,
        vec![
            ("GetItem".to_string(), 3),
            ("TransactGetItems".to_string(), 1),
            ("TransactWriteItems".to_string(), 1),
        ]
    );
}
