//! The local stack as a user runs it: the dev server over real HTTP, a file-backed database
//! that survives a restart, `bonus apply` run twice, and the table in template.yaml.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bonus_domain::clock::SystemClock;
use bonus_dynamodb::{keys, schema, Store};
use bonus_lambda::app::Ctx;
use bonus_local_stack::dynamo::LocalDynamo;
use bonus_ops::{apply, dev, webhook};
use integration_tests::{order_paid, API_KEY, CONFIG, SECRET};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bonus-test-{name}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// A fresh in-memory database with the table and nothing else.
async fn empty_store() -> (LocalDynamo, Store) {
    let db = LocalDynamo::start_memory().unwrap();
    let store = Store::local(&db.endpoint, "bonus");
    schema::ensure_table(&store.client, &store.table)
        .await
        .unwrap();
    (db, store)
}

async fn seeded(db: &LocalDynamo) -> Store {
    let store = Store::local(&db.endpoint, "bonus");
    schema::ensure_table(&store.client, &store.table)
        .await
        .unwrap();
    apply::apply(&store, &apply::plan_file(CONFIG).unwrap())
        .await
        .unwrap();
    store
}

fn order_now(order_id: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&order_paid(
        order_id,
        Some("M-1"),
        &[("HELMET", 2, "49.95")],
    ))
    .unwrap();
    v["occurred_at"] = chrono::Utc::now().to_rfc3339().into();
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_server_serves_the_api_over_http_and_the_data_survives_a_restart() {
    let dir = temp_dir("dev");
    let file = dir.join("dynamodb.sqlite");
    let order = order_now("H-1");
    {
        let db = LocalDynamo::start_file(&file).unwrap();
        let store = seeded(&db).await;
        let ctx = Arc::new(Ctx::new(
            store,
            Arc::new(SystemClock),
            Duration::from_secs(2),
        ));
        let (listener, addr) = dev::bind(0).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(dev::serve(ctx, listener, async {
            let _ = stopped.await;
        }));
        let base = format!("http://{addr}");

        let sent = webhook::send(
            &format!("{base}/v1/partners/shop/webhooks/orders"),
            webhook::Platform::Standard,
            SECRET,
            "",
            order.clone().into_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(sent.status, 200, "{}", sent.body);
        let answer: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
        assert_eq!(answer["points"], 99);

        let forged = webhook::send(
            &format!("{base}/v1/partners/shop/webhooks/orders"),
            webhook::Platform::Standard,
            "whsec_d3Jvbmc=",
            "",
            order.clone().into_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(forged.status, 401);

        let balance: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/v1/members/M-1/balance"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (balance["pending"].as_i64(), balance["available"].as_i64()),
            (Some(99), Some(0))
        );

        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
    // Restart on the same file: the points are still there, and the replay still replays.
    let db = LocalDynamo::start_file(&file).unwrap();
    let store = Store::local(&db.endpoint, "bonus");
    assert!(
        !schema::ensure_table(&store.client, &store.table)
            .await
            .unwrap(),
        "table must survive"
    );
    let account = store.get_account("velo", "M-1").await.unwrap().unwrap();
    let view = account.view(
        &store.get_programme("velo").await.unwrap().unwrap(),
        chrono::Utc::now(),
    );
    assert_eq!((view.pending, view.total), (99, 99));
    assert_eq!(store.lots("velo", "M-1").await.unwrap().len(), 1);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn apply_is_idempotent_and_an_invalid_file_changes_nothing() {
    let (_db, store) = empty_store().await;
    let plan = apply::plan_file(CONFIG).unwrap();
    let first = apply::apply(&store, &plan).await.unwrap();
    assert_eq!(
        (
            first.programmes,
            first.partners,
            first.api_keys,
            first.members_enrolled
        ),
        (2, 2, 2, 3)
    );
    let second = apply::apply(&store, &plan).await.unwrap();
    assert_eq!((second.members_enrolled, second.members_existing), (0, 3));
    let account = store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(account.version, 0);

    let bad = CONFIG
        .replace("currency: EUR", "currency: XYZ")
        .replace("id: M-2", "id: M-9\n    programme: velo\n  - id: M-2");
    let errors = apply::plan_file(&bad).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("programmes[0].currency")),
        "{errors:?}"
    );
    // Nothing of the bad file was written (plan_file refuses before any write).
    assert!(store.get_account("velo", "M-9").await.unwrap().is_none());
}

#[tokio::test]
async fn dry_run_shows_what_would_change_and_writes_nothing() {
    let (_db, store) = empty_store().await;
    let plan = apply::plan_file(CONFIG).unwrap();
    let before = apply::diff(&store, &plan).await.unwrap();
    assert!(before.iter().all(|l| l.starts_with("create")), "{before:?}");
    assert_eq!(before.len(), 2 + 2 + 2 + 3);
    assert!(
        store.get_programme("velo").await.unwrap().is_none(),
        "a dry run writes nothing"
    );

    apply::apply(&store, &plan).await.unwrap();
    let same = apply::diff(&store, &plan).await.unwrap();
    assert!(same.iter().all(|l| l.starts_with("unchanged")), "{same:?}");

    let changed = apply::plan_file(&CONFIG.replace(
        "name: Other
",
        "name: Other renamed
",
    ))
    .unwrap();
    let lines = apply::diff(&store, &changed).await.unwrap();
    assert!(
        lines.contains(&"update    programme other".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"unchanged programme velo".to_string()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_table_in_template_yaml_is_the_table_the_code_creates() {
    let template: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap(),
    )
    .unwrap();
    let props = &template["Resources"]["Table"]["Properties"];
    let key_names = |ks: &serde_yaml::Value| -> Vec<String> {
        ks.as_sequence()
            .unwrap()
            .iter()
            .map(|k| k["AttributeName"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(key_names(&props["KeySchema"]), vec![keys::PK, keys::SK]);
    let gsi = &props["GlobalSecondaryIndexes"][0];
    assert_eq!(gsi["IndexName"].as_str(), Some(keys::GSI1));
    assert_eq!(
        key_names(&gsi["KeySchema"]),
        vec![keys::GSI1PK, keys::GSI1SK]
    );
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(schema::TTL_ATTRIBUTE)
    );

    let (_db, store) = empty_store().await;
    let table = store
        .client
        .describe_table()
        .table_name("bonus")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let created: Vec<String> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_string())
        .collect();
    assert_eq!(created, vec![keys::PK, keys::SK]);
    let indexes: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name().map(str::to_string))
        .collect();
    assert_eq!(indexes, vec![keys::GSI1]);
}
