//! The nightly job's cost grows with what is due, not with the members: 100,000 members, of
//! whom 1,000 have a lot released on the night. Prints the DynamoDB items read against the
//! due lots (goal: at most 1.1 x). Run: `cargo bench -p integration-tests --bench nightly`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use bonus_domain::account::Account;
use bonus_domain::clock::ManualClock;
use bonus_domain::lot::Lot;
use bonus_domain::money::Currency;
use bonus_domain::programme::{Programme, ProgrammeKind};
use bonus_dynamodb::nightly::NightCursor;
use bonus_dynamodb::{account_item, schema, Store};
use bonus_lambda::app::Ctx;
use bonus_local_stack::{dynamo::LocalDynamo, moto::LocalMoto};
use chrono::{DateTime, NaiveDate, Utc};

const MEMBERS: usize = 100_000;
const DUE: usize = 1_000;

fn account(p: &Programme, member: &str, earned_at: DateTime<Utc>) -> Account {
    let mut a = Account::open(&p.id, member);
    a.time_zone = p.time_zone;
    a.touched_on = Some(earned_at.date_naive());
    a.add_lot(&Lot::new(p, member, "shop", "O-1", 100, earned_at))
        .expect("a lot");
    a
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs bench targets too: only `cargo bench` (which passes
    // --bench) loads the 100,000 members.
    if !std::env::args().any(|a| a == "--bench") {
        println!("nightly bench: run it with `cargo bench -p integration-tests --bench nightly`");
        return;
    }
    let db = LocalDynamo::start_memory().expect("dynamodb");
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let store = Store::local(&db.endpoint, "bonus");
    schema::ensure_table(&store.client, &store.table)
        .await
        .expect("table");
    let mut p = Programme::with_defaults(
        "bench",
        "Bench",
        ProgrammeKind::Closed,
        Currency::parse("EUR").expect("EUR"),
    );
    p.time_zone = chrono_tz::Europe::Amsterdam;
    store.put_programme(&p).await.expect("programme");

    let night: NaiveDate = "2026-12-01".parse().expect("date");
    let released_long_ago: DateTime<Utc> = "2026-06-01T10:00:00Z".parse().expect("t");
    let due_tonight: DateTime<Utc> = "2026-11-17T10:00:00Z".parse().expect("t");
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..MEMBERS {
        let member = format!("M-{i:06}");
        let mut a = account(
            &p,
            &member,
            if i % (MEMBERS / DUE) == 0 {
                due_tonight
            } else {
                released_long_ago
            },
        );
        if i % (MEMBERS / DUE) != 0 {
            a.fold_due(night.and_hms_opt(0, 0, 0).expect("t").and_utc());
            a.night_done = Some(night - chrono::Duration::days(1));
        }
        let item = account_item(&a).expect("item");
        batch.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("put"),
                )
                .build(),
        );
        if batch.len() == 25 || i + 1 == MEMBERS {
            store
                .client
                .batch_write_item()
                .request_items(&store.table, std::mem::take(&mut batch))
                .send()
                .await
                .expect("batch write");
        }
    }
    println!(
        "loaded {MEMBERS} members ({DUE} with a lot released on {night}) in {:.1?}",
        started.elapsed()
    );
    store
        .set_night_cursor(&NightCursor {
            programme_id: p.id.clone(),
            last_done: night - chrono::Duration::days(1),
            updated_at: Utc::now(),
        })
        .await
        .expect("cursor");

    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "nightly", 30, 5)
        .await
        .expect("queue");
    let clock = Arc::new(ManualClock::new("2026-12-02T01:30:00Z".parse().expect("t")));
    let ctx = Ctx::new(store, clock, Duration::from_secs(60));
    let started = Instant::now();
    let s = nightly::run_in_process(&ctx, &sqs, &url, night, |_, _| {})
        .await
        .expect("run");
    let elapsed = started.elapsed();
    let permille = s.items_read * 1000 / DUE as u64;
    println!(
        "NIGHTLY members={MEMBERS} due_lots={DUE} tasks={} releases={} items_read={} ratio={}.{:03} time={:.2?}",
        s.tasks, s.counts.releases, s.items_read, permille / 1000, permille % 1000, elapsed
    );
}
