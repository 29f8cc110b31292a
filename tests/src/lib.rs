//! Test harness: every test gets its own in-memory embedded DynamoDB on a random port, the
//! real `aws-sdk-dynamodb` client, the real handlers, and a clock it controls.
//!
//! Two SDK interceptors make the invisible visible:
//! - [`RequestCounter`] counts the DynamoDB requests that go on the wire, per operation;
//! - [`ConflictInjector`] makes the next N TransactWriteItems fail with TransactionConflict
//!   (which the emulator never raises) without letting them reach the database.
//! - [`FaultInjector`], when started, faults a share of all requests from a seed: throttling,
//!   500s, cancelled transactions and ambiguous commits (written, answer lost);
//! - [`ConflictRule`], when switched on, applies DynamoDB's own rule: a transaction that names
//!   an item of another transaction still in flight is cancelled, and so is a single write on
//!   such an item (the emulator serialises everything and never does this).

pub mod simulation;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use bonus_domain::clock::ManualClock;
use bonus_domain::random::SeededRandom;
use bonus_dynamodb::{schema, Store};
use bonus_lambda::app::Ctx;
use bonus_local_stack::dynamo::LocalDynamo;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::Value;

/// The seed of every test context's ids, codes and retry jitter.
pub const TEST_SEED: u64 = 14;

pub const SECRET: &str = "whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5";
pub const OTHER_SECRET: &str = "whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==";
pub const API_KEY: &str = "bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617";
pub const OTHER_API_KEY: &str = "bk_4055253a26a81c31911b05f2cbd667fd6923a2af_b81e5d11";

/// The configuration every test starts from: a closed programme at 1 point per EUR with a
/// shop, and a second programme with its own shop; two members in the first.
pub const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: closed
    currency: EUR
    time_zone: Europe/Amsterdam
    product_groups: {cocktails: 10}
  - id: other
    name: Other
    kind: closed
    currency: EUR
partners:
  - id: shop
    programme: velo
    name: Shop
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
    api_keys:
      - label: widget
        key: bk_87b629bc43caab6595a4fad96bf0270621fb9100_d041b617
  - id: other-shop
    programme: other
    name: Other shop
    webhook_secrets: [whsec_b3RoZXItc2hvcC1zZWNyZXQtMDEyMzQ1Njc4OQ==]
    api_keys:
      - label: widget
        key: bk_4055253a26a81c31911b05f2cbd667fd6923a2af_b81e5d11
members:
  - id: M-1
    programme: velo
    email: m1@example.com
  - id: M-2
    programme: velo
  - id: X-1
    programme: other
"#;

/// The DynamoDB operation of the request in flight ("TransactWriteItems", ...).
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| m.name().to_string())
        .unwrap_or_default()
}

/// Counts the DynamoDB requests sent on the wire, per operation name.
#[derive(Debug, Default, Clone)]
pub struct RequestCounter(Arc<Mutex<HashMap<String, usize>>>);

impl RequestCounter {
    pub fn snapshot(&self) -> HashMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
    pub fn total(&self) -> usize {
        self.snapshot().values().sum()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(cfg);
        if let Ok(mut m) = self.0.lock() {
            *m.entry(op).or_default() += 1;
        }
        Ok(())
    }
}

/// Records the keys every write request names (TransactWriteItems, PutItem, UpdateItem,
/// DeleteItem), and whether it was transactional: what the cost model sizes.
#[derive(Debug, Default, Clone)]
pub struct WriteRecorder(Arc<Mutex<Vec<RecordedWrite>>>);

/// One write request: its operation and the (PK, SK) of each item it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedWrite {
    pub operation: String,
    pub keys: Vec<(String, String)>,
}

