//! The local SQS (and SES/SNS) server: moto, installed into `.venv` by the Makefile, started
//! on a free port of 127.0.0.1 and stopped when this handle is dropped.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct LocalMoto {
    pub endpoint: String,
    child: Child,
}

/// Where moto_server is: `BONUS_MOTO_SERVER`, else `.venv/bin/moto_server` in the current
/// directory or in the workspace this binary was built from.
pub fn moto_server_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BONUS_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let here = PathBuf::from(".venv/bin/moto_server");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    [here, workspace].into_iter().find(|p| p.exists())
}

impl LocalMoto {
    pub fn start() -> anyhow::Result<Self> {
        let Some(path) = moto_server_path() else {
            bail!("moto_server not found: run `make run` or `make test`, which install it into .venv (or set BONUS_MOTO_SERVER)");
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            l.local_addr()?.port()
        };
        let child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let mut moto = LocalMoto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                bail!("moto_server exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("moto_server did not listen on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
    }
}

impl Drop for LocalMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK configuration for any AWS service on a local moto: dummy credentials, a region, the
/// endpoint.
pub async fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "bonus-local",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// SES and SNS clients on a local moto, with the sender identity `from` created.
pub async fn local_senders(
    endpoint: &str,
    from: &str,
) -> anyhow::Result<bonus_messages::send::Senders> {
    let config = local_sdk_config(endpoint).await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    ses.create_email_identity()
        .email_identity(from)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating the sender identity: {e}"))?;
    let sns = aws_sdk_sns::Client::new(&config);
    Ok(bonus_messages::send::Senders {
        ses: bonus_messages::send::first_use(move || ses),
        sns: bonus_messages::send::first_use(move || sns),
        from: from.into(),
        unsubscribe_url: "http://127.0.0.1:3000/v1/unsubscribe/{programme_id}/{member_id}/{token}"
            .into(),
        configuration_set: None,
    })
}
