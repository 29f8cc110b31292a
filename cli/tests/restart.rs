//! An emulator restart: `bonus dev` (the embedded DynamoDB in its SQLite file, the API, and
//! its moto) is killed with SIGKILL twice while four senders post orders, and started again on
//! the same data. Senders send again whatever got no answer, as shops do. Afterwards every
//! order is booked exactly once, the balance is the sum of the answers, and `bonus audit`
//! finds nothing.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SECRET: &str = "whsec_ZGVtby12ZWxvLXNob3Atd2ViaG9vay1zZWNyZXQ=";
const KEY: &str = "bk_524fbb972e11442b95a797fe0cb7b75f7e85ddcd_a8887692";
const SENDERS: usize = 4;
const ORDERS_EACH: usize = 25;

fn demo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/demo.yaml")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `bonus dev` in its own process group, so that SIGKILL takes its moto down with it.
fn start_dev(port: u16, data: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_bonus"))
        .args(["dev", "--port", &port.to_string(), "--seed"])
        .arg(demo_config())
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("bonus dev starts")
}

/// The whole process group, without warning: no destructor, no flush, no goodbye.
fn kill_hard(child: &mut Child) {
    let group = child.id() as i32;
    // SAFETY: kill(2) on a process group this test started; no memory is touched.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let _ = child.wait();
}

async fn wait_ready(http: &reqwest::Client, api: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ok = http
            .get(format!("{api}/v1/members/M-1001/balance"))
            .bearer_auth(KEY)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "bonus dev did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Post one signed order until it is answered with something other than a 5xx or a broken
/// connection; the answer, and how many sends got none.
async fn deliver(http: &reqwest::Client, api: &str, order_id: &str) -> (u16, Value, usize) {
    let body = json!({
        "type": "order.paid", "order_id": order_id, "member_id": "M-1001",
        "occurred_at": bonus_domain::clock::ts(chrono::Utc::now() - chrono::Duration::minutes(1)),
        "currency": "EUR",
        "lines": [{"line_id": "1", "sku": "TUBE", "quantity": 1, "unit_price": "10.00"}],
    })
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut lost = 0;
    loop {
        let ts = chrono::Utc::now().timestamp();
        let msg_id = format!("msg-{order_id}");
        let sig =
            bonus_domain::webhook_sig::sign(SECRET, &msg_id, ts, body.as_bytes()).expect("sign");
        let sent = http
            .post(format!("{api}/v1/partners/velo-shop/webhooks/orders"))
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.clone())
            .send()
            .await;
        if let Ok(resp) = sent {
            let status = resp.status().as_u16();
            if status < 500 {
                let answer = resp.json().await.unwrap_or(Value::Null);
                return (status, answer, lost);
            }
        }
        lost += 1;
        assert!(Instant::now() < deadline, "{order_id} never got an answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn balance(http: &reqwest::Client, api: &str) -> Value {
    http.get(format!("{api}/v1/members/M-1001/balance"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("balance")
        .json()
        .await
        .expect("balance JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_local_stack_twice_mid_run_loses_and_doubles_nothing() {
    let data = std::env::temp_dir().join(format!("bonus-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("data dir");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut dev = start_dev(port, &data, &data.join("dev-0.log"));
    wait_ready(&http, &api).await;
    let before = balance(&http, &api).await["total"].as_i64().expect("total");

    let answered = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (http, api, answered) = (http.clone(), api.clone(), answered.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..ORDERS_EACH {
                    let order_id = format!("RESTART-{s}-{i}");
                    let answer = deliver(&http, &api, &order_id).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    answers.push((order_id, answer));
                }
                answers
            })
        })
        .collect();

    // Killed once a third and two thirds of the orders are answered, with others in flight.
    for (round, share) in [(1, 3), (2, 3)] {
        let at = SENDERS * ORDERS_EACH * round / share;
        while answered.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        kill_hard(&mut dev);
        dev = start_dev(port, &data, &data.join(format!("dev-{round}.log")));
        wait_ready(&http, &api).await;
    }

    let (mut points, mut orders, mut resent) = (0, 0, 0);
    for sender in senders {
        for (order_id, (status, answer, lost)) in sender.await.expect("sender") {
            resent += lost;
            assert_eq!(
                (
                    status,
                    answer["points"].as_i64(),
                    answer["order_id"].as_str()
                ),
                (200, Some(10), Some(order_id.as_str())),
                "{answer}"
            );
            points += 10;
            orders += 1;
        }
    }
    assert_eq!(orders, SENDERS * ORDERS_EACH);
    // The kills fell mid-run: sends went unanswered and were sent again.
    assert!(resent > 0, "no send was cut off");
    println!("RESTART orders={orders} sends cut off and sent again={resent}");
    let after = balance(&http, &api).await;
    assert_eq!(after["total"].as_i64(), Some(before + points), "{after}");

    // The ledger agrees with itself: lots, entries and balances.
    let audit = Command::new(env!("CARGO_BIN_EXE_bonus"))
        .args(["audit", "--data-dir"])
        .arg(&data)
        .output()
        .expect("bonus audit");
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "bonus audit: {report}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    kill_hard(&mut dev);
    let _ = std::fs::remove_dir_all(&data);
}