impl WriteRecorder {
    pub fn take(&self) -> Vec<RecordedWrite> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// The (PK, SK) of every item a write (or a TransactGetItems) request names.
fn keys_written(op: &str, body: &Value) -> Vec<(String, String)> {
    match op {
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        keys_in(&i["Put"]["Item"])
                            .or_else(|| keys_in(&i["Update"]["Key"]))
                            .or_else(|| keys_in(&i["Delete"]["Key"]))
                            .or_else(|| keys_in(&i["ConditionCheck"]["Key"]))
                            .or_else(|| keys_in(&i["Get"]["Key"]))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "PutItem" => keys_in(&body["Item"]).into_iter().collect(),
        _ => keys_in(&body["Key"]).into_iter().collect(),
    }
}

fn keys_in(value: &Value) -> Option<(String, String)> {
    Some((
        value["PK"]["S"].as_str()?.to_string(),
        value["SK"]["S"].as_str()?.to_string(),
    ))
}

impl Intercept for WriteRecorder {
    fn name(&self) -> &'static str {
        "WriteRecorder"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(cfg);
        if !matches!(
            op.as_str(),
            "TransactWriteItems" | "PutItem" | "UpdateItem" | "DeleteItem"
        ) {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(ctx.request().body().bytes().unwrap_or_default())
            .unwrap_or_default();
        let keys = keys_written(&op, &body);
        if let Ok(mut v) = self.0.lock() {
            v.push(RecordedWrite {
                operation: op,
                keys,
            });
        }
        Ok(())
    }
}

/// Makes the next `n` TransactWriteItems calls fail with a TransactionConflict cancellation.
/// The faulted request is turned into a harmless ListTables before it leaves, so the
/// database never sees the transaction.
#[derive(Debug, Default, Clone)]
pub struct ConflictInjector(Arc<AtomicUsize>, Arc<AtomicUsize>);

/// The error answer a faulted request gets instead of the database's (a 400 JSON body).
#[derive(Debug, Clone)]
struct Faulted(String);
impl Storable for Faulted {
    type Storer = StoreReplace<Self>;
}

impl ConflictInjector {
    pub fn inject(&self, n: usize) {
        self.1.store(0, Ordering::SeqCst);
        self.0.store(n, Ordering::SeqCst);
    }
    /// Let the next `skip` TransactWriteItems through, then fail `n`.
    pub fn inject_after(&self, skip: usize, n: usize) {
        self.1.store(skip, Ordering::SeqCst);
        self.0.store(n, Ordering::SeqCst);
    }
    pub fn remaining(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for ConflictInjector {
    fn name(&self) -> &'static str {
        "ConflictInjector"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(cfg);
        if op != "TransactWriteItems" {
            return Ok(());
        }
        if self
            .1
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(());
        }
        let took = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took {
            let items = transact_items(ctx);
            divert(ctx, cfg, cancelled(items, "injected conflict"));
        }
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        answer_faulted(ctx, cfg)
    }
}

/// A TransactionCanceledException body with one TransactionConflict reason per item.
fn cancelled(items: usize, why: &str) -> String {
    let reasons: Vec<Value> = (0..items)
        .map(|_| serde_json::json!({"Code": "TransactionConflict"}))
        .collect();
    serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled ({why})"),
        "CancellationReasons": reasons,
    })
    .to_string()
}

/// Turns the request into a harmless ListTables before it leaves (the database never sees
/// it) and remembers the error its answer is to be replaced with.
fn divert(ctx: &mut BeforeTransmitInterceptorContextMut<'_>, cfg: &mut ConfigBag, error: String) {
    divert_request(ctx);
    cfg.interceptor_state().store_put(Faulted(error));
}

fn divert_request(ctx: &mut BeforeTransmitInterceptorContextMut<'_>) {
    let req = ctx.request_mut();
    req.headers_mut()
        .insert("x-amz-target", "DynamoDB_20120810.ListTables");
    *req.body_mut() = SdkBody::from("{}");
    req.headers_mut().insert("content-length", "2");
}

/// Faults DynamoDB causes, injected into a share of all requests from a seed (off until
/// [`FaultInjector::start`]): throttling (ThrottlingException,
/// ProvisionedThroughputExceededException), a 500 InternalServerError, a cancelled
/// transaction (TransactionConflict), and an ambiguous commit: the write happens and its
/// answer is lost as a 500. The SDK's own retries and the handlers' must make each of them
/// invisible, except as time.
///
/// Crashes, when [`FaultInjector::crash`] sets a rate: the process stops just after a
/// write reached the database. From then on every request of the system fails (nothing
/// after that point runs) until [`FaultInjector::restart`], which is what a sender's retry
/// meets: a fresh process, and whatever the dead one left half done.
#[derive(Debug, Default, Clone)]
pub struct FaultInjector {
    plan: Arc<Mutex<Option<(simulation::Rng, u64)>>>,
    /// Crashes per mille of the writes that go through.
    crash_per_mille: Arc<AtomicUsize>,
    /// A crash after this many more writes (0: none planned).
    crash_countdown: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    counts: Arc<Mutex<std::collections::BTreeMap<&'static str, usize>>>,
}

