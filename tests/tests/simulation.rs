//! The model-based simulation (tests/src/simulation.rs): seeded operations through the real
//! handlers and through the reference model, compared after every step.
//!
//! `SIM_SEED=n SIM_OPS=k cargo test -p integration-tests --test simulation -- --nocapture`
//! replays one seed; `SIM_SEEDS=m` runs m seeds from n (the soak: 50 seeds of 2,000).

use bonus_local_stack::moto::LocalMoto;
use integration_tests::simulation::{
    generate, run, run_against, run_with, shrink, BrokenRule, Faults, NightQueue, Op,
};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The handlers' futures nest deeply in a debug build: the simulation runs on threads with
/// room for them.
fn on_big_stacks(test: impl std::future::Future<Output = ()> + Send + 'static) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async { tokio::spawn(test).await.expect("the simulation panicked") });
}

#[test]
fn two_thousand_operations_agree_with_the_reference_model() {
    on_big_stacks(two_thousand_operations());
}

async fn two_thousand_operations() {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let queue = NightQueue::new(&moto.endpoint);
    let first_seed = knob("SIM_SEED", 17);
    let count = knob("SIM_OPS", 2_000) as usize;
    // The soak (make soak): many seeds, each on a fresh stack, rather than one history of
    // centuries (2,000 operations already span about three years).
    let seeds = knob("SIM_SEEDS", 1);
    let soak = std::time::Instant::now();
    for seed in first_seed..first_seed + seeds {
        let ops = generate(seed, count);
        let started = std::time::Instant::now();
        match run(&ops, &queue).await {
            Ok(stats) => println!(
                "SIMULATION seed={seed} ops={count} {stats:?} in {:.1}s",
                started.elapsed().as_secs_f64()
            ),
            Err(first) => {
                eprintln!("seed {seed} diverged at {first}; shrinking");
                let (shrunk, failure) = shrink(&ops, &queue, None, 300).await;
                panic!(
                    "seed {seed} diverged at {first}\nshrunk to {} operations: {shrunk:?}\nwhich fail at {failure}",
                    shrunk.len()
                );
            }
        }
    }
    if seeds > 1 {
        println!(
            "SIMULATION soak: {seeds} seeds from {first_seed}, {} operations in {:.0}s",
            seeds as usize * count,
            soak.elapsed().as_secs_f64()
        );
    }
}

/// The comparison can fail: against a model that rounds once per order instead of once per
/// line, the same seed diverges, and shrinking cuts it down to the one order that shows it.
#[test]
fn a_model_with_a_broken_rule_is_caught_and_shrunk_to_one_order() {
    on_big_stacks(broken_rule_caught());
}

async fn broken_rule_caught() {
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let queue = NightQueue::new(&moto.endpoint);
    let ops = generate(17, 200);
    let first = run_against(&ops, &queue, Some(BrokenRule::RoundPerOrder))
        .await
        .expect_err("a broken rule must be caught");
    assert!(
        first.what.contains("expected 200 with"),
        "caught, but not at the order: {first}"
    );
    let (shrunk, failure) = shrink(&ops, &queue, Some(BrokenRule::RoundPerOrder), 100).await;
    println!("SIMULATION broken rule caught at {first}; shrunk to {shrunk:?}: {failure}");
    assert_eq!(shrunk.len(), 1, "{shrunk:?}");
    assert!(matches!(shrunk[0], Op::Order { .. }), "{shrunk:?}");
    // The true model passes the same operations.
    run(&ops, &queue).await.unwrap();
}

/// The same kind of run with DynamoDB faults in 3 % of the system's requests: throttling, 500s,
/// cancelled transactions and ambiguous commits (written, answer lost), and a crash (the
/// process stops) after 1 % of the writes, wherever it falls: between the steps of a claim,
/// of the nightly job, of a booking. Senders send a 503 again, and whatever a crash cut
/// off; the nightly job runs again when it failed. The model does not know about faults:
/// every balance, statement and answer must come out exactly as without them.
#[test]
fn a_thousand_operations_under_injected_faults_agree_with_the_reference_model() {
    on_big_stacks(under_faults());
}

async fn under_faults() {
    // SIM_LOG=1: the handlers' error logs (JSON) on stderr, to see what a 500 was.
    if std::env::var("SIM_LOG").is_ok() {
        bonus_lambda::telemetry::init_json();
    }
    let moto = LocalMoto::start().expect("moto (make test installs it into .venv)");
    let queue = NightQueue::new(&moto.endpoint);
    let seed = knob("SIM_SEED", 17);
    let count = knob("SIM_FAULT_OPS", 1_000) as usize;
    let per_mille = knob("SIM_FAULTS", 30);
    let crash_per_mille = knob("SIM_CRASHES", 10) as usize;
    let ops = generate(seed, count);
    let started = std::time::Instant::now();
    let faults = Faults {
        seed,
        per_mille,
        crash_per_mille,
    };
    match run_with(&ops, &queue, None, Some(faults)).await {
        Ok(stats) => {
            println!(
                "SIMULATION faults seed={seed} ops={count} per_mille={per_mille} {stats:?} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            assert!(
                stats.faults.values().sum::<usize>() > 0,
                "no fault was injected"
            );
            assert!(
                crash_per_mille == 0 || stats.faults.get("crash").is_some_and(|n| *n > 0),
                "no crash was injected"
            );
        }
        Err(d) => panic!("seed {seed} under faults ({per_mille} per mille) diverged at {d}"),
    }
}
