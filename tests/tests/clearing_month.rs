//! A scripted coalition month on the local stack (signed webhooks, the member API's holds,
//! the nightly job over SQS on moto, the embedded DynamoDB), cleared by the monthly job and
//! checked against figures worked out by hand.
//!
//! Coalition `coal` (Berlin), 1 point = 1 cent, 10 % operator fee on breakage; partners
//! bakery, cafe, books. Members M1 and M2.
//!
//! | when (2026)   | what                                                         |
//! |---------------|--------------------------------------------------------------|
//! | 2025-11-03    | M1 earns 300 at bakery (expires after 2026-11-03)            |
//! | 11-02         | M1 spends 100 at cafe (the 2025 bakery points)               |
//! | 11-02         | M1 earns 500 at bakery (B-1: lines 300 + 200)                |
//! | 11-02         | M2 earns 200 at cafe                                         |
//! | night 11-03   | M1's 200 bakery points left from 2025 expire                 |
//! | 11-04         | M2 earns 400 at books                                        |
//! | 11-05         | M1 earns 100 at cafe                                         |
//! | 11-10         | bakery refunds B-1's 200 line: 200 reversed from its lot     |
//! | 11-20         | M2 spends 300 at bakery: 200 cafe points + 100 books points  |
//! | 11-21         | M1 spends 250 at books: bakery points                        |
//!
//! By hand, November: bakery issued 500, reversed 200, expired 200 (fee 20), its points
//! spent at cafe 100 and at books 250, others' spent with it 300 -> net -50. Cafe issued
//! 300, its points spent at bakery 200, others' with it 100 -> net -100. Books issued 400,
//! its points spent at bakery 100, others' with it 250 -> net +150. Nets: 0.
//! Identity: 1,200 - 200 = 650 redeemed + 200 expired + 150 outstanding change
//! (M1 300 -> 150, M2 0 -> 300).

use bonus_dynamodb::clearing::Closing;
use bonus_dynamodb::nightly::NightCursor;
use bonus_local_stack::moto::LocalMoto;
use chrono::{DateTime, Utc};
use http::StatusCode;
use integration_tests::TestEnv;
use serde_json::{json, Value};

const SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";

const CONFIG: &str = r#"
programmes:
  - id: coal
    name: Coalition
    kind: coalition
    currency: EUR
    time_zone: Europe/Berlin
    min_balance_to_redeem: 100
    breakage_fee_percent: 10
    tiers: [{name: Member, threshold: 0, multiplier: 1}]
partners:
  - id: bakery
    programme: coal
    name: Bakery
    time_zone: Europe/Berlin
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys: [{label: till, key: bk_4f0aa9cefb6d638cc159c6736c95f7ef181d19bb_178a45b5, scopes: [read_balance, hold]}]
    finance_email: finance@bakery.example
  - id: cafe
    programme: coal
    name: Cafe
    time_zone: Europe/Berlin
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys: [{label: till, key: bk_9c805dea3d6be070f95d1b5eb4a29e78f0195484_d91591e2, scopes: [read_balance, hold]}]
  - id: books
    programme: coal
    name: Books
    time_zone: Europe/Berlin
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys: [{label: till, key: bk_e39da50fab33f2ce7a55407034e08eff775c7bbb_f535e661, scopes: [read_balance, hold]}]
    finance_email: books@books.example
members:
  - {id: M1, programme: coal}
  - {id: M2, programme: coal}
"#;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn key(partner: &str) -> &'static str {
    match partner {
        "bakery" => "bk_4f0aa9cefb6d638cc159c6736c95f7ef181d19bb_178a45b5",
        "cafe" => "bk_9c805dea3d6be070f95d1b5eb4a29e78f0195484_d91591e2",
        _ => "bk_e39da50fab33f2ce7a55407034e08eff775c7bbb_f535e661",
    }
}

