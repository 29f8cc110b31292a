#![recursion_limit = "256"] // the handlers nest deeply; async layouts need the room
//! Metrics (CloudWatch Embedded Metric Format) from the real handlers: what an invocation
//! counted is flushed as EMF lines. One test in this binary: the metrics sink is global.

use bonus_domain::events::EntryKind;
use http::StatusCode;
use integration_tests::{order_paid, TestEnv, OTHER_SECRET};
use serde_json::Value;

/// The value of `metric` in the flushed document whose dimensions are exactly `dims`.
fn metric(docs: &[Value], metric: &str, dims: &[(&str, &str)]) -> Option<i64> {
    docs.iter()
        .find(|d| {
            let declared = &d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
            let n = declared.as_array().map_or(0, Vec::len);
            n == dims.len() + 1 && dims.iter().all(|(k, v)| d[*k] == *v) && d.get(metric).is_some()
        })
        .and_then(|d| d[metric].as_i64())
}

#[tokio::test]
async fn a_webhook_its_replay_a_refund_and_a_forged_call_are_counted_once_each() {
    bonus_metrics::capture();
    let env = TestEnv::new().await;
    let order = order_paid("A-1", Some("M-1"), &[("HELMET", 2, "49.95")]);
    let (status, body) = env.order(&order).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["points"], 99);
    // The same delivery again: a replay, no new points.
    assert_eq!(env.order(&order).await.0, StatusCode::OK);
    let refund = serde_json::json!({
        "type": "order.refunded", "order_id": "A-1", "refund_id": "R-1",
        "occurred_at": "2026-11-23T11:30:00Z", "currency": "EUR",
        "lines": [{"line_id": "1", "quantity": 1}]
    })
    .to_string();
    assert_eq!(env.order(&refund).await.0, StatusCode::OK);
    // A forged signature: 401, counted as rejected and as a client error.
    let headers = env.signed(OTHER_SECRET, "forged-1", &order, 0);
    let (status, body) = env
        .call(
            "POST",
            "/v1/partners/shop/webhooks/orders",
            &headers,
            order.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");

    bonus_metrics::flush();
    let docs: Vec<Value> = bonus_metrics::captured()
        .iter()
        .map(|l| serde_json::from_str(l).expect("an EMF line is JSON"))
        .collect();
    let reversed: i64 = env
        .store
        .entries("velo", "M-1")
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == EntryKind::Reversal)
        .map(|e| -e.points)
        .sum();
    assert!(reversed > 0);

    // The order and the refund each commit once; the replay and the forgery are what they are.
    // (The in-process dispatch counts webhook outcomes through the order-webhook handler.)
    assert_eq!(metric(&docs, "Webhooks", &[("Outcome", "booked")]), Some(2));
    assert_eq!(
        metric(&docs, "Webhooks", &[("Outcome", "duplicate")]),
        Some(1)
    );
    assert_eq!(
        metric(&docs, "Webhooks", &[("Outcome", "rejected")]),
        Some(1)
    );
    assert_eq!(
        metric(&docs, "PointsIssued", &[("Programme", "velo")]),
        Some(99)
    );
    assert_eq!(
        metric(&docs, "PointsReversed", &[("Programme", "velo")]),
        Some(reversed)
    );
    assert_eq!(
        metric(
            &docs,
            "ClientErrors",
            &[("Code", "unauthorized"), ("Status", "401")]
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &docs,
            "ServerErrors",
            &[("Code", "internal"), ("Status", "500")]
        ),
        None
    );
    // Each line is a whole EMF document: namespace, the Function dimension, a Count unit.
    for d in &docs {
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "test");
        assert_eq!(d["Function"], "test");
        assert!(d["_aws"]["Timestamp"].as_i64().unwrap_or(0) > 0);
    }
    // Nothing personal: no e-mail address of the member's (m1@example.com) in any line.
    assert!(docs.iter().all(|d| !d.to_string().contains('@')));

    // A flush after nothing was counted writes nothing.
    bonus_metrics::flush();
    assert!(bonus_metrics::captured().is_empty());
}
