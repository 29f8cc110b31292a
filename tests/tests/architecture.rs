//! The dependency rules of docs/architecture.md, read from `cargo metadata`, so that the
//! compiler's graph (not a comment) keeps them:
//! - the domain crate reaches no AWS SDK, Lambda, tokio or HTTP crate, by any normal edge;
//! - no function crate depends on another function crate;
//! - nothing depends on the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Crates the pure domain must never reach (by name, or by prefix where the name ends in '-').
const FORBIDDEN_IN_DOMAIN: &[&str] = &[
    "aws-",
    "lambda_http",
    "lambda_runtime",
    "aws_lambda_events",
    "tokio",
    "http",
    "http-body",
    "axum",
    "hyper",
    "reqwest",
    "minijinja",
];

fn metadata() -> Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The resolved graph: package id -> (name, ids of its normal dependencies).
fn normal_graph(meta: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap().to_string();
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap().to_string())
                .collect();
            (id.clone(), (names[id.as_str()].to_string(), deps))
        })
        .collect()
}

fn reachable(graph: &BTreeMap<String, (String, Vec<String>)>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(id) = todo.pop() {
        for d in &graph[&id].1 {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen.iter().map(|id| graph[id].0.clone()).collect()
}

fn id_of(graph: &BTreeMap<String, (String, Vec<String>)>, name: &str) -> String {
    graph
        .iter()
        .find(|(_, (n, _))| n == name)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no package {name}"))
}

#[test]
fn the_domain_crate_reaches_no_aws_lambda_tokio_or_http_crate() {
    let graph = normal_graph(&metadata());
    let reached = reachable(&graph, &id_of(&graph, "bonus-domain"));
    let bad: Vec<&String> = reached
        .iter()
        .filter(|name| {
            FORBIDDEN_IN_DOMAIN
                .iter()
                .any(|f| match f.strip_suffix('-') {
                    Some(prefix) => name.starts_with(&format!("{prefix}-")),
                    None => name.as_str() == *f,
                })
        })
        .collect();
    assert!(bad.is_empty(), "bonus-domain reaches {bad:?}");
    // The rule itself can fail: the DynamoDB adapter does reach the SDK.
    let store = reachable(&graph, &id_of(&graph, "bonus-dynamodb"));
    assert!(store.contains("aws-sdk-dynamodb") && store.contains("tokio"));
}

#[test]
fn no_function_crate_depends_on_another_and_nothing_on_the_cli() {
    let meta = metadata();
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .unwrap();
    let functions_dir = root.join("functions");
    let members: Vec<&Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"].is_null())
        .collect();
    let is_function = |p: &Value| {
        std::path::Path::new(p["manifest_path"].as_str().unwrap())
            .canonicalize()
            .unwrap()
            .starts_with(&functions_dir)
    };
    let functions: BTreeSet<&str> = members
        .iter()
        .filter(|p| is_function(p))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(functions.len() >= 6, "functions found: {functions:?}");
    let mut wrong = Vec::new();
    for p in &members {
        let name = p["name"].as_str().unwrap();
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            if dep == "bonus-cli" {
                wrong.push(format!("{name} -> {dep} (nothing depends on the CLI)"));
            }
            if is_function(p) && functions.contains(dep) {
                wrong.push(format!("{name} -> {dep} (function on function)"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