async fn webhook(env: &TestEnv, partner: &str, body: Value) -> Value {
    let body = body.to_string();
    let id = format!("msg-{}", env.clock_now().timestamp_nanos_opt().unwrap_or(0));
    let headers = env.signed(SECRET, &id, &body, 0);
    let (status, answer) = env
        .call(
            "POST",
            &format!("/v1/partners/{partner}/webhooks/orders"),
            &headers,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// An order of `lines` (euros each, 1 point per euro) at `when`.
async fn earn(env: &TestEnv, when: &str, partner: &str, member: &str, order: &str, lines: &[i64]) {
    env.clock.set(at(when));
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, euros)| json!({"line_id": (i + 1).to_string(), "sku": format!("SKU-{i}"), "quantity": 1, "unit_price": format!("{euros}.00")}))
        .collect();
    let answer = webhook(
        env,
        partner,
        json!({"type": "order.paid", "order_id": order, "member_id": member,
               "occurred_at": when, "currency": "EUR", "lines": lines}),
    )
    .await;
    let expected: i64 = lines
        .iter()
        .map(|l| {
            l["unit_price"]
                .as_str()
                .unwrap()
                .trim_end_matches(".00")
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(answer["points"].as_i64(), Some(expected), "{answer}");
}

/// Hold and capture `points` of `member` at `partner`.
async fn spend(env: &TestEnv, when: &str, partner: &str, member: &str, points: i64) {
    env.clock.set(at(when));
    let auth = [("authorization", format!("Bearer {}", key(partner)))];
    let (status, hold) = env
        .call(
            "POST",
            &format!("/v1/members/{member}/holds"),
            &auth,
            json!({"points": points, "reference": format!("till-{when}")}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let id = hold["hold_id"].as_str().unwrap();
    let (status, done) = env
        .call(
            "POST",
            &format!("/v1/holds/{id}/capture"),
            &auth,
            json!({"points": points}).to_string(),
        )
        .await;
    assert_eq!(
        (status, done["captured"].as_i64()),
        (StatusCode::OK, Some(points)),
        "{done}"
    );
}

async fn nightly(env: &TestEnv, last_done: &str, as_of: &str) {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "nightly", 2, 5)
        .await
        .unwrap();
    env.store
        .set_night_cursor(&NightCursor {
            programme_id: "coal".into(),
            last_done: last_done.parse().unwrap(),
            updated_at: env.clock_now(),
        })
        .await
        .unwrap();
    nightly::run_in_process(&env.ctx, &sqs, &url, as_of.parse().unwrap(), |_, _| {})
        .await
        .unwrap();
}

/// (issued, reversed, at self, at others, from others, expired, breakage fee, net)
type Row = (i64, i64, i64, i64, i64, i64, i64, i64);

fn rows(c: &bonus_domain::clearing::Clearing) -> Vec<(String, Row)> {
    c.statements
        .iter()
        .map(|s| {
            (
                s.partner_id.clone(),
                (
                    s.issued,
                    s.reversed,
                    s.redeemed_at_self,
                    s.redeemed_at_others,
                    s.redeemed_from_others,
                    s.expired,
                    s.breakage_fee,
                    s.net,
                ),
            )
        })
        .collect()
}

/// November as stored by the close.
async fn closed(env: &TestEnv) -> bonus_domain::clearing::Clearing {
    let (_, stored) = env
        .store
        .closed_month("coal", "2026-11")
        .await
        .unwrap()
        .unwrap();
    stored
}

/// `bonus audit` of the coalition.
async fn audit(env: &TestEnv) -> bonus_ops::audit::AuditReport {
    let all = ["coal".to_string()];
    bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap()
}

async fn scripted_month(env: &TestEnv) {
    earn(env, "2025-11-03T10:00:00Z", "bakery", "M1", "B-0", &[300]).await;
    spend(env, "2026-11-02T09:00:00Z", "cafe", "M1", 100).await;
    earn(
        env,
        "2026-11-02T10:00:00Z",
        "bakery",
        "M1",
        "B-1",
        &[300, 200],
    )
    .await;
    earn(env, "2026-11-02T11:00:00Z", "cafe", "M2", "C-1", &[200]).await;
    env.clock.set(at("2026-11-04T02:00:00Z"));
    nightly(env, "2026-11-01", "2026-11-03").await;
    earn(env, "2026-11-04T10:00:00Z", "books", "M2", "K-1", &[400]).await;
    earn(env, "2026-11-05T10:00:00Z", "cafe", "M1", "C-2", &[100]).await;
    env.clock.set(at("2026-11-10T10:00:00Z"));
    let refund = webhook(
        env,
        "bakery",
        json!({"type": "order.refunded", "order_id": "B-1", "refund_id": "R-1",
               "occurred_at": "2026-11-10T10:00:00Z", "currency": "EUR",
               "lines": [{"line_id": "2", "quantity": 1}]}),
    )
    .await;
    assert_eq!(
        (refund["points"].as_i64(), refund["from_own"].as_i64()),
        (Some(200), Some(200)),
        "{refund}"
    );
    spend(env, "2026-11-20T10:00:00Z", "bakery", "M2", 300).await;
    spend(env, "2026-11-21T10:00:00Z", "books", "M1", 250).await;
}

#[tokio::test]
async fn a_scripted_month_clears_to_the_figures_worked_by_hand_and_closes_once() {
    let env = TestEnv::with_config(CONFIG).await;
    scripted_month(&env).await;

    // The month is not over in Berlin until 1 December 00:00 (23:00 UTC) plus an hour.
    env.clock.set(at("2026-11-30T23:30:00Z"));
    let early = clearing::close(&env.store, "coal", "2026-11", env.clock_now()).await;
    assert!(
        matches!(early, Err(clearing::ClearingError::NotOver { .. })),
        "{early:?}"
    );

    env.clock.set(at("2026-12-01T13:00:00Z"));
    let (c, closing) = clearing::close(&env.store, "coal", "2026-11", env.clock_now())
        .await
        .unwrap();
    assert_eq!(closing, Closing::Written);
    let s = |id: &str| id.to_string();
    assert_eq!(
        rows(&c),
        vec![
            (s("bakery"), (500, 200, 0, 350, 300, 200, 20, -50)),
            (s("books"), (400, 0, 0, 100, 250, 0, 0, 150)),
            (s("cafe"), (300, 0, 0, 200, 100, 0, 0, -100)),
        ]
    );
    assert_eq!(c.statements.iter().map(|s| s.net).sum::<i64>(), 0);
    // The ledger identity, with the outstanding change from the accounts themselves.
    assert_eq!(c.outstanding_change, 150);
    assert_eq!(1200 - 200, 650 + 200 + c.outstanding_change);
    let m = |from: &str, to: &str| c.matrix.get(from).and_then(|r| r.get(to)).copied();
    assert_eq!(
        (
            m("bakery", "cafe"),
            m("bakery", "books"),
            m("cafe", "bakery"),
            m("books", "bakery"),
            m("cafe", "cafe")
        ),
        (Some(100), Some(250), Some(200), Some(100), None)
    );
    // Money values at 1 cent a point.
    let bakery = &c.statements[0];
    assert_eq!(
        (
            bakery.redeemed_at_others_value,
            bakery.redeemed_from_others_value,
            bakery.expired_value
        ),
        (350, 300, 200)
    );

    // Stored as computed; running the month again writes nothing and reproduces it.
    let stored = closed(&env).await;
    assert_eq!(stored, c);
    env.requests.reset();
    env.clock.set(at("2026-12-02T13:00:00Z"));
    let (again, closing) = clearing::close(&env.store, "coal", "2026-11", env.clock_now())
        .await
        .unwrap();
    assert_eq!((closing, again), (Closing::Reproduced, c.clone()));
    let calls = env.requests.snapshot();
    assert_eq!(
        (
            calls.get("TransactWriteItems"),
            calls.get("PutItem"),
            calls.get("UpdateItem")
        ),
        (None, None, None),
        "{calls:?}"
    );
    // The closed month's summary keeps its first closing time.
    let (summary, _) = env
        .store
        .closed_month("coal", "2026-11")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.closed_at, at("2026-12-01T13:00:00Z"));

    // The audit recomputes every balance and counter from the entries: no difference.
    let clean = audit(&env).await;
    assert_eq!(clean.differences, Vec::<String>::new());
    assert_eq!((clean.members, clean.entries), (2, 10));

    // The report a person reads.
    let text = bonus_ops::clearing::text(
        &stored,
        Some(&summary),
        bonus_domain::money::Currency::parse("EUR").unwrap(),
    );
    assert!(text.contains("closed 2026-12-01 13:00 UTC"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["bakery", "500", "200", "0", "350", "300", "200", "0.20", "-0.50"]),
        "{text}"
    );

    // A late change to a counter after the close: the stored month stands, the job fails.
    let late = bonus_dynamodb::clearing::CounterDelta {
        programme_id: "coal".into(),
        month: "2026-11".into(),
        partner_id: "cafe".into(),
        counters: bonus_domain::clearing::PartnerCounters {
            issued: 5,
            ..Default::default()
        },
    };
    let item = env.store.counter_update(&late, "M9").unwrap();
    env.store.transact(vec![item]).await.unwrap();
    let differs = clearing::close(&env.store, "coal", "2026-11", env.clock_now()).await;
    assert!(
        matches!(differs, Err(clearing::ClearingError::Conservation { .. })),
        "{differs:?}"
    );
    let still = closed(&env).await;
    assert_eq!(still, c);
    // ...and the audit finds exactly that difference.
    let dirty = audit(&env).await;
    assert_eq!(
        dirty.differences,
        vec!["coal 2026-11 cafe: counters issued 305 reversed 0 expired 0 redeemed {\"bakery\": 200}, \
              the entries say issued 300 reversed 0 expired 0 redeemed {\"bakery\": 200}"
            .to_string()]
    );

    // The CSV export carries the same figures.
    let csv = clearing::csv(&c);
    assert!(
        csv.lines()
            .any(|l| l == "coal,2026-11,bakery,500,200,0,350,300,200,500,200,0,350,300,200,20,-50"),
        "{csv}"
    );
}

/// The close is two steps: the partners' statements, then the summary that makes the month
/// final. A crash after each write the close makes, then the close run again: the same
/// figures, closed once, and the audit clean.
#[tokio::test]
async fn a_close_that_crashed_after_any_of_its_writes_closes_the_same_month_when_run_again() {
    let reference = TestEnv::with_config(CONFIG).await;
    scripted_month(&reference).await;
    reference.clock.set(at("2026-12-01T13:00:00Z"));
    reference.writes.take();
    let (expected, _) = clearing::close(&reference.store, "coal", "2026-11", reference.clock_now())
        .await
        .unwrap();
    let writes = reference.writes.take().len();
    assert_eq!(writes, 2, "statements, then the summary");

    for crash_after in 1..=writes {
        let env = TestEnv::with_config(CONFIG).await;
        scripted_month(&env).await;
        env.clock.set(at("2026-12-01T13:00:00Z"));
        env.faults.crash_after_writes(crash_after);
        let crashed = clearing::close(&env.store, "coal", "2026-11", env.clock_now()).await;
        assert!(
            crashed.is_err(),
            "crash after write {crash_after}: {crashed:?}"
        );
        assert!(env.faults.restart(), "the process stopped");
        // A summary written before the crash makes the month final already; else the
        // statements written are simply written again.
        let (again, closing) = clearing::close(&env.store, "coal", "2026-11", env.clock_now())
            .await
            .unwrap();
        let expected_closing = if crash_after == writes {
            Closing::Reproduced
        } else {
            Closing::Written
        };
        assert_eq!(
            (closing, &again),
            (expected_closing, &expected),
            "crash after write {crash_after}"
        );
        let stored = closed(&env).await;
        assert_eq!(stored, expected);
        assert_eq!(stored.statements.iter().map(|s| s.net).sum::<i64>(), 0);
        assert_eq!(audit(&env).await.differences, Vec::<String>::new());
    }
}

#[tokio::test]
async fn the_planner_queues_each_coalition_and_the_worker_reports_only_the_bad_body() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let env = TestEnv::with_config(CONFIG).await;
    earn(&env, "2026-11-02T10:00:00Z", "bakery", "M1", "B-1", &[120]).await;
    env.clock.set(at("2026-12-01T13:00:00Z"));
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "clearing", 30, 3)
        .await
        .unwrap();
    let summary = clearing::planner(&env.ctx, &sqs, &url, &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (summary.month.as_str(), summary.programmes),
        ("2026-11", vec!["coal".to_string()])
    );
    let got = bonus_sqs::receive(&sqs, &url, 0).await.unwrap();
    assert_eq!(got.len(), 1);
    let message = |id: &str, body: &str| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        message("good", &got[0].body),
        message("bad", "{\"programme_id\": 7}"),
    ];
    let response = clearing::handle_sqs(&env.ctx, &sqs, "", event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["bad"]);
    let (_, c) = env
        .store
        .closed_month("coal", "2026-11")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows(&c),
        vec![("bakery".to_string(), (120, 0, 0, 0, 0, 0, 0, 0))]
    );
    assert_eq!(c.outstanding_change, 120);
}