/// The process stops once this write's answer arrives (it never sees it).
#[derive(Debug, Clone)]
struct CrashAfter;
impl Storable for CrashAfter {
    type Storer = StoreReplace<Self>;
}

/// The answer an injected fault replaces the database's with: (status, body).
#[derive(Debug, Clone)]
struct Injected(u16, String);
impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

const WRITES: [&str; 4] = ["TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem"];

fn aws_error(kind: &str, message: &str) -> String {
    serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
        "message": message,
    })
    .to_string()
}

impl FaultInjector {
    /// Fault `per_mille` of the requests from now on, chosen by `seed`.
    pub fn start(&self, seed: u64, per_mille: u64) {
        if let Ok(mut p) = self.plan.lock() {
            *p = Some((simulation::Rng::new(seed), per_mille));
        }
    }
    pub fn stop(&self) {
        if let Ok(mut p) = self.plan.lock() {
            *p = None;
        }
    }
    /// Stop the process after `per_mille` of the writes that reach the database (0: never).
    pub fn crash(&self, per_mille: usize) {
        self.crash_per_mille.store(per_mille, Ordering::SeqCst);
    }
    /// Crashes so far.
    pub fn crashes(&self) -> usize {
        self.counts().get("crash").copied().unwrap_or(0)
    }
    /// Stop the process right after the `n`-th write from now (n >= 1) reaches the database:
    /// a crash between two chosen steps of a multi-step path.
    pub fn crash_after_writes(&self, n: usize) {
        self.crash_countdown.store(n, Ordering::SeqCst);
    }
    /// Start the stopped process again; whether it had stopped.
    pub fn restart(&self) -> bool {
        self.down.swap(false, Ordering::SeqCst)
    }
    fn count(&self, kind: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(kind).or_default() += 1;
        }
    }
    /// No faults while the test itself looks (its own reads are not under test).
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
    /// Faults injected so far, by kind.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn pick(&self, op: &str) -> Option<&'static str> {
        if self.paused.load(Ordering::SeqCst) {
            return None;
        }
        let mut plan = self.plan.lock().ok()?;
        let (rng, per_mille) = plan.as_mut()?;
        let write = WRITES.contains(&op);
        let crashes = self.crash_per_mille.load(Ordering::SeqCst) as u64;
        if write && crashes > 0 && rng.below(1_000) < crashes {
            self.count("crash");
            return Some("crash");
        }
        if rng.below(1_000) >= *per_mille {
            return None;
        }
        let kind = match rng.below(5) {
            0 => "ThrottlingException",
            1 => "ProvisionedThroughputExceededException",
            2 => "InternalServerError",
            3 if op == "TransactWriteItems" => "TransactionConflict",
            4 if write => "ambiguous commit",
            _ => "ThrottlingException",
        };
        self.count(kind);
        Some(kind)
    }
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "FaultInjector"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(cfg);
        // A request another injector diverted already is not faulted twice.
        if cfg.load::<Faulted>().is_some() {
            return Ok(());
        }
        // A stopped process sends nothing: its requests fail where they start.
        if self.down.load(Ordering::SeqCst) && !self.paused.load(Ordering::SeqCst) {
            divert_request(ctx);
            cfg.interceptor_state().store_put(Injected(
                400,
                aws_error(
                    "ValidationException",
                    "the process has stopped (injected crash)",
                ),
            ));
            return Ok(());
        }
        let planned_crash = WRITES.contains(&op.as_str())
            && !self.paused.load(Ordering::SeqCst)
            && self
                .crash_countdown
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                == Ok(1);
        if planned_crash {
            self.count("crash");
        }
        let Some(kind) = planned_crash.then_some("crash").or_else(|| self.pick(&op)) else {
            return Ok(());
        };
        let fault = match kind {
            "crash" => {
                cfg.interceptor_state().store_put(CrashAfter);
                return Ok(());
            }
            "TransactionConflict" => {
                Injected(400, cancelled(transact_items(ctx), "injected fault"))
            }
            "InternalServerError" => Injected(500, aws_error(kind, "injected fault")),
            "ambiguous commit" => {
                // Through to the database; only the answer is lost.
                cfg.interceptor_state().store_put(Injected(
                    500,
                    aws_error("InternalServerError", "injected fault after the write"),
                ));
                return Ok(());
            }
            other => Injected(400, aws_error(other, "injected fault")),
        };
        divert_request(ctx);
        cfg.interceptor_state().store_put(fault);
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<CrashAfter>().is_some() {
            self.down.store(true, Ordering::SeqCst);
            cfg.interceptor_state().unset::<CrashAfter>();
            cfg.interceptor_state().store_put(Injected(
                400,
                aws_error(
                    "ValidationException",
                    "the process has stopped (injected crash)",
                ),
            ));
        }
        answer_injected(ctx, cfg)
    }
}

