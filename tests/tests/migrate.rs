//! Local data outlives upgrades: items in an earlier format are upgraded in place.

use aws_sdk_dynamodb::types::AttributeValue;
use bonus_domain::member::{hash_api_key, Scope};
use bonus_dynamodb::{account_item, keys, schema_of, to_item, SCHEMA_ATTRIBUTE, SCHEMA_VERSION};
use integration_tests::{TestEnv, CONFIG};

async fn put_raw(env: &TestEnv, item: bonus_dynamodb::Item) {
    env.store
        .client
        .put_item()
        .table_name(&env.store.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

async fn migrate(env: &TestEnv) -> bonus_ops::migrate::MigrateSummary {
    bonus_ops::migrate::migrate(&env.store, &|_| {})
        .await
        .unwrap()
}

fn order(id: &str, euros: &str) -> String {
    serde_json::json!({
        "type": "order.paid", "order_id": id, "member_id": "M-1",
        "occurred_at": "2026-11-20T10:00:00Z", "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "S", "quantity": 1, "unit_price": euros}]
    })
    .to_string()
}

#[tokio::test]
async fn an_account_written_before_the_issuer_split_is_migrated_and_works_again() {
    let env = TestEnv::with_config(CONFIG).await;
    for (id, euros) in [("A-1", "10.00"), ("A-2", "25.00")] {
        assert_eq!(env.order(&order(id, euros)).await.0, 200);
    }
    let current = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    // The account as a version before issue 8 wrote it: no per-issuer expiry split.
    let mut old = current.clone();
    old.expiring_by_issuer.clear();
    let mut item = account_item(&old).unwrap();
    item.remove("expiring_by_issuer");
    item.remove(SCHEMA_ATTRIBUTE);
    put_raw(&env, item).await;
    // Such an account refuses every write (its invariant fails): the next order is a 500.
    assert_eq!(env.order(&order("A-3", "5.00")).await.0, 500);

    let m = migrate(&env).await;
    assert_eq!((m.upgraded, m.left), (1, 0), "{m:?}");
    let migrated = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(migrated.expiring_by_issuer, current.expiring_by_issuer);
    assert_eq!(migrated.version, current.version + 1);
    migrated.check().unwrap();
    // Again: nothing to do.
    let again = migrate(&env).await;
    assert_eq!((again.upgraded, again.marked, again.left), (0, 0, 0));
    // And the member earns again: 10 + 25 + 5.
    assert_eq!(env.order(&order("A-3", "5.00")).await.0, 200);
    let after = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(after.pending.values().sum::<i64>(), 40);
    after.check().unwrap();
}

/// Schema 1 -> 2: a key's scopes were split, and orders no longer grant access.
#[tokio::test]
async fn items_of_schema_one_are_upgraded_once_and_everything_ends_current() {
    let env = TestEnv::with_config(CONFIG).await;
    assert_eq!(env.order(&order("A-1", "10.00")).await.0, 200);
    // Every item this version writes carries the current format.
    let fresh = migrate(&env).await;
    assert_eq!(
        (fresh.upgraded, fresh.marked, fresh.left),
        (0, 0, 0),
        "{fresh:?}"
    );

    // An `enrol` key as schema 1 stored it: `enrol` then also read profiles and erased.
    let legacy_key = "legacy-checkout-key-0001";
    let mut key = to_item(
        keys::api_key(&hash_api_key(legacy_key)),
        "api_key",
        &serde_json::json!({
            "partner_id": "shop", "label": "checkout", "created_at": "2026-01-01T00:00:00Z",
            "scopes": ["read_balance", "hold", "enrol"]
        }),
    )
    .unwrap();
    key.remove(SCHEMA_ATTRIBUTE);
    put_raw(&env, key).await;
    // An account as schema 1 left it after an order at another partner: that partner had
    // been added to `enrolled_with` (the profile says M-1 enrolled with the programme).
    let mut account = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    account.enrolled_with = vec!["somebody-else".into()];
    let mut item = account_item(&account).unwrap();
    item.remove(SCHEMA_ATTRIBUTE);
    put_raw(&env, item).await;
    // And a lot of schema 1: nothing to change but its version.
    let lots = env.store.lots("velo", "M-1").await.unwrap();
    let lot_key = keys::lot("velo", "M-1", &lots[0].lot_id);
    env.store
        .client
        .update_item()
        .table_name(&env.store.table)
        .set_key(Some(bonus_dynamodb::key_map(&lot_key)))
        .update_expression("REMOVE #s")
        .expression_attribute_names("#s", SCHEMA_ATTRIBUTE)
        .send()
        .await
        .unwrap();

    let m = migrate(&env).await;
    assert_eq!((m.upgraded, m.marked, m.left), (2, 1, 0), "{m:?}");
    let upgraded = env
        .store
        .get_api_key(&hash_api_key(legacy_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        upgraded.scopes,
        vec![
            Scope::ReadBalance,
            Scope::ReadProfile,
            Scope::Hold,
            Scope::Enrol,
            Scope::Erase
        ]
    );
    let restored = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(restored.enrolled_with, Vec::<String>::new());
    assert_eq!(restored.version, account.version + 1);
    // Every item is now current, and a second run does nothing.
    let scan = env
        .store
        .client
        .scan()
        .table_name(&env.store.table)
        .send()
        .await
        .unwrap();
    for item in scan.items.unwrap_or_default() {
        assert_eq!(schema_of(&item), SCHEMA_VERSION, "{:?}", item.get("PK"));
        assert!(matches!(
            item.get(SCHEMA_ATTRIBUTE),
            Some(AttributeValue::N(_))
        ));
    }
    let again = migrate(&env).await;
    assert_eq!((again.upgraded, again.marked, again.left), (0, 0, 0));
    // The member earns on.
    assert_eq!(env.order(&order("A-2", "5.00")).await.0, 200);
}
