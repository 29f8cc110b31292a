//! The nightly job end to end: signed webhooks, the planner and workers over real SQS (moto)
//! and the embedded DynamoDB, with the clock moved by hand.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bonus_domain::events::EntryKind;
use bonus_dynamodb::nightly::NightCursor;
use bonus_local_stack::moto::LocalMoto;
use chrono::{DateTime, NaiveDate, Utc};
use http::StatusCode;
use integration_tests::{order_paid, TestEnv};

struct Night {
    _moto: LocalMoto,
    sqs: aws_sdk_sqs::Client,
    url: String,
}

async fn night_queue() -> Night {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "nightly", 2, 5)
        .await
        .unwrap();
    Night {
        _moto: moto,
        sqs,
        url,
    }
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Start the job's cursor at `last_done` (skips a first run's look-back in tests).
async fn cursor(env: &TestEnv, last_done: &str) {
    for programme_id in ["velo", "other"] {
        env.store
            .set_night_cursor(&NightCursor {
                programme_id: programme_id.into(),
                last_done: d(last_done),
                updated_at: env.clock_now(),
            })
            .await
            .unwrap();
    }
}

async fn run(env: &TestEnv, q: &Night, as_of: &str) -> nightly::RunSummary {
    nightly::run_in_process(&env.ctx, &q.sqs, &q.url, d(as_of), |_, _| {})
        .await
        .unwrap()
}

