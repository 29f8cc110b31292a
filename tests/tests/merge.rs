//! Merging a duplicate member into another: the points keep their expiry and issuer, the
//! debt and purchase history move, both statements say so, customer ids and the e-mail
//! index point at the survivor, later orders and refunds of the duplicate go to the
//! survivor, and a big duplicate merges in steps (a crash between them loses nothing).

use chrono::Duration;
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
const KEY: &str = "bk_5cfe7a8497bbc15c0789802476203e080db6ecb2_1a14dfe1";
const KEY_CAFE: &str = "bk_fb7796ade50e1d1375b3ccf5316fba7313593e04_0efdedd2";

const CONFIG: &str = r#"
programmes:
  - id: coal
    name: Coalition
    kind: coalition
    currency: EUR
    min_balance_to_redeem: 0
    tiers: [{name: Member, threshold: 0, multiplier: 1}]
partners:
  - id: bakery
    programme: coal
    name: Bakery
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: office, key: bk_5cfe7a8497bbc15c0789802476203e080db6ecb2_1a14dfe1, scopes: [read_balance, read_profile, hold, enrol]}
  - id: cafe
    programme: coal
    name: Cafe
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: office, key: bk_fb7796ade50e1d1375b3ccf5316fba7313593e04_0efdedd2, scopes: [read_balance, read_profile, hold, enrol]}
members:
  - {id: KEEP, programme: coal, partner: bakery}
  - {id: DUP, programme: coal, partner: bakery, email: dup@example.com, external_ids: {bakery: "C-77"}}
"#;

async fn webhook(env: &TestEnv, body: Value, msg: &str) -> Value {
    let body = body.to_string();
    let headers = env.signed(SECRET, msg, &body, 0);
    let (s, a) = Box::pin(env.call(
        "POST",
        "/v1/partners/bakery/webhooks/orders",
        &headers,
        body,
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    a
}

async fn earn(env: &TestEnv, member: &str, order_id: &str, euros: i64) {
    let body = json!({"type": "order.paid", "order_id": order_id, "member_id": member,
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "BREAD", "quantity": 1, "unit_price": format!("{euros}.00")}]});
    webhook(env, body, &format!("msg-{order_id}")).await;
}

async fn merge(env: &TestEnv, key: &str, into: &str, from: &str) -> (StatusCode, Value) {
    let headers = [("authorization", format!("Bearer {key}"))];
    let body = json!({"duplicate_id": from}).to_string();
    Box::pin(env.call("POST", &format!("/v1/members/{into}/merge"), &headers, body)).await
}

async fn audit_is_clean(env: &TestEnv) {
    let report = bonus_ops::audit::audit(
        &env.store,
        &["coal".to_string()],
        env.clock_now(),
        |_, _| {},
    )
    .await
    .unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
}

#[tokio::test]
async fn a_duplicate_merges_with_its_points_debt_and_contacts_and_once_only() {
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "KEEP", "K-1", 100).await;
    earn(&env, "DUP", "D-1", 300).await;
    env.clock.advance(Duration::days(20));
    earn(&env, "DUP", "D-2", 200).await; // still pending at the merge
    let dup_lots = env.store.lots("coal", "DUP").await.unwrap();

    // Another partner may not merge the bakery's members: the same 404 as for none.
    let (s, e) = merge(&env, KEY_CAFE, "KEEP", "DUP").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("member_not_found"))
    );
    let (s, e) = merge(&env, KEY, "KEEP", "KEEP").await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_merge"))
    );

    let (s, m) = merge(&env, KEY, "KEEP", "DUP").await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(
        (m["points"].as_i64(), m["lots"].as_i64()),
        (Some(500), Some(2))
    );
    let keep = env
        .store
        .get_account("coal", "KEEP")
        .await
        .unwrap()
        .unwrap();
    let dup = env.store.get_account("coal", "DUP").await.unwrap().unwrap();
    let v = keep.view(
        &bonus_domain::programme::Programme::with_defaults(
            "coal",
            "C",
            bonus_domain::programme::ProgrammeKind::Coalition,
            bonus_domain::money::Currency::parse("EUR").unwrap(),
        ),
        env.clock_now(),
    );
    // 100 + 300 available; the 200 of D-2 still pending, releasing when they would have.
    assert_eq!((v.available, v.pending), (400, 200));
    assert_eq!(
        (dup.outstanding(), dup.merged_into.as_deref()),
        (0, Some("KEEP"))
    );
    let moved = env.store.lots("coal", "KEEP").await.unwrap();
    for l in &dup_lots {
        let there = moved
            .iter()
            .find(|m| m.lot_id == l.lot_id)
            .expect("moved under the same id");
        assert_eq!(
            (
                there.expires_on,
                &there.partner_id,
                there.available_at,
                there.remaining
            ),
            (l.expires_on, &l.partner_id, l.available_at, l.points)
        );
    }
    // Both statements say so.
    let last = |id: &str| {
        let env = &env;
        let id = id.to_string();
        async move {
            env.store
                .entries("coal", &id)
                .await
                .unwrap()
                .last()
                .cloned()
                .unwrap()
        }
    };
    let (k, d) = (last("KEEP").await, last("DUP").await);
    assert_eq!((k.points, k.reason.as_str()), (500, "merged from DUP"));
    assert_eq!((d.points, d.reason.as_str()), (-500, "merged into KEEP"));
    // Customer id and e-mail now find the survivor.
    let link = env
        .store
        .member_by_external_id("bakery", "C-77")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.member_id, "KEEP");
    assert_eq!(
        env.store
            .members_by_email("coal", "dup@example.com")
            .await
            .unwrap(),
        vec!["KEEP".to_string()]
    );

    // Sent again: nothing more moves.
    let (s, again) = merge(&env, KEY, "KEEP", "DUP").await;
    assert_eq!((s, again["points"].as_i64()), (StatusCode::OK, Some(0)));
    // A refund of the duplicate's order comes back from the survivor, from that lot.
    let r = webhook(
        &env,
        json!({"type": "order.cancelled", "order_id": "D-1", "refund_id": "X",
        "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR"}),
        "msg-x",
    )
    .await;
    assert_eq!(
        (
            r["points"].as_i64(),
            r["from_own"].as_i64(),
            r["to_debt"].as_i64()
        ),
        (Some(300), Some(300), Some(0)),
        "{r}"
    );
    // An order naming the duplicate earns for the survivor.
    earn(&env, "DUP", "D-3", 50).await;
    let keep = env
        .store
        .get_account("coal", "KEEP")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keep.lifetime_earned, 100 + 500 + 50);
    audit_is_clean(&env).await;
}