#[tokio::test]
async fn each_partner_with_a_finance_contact_gets_its_statement_once() {
    let env = TestEnv::with_config(CONFIG).await;
    scripted_month(&env).await;
    env.clock.set(at("2026-12-01T13:00:00Z"));
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let senders = bonus_local_stack::moto::local_senders(&moto.endpoint, "clearing@example.com")
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "notifications", 30, 5)
        .await
        .unwrap();
    // The bakery bought a point pack in November: listed with its statement.
    let line = bonus_domain::packs::InvoiceLine {
        partner_id: "bakery".into(),
        month: "2026-11".into(),
        reference: "po-77".into(),
        pack_id: "150k".into(),
        campaign_id: "bread-week".into(),
        points: 150_000,
        price_minor: 250_000,
        currency: bonus_domain::money::Currency::parse("EUR").unwrap(),
        bought_by: "Eva".into(),
        at: at("2026-11-20T10:00:00Z"),
    };
    let put = env.store.invoice_line_put(&line).unwrap();
    assert!(matches!(
        env.store.transact(vec![put]).await.unwrap(),
        bonus_dynamodb::TxOutcome::Committed
    ));
    let task = clearing::CloseTask {
        programme_id: "coal".into(),
        month: "2026-11".into(),
    };
    let mails = || async {
        let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    for (round, closing) in [(1, Closing::Written), (2, Closing::Reproduced)] {
        assert_eq!(
            clearing::run_task(&env.ctx, &sqs, &url, &task)
                .await
                .unwrap(),
            closing
        );
        let (sent, waiting) = notifications::consume_once(&env.ctx, &senders, &sqs, &url)
            .await
            .unwrap();
        // Bakery and books have a finance contact, the cafe has none; the second round
        // (the month run again) sends nothing.
        assert_eq!(
            (round, sent, waiting),
            (round, if round == 1 { 2 } else { 0 }, 0)
        );
    }
    let sent = mails().await;
    assert_eq!(sent.len(), 2);
    let bakery = sent
        .iter()
        .find(|m| m["destinations"]["ToAddresses"][0] == "finance@bakery.example")
        .expect("the bakery's statement");
    assert_eq!(
        bakery["subject"],
        "Coalition: clearing statement 2026-11 for Bakery"
    );
    let body = bakery["body"].as_str().unwrap_or("");
    for figure in [
        "<td>Your points spent at others</td><td align=\"right\">350</td><td align=\"right\">3.50</td>",
        "<td>Operator fee on breakage</td><td></td><td align=\"right\">0.20</td>",
        "You pay 0.50 EUR.",
        "<tr><td>150k</td><td>bread-week</td><td align=\"right\">150000</td><td align=\"right\">2500.00</td><td>po-77</td></tr>",
    ] {
        assert!(body.contains(figure), "{figure}: {body}");
    }
    let books = sent
        .iter()
        .find(|m| m["destinations"]["ToAddresses"][0] != "finance@bakery.example")
        .expect("the books' statement");
    assert!(
        !books["body"].as_str().unwrap_or("").contains("Point packs"),
        "no packs, no list"
    );
}
