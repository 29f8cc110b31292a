//! The monthly clearing reads O(partners x shards) items, whatever the number of ledger
//! entries: 50 partners, a month growing to 1,000,000 entries (earns, cross-partner
//! redemptions, expiries), each written as the ledger writes it (the entry item plus its
//! counter updates). After 10,000, 100,000 and 1,000,000 entries the clearing is computed
//! and its DynamoDB requests and items read are printed.
//! Run: `cargo bench -p integration-tests --bench clearing`.

use std::time::Instant;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use bonus_domain::account::Account;
use bonus_domain::events::{EntryKind, LedgerEntry};
use bonus_domain::money::Currency;
use bonus_domain::programme::{Partner, Programme, ProgrammeKind};
use bonus_local_stack::dynamo::LocalDynamo;
use chrono::{DateTime, Utc};
use integration_tests::RequestCounter;
use std::collections::BTreeMap;

use bonus_domain::clearing::{movements, PartnerCounters};
use bonus_domain::ids::shard_of;
use bonus_dynamodb::clearing::{CounterDelta, CLEARING_SHARDS, OUTSTANDING_SHARDS};
use bonus_dynamodb::{keys, schema, to_item, Store};

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
        counterparty: None,
        issuers: [(issuer, points.abs())].into(),
    };
    (e, points)
}

/// Entries `from..to`: each entry item as the ledger writes it (BatchWriteItem), and the
/// counter updates the ledger's transactions would make. A DynamoDB transaction may not
/// touch one item twice, so the deltas of 1,000 entries are merged per counter item before
/// they are written: the counters end with exactly the values 1,000 single transactions
/// leave, only loaded faster.
async fn write_range(store: Store, from: usize, to: usize, at: DateTime<Utc>) {
    let mut puts = Vec::new();
    for chunk_start in (from..to).step_by(1000) {
        let chunk_end = (chunk_start + 1000).min(to);
        // counter item -> (a member whose shard it is, merged delta)
        let mut partner: BTreeMap<(String, u32), (String, PartnerCounters)> = BTreeMap::new();
        let mut outstanding: BTreeMap<u32, (String, i64)> = BTreeMap::new();
        for i in chunk_start..chunk_end {
            let member = format!("M-{:05}", i % MEMBERS);
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
            if puts.len() == 25 {
                batch_write(&store, std::mem::take(&mut puts)).await;
            }
            for ((_, issuer), c) in movements(&[e], chrono_tz::Europe::Berlin) {
                let shard = shard_of(&member, CLEARING_SHARDS);
                let slot = partner
                    .entry((issuer, shard))
                    .or_insert_with(|| (member.clone(), PartnerCounters::default()));
                slot.1.issued += c.issued;
                slot.1.reversed += c.reversed;
                slot.1.expired += c.expired;
                for (where_, p) in c.redeemed_at {
                    *slot.1.redeemed_at.entry(where_).or_default() += p;
                }
            }
            let slot = outstanding
                .entry(shard_of(&member, OUTSTANDING_SHARDS))
                .or_insert_with(|| (member.clone(), 0));
            slot.1 += change;
        }
        let mut updates = Vec::new();
        for ((issuer, _), (member, counters)) in partner {
            let delta = CounterDelta {
                programme_id: "bench".into(),
                month: "2026-11".into(),
                partner_id: issuer,
                counters,
            };
            updates.push(store.counter_update(&delta, &member).expect("update"));
        }
        for (_, (member, change)) in outstanding {
            let mut account = Account::open("bench", &member);
            account.time_zone = chrono_tz::Europe::Berlin;
            let (mut e, _) = entry(0, at);
            e.issuers.clear(); // only the outstanding-change update
            updates.extend(
                store
                    .clearing_items(&account, &[e], change)
                    .expect("outstanding"),
            );
        }
        for batch in updates.chunks(100) {
            loop {
                if store.transact(batch.to_vec()).await.expect("tx")
                    == bonus_dynamodb::TxOutcome::Committed
                {
                    break;
                }
            }
        }
    }
    if !puts.is_empty() {
        batch_write(&store, puts).await;
    }
}

async fn batch_write(store: &Store, puts: Vec<WriteRequest>) {
    let mut pending = puts;
    while !pending.is_empty() {
        let out = store
            .client
            .batch_write_item()
            .request_items(&store.table, pending)
            .send()
            .await
            .expect("entries");
        pending = out
            .unprocessed_items
            .and_then(|mut u| u.remove(&store.table))
            .unwrap_or_default();
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
    let sdk = bonus_dynamodb::local_config(&db.endpoint)
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
                rates: Default::default(),
                redemption: Default::default(),
                settings_version: 0,
                sandbox: false,
                webhooks: None,
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
        let total: usize = calls.values().sum();
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
            total,
            calls.get("Query").copied().unwrap_or(0),
            calls.get("GetItem").copied().unwrap_or(0),
        );
    }
}
