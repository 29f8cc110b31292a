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

/// A message moto recorded as sent (SES e-mail or SNS SMS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// `email` or `sms`.
    pub channel: &'static str,
    /// Recipient addresses or the phone number.
    pub to: Vec<String>,
    pub subject: String,
    /// The e-mail body (HTML when there is one) or the SMS text.
    pub body: String,
}

/// Everything moto at `endpoint` has sent, oldest first.
pub async fn sent_messages(endpoint: &str) -> anyhow::Result<Vec<SentMessage>> {
    let data: serde_json::Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await?
        .json()
        .await?;
    let list = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v.as_array().cloned().unwrap_or_default()
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut out = Vec::new();
    for m in list(&data["ses"]["Message"]) {
        let d = &m["destinations"];
        let to = ["ToAddresses", "CcAddresses", "BccAddresses"]
            .iter()
            .flat_map(|k| list(&d[*k]))
            .map(|a| text(&a))
            .collect();
        out.push(SentMessage {
            channel: "email",
            to,
            subject: text(&m["subject"]),
            body: text(&m["body"]),
        });
    }
    for m in list(&data["sns"]["SMS"]) {
        out.push(SentMessage {
            channel: "sms",
            to: vec![text(&m["phone_number"])],
            subject: String::new(),
            body: text(&m["message"]),
        });
    }
    Ok(out)
}

/// The newest login link e-mailed to `to` (or to anyone), from moto's sent messages.
pub async fn last_login_link(endpoint: &str, to: Option<&str>) -> anyhow::Result<Option<String>> {
    let sent = sent_messages(endpoint).await?;
    Ok(sent
        .iter()
        .rev()
        .filter(|m| m.channel == "email")
        .filter(|m| to.is_none_or(|t| m.to.iter().any(|a| a.eq_ignore_ascii_case(t))))
        .find_map(|m| {
            // The HTML body escapes '/' and '&' in attributes.
            let body = m.body.replace("&#x2f;", "/").replace("&amp;", "&");
            let start = body.find("http")?;
            let rest = &body[start..];
            let end = rest.find(['"', '<', ' ', '\n']).unwrap_or(rest.len());
            let link = rest[..end].to_string();
            link.contains("/login/link?token=").then_some(link)
        }))
}

/// The newest six-digit code texted to `to` (or to anyone).
pub async fn last_sms_code(endpoint: &str, to: Option<&str>) -> anyhow::Result<Option<String>> {
    let sent = sent_messages(endpoint).await?;
    Ok(sent
        .iter()
        .rev()
        .filter(|m| m.channel == "sms")
        .filter(|m| to.is_none_or(|t| m.to.iter().any(|a| a == t)))
        .find_map(|m| {
            m.body
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .map(str::to_string)
        }))
}
