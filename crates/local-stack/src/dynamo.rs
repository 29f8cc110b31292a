//! The embedded DynamoDB (dynoxide) served over its HTTP endpoint on 127.0.0.1, on a runtime
//! of its own, so that the real `aws-sdk-dynamodb` client talks to it exactly as to AWS.

use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::sync::oneshot;

pub struct LocalDynamo {
    pub endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalDynamo {
    /// A database backed by a SQLite file: data survives a restart (and a kill).
    pub fn start_file(path: &std::path::Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let path = path
            .to_str()
            .ok_or_else(|| anyhow!("database path is not UTF-8"))?;
        let db = dynoxide::Database::new(path).map_err(|e| anyhow!("opening {path}: {e}"))?;
        Self::start(db)
    }

    /// A database in memory: one per test.
    pub fn start_memory() -> anyhow::Result<Self> {
        let db =
            dynoxide::Database::memory().map_err(|e| anyhow!("opening memory database: {e}"))?;
        Self::start(db)
    }

    fn start(db: dynoxide::Database) -> anyhow::Result<Self> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding a port for DynamoDB")?;
        listener.set_nonblocking(true)?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dynamodb".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    // Named, so that a profile can tell the emulator's CPU from ours.
                    .thread_name("dynamodb")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("dynamodb runtime failed to start: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("dynamodb listener failed: {e}");
                            return;
                        }
                    };
                    // Expired TTL items are only removed when asked: sweep once a minute.
                    let sweeper = db.clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            let _ = sweeper.sweep_ttl();
                        }
                    });
                    if let Err(e) = dynoxide::server::serve_with_shutdown(listener, db, async {
                        let _ = rx.await;
                    })
                    .await
                    {
                        eprintln!("dynamodb server stopped: {e}");
                    }
                });
            })?;
        Ok(LocalDynamo {
            endpoint,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for LocalDynamo {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
