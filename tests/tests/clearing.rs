//! Clearing counters on the embedded DynamoDB: deltas added in transactions from many
//! members at once sum exactly, per partner, over the shards.

use bonus_domain::clearing::PartnerCounters;
use bonus_dynamodb::clearing::CounterDelta;
use integration_tests::TestEnv;

fn delta(partner: &str, issued: i64, at: &[(&str, i64)]) -> CounterDelta {
    CounterDelta {
        programme_id: "velo".into(),
        month: "2026-11".into(),
        partner_id: partner.into(),
        counters: PartnerCounters {
            issued,
            reversed: 1,
            expired: 2,
            redeemed_at: at.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            transferred_out: 3,
            transferred_in: 3,
            ..PartnerCounters::default()
        },
    }
}

#[tokio::test]
async fn counters_added_concurrently_by_many_members_sum_exactly_per_partner() {
    let env = TestEnv::new().await;
    let store = &env.store;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let member = format!("M-{i}");
            let items = vec![
                store
                    .counter_update(&delta("shop", 100, &[("shop", 10), ("cafe", 5)]), &member)
                    .unwrap(),
                store
                    .counter_update(&delta("cafe", 7, &[("shop", 3)]), &member)
                    .unwrap(),
            ];
            let mut retry = store.retry();
            while let Some(pause) = retry.next() {
                bonus_dynamodb::retry::pause(pause).await;
                let out = store.transact(items.clone()).await.unwrap();
                if out == bonus_dynamodb::TxOutcome::Committed {
                    return;
                }
            }
            panic!("not committed");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let shop = store
        .partner_counters("velo", "2026-11", "shop")
        .await
        .unwrap();
    assert_eq!((shop.issued, shop.reversed, shop.expired), (4000, 40, 80));
    assert_eq!((shop.transferred_out, shop.transferred_in), (120, 120));
    assert_eq!(
        shop.redeemed_at.into_iter().collect::<Vec<_>>(),
        vec![("cafe".to_string(), 200), ("shop".to_string(), 400)]
    );
    let cafe = store
        .partner_counters("velo", "2026-11", "cafe")
        .await
        .unwrap();
    assert_eq!(
        (cafe.issued, cafe.redeemed_at.get("shop").copied()),
        (280, Some(120))
    );
    // Another month, another partner: nothing.
    let none = store
        .partner_counters("velo", "2026-10", "shop")
        .await
        .unwrap();
    assert_eq!(none, Default::default());
}
