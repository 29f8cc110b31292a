//! Local data outlives upgrades: items in an earlier format are upgraded in place.

use bonus_dynamodb::account_item;
use integration_tests::{TestEnv, CONFIG};

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
    env.store
        .client
        .put_item()
        .table_name(&env.store.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    // Such an account refuses every write (its invariant fails): the next order is a 500.
    assert_eq!(env.order(&order("A-3", "5.00")).await.0, 500);

    let m = bonus_ops::migrate::migrate(&env.store).await.unwrap();
    assert_eq!((m.upgraded, m.left), (1, 0), "{m:?}");
    let migrated = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(migrated.expiring_by_issuer, current.expiring_by_issuer);
    assert_eq!(migrated.version, current.version + 1);
    migrated.check().unwrap();
    // Again: nothing to do.
    let again = bonus_ops::migrate::migrate(&env.store).await.unwrap();
    assert_eq!((again.upgraded, again.left), (0, 0));
    // And the member earns again: 10 + 25 + 5.
    assert_eq!(env.order(&order("A-3", "5.00")).await.0, 200);
    let after = env.store.get_account("velo", "M-1").await.unwrap().unwrap();
    assert_eq!(after.pending.values().sum::<i64>(), 40);
    after.check().unwrap();
}
