//! `bonus webhook send`: sign a payload as a webshop would (Standard Webhooks) and post it.

use chrono::Utc;
use shared::webhook_sig;

/// Headers for one signed delivery: (webhook-id, webhook-timestamp, webhook-signature).
pub fn sign_headers(secret: &str, body: &[u8]) -> anyhow::Result<[(&'static str, String); 3]> {
    let id = format!("msg_{}", hex::encode(rand::random::<[u8; 12]>()));
    let ts = Utc::now().timestamp();
    let sig = webhook_sig::sign(secret, &id, ts, body).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok([
        (webhook_sig::HEADER_ID, id),
        (webhook_sig::HEADER_TIMESTAMP, ts.to_string()),
        (webhook_sig::HEADER_SIGNATURE, sig),
    ])
}

pub struct Sent {
    pub status: u16,
    pub body: String,
}

pub async fn send(url: &str, secret: &str, body: Vec<u8>) -> anyhow::Result<Sent> {
    let headers = sign_headers(secret, &body)?;
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req.send().await?;
    Ok(Sent {
        status: resp.status().as_u16(),
        body: resp.text().await?,
    })
}