/// Faults SQS causes, for the SQS client of a test (the nightly job's queue): a share of
/// its requests (sends, receives, deletes) fail with a 500 or throttling before they reach
/// the queue, chosen by a seed (off until [`SqsFaults::start`]).
#[derive(Debug, Default, Clone)]
pub struct SqsFaults {
    plan: Arc<Mutex<Option<(simulation::Rng, u64)>>>,
    counts: Arc<Mutex<std::collections::BTreeMap<&'static str, usize>>>,
}

impl SqsFaults {
    pub fn start(&self, seed: u64, per_mille: u64) {
        if let Ok(mut p) = self.plan.lock() {
            *p = Some((simulation::Rng::new(seed ^ 0x5351_5300), per_mille));
        }
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }
    pub fn stop(&self) {
        if let Ok(mut p) = self.plan.lock() {
            *p = None;
        }
    }
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Intercept for SqsFaults {
    fn name(&self) -> &'static str {
        "SqsFaults"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let kind = {
            let Ok(mut plan) = self.plan.lock() else {
                return Ok(());
            };
            let Some((rng, per_mille)) = plan.as_mut() else {
                return Ok(());
            };
            if rng.below(1_000) >= *per_mille {
                return Ok(());
            }
            if rng.below(2) == 0 {
                "SQS InternalError"
            } else {
                "SQS RequestThrottled"
            }
        };
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(kind).or_default() += 1;
        }
        let (status, body) = match kind {
            "SQS InternalError" => (
                500,
                serde_json::json!({"__type": "com.amazonaws.sqs#InternalError", "message": "injected fault"}),
            ),
            _ => (
                400,
                serde_json::json!({"__type": "com.amazonaws.sqs#RequestThrottled", "message": "injected fault"}),
            ),
        };
        // Never reaches the queue: a harmless ListQueues goes instead.
        let req = ctx.request_mut();
        req.headers_mut()
            .insert("x-amz-target", "AmazonSQS.ListQueues");
        *req.body_mut() = SdkBody::from("{}");
        req.headers_mut().insert("content-length", "2");
        cfg.interceptor_state()
            .store_put(Injected(status, body.to_string()));
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        answer_injected(ctx, cfg)
    }
}

/// SES and SNS throttling, for the senders' clients: the next N SendEmail and Publish calls
/// never reach moto and are answered as the services throttle (SES: 429
/// TooManyRequestsException; SNS: 400 Throttling), which the SDK retries and then gives up on.
#[derive(Debug, Default, Clone)]
pub struct SendThrottle {
    left: Arc<AtomicUsize>,
    throttled: Arc<AtomicUsize>,
}

/// The throttling answer of the request in flight: (status, error type header, body).
#[derive(Debug, Clone)]
struct Throttled(u16, Option<&'static str>, String);
impl Storable for Throttled {
    type Storer = StoreReplace<Self>;
}

impl SendThrottle {
    /// Throttle the next `n` sends (attempts, not calls: the SDK tries each call 3 times).
    pub fn throttle_next(&self, n: usize) {
        self.left.store(n, Ordering::SeqCst);
    }
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }
}

