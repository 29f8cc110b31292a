//! Offers end to end: a partner's offer over the partner API, its segment from the member
//! list's facts (kept by the ledger events the notifications pipeline passes), the preview,
//! the send fanned out over SQS (moto) to SES, once, under the monthly marketing cap; the
//! member site's offers; and another partner that can never see them.

use bonus_domain::member::{Consents, MemberProfile};
use http::StatusCode;
use integration_tests::{message_stack as stack, order_paid, MessageStack as Stack, TestEnv};
use notifications::{consume_all, relay_once};
use serde_json::{json, Value};

const SHOP_KEY: &str = "bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088";
const RIVAL_KEY: &str = "bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49";

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: coalition
    currency: EUR
    time_zone: Europe/Amsterdam
    tiers: [{name: Basic, threshold: 0, multiplier: 1}, {name: Gold, threshold: 150, multiplier: 1}]
    messages: {marketing_per_month: 2}
partners:
  - id: shop
    programme: velo
    name: Shop
    time_zone: Europe/Amsterdam
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - {label: backoffice, key: bk_a16f7cca1c9cd32358c988dd8c4f16cae55f3577_040ae088, scopes: [manage]}
  - id: rival
    programme: velo
    name: Rival
    webhook_secrets: [whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==]
    api_keys:
      - {label: backoffice, key: bk_ee9f06254cf880b0e920aee83be36b4b22ff1fe1_5c11fa49, scopes: [manage]}
"#;

