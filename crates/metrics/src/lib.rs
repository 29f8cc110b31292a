//! Business and health metrics as CloudWatch Embedded Metric Format (EMF) log lines: no
//! PutMetricData call on any path. A function counts as it works ([`count`]); at the end of
//! each invocation [`flush`] writes the sums, one JSON line per set of dimension values, to
//! stdout, where CloudWatch Logs turns them into metrics. Dimension values are ids and codes,
//! never personal data.
//!
//! Off unless [`enable`]d (the Lambda wiring does, with the namespace from
//! `METRICS_NAMESPACE`); tests [`capture`] the lines instead of printing them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

/// The metric names, one place: template.yaml's dashboard and alarms use the same strings.
pub mod name {
    /// Order webhooks and behaviour events, by `Outcome` (booked, duplicate, deferred, ...).
    pub const WEBHOOKS: &str = "Webhooks";
    /// Points credited (pending) by orders, events and rewards, by `Programme`.
    pub const POINTS_ISSUED: &str = "PointsIssued";
    /// Points spent (captured holds, gift-shop claims), by `Programme`.
    pub const POINTS_REDEEMED: &str = "PointsRedeemed";
    /// Points that expired unspent (nightly), by `Programme`.
    pub const POINTS_EXPIRED: &str = "PointsExpired";
    /// Points taken back by refunds and cancellations, by `Programme`.
    pub const POINTS_REVERSED: &str = "PointsReversed";
    /// Points released from pending to available (nightly), by `Programme`.
    pub const POINTS_RELEASED: &str = "PointsReleased";
    /// A transaction cancelled by a conflicting one (tried again).
    pub const CONFLICTS: &str = "TransactionConflicts";
    /// A request throttled by DynamoDB (tried again).
    pub const THROTTLES: &str = "Throttles";
    /// A wait before another try of a read-decide-write cycle.
    pub const RETRIES: &str = "Retries";
    /// Answers with a 4xx status, by `Code` (the error code of the JSON body) and `Status`.
    pub const CLIENT_ERRORS: &str = "ClientErrors";
    /// Answers with a 5xx status, by `Code`.
    pub const SERVER_ERRORS: &str = "ServerErrors";
    /// Member messages sent, by `Channel` (email, sms).
    pub const MESSAGES_SENT: &str = "MessagesSent";
    /// Member messages that failed (will be retried or dead-lettered), by `Channel`.
    pub const MESSAGES_FAILED: &str = "MessagesFailed";
    /// Offers not sent to a member because their monthly marketing cap was reached.
    pub const OFFERS_CAPPED: &str = "OffersCapped";
    /// Nightly: accounts the workers processed.
    pub const NIGHTLY_ACCOUNTS: &str = "NightlyAccounts";
    /// Nightly: account tasks that failed (the message is retried, then dead-lettered).
    pub const NIGHTLY_FAILURES: &str = "NightlyFailures";
    /// Clearing: partner statements written when a month closes, by `Programme`.
    pub const CLEARING_STATEMENTS: &str = "ClearingStatements";
    /// Clearing: points redeemed at a partner other than their issuer in the closed month (what
    /// money moves for), by `Programme`.
    pub const CLEARING_POINTS: &str = "ClearingPoints";
}

/// Counters of one invocation: (metric, dimensions) -> sum.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters(BTreeMap<Vec<(&'static str, String)>, BTreeMap<&'static str, i64>>);

impl Counters {
    pub fn add(&mut self, metric: &'static str, dimensions: &[(&'static str, &str)], value: i64) {
        let mut dims: Vec<(&'static str, String)> = dimensions
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        dims.sort();
        *self.0.entry(dims).or_default().entry(metric).or_default() += value;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One EMF document per set of dimension values, at `timestamp_ms`.
    pub fn to_emf(&self, namespace: &str, function: &str, timestamp_ms: i64) -> Vec<String> {
        self.0
            .iter()
            .map(|(dims, metrics)| {
                let mut doc = serde_json::Map::new();
                let mut keys: Vec<&str> = vec!["Function"];
                keys.extend(dims.iter().map(|(k, _)| *k));
                let definitions: Vec<serde_json::Value> = metrics
                    .keys()
                    .map(|m| serde_json::json!({"Name": m, "Unit": "Count"}))
                    .collect();
                doc.insert(
                    "_aws".into(),
                    serde_json::json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [keys],
                            "Metrics": definitions,
                        }]
                    }),
                );
                doc.insert("Function".into(), function.into());
                for (k, v) in dims {
                    doc.insert((*k).into(), v.clone().into());
                }
                for (m, v) in metrics {
                    doc.insert((*m).into(), (*v).into());
                }
                serde_json::Value::Object(doc).to_string()
            })
            .collect()
    }
}