impl Intercept for SendThrottle {
    fn name(&self) -> &'static str {
        "SendThrottle"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let answer = match operation(cfg).as_str() {
            "SendEmail" => Throttled(
                429,
                Some("TooManyRequestsException"),
                r#"{"message":"Maximum sending rate exceeded."}"#.into(),
            ),
            "Publish" => Throttled(
                400,
                None,
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>injected</RequestId></ErrorResponse>".into(),
            ),
            _ => return Ok(()),
        };
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Ok(());
        }
        self.throttled.fetch_add(1, Ordering::SeqCst);
        // Never reaches moto (which would record the message): a harmless GET goes instead.
        let req = ctx.request_mut();
        let uri: http::Uri = req.uri().parse()?;
        let base = format!(
            "{}://{}/moto-api/",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        req.set_method("GET")?;
        req.set_uri(base.as_str())?;
        *req.body_mut() = SdkBody::empty();
        req.headers_mut().remove("content-length");
        cfg.interceptor_state().store_put(answer);
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Throttled(status, kind, body)) = cfg.load::<Throttled>().cloned() {
            replace_answer(ctx, status, body)?;
            let headers = ctx.response_mut().headers_mut();
            headers.remove("content-type");
            match kind {
                Some(kind) => {
                    headers.insert("x-amzn-errortype", kind);
                    headers.insert("content-type", "application/json");
                }
                None => {
                    headers.insert("content-type", "text/xml");
                }
            }
            cfg.interceptor_state().unset::<Throttled>();
        }
        Ok(())
    }
}

/// Answers a request an interceptor faulted ([`Injected`]) with its error.
fn answer_injected(
    ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
    cfg: &mut ConfigBag,
) -> Result<(), BoxError> {
    if let Some(Injected(status, body)) = cfg.load::<Injected>().cloned() {
        replace_answer(ctx, status, body)?;
        cfg.interceptor_state().unset::<Injected>();
    }
    Ok(())
}

/// Replaces a diverted request's answer with its error.
fn answer_faulted(
    ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
    cfg: &mut ConfigBag,
) -> Result<(), BoxError> {
    if let Some(Faulted(body)) = cfg.load::<Faulted>().cloned() {
        replace_answer(ctx, 400, body)?;
        cfg.interceptor_state().unset::<Faulted>();
    }
    Ok(())
}

/// The database's answer replaced by an error of ours.
fn replace_answer(
    ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
    status: u16,
    body: String,
) -> Result<(), BoxError> {
    let resp = ctx.response_mut();
    *resp.status_mut() = status.try_into()?;
    resp.headers_mut().remove("x-amz-crc32");
    resp.headers_mut()
        .insert("content-length", body.len().to_string());
    *resp.body_mut() = SdkBody::from(body);
    Ok(())
}

/// How many items the TransactWriteItems being sent names.
fn transact_items(ctx: &BeforeTransmitInterceptorContextMut<'_>) -> usize {
    let body: Value = serde_json::from_slice(ctx.request().body().bytes().unwrap_or_default())
        .unwrap_or_default();
    body["TransactItems"].as_array().map_or(1, |a| a.len())
}

/// DynamoDB's rule for transactions, which the emulator does not apply: while a
/// TransactWriteItems is in flight, another TransactWriteItems or TransactGetItems naming one
/// of its items is cancelled (TransactionConflict), and a PutItem, UpdateItem or DeleteItem
/// on one of them fails with TransactionConflictException. Off until [`ConflictRule::enable`].
#[derive(Debug, Default, Clone)]
pub struct ConflictRule {
    on: Arc<AtomicBool>,
    in_flight: Arc<Mutex<HashMap<(String, String), usize>>>,
    refused: Arc<AtomicUsize>,
}

/// The items a transaction of this request holds in flight until its answer arrives.
#[derive(Debug, Clone)]
struct Holding(Vec<(String, String)>);
impl Storable for Holding {
    type Storer = StoreReplace<Self>;
}

impl ConflictRule {
    pub fn enable(&self) {
        self.on.store(true, Ordering::SeqCst);
    }
    /// Requests refused by the rule so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
    fn release(&self, keys: &[(String, String)]) {
        if let Ok(mut m) = self.in_flight.lock() {
            for k in keys {
                if let Some(n) = m.get_mut(k) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(k);
                    }
                }
            }
        }
    }
}