#[tokio::test]
async fn a_debt_moves_and_a_big_duplicate_merges_in_steps_through_a_crash() {
    let mut crash_after = 1;
    loop {
        let env = TestEnv::with_config(CONFIG).await;
        // 20 lots, all spent; then 90 new ones, still pending.
        for i in 0..20 {
            earn(&env, "DUP", &format!("A-{i}"), 10).await;
        }
        env.clock.advance(Duration::days(15));
        let auth = [("authorization", format!("Bearer {KEY}"))];
        let (s, h) = Box::pin(env.call(
            "POST",
            "/v1/members/DUP/holds",
            &auth,
            json!({"points": 200, "reference": "till"}).to_string(),
        ))
        .await;
        assert_eq!(s, StatusCode::CREATED, "{h}");
        let hold = h["hold_id"].as_str().unwrap().to_string();
        let (s, _) =
            Box::pin(env.call("POST", &format!("/v1/holds/{hold}/capture"), &auth, "")).await;
        assert_eq!(s, StatusCode::OK);
        for i in 0..90 {
            earn(&env, "DUP", &format!("B-{i}"), 10).await;
            env.clock.advance(Duration::minutes(90));
        }
        // A-0 comes back: its points were spent and nothing else is available: a debt.
        let r = webhook(
            &env,
            json!({"type": "order.cancelled", "order_id": "A-0", "refund_id": "X",
            "occurred_at": env.clock_now().to_rfc3339(), "currency": "EUR"}),
            "msg-a0",
        )
        .await;
        assert_eq!(r["to_debt"].as_i64(), Some(10), "{r}");
        let before = env
            .store
            .get_account("coal", "DUP")
            .await
            .unwrap()
            .unwrap()
            .outstanding();
        env.faults.crash_after_writes(crash_after);
        let (status, _) = merge(&env, KEY, "KEEP", "DUP").await;
        let crashed = env.faults.restart();
        if crashed {
            assert!(status.is_server_error() || status == StatusCode::OK);
            let (s, m) = merge(&env, KEY, "KEEP", "DUP").await;
            assert_eq!(s, StatusCode::OK, "{m}");
        } else {
            assert_eq!(status, StatusCode::OK);
        }
        let keep = env
            .store
            .get_account("coal", "KEEP")
            .await
            .unwrap()
            .unwrap();
        let dup = env.store.get_account("coal", "DUP").await.unwrap().unwrap();
        assert_eq!(
            (keep.outstanding(), dup.outstanding()),
            (before, 0),
            "crash after {crash_after}"
        );
        assert_eq!(dup.merged_into.as_deref(), Some("KEEP"));
        assert_eq!(
            (keep.debt, dup.debt, keep.pending.values().sum::<i64>()),
            (10, 0, 900)
        );
        audit_is_clean(&env).await;
        if !crashed {
            break;
        }
        crash_after += 1;
    }
    // Three steps of at most 40 lots, then the contacts.
    assert!(crash_after >= 3, "{crash_after}");
}
