//! Load generator: signed order webhooks over HTTP into the local stack (the API server of
//! `bonus dev`, the real handlers and SDK client, the embedded DynamoDB), on 127.0.0.1 only,
//! bounded in count and time.
//!
//! ```bash
//! make bench                                   # release build (cargo bench)
//! LOAD_ORDERS=2000 cargo test -p integration-tests --bench load  # the debug build
//! ```
//!
//! Knobs: LOAD_ORDERS (per scenario, default 2000 under `cargo bench`, 200 under `cargo test`), LOAD_SECONDS (cap per scenario, default
//! 60), LOAD_DB=file (a SQLite file, as `make run` uses; default in memory), LOAD_SCENARIOS
//! (which to run, by number from 0, e.g. `0,2`; default all: for a profile of one).
//!
//! Scenarios: orders for distinct members, and orders all into one account with DynamoDB's
//! conflict rule applied ([`ConflictRule`]), each at 16 and 64 concurrent senders. Printed per
//! scenario: webhooks/s, p50/p99 latency, refusals, and the CPU per webhook split by thread:
//! the API (our handlers, the SDK, the HTTP server), the emulator, and this load generator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bonus_domain::random::SeededRandom;
use bonus_lambda::app::Ctx;
use futures::stream::{self, StreamExt};
use integration_tests::{order_paid, TestEnv, CONFIG, SECRET};

const MEMBERS: usize = 200;

/// A request to send: its URL, its body and its signed headers.
type SignedRequest = (String, String, Vec<(&'static str, String)>);

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds used so far by this process's threads, by thread name.
fn cpu_by_thread() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the ")" that closes the command name: utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let used = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let group = if name.starts_with("dynamodb") {
            "emulator"
        } else if name.starts_with("api") {
            "api"
        } else if name.starts_with("load") {
            "load generator"
        } else {
            "other"
        };
        *out.entry(group.to_string()).or_default() += (used(11) + used(12)) / ticks;
    }
    out
}

struct Scenario {
    name: &'static str,
    concurrency: usize,
    hot: bool,
    /// API servers, each with its own context (as separate Lambda instances): bookings in
    /// different ones race through DynamoDB instead of taking turns.
    instances: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    // Under `cargo test` (make test) a short run: the same paths and the same exactness check.
    let full = std::env::args().any(|a| a == "--bench");
    let orders = knob("LOAD_ORDERS", if full { 2000 } else { 200 }) as usize;
    let seconds = knob("LOAD_SECONDS", 60);
    let file_db = std::env::var("LOAD_DB").as_deref() == Ok("file");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let api = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("api")
        .enable_all()
        .build()?;
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load")
        .enable_all()
        .build()?;
    let mut config = CONFIG.to_string();
    for i in 0..MEMBERS {
        config.push_str(&format!("  - id: L-{i}\n    programme: velo\n"));
    }
    let scenario = |name, concurrency, hot, instances| Scenario {
        name,
        concurrency,
        hot,
        instances,
    };
    let scenarios = [
        scenario("distinct members", 16, false, 1),
        scenario("distinct members", 64, false, 1),
        scenario("one account", 16, true, 1),
        scenario("one account", 64, true, 1),
        scenario("one account", 64, true, 4),
    ];

