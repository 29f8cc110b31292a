//! Cold starts of the real function binaries against a local Lambda Runtime API.
//!
//! ```bash
//! make bench-cold-start        # builds the release binaries, then runs this
//! ```
//!
//! Each function's release `bootstrap` is started as Lambda starts it (the Runtime API address
//! and the function's environment variables), 20 times, round-robin with a bare `lambda_http`
//! hello world built with the same profile. Measured per start:
//! - init: process start to the runtime's first `GET /next` (what Lambda bills as Init);
//! - first invocation: the event handed out to its response posted back. The HTTP functions
//!   get a real request (a signed order webhook; a balance read) over the embedded DynamoDB;
//!   queue consumers an empty batch. Scheduled functions are measured for init only: their
//!   first run is a whole planning job, not a request.
//!
//! Knobs: COLD_STARTS (per function, default 20), COLD_START_BIN_DIR (default
//! target/release), COLD_START_ONLY (binary names, space-separated).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bonus_dynamodb::{schema, Store};
use integration_tests::{order_paid, API_KEY, CONFIG, SECRET};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};

/// What a start is handed, and what its answer should look like.
#[derive(Clone)]
enum Invocation {
    /// Init only: the process is stopped at its first `/next`.
    None,
    /// One event; the answer must contain this text.
    Event { body: String, expect: &'static str },
}

struct Function {
    binary: &'static str,
    env: Vec<(&'static str, String)>,
}

/// What the runtime stub saw of one start.
#[derive(Debug)]
enum Seen {
    Next(Instant),
    Answered(Instant, String),
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A minimal Lambda Runtime API: hands out the current event at `/next` (once per start;
/// a second `/next` waits until the process is stopped) and reports what happened.
async fn runtime_stub(
    listener: TcpListener,
    event: Arc<Mutex<Option<String>>>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (event, seen) = (event.clone(), seen.clone());
        tokio::spawn(async move {
            let _ = serve(stream, event, seen).await;
        });
    }
}

async fn serve(
    stream: TcpStream,
    event: Arc<Mutex<Option<String>>>,
    seen: mpsc::UnboundedSender<Seen>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        if path.ends_with("/invocation/next") {
            let _ = seen.send(Seen::Next(Instant::now()));
            let Some(payload) = event.lock().await.take() else {
                // Init only, or the start is over: wait to be stopped.
                std::future::pending::<()>().await;
                return Ok(());
            };
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 lambda-runtime-aws-request-id: cold-start-1\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:eu-west-1:123456789012:function:bench\r\n\
                 lambda-runtime-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0\r\n\r\n",
                payload.len()
            );
            reader.get_mut().write_all(head.as_bytes()).await?;
            reader.get_mut().write_all(payload.as_bytes()).await?;
        } else {
            let _ = seen.send(Seen::Answered(
                Instant::now(),
                format!("{path} {}", String::from_utf8_lossy(&body)),
            ));
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                .await?;
        }
    }
}

/// An API Gateway (REST API) proxy event.
fn api_event(method: &str, path: &str, headers: &[(&str, String)], body: &str) -> String {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    let multi: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!([v])))
        .collect();
    serde_json::json!({
        "resource": path, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": multi,
        "queryStringParameters": null, "multiValueQueryStringParameters": null,
        "pathParameters": null, "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "r", "stage": "bench", "requestId": "r-1",
            "identity": {"sourceIp": "192.0.2.1"}, "resourcePath": path, "httpMethod": method,
            "apiId": "api", "path": path
        },
        "body": body, "isBase64Encoded": false
    })
    .to_string()
}

/// The event of the `n`th start of `binary`.
fn invocation(binary: &str, n: usize) -> Invocation {
    match binary {
        "hello-lambda-http" => Invocation::Event {
            body: api_event("GET", "/hello", &[], ""),
            expect: "hello",
        },
        "order-webhook" => {
            let body = order_paid(
                &format!("cold-{n}-{}", std::process::id()),
                Some("M-1"),
                &[("SKU-1", 1, "12.00")],
            );
            let id = format!("msg-cold-{n}-{}", std::process::id());
            let ts = chrono::Utc::now().timestamp();
            let sig =
                bonus_domain::webhook_sig::sign(SECRET, &id, ts, body.as_bytes()).expect("sign");
            let headers = [
                ("content-type", "application/json".to_string()),
                ("webhook-id", id),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", sig),
            ];
            Invocation::Event {
                body: api_event("POST", "/v1/partners/shop/webhooks/orders", &headers, &body),
                expect: "points",
            }
        }
        "member-api" => Invocation::Event {
            body: api_event(
                "GET",
                "/v1/members/M-1/balance",
                &[("authorization", format!("Bearer {API_KEY}"))],
                "",
            ),
            expect: "available",
        },
        "member-site" => Invocation::Event {
            body: api_event("GET", "/m/velo/login", &[], ""),
            expect: "csrf",
        },
        "deferred-webhooks" | "nightly-worker" | "clearing-worker" | "notifications" => {
            Invocation::Event {
                body: r#"{"Records":[]}"#.into(),
                expect: "batchItemFailures",
            }
        }
        "outbox-relay" => Invocation::Event {
            body: r#"{"Records":[]}"#.into(),
            expect: "batchItemFailures",
        },
        _ => Invocation::None,
    }
}