async fn earn(env: &TestEnv, order_id: &str, member: &str, euros: &str, when: &str) {
    env.clock.set(at(when));
    let mut body: serde_json::Value =
        serde_json::from_str(&order_paid(order_id, Some(member), &[("BELL", 1, euros)])).unwrap();
    body["occurred_at"] = when.into();
    let (status, answer) = env.order(&body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn events(env: &TestEnv) -> Vec<bonus_domain::events::DomainEvent> {
    let mut out = Vec::new();
    for shard in 0..bonus_dynamodb::keys::OUTBOX_SHARDS {
        out.extend(env.store.outbox_shard(shard).await.unwrap());
    }
    out.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    out
}

async fn account(env: &TestEnv, member: &str) -> bonus_domain::account::Account {
    env.store
        .get_account("velo", member)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn earned_in_january_available_on_the_24th_warned_twice_and_what_is_left_expires() {
    let env = TestEnv::new().await;
    let q = night_queue().await;
    earn(&env, "A-1", "M-1", "100.00", "2026-01-10T11:00:00Z").await;
    cursor(&env, "2026-01-09").await;

    let s = run(&env, &q, "2026-01-23").await;
    assert_eq!((s.nights, s.tasks, s.counts.releases), (14, 0, 0));
    assert_eq!(
        account(&env, "M-1").await.pending.values().sum::<i64>(),
        100
    );
    let s = run(&env, &q, "2026-01-24").await;
    assert_eq!((s.counts.releases, s.counts.points_released), (1, 100));
    let a = account(&env, "M-1").await;
    assert_eq!((a.available, a.pending.len()), (100, 0));

    // Spend 30 in March (as a capture does).
    env.clock.set(at("2026-03-01T12:00:00Z"));
    let mut a = account(&env, "M-1").await;
    let mut lot = env.store.lots("velo", "M-1").await.unwrap().remove(0);
    a.take_from_lot(&mut lot, 30, env.clock_now()).unwrap();
    a.version += 1;
    env.store.save_account(&a, a.version - 1).await.unwrap();

    // Nothing is due until the warnings: move the cursor over the empty nights.
    cursor(&env, "2026-12-09").await;
    assert_eq!(run(&env, &q, "2026-12-10").await.counts.warnings, 0);
    let s = run(&env, &q, "2026-12-11").await;
    assert_eq!((s.counts.warnings, s.counts.members), (1, 1));
    cursor(&env, "2027-01-01").await;
    assert_eq!(run(&env, &q, "2027-01-02").await.counts.warnings, 0);
    assert_eq!(run(&env, &q, "2027-01-03").await.counts.warnings, 1);
    cursor(&env, "2027-01-08").await;
    assert_eq!(run(&env, &q, "2027-01-09").await.counts.expiries, 0);
    let s = run(&env, &q, "2027-01-10").await;
    assert_eq!((s.counts.expiries, s.counts.points_expired), (1, 70));

    let a = account(&env, "M-1").await;
    assert_eq!((a.available, a.expiring.len()), (0, 0));
    let entries = env.store.entries("velo", "M-1").await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!((last.kind, last.points), (EntryKind::Expire, -70));
    let kinds: Vec<(String, &str)> = events(&env)
        .await
        .iter()
        .filter(|e| e.type_name() != "PointsEarned")
        .map(|e| (e.event_id.clone(), e.type_name()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                "available:velo:M-1:2026-01-24T11:00:00Z".to_string(),
                "PointsAvailable"
            ),
            ("expired:velo:M-1:2027-01-10".to_string(), "PointsExpired"),
            (
                "warning:velo:M-1:2027-01-10:30".to_string(),
                "ExpiryWarning"
            ),
            ("warning:velo:M-1:2027-01-10:7".to_string(), "ExpiryWarning"),
        ]
    );
}

/// Three members with releases on different nights.
async fn three_orders(env: &TestEnv) {
    earn(env, "A-1", "M-1", "100.00", "2026-01-10T11:00:00Z").await;
    earn(env, "A-2", "M-2", "50.00", "2026-01-11T11:00:00Z").await;
    earn(env, "A-3", "M-1", "20.00", "2026-01-12T11:00:00Z").await;
    env.clock.set(at("2026-01-27T02:00:00Z"));
}

#[tokio::test]
async fn five_skipped_nights_caught_up_give_what_every_night_gives() {
    let every = TestEnv::new().await;
    let skipped = TestEnv::new().await;
    let q1 = night_queue().await;
    let q2 = night_queue().await;
    three_orders(&every).await;
    three_orders(&skipped).await;
    cursor(&every, "2026-01-20").await;
    cursor(&skipped, "2026-01-20").await;
    for night in [
        "2026-01-21",
        "2026-01-22",
        "2026-01-23",
        "2026-01-24",
        "2026-01-25",
        "2026-01-26",
    ] {
        run(&every, &q1, night).await;
    }
    let s = run(&skipped, &q2, "2026-01-26").await;
    assert_eq!((s.nights, s.counts.releases), (6, 3));
    for member in ["M-1", "M-2"] {
        let (mut a, mut b) = (
            account(&every, member).await,
            account(&skipped, member).await,
        );
        (a.version, b.version) = (0, 0);
        // Every night stops at the member's last due night, the catch-up at the run's.
        (a.night_done, b.night_done) = (None, None);
        assert_eq!(a, b, "{member}");
    }
    let ids = |e: Vec<bonus_domain::events::DomainEvent>| {
        e.into_iter().map(|x| x.event_id).collect::<Vec<_>>()
    };
    assert_eq!(ids(events(&every).await), ids(events(&skipped).await));
}

#[tokio::test]
async fn the_same_night_three_times_changes_nothing_after_the_first() {
    let env = TestEnv::new().await;
    let q = night_queue().await;
    three_orders(&env).await;
    cursor(&env, "2026-01-23").await;
    let first = run(&env, &q, "2026-01-24").await;
    assert_eq!(first.counts.releases, 1);
    let snapshot = (
        account(&env, "M-1").await,
        account(&env, "M-2").await,
        events(&env).await,
    );
    for _ in 0..2 {
        let again = run(&env, &q, "2026-01-24").await;
        assert_eq!(again.counts, bonus_domain::nightly::NightCounts::default());
        assert_eq!(
            (
                account(&env, "M-1").await,
                account(&env, "M-2").await,
                events(&env).await
            ),
            snapshot
        );
    }
}

#[tokio::test]
async fn one_bad_body_does_not_fail_the_batch() {
    let env = TestEnv::new().await;
    three_orders(&env).await;
    let good = nightly::Task {
        programme_id: "velo".into(),
        night: d("2026-01-24"),
        as_of: d("2026-01-24"),
        shard: bonus_domain::ids::shard_of("M-1", bonus_domain::nightly::NIGHT_SHARDS),
    };
    let message = |id: &str, body: String| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body);
        m
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        message("bad", "{not json".into()),
        message("good", serde_json::to_string(&good).unwrap()),
        message(
            "unknown",
            r#"{"programme_id":"nope","night":"2026-01-24","as_of":"2026-01-24","shard":0}"#.into(),
        ),
    ];
    let response = nightly::handle_sqs(&env.store, event, env.clock_now()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["bad", "unknown"]);
    assert_eq!(account(&env, "M-1").await.available, 100);
}

