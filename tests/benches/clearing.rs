//! The monthly clearing reads O(partners x shards) items, whatever the number of ledger
//! entries: 50 partners, a month growing to 1,000,000 entries (earns, cross-partner
//! redemptions, expiries), each written as the ledger writes it (the entry item plus its
//! counter updates). After 10,000, 100,000 and 1,000,000 entries the clearing is computed
//! and its DynamoDB requests and items read are printed.
//! Run: `cargo bench -p integration-tests --bench clearing`.

use std::time::Instant;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use bonus_cli::local::LocalDynamo;
use chrono::{DateTime, Utc};
use integration_tests::RequestCounter;
use shared::account::Account;
use shared::events::{EntryKind, LedgerEntry};
use shared::money::Currency;
use shared::programme::{Partner, Programme, ProgrammeKind};
use shared::store::{keys, schema, to_item, Store};

const PARTNERS: usize = 50;
const LEVELS: [usize; 3] = [10_000, 100_000, 1_000_000];
const MEMBERS: usize = 20_000;
const WRITERS: usize = 16;

/// The i-th entry of the month: 2 of 4 earn 10 points at a partner, 1 spends 4 of another
/// partner's points, 1 lets 1 point expire.
fn entry(i: usize, at: DateTime<Utc>) -> (LedgerEntry, i64) {
    let issuer = format!("p-{:02}", i % PARTNERS);
    let (kind, points, partner) = match i % 4 {
        0 | 1 => (EntryKind::Earn, 10, issuer.clone()),
        2 => (
            EntryKind::Redeem,
            -4,
            format!("p-{:02}", (i / 4) % PARTNERS),
        ),
        _ => (EntryKind::Expire, -1, issuer.clone()),
    };
    let e = LedgerEntry {
        seq: i as u64,
        at,
        kind,
        points,
        reason: "bench".into(),
        partner_id: Some(partner),
        order_id: None,
        lot_id: None,
        event_id: format!("bench:{i}"),
        issuers: [(issuer, points.abs())].into(),
    };
    (e, points)
}

async fn write_range(store: Store, from: usize, to: usize, at: DateTime<Utc>) {
    let mut puts = Vec::new();
    let mut updates = Vec::new();
    for i in from..to {
        let member = format!("M-{:05}", i % MEMBERS);
        let mut account = Account::open("bench", &member);
        account.time_zone = chrono_tz::Europe::Berlin;
        let (e, change) = entry(i, at);
        let item = to_item(keys::entry("bench", &member, e.seq), "entry", &e).expect("item");
        puts.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("put"),
                )
                .build(),
        );
        updates.extend(
            store
                .clearing_items(&account, &[e], change)
                .expect("counters"),
        );
        if puts.len() == 25 {
            store
                .client
                .batch_write_item()
                .request_items(&store.table, std::mem::take(&mut puts))
                .send()
                .await
                .expect("entries");
        }
        if updates.len() >= 98 {
            let batch = std::mem::take(&mut updates);
            loop {
                if store.transact(batch.clone()).await.expect("tx")
                    == shared::store::TxOutcome::Committed
                {
                    break;
                }
            }
        }
    }
    if !puts.is_empty() {
        store
            .client
            .batch_write_item()
            .request_items(&store.table, puts)
            .send()
            .await
            .expect("entries");
    }
    while !updates.is_empty() {
        if store.transact(updates.clone()).await.expect("tx") == shared::store::TxOutcome::Committed
        {
            break;
        }
    }
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("clearing bench: run it with `cargo bench -p integration-tests --bench clearing`");
        return;
    }
    let db = LocalDynamo::start_memory().expect("dynamodb");
    let requests = RequestCounter::default();
    let sdk = shared::store::local_config(&db.endpoint)
        .to_builder()
        .interceptor(requests.clone())
        .build();
    let store = Store::new(aws_sdk_dynamodb::Client::from_conf(sdk), "bonus");
    schema::ensure_table(&store.client, &store.table)
        .await
        .expect("table");
    let eur = Currency::parse("EUR").expect("EUR");
    let mut p = Programme::with_defaults("bench", "Bench", ProgrammeKind::Coalition, eur);
    p.time_zone = chrono_tz::Europe::Berlin;
    store.put_programme(&p).await.expect("programme");
    for i in 0..PARTNERS {
        store
            .put_partner(&Partner {
                id: format!("p-{i:02}"),
                programme_id: "bench".into(),
                name: format!("Partner {i}"),
                time_zone: chrono_tz::Europe::Berlin,
                webhook_secrets: Vec::new(),
                auto_enrol: false,
                shopify: None,
                woocommerce: None,
                finance_email: None,
            })
            .await
            .expect("partner");
    }
    let at: DateTime<Utc> = "2026-11-15T10:00:00Z".parse().expect("t");
    let mut written = 0;
    for level in LEVELS {
        let started = Instant::now();
        let per = (level - written).div_ceil(WRITERS);
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let from = written + w * per;
                let to = (from + per).min(level);
                tokio::spawn(write_range(store.clone(), from, to, at))
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
        let load = started.elapsed();
        written = level;

        requests.reset();
        let started = Instant::now();
        let c = clearing::compute(&store, "bench", "2026-11")
            .await
            .expect("clearing checks out");
        let elapsed = started.elapsed();
        let calls = requests.snapshot();
        // The items those requests returned: the same partitions, counted.
        let mut items = 1; // the partner list
        for i in 0..PARTNERS {
            let pk = keys::clearing_counter("bench", "2026-11", &format!("p-{i:02}"), 0).0;
            items += store.query_items(&pk, "SHARD#").await.expect("q").len();
        }
        let pk = keys::clearing_outstanding("bench", "2026-11", 0).0;
        items += store
            .query_items(&pk, "OUTSTANDING#")
            .await
            .expect("q")
            .len();
        let issued: i64 = c.statements.iter().map(|s| s.issued).sum();
        println!(
            "CLEARING entries={level} partners={} requests={} (Query {}, GetItem {}) items_read={items} issued={issued} time={elapsed:.2?} (loaded in {load:.1?})",
            c.statements.len(),
            requests.total(),
            calls.get("Query").copied().unwrap_or(0),
            calls.get("GetItem").copied().unwrap_or(0),
        );
    }
}
