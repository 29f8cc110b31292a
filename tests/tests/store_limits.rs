//! DynamoDB's request limits hold for reads of any size.

use bonus_dynamodb::to_item;
use integration_tests::{TestEnv, CONFIG};

#[tokio::test]
async fn a_read_of_more_than_100_keys_is_split_into_requests_of_100() {
    let env = TestEnv::with_config(CONFIG).await;
    let keys: Vec<(String, String)> = (0..250)
        .map(|i| ("LIMITS#test".to_string(), format!("ITEM#{i:04}")))
        .collect();
    for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 5 != 0) {
        let item = to_item(k.clone(), "test", &serde_json::json!({ "n": i })).unwrap();
        env.store
            .client
            .put_item()
            .table_name(&env.store.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    env.requests.reset();
    let found = env.store.batch_get(&keys).await.unwrap();
    // 200 of the 250 exist; every one is found, in three requests.
    assert_eq!(found.len(), 200);
    assert!(keys
        .iter()
        .enumerate()
        .all(|(i, k)| found.contains_key(k) == (i % 5 != 0)));
    assert_eq!(
        env.requests.snapshot().get("BatchGetItem").copied(),
        Some(3)
    );
}