impl Intercept for ConflictRule {
    fn name(&self) -> &'static str {
        "ConflictRule"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(cfg);
        let transaction = matches!(op.as_str(), "TransactWriteItems" | "TransactGetItems");
        if !self.on.load(Ordering::SeqCst)
            || !(transaction || matches!(op.as_str(), "PutItem" | "UpdateItem" | "DeleteItem"))
        {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(ctx.request().body().bytes().unwrap_or_default())
            .unwrap_or_default();
        let keys = keys_written(&op, &body);
        let conflict = {
            let mut m = self
                .in_flight
                .lock()
                .map_err(|_| "conflict rule poisoned")?;
            let conflict = keys.iter().any(|k| m.contains_key(k));
            if !conflict && op == "TransactWriteItems" {
                for k in &keys {
                    *m.entry(k.clone()).or_default() += 1;
                }
            }
            conflict
        };
        if conflict {
            self.refused.fetch_add(1, Ordering::SeqCst);
            let error = if transaction {
                cancelled(keys.len(), "another transaction in flight")
            } else {
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                    "Message": "Transaction is ongoing for the item",
                })
                .to_string()
            };
            divert(ctx, cfg, error);
        } else if op == "TransactWriteItems" {
            cfg.interceptor_state().store_put(Holding(keys));
        }
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        answer_faulted(ctx, cfg)
    }
    fn read_after_attempt(
        &self,
        _ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Holding(keys)) = cfg.load::<Holding>().cloned() {
            self.release(&keys);
            cfg.interceptor_state().unset::<Holding>();
        }
        Ok(())
    }
}

pub struct TestEnv {
    pub db: LocalDynamo,
    pub store: Store,
    pub ctx: Arc<Ctx>,
    pub clock: Arc<ManualClock>,
    pub requests: RequestCounter,
    pub conflicts: ConflictInjector,
    /// DynamoDB's conflict rule for transactions in flight (off unless enabled).
    pub conflict_rule: ConflictRule,
    pub writes: WriteRecorder,
    /// Faults at a rate (off unless started).
    pub faults: FaultInjector,
}

pub fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().unwrap_or_default()
}

impl TestEnv {
    /// A fresh database with [`CONFIG`] applied, the clock at [`now`].
    pub async fn new() -> Self {
        Self::with_config(CONFIG).await
    }

    pub async fn with_config(config: &str) -> Self {
        Self::on(
            LocalDynamo::start_memory().expect("embedded dynamodb"),
            config,
        )
        .await
    }

    /// As [`TestEnv::with_config`], on a database in a SQLite file (as `bonus dev` keeps it).
    pub async fn with_config_file(config: &str, path: &std::path::Path) -> Self {
        Self::on(
            LocalDynamo::start_file(path).expect("embedded dynamodb"),
            config,
        )
        .await
    }