/// The e-mails moto sent: (recipient, subject).
async fn mails(s: &Stack) -> Vec<(String, String)> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", s.moto.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["destinations"]["ToAddresses"][0]
                    .as_str()
                    .or(m["destination"]["ToAddresses"][0].as_str())
                    .unwrap_or("")
                    .to_string(),
                m["subject"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn run_queue(env: &TestEnv, s: &Stack) {
    relay_once(&env.ctx, &s.sqs, &s.url, 100, None)
        .await
        .unwrap();
    consume_all(&env.ctx, &s.senders, &s.sqs, &s.url, 100)
        .await
        .unwrap();
}

async fn member(env: &TestEnv, id: &str, locale: &str, email: bool) {
    let profile = MemberProfile {
        member_id: id.into(),
        programme_id: "velo".into(),
        email: Some(format!("{}@example.com", id.to_lowercase())),
        locale: locale.into(),
        time_zone: Some("Europe/Amsterdam".into()),
        consents: Consents { email, sms: false },
        enrolled_at: env.clock_now(),
        ..Default::default()
    };
    assert_eq!(
        env.store.enrol_member(&profile).await.unwrap(),
        bonus_dynamodb::config::Enrolled::Yes
    );
}

fn offer(id: &str) -> Value {
    json!({
        "id": id,
        "texts": {
            "en": {"title": format!("Gold weekend {id}"), "text": "Double points on helmets for Gold members."},
            "de": {"title": format!("Gold-Wochenende {id}"), "text": "Doppelte Punkte auf Helme für Gold-Mitglieder."}
        },
        "valid_from": "2026-11-20T00:00:00Z",
        "valid_to": "2026-12-07T00:00:00Z",
        "segment": {"tiers": ["Gold"]},
        "channels": ["email"]
    })
}

/// Gold G-1 (German) and G-2 (English) with e-mail consent, Gold N-1 without, Basic B-1.
async fn programme(env: &TestEnv, s: &Stack) {
    member(env, "G-1", "de-DE", true).await;
    member(env, "G-2", "en", true).await;
    member(env, "N-1", "en", false).await;
    member(env, "B-1", "en", true).await;
    for (order, m, price) in [
        ("O-1", "G-1", "200.00"),
        ("O-2", "G-2", "180.00"),
        ("O-3", "N-1", "300.00"),
        ("O-4", "B-1", "20.00"),
    ] {
        let (status, body) = env
            .order(&order_paid(order, Some(m), &[("HELMET", 1, price)]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The ledger events pass the pipeline: points messages go, and the facts are kept.
    run_queue(env, s).await;
}

#[tokio::test]
async fn an_offer_to_gold_members_goes_once_to_those_who_agreed_and_never_past_the_cap() {
    let env = TestEnv::with_config(CONFIG).await;
    let s = stack().await;
    programme(&env, &s).await;
    let points_mails = mails(&s).await.len();
    assert_eq!(
        points_mails, 5,
        "points earned: G-1, G-2, B-1; tier changed: G-1, G-2 (N-1 did not agree)"
    );

    let (status, body) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers",
            offer("gold-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The preview counts the segment from the member list: three Gold, two by e-mail.
    let (status, body) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "GET",
            "/v1/partner/offers/gold-1/preview",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["members"].as_u64(),
            body["email"].as_u64(),
            body["reachable"].as_u64(),
            body["not_yet_indexed"].as_u64()
        ),
        (Some(3), Some(2), Some(2), Some(0)),
        "{body}"
    );
    let (status, body) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers/gold-1/send",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let sent_at = body["sent_at"].clone();
    assert_eq!(body["sent_by"], "Eva");
    // Sent again: the same answer, nothing more goes out.
    let (status, again) = env
        .call_as(
            SHOP_KEY,
            "Tom",
            "POST",
            "/v1/partner/offers/gold-1/send",
            Value::Null,
        )
        .await;
    assert_eq!((status, &again["sent_at"]), (StatusCode::OK, &sent_at));
    run_queue(&env, &s).await;
    run_queue(&env, &s).await;
    let offers: Vec<(String, String)> = mails(&s).await.split_off(points_mails);
    let mut got = offers.clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "g-1@example.com".to_string(),
                "Gold-Wochenende gold-1".to_string()
            ),
            (
                "g-2@example.com".to_string(),
                "Gold weekend gold-1".to_string()
            ),
        ],
        "the German member reads German; Basic B-1 and N-1 (no consent) get nothing"
    );
    // Sent: it cannot be changed any more.
    let (status, body) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "PATCH",
            "/v1/partner/offers/gold-1",
            json!({"segment": {}}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_sent"))
    );

    // The cap (2 a month here): a second offer reaches them, a third does not.
    for id in ["gold-2", "gold-3"] {
        let (status, body) = env
            .call_as(SHOP_KEY, "Eva", "POST", "/v1/partner/offers", offer(id))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = env
            .call_as(
                SHOP_KEY,
                "Eva",
                "POST",
                &format!("/v1/partner/offers/{id}/send"),
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        run_queue(&env, &s).await;
        run_queue(&env, &s).await;
    }
    let all = mails(&s).await;
    let subjects: Vec<&str> = all[points_mails..]
        .iter()
        .map(|(_, s)| s.as_str())
        .collect();
    assert_eq!(subjects.iter().filter(|s| s.ends_with("gold-2")).count(), 2);
    assert_eq!(
        subjects.iter().filter(|s| s.ends_with("gold-3")).count(),
        0,
        "{subjects:?}"
    );
    for m in ["G-1", "G-2"] {
        assert_eq!(
            env.store
                .marketing_count("velo", m, "2026-11")
                .await
                .unwrap(),
            2
        );
    }
    assert_eq!(
        env.store
            .marketing_count("velo", "B-1", "2026-11")
            .await
            .unwrap(),
        0
    );

    // The audit trail names who created and sent it.
    let (_, changes) = env
        .call_as(SHOP_KEY, "Eva", "GET", "/v1/partner/changes", Value::Null)
        .await;
    let sent: Vec<&Value> = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["subject"] == "offer" && c["action"] == "sent")
        .collect();
    assert_eq!(sent.len(), 3, "{changes}");
}