enum Sink {
    Off,
    Stdout { namespace: String, function: String },
    Capture(Vec<String>),
}

struct State {
    sink: Sink,
    counters: Counters,
}

static STATE: Mutex<State> = Mutex::new(State {
    sink: Sink::Off,
    counters: Counters(BTreeMap::new()),
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Write metrics to stdout from now on, under `namespace`, with the `Function` dimension.
pub fn enable(namespace: &str, function: &str) {
    state().sink = Sink::Stdout {
        namespace: namespace.into(),
        function: function.into(),
    };
}

/// On Lambda: enabled when `METRICS_NAMESPACE` is set (template.yaml sets it for every
/// function), with the function's name as `Function`.
pub fn enable_from_env() {
    let namespace = std::env::var("METRICS_NAMESPACE").unwrap_or_default();
    if namespace.trim().is_empty() {
        return;
    }
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    enable(&namespace, &function);
}

/// Keep flushed lines in memory instead of printing them (tests): see [`captured`].
pub fn capture() {
    let mut s = state();
    s.sink = Sink::Capture(Vec::new());
    s.counters = Counters::default();
}

/// The lines flushed since [`capture`], taken.
pub fn captured() -> Vec<String> {
    match &mut state().sink {
        Sink::Capture(lines) => std::mem::take(lines),
        _ => Vec::new(),
    }
}

/// Add `value` to a counter of this invocation. Free when metrics are off.
pub fn count(metric: &'static str, dimensions: &[(&'static str, &str)], value: i64) {
    let mut s = state();
    if matches!(s.sink, Sink::Off) {
        return;
    }
    s.counters.add(metric, dimensions, value);
}

/// Write what this invocation counted (at the end of each invocation).
pub fn flush() {
    let mut s = state();
    if s.counters.is_empty() {
        return;
    }
    let counters = std::mem::take(&mut s.counters);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    match &mut s.sink {
        Sink::Off => {}
        Sink::Stdout {
            namespace,
            function,
        } => {
            // One write per line: never interleaved with a log line.
            let mut out = std::io::stdout().lock();
            for line in counters.to_emf(namespace, function, now) {
                let _ = out.write_all(format!("{line}\n").as_bytes());
            }
            let _ = out.flush();
        }
        Sink::Capture(lines) => lines.extend(counters.to_emf("test", "test", now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_per_dimension_values_and_become_one_emf_document_each() {
        let mut c = Counters::default();
        c.add(name::WEBHOOKS, &[("Outcome", "booked")], 1);
        c.add(name::WEBHOOKS, &[("Outcome", "booked")], 1);
        c.add(name::WEBHOOKS, &[("Outcome", "duplicate")], 1);
        c.add(name::POINTS_ISSUED, &[("Programme", "velo")], 120);
        c.add(name::POINTS_REVERSED, &[("Programme", "velo")], 20);
        let lines = c.to_emf("bonus-dev", "order-webhook", 1_700_000_000_000);
        let docs: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 3);
        assert_eq!(
            docs[0],
            serde_json::json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "bonus-dev",
                        "Dimensions": [["Function", "Outcome"]],
                        "Metrics": [{"Name": "Webhooks", "Unit": "Count"}]
                    }]
                },
                "Function": "order-webhook",
                "Outcome": "booked",
                "Webhooks": 2
            })
        );
        assert_eq!(docs[1]["Outcome"], "duplicate");
        assert_eq!(docs[1]["Webhooks"], 1);
        assert_eq!(docs[2]["Programme"], "velo");
        assert_eq!(docs[2]["PointsIssued"], 120);
        assert_eq!(docs[2]["PointsReversed"], 20);
        assert_eq!(
            docs[2]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            serde_json::json!([
                {"Name": "PointsIssued", "Unit": "Count"},
                {"Name": "PointsReversed", "Unit": "Count"}
            ])
        );
    }

    #[test]
    fn dimension_order_does_not_split_a_counter() {
        let mut c = Counters::default();
        c.add(
            name::CLIENT_ERRORS,
            &[("Code", "unauthorized"), ("Status", "401")],
            1,
        );
        c.add(
            name::CLIENT_ERRORS,
            &[("Status", "401"), ("Code", "unauthorized")],
            1,
        );
        let lines = c.to_emf("n", "f", 0);
        assert_eq!(lines.len(), 1);
        let doc: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["ClientErrors"], 2);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function", "Code", "Status"]])
        );
    }
}