    async fn on(db: LocalDynamo, config: &str) -> Self {
        let requests = RequestCounter::default();
        let conflicts = ConflictInjector::default();
        let conflict_rule = ConflictRule::default();
        let writes = WriteRecorder::default();
        let faults = FaultInjector::default();
        // The SDK's own retries as deployed (3 attempts), with short waits: injected
        // throttling is retried just the same, without making the tests slow.
        let retry = aws_sdk_dynamodb::config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(2));
        let sdk = bonus_dynamodb::local_config(&db.endpoint)
            .to_builder()
            .retry_config(retry)
            .interceptor(faults.clone())
            .interceptor(conflicts.clone())
            .interceptor(conflict_rule.clone())
            .interceptor(requests.clone())
            .interceptor(writes.clone())
            .build();
        let store = Store::new(aws_sdk_dynamodb::Client::from_conf(sdk), "bonus");
        schema::ensure_table(&store.client, &store.table)
            .await
            .expect("table");
        let plan = bonus_ops::apply::plan_file(config).expect("valid test config");
        bonus_ops::apply::apply(&store, &plan).await.expect("apply");
        let clock = Arc::new(ManualClock::new(now()));
        // Ids, codes and retry jitter from a seed, as time from the manual clock.
        let ctx = Arc::new(
            Ctx::new(store.clone(), clock.clone(), Duration::from_secs(3600))
                .with_random(Arc::new(SeededRandom::new(TEST_SEED))),
        );
        requests.reset();
        writes.take();
        TestEnv {
            db,
            store,
            ctx,
            clock,
            requests,
            conflicts,
            conflict_rule,
            writes,
            faults,
        }
    }

    /// A request as API Gateway would hand it to the function.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<Bytes>,
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(body.into()).expect("request");
        let resp = bonus_ops::dev::dispatch(&self.ctx, req).await;
        let status = resp.status();
        let body = serde_json::from_str(resp.body()).unwrap_or(Value::Null);
        (status, body)
    }

    /// A request with a partner API key and the acting person (`Bonus-Actor`, the partner
    /// API's audit trail), the body as JSON (`Null`: none).
    pub async fn call_as(
        &self,
        key: &str,
        actor: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let headers = [
            ("authorization", format!("Bearer {key}")),
            ("bonus-actor", actor.to_string()),
        ];
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        self.call(method, path, &headers, body).await
    }

    /// Standard Webhooks headers for `body`, signed with `secret` at the test clock's time
    /// shifted by `age_secs` into the past.
    pub fn signed(
        &self,
        secret: &str,
        msg_id: &str,
        body: &str,
        age_secs: i64,
    ) -> Vec<(&'static str, String)> {
        let ts = self.clock_now().timestamp() - age_secs;
        let sig =
            bonus_domain::webhook_sig::sign(secret, msg_id, ts, body.as_bytes()).expect("sign");
        vec![
            ("content-type", "application/json".into()),
            ("webhook-id", msg_id.into()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sig),
        ]
    }

    /// Every item of the table (a consistent scan, page by page).
    pub async fn all_items(&self) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .store
                .client
                .scan()
                .table_name(&self.store.table)
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .expect("scan");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use bonus_domain::clock::Clock;
        self.clock.now()
    }

    /// POST a signed order webhook for partner `shop`.
    pub async fn order(&self, body: &str) -> (StatusCode, Value) {
        let headers = self.signed(SECRET, "msg_1", body, 0);
        self.call(
            "POST",
            "/v1/partners/shop/webhooks/orders",
            &headers,
            body.to_string(),
        )
        .await
    }

    pub async fn balance(&self, member: &str) -> (StatusCode, Value) {
        self.balance_with(member, API_KEY).await
    }

    pub async fn balance_with(&self, member: &str, key: &str) -> (StatusCode, Value) {
        let headers = [("authorization", format!("Bearer {key}"))];
        self.call(
            "GET",
            &format!("/v1/members/{member}/balance"),
            &headers,
            Bytes::new(),
        )
        .await
    }
}

/// A canonical `order.paid` body: `lines` are (sku, quantity, unit price).
pub fn order_paid(order_id: &str, member: Option<&str>, lines: &[(&str, i64, &str)]) -> String {
    let lines: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, qty, price))| {
            serde_json::json!({"line_id": (i + 1).to_string(), "sku": sku, "quantity": qty, "unit_price": price})
        })
        .collect();
    serde_json::json!({
        "type": "order.paid",
        "order_id": order_id,
        "member_id": member,
        "occurred_at": "2026-11-23T11:00:00Z",
        "currency": "EUR",
        "lines": lines,
    })
    .to_string()
}

/// moto (SQS, SES, SNS) with a notifications queue and the senders that reach it: what the
/// message tests deliver through.
pub struct MessageStack {
    pub moto: bonus_local_stack::moto::LocalMoto,
    pub sqs: aws_sdk_sqs::Client,
    pub url: String,
    pub senders: bonus_messages::send::Senders,
}

pub async fn message_stack() -> MessageStack {
    let moto = bonus_local_stack::moto::LocalMoto::start()
        .expect("moto (make test installs it into .venv)");
    let mut senders = bonus_local_stack::moto::local_senders(&moto.endpoint, "points@example.com")
        .await
        .expect("senders");
    senders.unsubscribe_url =
        "https://velo.example/v1/unsubscribe/{programme_id}/{member_id}/{token}".into();
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    let url = bonus_sqs::ensure_queue(&sqs, "notifications", 30, 5)
        .await
        .expect("queue");
    MessageStack {
        moto,
        sqs,
        url,
        senders,
    }
}