#[derive(Default)]
struct Figures {
    init: Vec<Duration>,
    first: Vec<Duration>,
    size: u64,
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs benches once without `--bench`: the release binaries
    // are not built then, so only say how to run it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cold_start bench: run it with `make bench-cold-start`");
        return;
    }
    let starts = knob("COLD_STARTS", 20) as usize;
    let dir = std::env::var("COLD_START_BIN_DIR")
        .unwrap_or_else(|_| format!("{}/../target/release", env!("CARGO_MANIFEST_DIR")));
    let only: Vec<String> = std::env::var("COLD_START_ONLY")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();

    // The embedded DynamoDB with the test programme: the first invocations do real work.
    let db = bonus_local_stack::dynamo::LocalDynamo::start_memory().expect("embedded dynamodb");
    let store = Store::new(
        aws_sdk_dynamodb::Client::from_conf(bonus_dynamodb::local_config(&db.endpoint)),
        "bonus",
    );
    schema::ensure_table(&store.client, &store.table)
        .await
        .expect("table");
    let plan = bonus_ops::apply::plan_file(CONFIG).expect("config");
    bonus_ops::apply::apply(&store, &plan).await.expect("apply");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("port");
    let runtime_api = listener.local_addr().expect("addr").to_string();
    let event = Arc::new(Mutex::new(None));
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(runtime_stub(listener, event.clone(), tx));

    let queue = "http://127.0.0.1:9/000000000000/bench".to_string();
    let common = |name: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint.clone()),
            ("TABLE_NAME", "bonus".into()),
            ("RUST_LOG", "info".into()),
            ("CONFIG_CACHE_SECONDS", "60".into()),
            ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true".into()),
        ]
    };
    let with = |name: &'static str, extra: &[(&'static str, &str)]| {
        let mut env = common(name);
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Function { binary: name, env }
    };
    let q = queue.as_str();
    let functions = vec![
        with("hello-lambda-http", &[]),
        with("order-webhook", &[("DEFERRED_WEBHOOKS_QUEUE_URL", q)]),
        with("deferred-webhooks", &[]),
        with("member-api", &[]),
        with(
            "member-site",
            &[
                (
                    "SITE_SESSION_KEY",
                    "cold-start-bench-session-key-0123456789abcdef",
                ),
                ("SENDER_EMAIL", "points@example.com"),
            ],
        ),
        with("hold-sweeper", &[]),
        with("nightly-planner", &[("WORK_QUEUE_URL", q)]),
        with("nightly-worker", &[]),
        with("clearing-planner", &[("CLEARING_QUEUE_URL", q)]),
        with("clearing-worker", &[("NOTIFY_QUEUE_URL", q)]),
        with("outbox-relay", &[("NOTIFY_QUEUE_URL", q)]),
        with(
            "notifications",
            &[
                ("NOTIFY_QUEUE_URL", q),
                ("SENDER_EMAIL", "points@example.com"),
            ],
        ),
        with("monthly-statements", &[("NOTIFY_QUEUE_URL", q)]),
    ];
    let functions: Vec<Function> = functions
        .into_iter()
        .filter(|f| {
            f.binary == "hello-lambda-http" || only.is_empty() || only.iter().any(|o| o == f.binary)
        })
        .collect();

    let mut figures: HashMap<&str, Figures> = HashMap::new();
    for f in &functions {
        let path = format!("{dir}/{}", f.binary);
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (build it first: make bench-cold-start)"))
            .len();
        figures.entry(f.binary).or_default().size = size;
    }
    for n in 0..starts {
        for f in &functions {
            let inv = invocation(f.binary, n);
            *event.lock().await = match &inv {
                Invocation::None => None,
                Invocation::Event { body, .. } => Some(body.clone()),
            };
            while rx.try_recv().is_ok() {}
            let started = Instant::now();
            let mut child = tokio::process::Command::new(format!("{dir}/{}", f.binary))
                .env_clear()
                .envs(f.env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start");
            let next = match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(Seen::Next(at))) => at,
                other => panic!("{}: no first /next: {other:?}", f.binary),
            };
            let fig = figures.entry(f.binary).or_default();
            fig.init.push(next - started);
            if let Invocation::Event { expect, .. } = inv {
                match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                    Ok(Some(Seen::Answered(at, answer))) => {
                        assert!(
                            answer.contains("/response") && answer.contains(expect),
                            "{}: unexpected answer {answer}",
                            f.binary
                        );
                        fig.first.push(at - next);
                    }
                    other => panic!("{}: no answer: {other:?}", f.binary),
                }
            }
            let _ = child.kill().await;
        }
    }

    let mut hello = figures
        .get("hello-lambda-http")
        .map(|f| f.init.clone())
        .unwrap_or_default();
    let hello_median = median(&mut hello);
    println!(
        "COLD_START {starts} starts each, round-robin; init = process start to first /next; \
         first = the first event to its answer (ms)"
    );
    println!(
        "COLD_START {:<20} {:>9} {:>9} {:>9} {:>7} {:>10} {:>9}",
        "binary", "size MB", "init p50", "init max", "x bare", "first p50", "first max"
    );
    for f in &functions {
        let fig = figures.get_mut(f.binary).expect("figures");
        let init_median = median(&mut fig.init);
        let init_max = fig.init.iter().max().copied().unwrap_or_default();
        let first = if fig.first.is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            let m = median(&mut fig.first);
            let x = fig.first.iter().max().copied().unwrap_or_default();
            (format!("{:.2}", ms(m)), format!("{:.2}", ms(x)))
        };
        println!(
            "COLD_START {:<20} {:>9.2} {:>9.2} {:>9.2} {:>7.2} {:>10} {:>9}",
            f.binary,
            fig.size as f64 / 1e6,
            ms(init_median),
            ms(init_max),
            ms(init_median) / ms(hello_median).max(0.001),
            first.0,
            first.1
        );
    }
}