#[tokio::test]
async fn another_partner_never_sees_an_offer_and_bad_offers_change_nothing() {
    let env = TestEnv::with_config(CONFIG).await;
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers",
            offer("gold-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The rival: the same 404 as an id nobody has, on every route.
    for (method, path) in [
        ("GET", "/v1/partner/offers/gold-1"),
        ("GET", "/v1/partner/offers/gold-1/preview"),
        ("POST", "/v1/partner/offers/gold-1/send"),
    ] {
        let theirs = env
            .call_as(RIVAL_KEY, "Rex", method, path, Value::Null)
            .await;
        let nobodys = env
            .call_as(
                RIVAL_KEY,
                "Rex",
                method,
                &path.replace("gold-1", "gold-9"),
                Value::Null,
            )
            .await;
        assert_eq!(theirs.0, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(theirs, nobodys, "{method} {path}");
    }
    let (_, list) = env
        .call_as(RIVAL_KEY, "Rex", "GET", "/v1/partner/offers", Value::Null)
        .await;
    assert_eq!(list["offers"], json!([]));
    // The rival may use the same id for its own offer; the shop's is untouched.
    let mut mine = offer("gold-1");
    mine["texts"]["en"]["title"] = json!("Rival's");
    let (status, _) = env
        .call_as(RIVAL_KEY, "Rex", "POST", "/v1/partner/offers", mine)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, shop) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "GET",
            "/v1/partner/offers/gold-1",
            Value::Null,
        )
        .await;
    assert_eq!(shop["texts"]["en"]["title"], "Gold weekend gold-1");
    // The same body again is the same offer; another body under the id is a conflict.
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers",
            offer("gold-1"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut other = offer("gold-1");
    other["segment"] = json!({});
    let (status, body) = env
        .call_as(SHOP_KEY, "Eva", "POST", "/v1/partner/offers", other)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_exists"))
    );
    // Validation names the field, and nothing is written.
    for (patch, field) in [
        (json!({"segment": {"tiers": ["Platinum"]}}), "segment.tiers"),
        (
            json!({"segment": {"bought_at": ["nowhere"]}}),
            "segment.bought_at",
        ),
        (
            json!({"texts": {"xx": {"title": "a", "text": "b"}}}),
            "texts.xx",
        ),
        (json!({"valid_to": "2026-11-01T00:00:00Z"}), "valid_to"),
        (json!({"link": {"campaign": "no-such"}}), "link.campaign"),
        (json!({"channels": []}), "channels"),
    ] {
        let mut body = offer("bad");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = env
            .call_as(SHOP_KEY, "Eva", "POST", "/v1/partner/offers", body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_field");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
    }
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "GET",
            "/v1/partner/offers/bad",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_preview_counts_each_segment_condition_on_the_members_as_they_are() {
    let env = TestEnv::with_config(CONFIG).await;
    let s = stack().await;
    programme(&env, &s).await;
    let count = |segment: Value| {
        let env = &env;
        async move {
            let mut body = offer("probe");
            body["segment"] = segment.clone();
            body["valid_to"] = json!("2026-12-31T00:00:00Z");
            let (status, _) = env
                .call_as(
                    SHOP_KEY,
                    "Eva",
                    "PATCH",
                    "/v1/partner/offers/probe",
                    json!({"segment": segment}),
                )
                .await;
            assert!(matches!(status, StatusCode::OK | StatusCode::NOT_FOUND));
            if status == StatusCode::NOT_FOUND {
                let (status, answer) = env
                    .call_as(SHOP_KEY, "Eva", "POST", "/v1/partner/offers", body)
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{answer}");
            }
            let (status, p) = env
                .call_as(
                    SHOP_KEY,
                    "Eva",
                    "GET",
                    "/v1/partner/offers/probe/preview",
                    Value::Null,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{p}");
            (p["members"].as_u64().unwrap(), p["email"].as_u64().unwrap())
        }
    };
    // Four members bought at the shop today (Amsterdam), three agreed to e-mail; points are
    // pending (none available yet); G-1 reads German.
    assert_eq!(count(json!({})).await, (4, 3));
    assert_eq!(count(json!({"bought_at": ["shop"]})).await, (4, 3));
    assert_eq!(count(json!({"bought_at": ["rival"]})).await, (0, 0));
    assert_eq!(count(json!({"tiers": ["Basic"]})).await, (1, 1));
    assert_eq!(count(json!({"locales": ["de"]})).await, (1, 1));
    assert_eq!(count(json!({"max_days_since_purchase": 0})).await, (4, 3));
    assert_eq!(count(json!({"min_days_since_purchase": 1})).await, (0, 0));
    assert_eq!(count(json!({"min_available": 1})).await, (0, 0));
    assert_eq!(
        count(json!({"max_available": 0, "company_members": false})).await,
        (4, 3)
    );
    assert_eq!(count(json!({"company_members": true})).await, (0, 0));
    // Fifteen days on the points are available: G-1 has 200.
    env.clock.advance(chrono::Duration::days(15));
    assert_eq!(count(json!({"min_available": 200})).await, (2, 1));
    assert_eq!(count(json!({"min_days_since_purchase": 15})).await, (4, 3));
    // An erased member is in no segment.
    let profile = env.store.get_profile("velo", "G-1").await.unwrap().unwrap();
    env.store
        .erase_member(&profile, env.clock_now())
        .await
        .unwrap();
    assert_eq!(count(json!({"tiers": ["Gold"]})).await, (2, 1));
}

const DEMO: &str = include_str!("../../infra/demo.yaml");
const DEMO_OFFICE_KEY: &str = "bk_f392b00c504951ecbb72498912efc48827020023_9bb5d898";
const DEMO_SECRET: &str = "whsec_ZGVtby12ZWxvLXNob3Atd2ViaG9vay1zZWNyZXQ=";

/// The README's offer: `make run`'s data, Anna (M-1001) made Gold by
/// infra/examples/order-gold-anna.json and ACME by order-gold.json (M-1002's company).
#[tokio::test]
async fn the_readme_offer_to_gold_members_is_sent_once_and_the_fifth_is_capped() {
    let env = TestEnv::with_config(DEMO).await;
    let s = stack().await;
    for name in ["order-gold-anna.json", "order-gold.json"] {
        let path = format!("{}/../infra/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(&path).unwrap();
        let body = bonus_ops::webhook::redate(
            &raw,
            bonus_ops::webhook::Platform::Standard,
            env.clock_now(),
        )
        .unwrap();
        let body = String::from_utf8(body).unwrap();
        let headers = env.signed(DEMO_SECRET, "msg_demo", &body, 0);
        let (status, answer) = env
            .call(
                "POST",
                "/v1/partners/velo-shop/webhooks/orders",
                &headers,
                body,
            )
            .await;
        assert_eq!(
            (status, answer["tier"].as_str()),
            (StatusCode::OK, Some("Gold")),
            "{answer}"
        );
    }
    run_queue(&env, &s).await;
    let before = mails(&s).await.len();
    let gold = |id: &str| {
        json!({"id": id,
            "texts": {"en": {"title": "Gold weekend", "text": "Double points on every helmet this weekend."},
                      "nl": {"title": "Goudweekend", "text": "Dubbele punten op elke helm dit weekend."}},
            "valid_from": "2026-11-01T00:00:00Z", "valid_to": "2027-01-31T00:00:00Z",
            "segment": {"tiers": ["Gold"]}})
    };
    let (status, body) = env
        .call_as(
            DEMO_OFFICE_KEY,
            "Jana Novak",
            "POST",
            "/v1/partner/offers",
            gold("gold-weekend"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, preview) = env
        .call_as(
            DEMO_OFFICE_KEY,
            "Jana Novak",
            "GET",
            "/v1/partner/offers/gold-weekend/preview",
            Value::Null,
        )
        .await;
    assert_eq!(
        (
            preview["members"].as_u64(),
            preview["reachable"].as_u64(),
            preview["marketing_per_month"].as_u64()
        ),
        (Some(2), Some(1), Some(4)),
        "M-1001 and ACME (M-1002's company earns for his order) are Gold; only Anna agreed to e-mail: {preview}"
    );
    let (status, _) = env
        .call_as(
            DEMO_OFFICE_KEY,
            "Jana Novak",
            "POST",
            "/v1/partner/offers/gold-weekend/send",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = env
        .call_as(
            DEMO_OFFICE_KEY,
            "Jana Novak",
            "POST",
            "/v1/partner/offers/gold-weekend/send",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    run_queue(&env, &s).await;
    run_queue(&env, &s).await;
    let sent = mails(&s).await.split_off(before);
    assert_eq!(
        sent,
        vec![("anna@example.com".to_string(), "Goudweekend".to_string())],
        "once, in Dutch"
    );
    // Four more Gold offers this month: three reach Anna, the fifth of the month does not.
    for i in 2..=5 {
        let id = format!("gold-{i}");
        let (status, _) = env
            .call_as(
                DEMO_OFFICE_KEY,
                "Jana Novak",
                "POST",
                "/v1/partner/offers",
                gold(&id),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = env
            .call_as(
                DEMO_OFFICE_KEY,
                "Jana Novak",
                "POST",
                &format!("/v1/partner/offers/{id}/send"),
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        run_queue(&env, &s).await;
        run_queue(&env, &s).await;
    }
    assert_eq!(mails(&s).await.len() - before, 4, "the cap: 4 a month");
    assert_eq!(
        env.store
            .marketing_count("velo", "M-1001", "2026-11")
            .await
            .unwrap(),
        4
    );
}

/// Each member task of a send, run by hand until it is done under injected throttling,
/// server errors, conflicts and writes that land but answer an error, then twice more: the
/// offer is counted once per member whatever was retried, reaches each member in the
/// segment who agreed, and nobody else. (A failure between the provider's send and the
/// record of it sends again after the claim's lease: at least once, as every message.)
#[tokio::test]
async fn under_injected_faults_each_member_task_counts_the_offer_once() {
    use notifications::consumer::{process, Work};
    use notifications::offers::OfferTask;
    use notifications::Outcome;
    let env = TestEnv::with_config(CONFIG).await;
    let s = stack().await;
    programme(&env, &s).await;
    let before = mails(&s).await.len();
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers",
            offer("gold-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers/gold-1/send",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task = |m: &str| {
        Work::Offer(OfferTask {
            programme_id: "velo".into(),
            partner_id: "shop".into(),
            offer_id: "gold-1".into(),
            shard: None,
            after: None,
            member_id: Some(m.into()),
        })
    };
    for seed in [3, 11, 29] {
        env.faults.start(seed, 300);
        for m in ["G-1", "G-2", "N-1", "B-1"] {
            let mut done = false;
            for _ in 0..200 {
                match process(&env.ctx, &s.senders, &s.sqs, &s.url, &task(m)).await {
                    Ok(Outcome::Sent(_)) => {
                        done = true;
                        break;
                    }
                    Ok(Outcome::Deferred(at)) => env.clock.set(at + chrono::Duration::seconds(1)),
                    Err(_) => {}
                }
            }
            assert!(done, "{m} never finished under seed {seed}");
        }
        env.faults.stop();
    }
    assert!(
        env.faults.counts().values().sum::<usize>() > 20,
        "{:?}",
        env.faults.counts()
    );
    for m in ["G-1", "G-2", "N-1", "B-1"] {
        for _ in 0..2 {
            assert_eq!(
                process(&env.ctx, &s.senders, &s.sqs, &s.url, &task(m))
                    .await
                    .unwrap(),
                Outcome::Sent(0)
            );
        }
    }
    let month = "2026-11";
    for (m, n) in [("G-1", 1), ("G-2", 1), ("N-1", 0), ("B-1", 0)] {
        assert_eq!(
            env.store.marketing_count("velo", m, month).await.unwrap(),
            n,
            "{m}"
        );
    }
    let got: Vec<String> = mails(&s)
        .await
        .split_off(before)
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    for m in ["g-1@example.com", "g-2@example.com"] {
        assert!(got.iter().any(|t| t == m), "{m} got nothing: {got:?}");
    }
    assert!(
        got.iter()
            .all(|t| t == "g-1@example.com" || t == "g-2@example.com"),
        "{got:?}"
    );
}

/// What a send costs in DynamoDB requests (docs/cost.md): each member-list shard task and
/// each member task, counted on the wire.
#[tokio::test]
async fn what_an_offers_send_costs_in_requests() {
    use notifications::consumer::{process, Work};
    use notifications::offers::OfferTask;
    let env = TestEnv::with_config(CONFIG).await;
    let s = stack().await;
    programme(&env, &s).await;
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers",
            offer("gold-1"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = env
        .call_as(
            SHOP_KEY,
            "Eva",
            "POST",
            "/v1/partner/offers/gold-1/send",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task = |shard: Option<u32>, member: Option<&str>| {
        Work::Offer(OfferTask {
            programme_id: "velo".into(),
            partner_id: "shop".into(),
            offer_id: "gold-1".into(),
            shard,
            after: None,
            member_id: member.map(str::to_string),
        })
    };
    // The requests of running these tasks, counted on the wire.
    let counted = |tasks: Vec<Work>| {
        let (env, s) = (&env, &s);
        async move {
            env.requests.reset();
            for t in &tasks {
                process(&env.ctx, &s.senders, &s.sqs, &s.url, t)
                    .await
                    .unwrap();
            }
            env.requests.snapshot()
        }
    };
    let shards = counted((0..16).map(|shard| task(Some(shard), None)).collect()).await;
    let member = counted(vec![task(None, Some("G-1"))]).await;
    let outside = counted(vec![task(None, Some("B-1"))]).await;
    println!("FIGURE offer shard tasks (16, 4 members): {shards:?}");
    println!("FIGURE offer member task (sent): {member:?}");
    println!("FIGURE offer member task (not in the segment): {outside:?}");
    // Each shard task: the offer, the programme, one Query of its members; one BatchGetItem
    // where a member may be in the segment.
    assert_eq!(shards.get("Query"), Some(&16), "{shards:?}");
    assert_eq!(shards.get("GetItem"), Some(&32), "{shards:?}");
    let batches = *shards.get("BatchGetItem").unwrap_or(&0);
    assert!(
        (1..=3).contains(&batches),
        "G-1, G-2, B-1 may be in it: {shards:?}"
    );
    // A member it goes to: offer, programme, profile, account; the count (one transaction);
    // the claim, its outcome and the day's log, as every message.
    assert_eq!(member.get("GetItem"), Some(&4), "{member:?}");
    assert_eq!(member.get("TransactWriteItems"), Some(&1), "{member:?}");
    // A member outside: the reads, no write.
    assert_eq!(outside.get("GetItem"), Some(&4), "{outside:?}");
    assert!(!outside.contains_key("TransactWriteItems") && !outside.contains_key("PutItem"));
}