    println!(
        "LOAD build={profile} db={} orders/scenario={orders} cap={seconds}s",
        if file_db { "file" } else { "memory" }
    );
    let chosen: Option<Vec<usize>> = std::env::var("LOAD_SCENARIOS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    for (n, s) in scenarios.iter().enumerate() {
        if chosen.as_ref().is_some_and(|c| !c.contains(&n)) {
            continue;
        }
        // A fresh stack per scenario: one account's history never slows the next.
        let dir = std::env::temp_dir().join(format!("bonus-load-{}-{n}", std::process::id()));
        let env = Arc::new(api.block_on(async {
            if file_db {
                TestEnv::with_config_file(&config, &dir.join("bonus.db")).await
            } else {
                TestEnv::with_config(&config).await
            }
        }));
        if s.hot {
            env.conflict_rule.enable();
        }
        let mut servers = Vec::new();
        let mut urls = Vec::new();
        for i in 0..s.instances {
            let ctx = if i == 0 {
                env.ctx.clone()
            } else {
                Arc::new(
                    Ctx::new(
                        env.store.clone(),
                        env.clock.clone(),
                        Duration::from_secs(3600),
                    )
                    .with_random(Arc::new(SeededRandom::new(1_000 + i as u64))),
                )
            };
            let (listener, addr) = api.block_on(bonus_ops::dev::bind(0))?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = api.spawn(bonus_ops::dev::serve(ctx, listener, async {
                let _ = stopped.await;
            }));
            servers.push((stop, server));
            urls.push(format!("http://{addr}/v1/partners/shop/webhooks/orders"));
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let requests: Vec<SignedRequest> = (0..orders)
            .map(|i| {
                let member = if s.hot {
                    "M-1".to_string()
                } else {
                    format!("L-{}", i % MEMBERS)
                };
                let body = order_paid(
                    &format!("LOAD-{n}-{i}"),
                    Some(&member),
                    &[("BIKE", 1, "10.00")],
                );
                let headers = env.signed(SECRET, &format!("msg_{n}_{i}"), &body, 0);
                (urls[i % urls.len()].clone(), body, headers)
            })
            .collect();
        let cpu_before = cpu_by_thread();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let results: Vec<(u16, Duration, i64)> = load.block_on(async {
            stream::iter(requests)
                .take_while(|_| futures::future::ready(Instant::now() < deadline))
                .map(|(url, body, headers)| {
                    let client = client.clone();
                    async move {
                        let mut req = client.post(&url).body(body);
                        for (k, v) in headers {
                            req = req.header(k, v);
                        }
                        let t = Instant::now();
                        let (status, points) = match req.send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let answer: serde_json::Value = r.json().await.unwrap_or_default();
                                (status, answer["points"].as_i64().unwrap_or(0))
                            }
                            Err(_) => (0, 0),
                        };
                        (status, t.elapsed(), points)
                    }
                })
                .buffer_unordered(s.concurrency)
                .collect()
                .await
        });
        let wall = started.elapsed().as_secs_f64();
        let cpu_after = cpu_by_thread();
        let mut latencies: Vec<Duration> = results.iter().map(|(_, d, _)| *d).collect();
        latencies.sort();
        let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
        let mut refused: BTreeMap<u16, usize> = BTreeMap::new();
        for (status, _, _) in results.iter().filter(|(s, _, _)| *s != 200) {
            *refused.entry(*status).or_default() += 1;
        }
        let per_webhook = |group: &str| {
            let used = cpu_after.get(group).unwrap_or(&0.0) - cpu_before.get(group).unwrap_or(&0.0);
            used * 1000.0 / results.len().max(1) as f64
        };
        println!(
            "LOAD {:<16} c={:<3} instances={} sent={:<5} ok={:<5} refused={:?} {:>7.0} webhooks/s p50={:.1} ms p99={:.1} ms | CPU ms/webhook: api {:.2}, emulator {:.2}, load generator {:.2}{}",
            s.name,
            s.concurrency,
            s.instances,
            results.len(),
            ok,
            refused,
            results.len() as f64 / wall,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            per_webhook("api"),
            per_webhook("emulator"),
            per_webhook("load generator"),
            if s.hot { format!(" | conflicts refused by the rule: {}", env.conflict_rule.refused()) } else { String::new() },
        );
        if s.hot {
            // Exact: the account holds what the answers said, every booked order once.
            let answered: i64 = results.iter().map(|(_, _, p)| p).sum();
            let account = api
                .block_on(env.store.get_account("velo", "M-1"))?
                .ok_or_else(|| anyhow::anyhow!("no account"))?;
            anyhow::ensure!(
                account.lifetime_earned == answered && account.entry_seq == ok as u64,
                "account holds {} points in {} entries; {ok} orders answered {answered}",
                account.lifetime_earned,
                account.entry_seq
            );
        }
        for (stop, server) in servers {
            let _ = stop.send(());
            let _ = api.block_on(server);
        }
        drop(env);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
