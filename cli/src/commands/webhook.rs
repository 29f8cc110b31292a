//! `bonus webhook send`: a signed webhook, as a shop sends it.

use std::path::PathBuf;

use anyhow::Context;
use bonus_ops::webhook;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Sign a JSON payload with the partner's webhook secret and POST it.
    Send {
        partner: String,
        file: PathBuf,
        /// Sign as our canonical API (Standard Webhooks), or as Shopify or WooCommerce do.
        #[arg(long, value_enum, default_value = "standard")]
        platform: webhook::Platform,
        /// The platform's topic (Shopify: orders/paid, refunds/create, orders/cancelled;
        /// WooCommerce: order.created, order.updated).
        #[arg(long)]
        topic: Option<String>,
        /// Base URL of the API.
        #[arg(long, env = "BONUS_API_URL", default_value = "http://127.0.0.1:3000")]
        url: String,
        /// The signing secret; read from the partner's configuration when omitted.
        #[arg(long, env = "BONUS_WEBHOOK_SECRET")]
        secret: Option<String>,
        /// Replace the payload's order id (handy to send the example file more than once).
        #[arg(long)]
        order_id: Option<String>,
        /// Route under /v1/partners/{partner}/ (default: the platform's); `events` for
        /// behaviour events.
        #[arg(long)]
        path: Option<String>,
        /// Send the file's times as they are. By default the example is moved in time so
        /// that its newest time is now (the platform refuses old orders and ignores old
        /// shop bodies), keeping its weekday for our own payloads.
        #[arg(long)]
        keep_dates: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Send {
            partner,
            file,
            platform,
            topic,
            url,
            secret,
            order_id,
            path,
            keep_dates,
            store,
        } => {
            let mut text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if !keep_dates {
                text = webhook::redate(&text, platform, chrono::Utc::now())
                    .context("payload is not JSON")?;
            }
            let body = match order_id {
                Some(id) => {
                    let mut v: serde_json::Value =
                        serde_json::from_slice(&text).context("payload is not JSON")?;
                    v[platform.order_id_field()] = serde_json::Value::String(id);
                    serde_json::to_vec(&v)?
                }
                None => text,
            };
            let secret = match secret {
                Some(s) => s,
                None => {
                    let (store, _db) = open_store(&store).await?;
                    let stored = store
                        .get_partner(&partner)
                        .await?
                        .with_context(|| format!("no partner '{partner}'"))?;
                    // Stored sealed: opened with the key from the environment (KMS with
                    // --aws and SECRETS_KMS_KEY_ID).
                    let sealer = bonus_secrets::Sealer::from_env().await?;
                    let p = bonus_secrets::open_partner(&sealer, &stored).await?;
                    let secrets = match platform {
                        webhook::Platform::Standard => Some(&p.webhook_secrets),
                        webhook::Platform::Shopify => p.shopify.as_ref().map(|l| &l.secrets),
                        webhook::Platform::Woocommerce => {
                            p.woocommerce.as_ref().map(|l| &l.secrets)
                        }
                    };
                    secrets.and_then(|s| s.last()).cloned().with_context(|| {
                        format!("partner '{partner}' has no {platform:?} webhook secret")
                    })?
                }
            };
            let path = path.unwrap_or_else(|| platform.default_path().to_string());
            let target = format!(
                "{}/v1/partners/{partner}/{}",
                url.trim_end_matches('/'),
                path.trim_matches('/')
            );
            let topic = topic.unwrap_or_else(|| platform.default_topic().to_string());
            let sent = webhook::send(&target, platform, &secret, &topic, body).await?;
            println!("HTTP {}", sent.status);
            match serde_json::from_str::<serde_json::Value>(&sent.body) {
                Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
                Err(_) => println!("{}", sent.body),
            }
            Ok(())
        }
    }
}