/// A daily customer: 1,000 orders released on one night, and 120 days of orders whose every
/// release and expiry falls due in one night after a long pause. Each night write fits a transaction.
#[tokio::test]
async fn a_thousand_releases_and_every_bucket_after_a_long_pause_for_one_member() {
    let env = TestEnv::new().await;
    let q = night_queue().await;
    let start = at("2026-01-10T07:00:00Z");
    for i in 0..1_000 {
        let when = (start + chrono::Duration::seconds(i * 40)).to_rfc3339();
        earn(&env, &format!("D-{i}"), "M-1", "1.00", &when).await;
    }
    env.clock.set(at("2026-01-25T02:00:00Z"));
    cursor(&env, "2026-01-23").await;
    env.requests.reset();
    let started = std::time::Instant::now();
    let s = run(&env, &q, "2026-01-24").await;
    println!(
        "FIGURE a night with 1,000 releases for one member: {:?}, {:?}",
        started.elapsed(),
        env.requests.snapshot()
    );
    assert_eq!(
        (
            s.counts.members,
            s.counts.releases,
            s.counts.points_released
        ),
        (1, 1_000, 1_000)
    );
    let a = account(&env, "M-1").await;
    assert_eq!((a.available, a.pending.len()), (1_000, 0));
    let available: Vec<_> = events(&env)
        .await
        .into_iter()
        .filter(|e| e.type_name() == "PointsAvailable")
        .collect();
    assert_eq!(available.len(), 1, "one message, not a thousand");

    // M-2 buys every day for 120 days; then the job does not run for over a year.
    let start = at("2026-02-01T10:00:00Z");
    for i in 0..120 {
        let when = (start + chrono::Duration::days(i)).to_rfc3339();
        earn(&env, &format!("Y-{i}"), "M-2", "3.00", &when).await;
    }
    env.clock.set(at("2027-06-02T02:00:00Z"));
    // The job last ran before M-2's first release; it catches up every night at once, and
    // brings each member up to today the first night it finds them due.
    cursor(&env, "2026-02-13").await;
    let s = run(&env, &q, "2027-06-01").await;
    // M-2: 120 releases and 120 expiry buckets in one night (several writes); M-1: its
    // 1,000 points expire.
    assert_eq!(
        (
            s.counts.members,
            s.counts.releases,
            s.counts.expiries,
            s.counts.points_expired
        ),
        (2, 120, 121, 1_360),
        "{:?}",
        s.counts
    );
    let b = account(&env, "M-2").await;
    assert_eq!(
        (b.available, b.expiring.len(), b.night_done),
        (0, 0, Some(d("2027-06-01")))
    );
    let expired: i64 = env
        .store
        .entries("velo", "M-2")
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == EntryKind::Expire)
        .map(|e| -e.points)
        .sum();
    assert_eq!(expired, 360);
    let all = ["velo".to_string()];
    let audit = bonus_ops::audit::audit(&env.store, &all, env.clock_now(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(audit.differences, Vec::<String>::new());
}
