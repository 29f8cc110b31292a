//! Campaigns through signed webhooks: cost-price bonuses, weekdays in the partner's time
//! zone, and a budget that is never overspent under concurrent orders.

use futures::future::join_all;
use http::StatusCode;
use integration_tests::{TestEnv, CONFIG};
use serde_json::{json, Value};

/// The test configuration plus 64 members, a shop in Amsterdam time, and a Mon-Fri campaign
/// paying 1.3% of cost price on HELMET from a 150,000-point budget.
fn config() -> String {
    let mut c = CONFIG.replace(
        "    name: Shop\n",
        "    name: Shop\n    time_zone: Europe/Amsterdam\n",
    );
    for i in 0..64 {
        c.push_str(&format!("  - id: C-{i}\n    programme: velo\n"));
    }
    c.push_str(
        r#"campaigns:
  - id: helmets
    partner: shop
    name: Helmets, 1.3% of cost price
    skus: [HELMET]
    starts_on: 2026-11-01
    ends_on: 2026-11-30
    weekdays: [mon, tue, wed, thu, fri]
    rule: {kind: cost_percent, percent: "1.3"}
    budget: 150000
    budget_shards: 4
"#,
    );
    c
}

fn helmet_order(order_id: &str, member: &str, quantity: i64, occurred_at: &str) -> String {
    json!({
        "type": "order.paid", "order_id": order_id, "member_id": member,
        "occurred_at": occurred_at, "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "HELMET", "quantity": quantity, "unit_price": "150.00", "cost_price": "100.00"}]
    })
    .to_string()
}

fn campaign_points(answer: &Value) -> i64 {
    answer["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["campaigns"].as_array().cloned().unwrap_or_default())
        .map(|c| c["points"].as_i64().unwrap_or(0))
        .sum()
}

async fn budget(env: &TestEnv) -> bonus_domain::budget::BudgetStatus {
    let c = env
        .store
        .get_campaign("shop", "helmets")
        .await
        .unwrap()
        .unwrap();
    env.store.budget_status(&c).await.unwrap()
}

#[tokio::test]
async fn cost_price_100_at_1_3_percent_earns_130_bonus_points_per_unit() {
    let env = TestEnv::with_config(&config()).await;
    let (status, b) = env
        .order(&helmet_order("H-1", "M-1", 2, "2026-11-23T11:00:00Z"))
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let line = &b["lines"][0];
    assert_eq!(line["campaigns"][0]["campaign_id"], "helmets");
    assert_eq!(
        (
            line["campaigns"][0]["exact"].as_str(),
            line["campaigns"][0]["points"].as_i64()
        ),
        (Some("260"), Some(260))
    );
    assert_eq!(
        (
            line["base_points"].as_i64(),
            line["points"].as_i64(),
            b["points"].as_i64()
        ),
        (Some(300), Some(560), Some(560))
    );
    let status = budget(&env).await;
    assert_eq!((status.spent, status.remaining), (260, 149_740));
    let record = env
        .store
        .get_order_record("shop", "H-1", "order.paid")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.campaign_points.get("helmets"), Some(&260));
}

#[tokio::test]
async fn a_saturday_in_amsterdam_earns_no_mon_fri_bonus_even_while_it_is_friday_in_utc() {
    let env = TestEnv::with_config(&config()).await;
    // Friday 20 Nov 2026, 23:30 UTC = Saturday 00:30 in Amsterdam.
    let (_, saturday) = env
        .order(&helmet_order("S-1", "M-1", 1, "2026-11-20T23:30:00Z"))
        .await;
    assert_eq!(
        (campaign_points(&saturday), saturday["points"].as_i64()),
        (0, Some(150))
    );
    assert!(saturday["lines"][0]["campaigns"]
        .as_array()
        .unwrap()
        .is_empty());
    // Friday 22:59 UTC = Friday 23:59 in Amsterdam: the bonus applies.
    let (_, friday) = env
        .order(&helmet_order("S-2", "M-1", 1, "2026-11-20T22:59:00Z"))
        .await;
    assert_eq!(
        (campaign_points(&friday), friday["points"].as_i64()),
        (130, Some(280))
    );
    // Outside the date window: nothing.
    let (_, december) = env
        .order(
            &helmet_order("S-3", "M-1", 1, "2026-11-23T11:00:00Z").replace("HELMET\"", "BOOTS\""),
        )
        .await;
    assert_eq!(campaign_points(&december), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_orders_never_overspend_a_150000_point_budget() {
    let env = TestEnv::with_config(&config()).await;
    // Each order would earn 20 x 130 = 2,600 bonus points: 64 x 2,600 = 166,400 > 150,000.
    let bodies: Vec<String> = (0..64)
        .map(|i| {
            helmet_order(
                &format!("B-{i}"),
                &format!("C-{i}"),
                20,
                "2026-11-23T11:00:00Z",
            )
        })
        .collect();
    let answers = join_all(bodies.iter().map(|b| env.order(b))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert!(campaign_points(answer) <= 2_600);
        assert_eq!(answer["lines"][0]["base_points"], 3_000);
    }
    let awarded: i64 = answers.iter().map(|(_, a)| campaign_points(a)).sum();
    assert_eq!(awarded, 150_000, "exactly the budget, never more");
    let status = budget(&env).await;
    assert_eq!((status.spent, status.remaining), (150_000, 0));
    assert!(status
        .shards
        .iter()
        .all(|s| s.remaining == 0 && s.spent + s.remaining == 37_500));
    // The members' balances hold exactly what the answers said.
    let mut total = 0;
    for i in 0..64 {
        total += env
            .store
            .get_account("velo", &format!("C-{i}"))
            .await
            .unwrap()
            .unwrap()
            .lifetime_earned;
    }
    assert_eq!(total, 64 * 3_000 + 150_000);
    // An exhausted campaign pays nothing more.
    let (_, late) = env
        .order(&helmet_order("B-late", "M-1", 1, "2026-11-23T11:00:00Z"))
        .await;
    assert_eq!(campaign_points(&late), 0);
    assert_eq!(late["lines"][0]["campaigns"][0]["budget_exhausted"], true);
}

#[tokio::test]
async fn budgets_can_be_topped_up_but_never_shrunk_and_a_refused_file_changes_nothing() {
    let env = TestEnv::with_config(&config()).await;
    let topped = config().replace("budget: 150000", "budget: 200000");
    let s = bonus_ops::apply::apply(&env.store, &bonus_ops::apply::plan_file(&topped).unwrap())
        .await
        .unwrap();
    assert_eq!(
        s.campaigns,
        vec!["campaign helmets topped up by 50000 points"]
    );
    assert_eq!(budget(&env).await.remaining, 200_000);
    let shrunk = topped
        .replace("budget: 200000", "budget: 100000")
        .replace("name: Velo\n", "name: Velo renamed\n");
    let err = bonus_ops::apply::apply(&env.store, &bonus_ops::apply::plan_file(&shrunk).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("budgets only grow"), "{err}");
    assert_eq!(
        env.store.get_programme("velo").await.unwrap().unwrap().name,
        "Velo",
        "nothing written"
    );
    assert_eq!(budget(&env).await.remaining, 200_000);
}
