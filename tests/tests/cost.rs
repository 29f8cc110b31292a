//! What an operation costs in DynamoDB write units, from the items it really writes, sized by
//! DynamoDB's rules: the "before" figures of docs/cost.md (issue 16 lowers them).
//!
//! Item size: attribute names and values in UTF-8 bytes; a number is about one byte per two
//! significant digits plus one; a map or list 3 bytes plus 1 per element; booleans and nulls
//! 1 byte. A write costs one unit per started KB of the item; a transactional write two.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{order_paid, RecordedWrite, TestEnv, API_KEY, CONFIG};

// Measured once and asserted: a change to the write path changes them on purpose.
const HOLD_ITEMS: usize = 4;
const HOLD_UNITS: usize = 8;
const CAPTURE_ITEMS: usize = 7;
const CAPTURE_UNITS: usize = 14;

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches('-').replace('.', "");
            let significant = digits
                .trim_start_matches('0')
                .trim_end_matches('0')
                .len()
                .max(1);
            significant.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len() / 2 + 1).sum(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        _ => 0,
    }
}

fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// (items written, write units, bytes) of the recorded writes, sizing each item as stored now.
async fn units(env: &TestEnv, writes: &[RecordedWrite]) -> (usize, usize, usize) {
    let (mut items, mut units, mut bytes) = (0, 0, 0);
    for w in writes {
        let per_kb = if w.operation == "TransactWriteItems" {
            2
        } else {
            1
        };
        for (pk, sk) in &w.keys {
            let key = bonus_dynamodb::key_map(&(pk.clone(), sk.clone()));
            let stored = env
                .store
                .client
                .get_item()
                .table_name(&env.store.table)
                .set_key(Some(key))
                .send()
                .await
                .unwrap()
                .item
                .unwrap_or_default();
            let size = item_size(&stored).max(1);
            items += 1;
            bytes += size;
            units += per_kb * size.div_ceil(1024);
        }
    }
    (items, units, bytes)
}

/// Dollars per million operations at on-demand prices ($0.625 per million write units),
/// in integers: "12.500".
fn dollars_per_million(units: usize) -> String {
    let thousandths = units * 625;
    format!("{}.{:03}", thousandths / 1000, thousandths % 1000)
}

#[tokio::test]
async fn what_an_order_and_a_refund_cost_in_write_units_today() {
    let env = TestEnv::with_config(CONFIG).await;
    let order = order_paid(
        "A-1",
        Some("M-1"),
        &[("BIKE", 1, "60.00"), ("BELL", 2, "5.00")],
    );
    assert_eq!(env.order(&order).await.0.as_u16(), 200);
    let (items, order_units, bytes) = units(&env, &env.writes.take()).await;
    println!("FIGURE a 2-SKU order: {items} items, {bytes} bytes, {order_units} write units, ${} per million", dollars_per_million(order_units));
    // The order event with its answer, the order state, the lot, the account, the entry, the
    // outbox event, the clearing counter and outstanding shard, a sales aggregate per SKU.
    assert_eq!((items, order_units), (10, 20));

    let refund = serde_json::json!({
        "type": "order.refunded", "order_id": "A-1", "refund_id": "R-1",
        "occurred_at": "2026-11-23T11:30:00Z", "currency": "EUR",
        "lines": [{"line_id": "2", "quantity": 1}]
    })
    .to_string();
    assert_eq!(env.order(&refund).await.0.as_u16(), 200);
    let (items, refund_units, bytes) = units(&env, &env.writes.take()).await;
    println!("FIGURE a refund of one line: {items} items, {bytes} bytes, {refund_units} write units, ${} per million", dollars_per_million(refund_units));
    // The refund's record, the order state, the lot, the account, the entry, the outbox event
    // and the clearing counter and outstanding shard.
    assert_eq!((items, refund_units), (8, 16));
}

#[tokio::test]
async fn what_a_hold_and_its_capture_cost_in_write_units() {
    let config = CONFIG.replace(
        "        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617\n",
        "        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617\n        scopes: [read_balance, hold]\n",
    );
    let env = TestEnv::with_config(&config).await;
    let order = order_paid("A-1", Some("M-1"), &[("BIKE", 1, "1200.00")]);
    assert_eq!(env.order(&order).await.0.as_u16(), 200);
    // Past the return window: the points are available.
    env.clock.advance(chrono::Duration::days(15));
    env.writes.take();
    let auth = [("authorization", format!("Bearer {API_KEY}"))];
    let (status, hold) = env
        .call(
            "POST",
            "/v1/members/M-1/holds",
            &auth,
            serde_json::json!({"points": 50, "reference": "till-1"}).to_string(),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{hold}");
    let (items, hold_units, bytes) = units(&env, &env.writes.take()).await;
    println!(
        "FIGURE a hold: {items} items, {bytes} bytes, {hold_units} write units, ${} per million",
        dollars_per_million(hold_units)
    );
    let capture = format!(
        "/v1/holds/{}/capture",
        hold["hold_id"].as_str().unwrap_or("")
    );
    let (status, done) = env
        .call(
            "POST",
            &capture,
            &auth,
            serde_json::json!({"points": 50}).to_string(),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{done}");
    let (c_items, capture_units, c_bytes) = units(&env, &env.writes.take()).await;
    println!("FIGURE its capture: {c_items} items, {c_bytes} bytes, {capture_units} write units, ${} per million", dollars_per_million(capture_units));
    assert_eq!(
        (items, hold_units, c_items, capture_units),
        (HOLD_ITEMS, HOLD_UNITS, CAPTURE_ITEMS, CAPTURE_UNITS)
    );
}
