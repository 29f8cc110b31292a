//! What several commands share: where the store is, the local `bonus dev` it may talk to,
//! invoking deployed functions, reading a config file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bonus_dynamodb::{schema, Store};
use bonus_local_stack::dynamo::LocalDynamo;
use bonus_ops::apply;
use clap::Args;

#[derive(Args, Clone)]
pub(crate) struct StoreArgs {
    /// DynamoDB endpoint; default: the running `bonus dev`, else the local data file.
    #[arg(long, env = "BONUS_DYNAMODB_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// Use the AWS account of the environment (TABLE_NAME, AWS_PROFILE, AWS_REGION).
    #[arg(long, conflicts_with = "endpoint")]
    pub(crate) aws: bool,
    #[arg(long, env = "TABLE_NAME", default_value = "bonus")]
    pub(crate) table: String,
    #[arg(long, env = "BONUS_DATA_DIR", default_value = ".bonus")]
    pub(crate) data_dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct DevInfo {
    pub(crate) api: String,
    pub(crate) dynamodb: String,
    /// The local SQS (moto) that `bonus dev` started.
    #[serde(default)]
    pub(crate) sqs: Option<String>,
}

/// The queue of the nightly job, locally.
pub(crate) const LOCAL_NIGHTLY_QUEUE: &str = "bonus-nightly";
/// The queue of member messages, locally.
pub(crate) const LOCAL_NOTIFY_QUEUE: &str = "bonus-notifications";
pub(crate) const LOCAL_PARTNER_WEBHOOKS_QUEUE: &str = "bonus-partner-webhooks";
pub(crate) const LOCAL_DEFERRED_QUEUE: &str = "bonus-deferred-webhooks";

/// Invoke a deployed function with a JSON payload; its answer.
pub(crate) async fn invoke_function(
    function: &str,
    payload: &serde_json::Value,
) -> anyhow::Result<String> {
    let config = aws_config_from_env().await;
    let out = aws_sdk_lambda::Client::new(&config)
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("invoking {function}: {e}"))?;
    Ok(out
        .payload
        .map(|p| String::from_utf8_lossy(p.as_ref()).to_string())
        .unwrap_or_default())
}

pub(crate) fn dev_info_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev.json")
}

/// A deployed table's partner secrets are sealed with the stack's KMS key: a command that
/// writes them with `--aws` refuses to run without it (it would seal with the public local
/// key instead).
pub(crate) fn require_kms_for_aws(args: &StoreArgs) -> anyhow::Result<()> {
    let set = std::env::var("SECRETS_KMS_KEY_ID").is_ok_and(|k| !k.trim().is_empty());
    if args.aws && !set {
        anyhow::bail!(
            "set SECRETS_KMS_KEY_ID to the stack's SecretsKeyArn output: partner secrets are sealed with it"
        );
    }
    Ok(())
}

/// The store a command works on, and the embedded database if it had to start one.
pub(crate) async fn open_store(args: &StoreArgs) -> anyhow::Result<(Store, Option<LocalDynamo>)> {
    if args.aws {
        let config = aws_config_from_env().await;
        let mut store = Store::new(aws_sdk_dynamodb::Client::new(&config), &args.table);
        // The deployed e-mail index key (the SSM parameter named by EMAIL_HASH_KEY_PARAMETER,
        // or EMAIL_HASH_KEY); without it, members are written without an e-mail index entry.
        store.email_key = bonus_dynamodb::EmailKey::known(
            bonus_secrets::email_hash_key_from_env()
                .await?
                .map(Into::into),
        );
        return Ok((store, None));
    }
    if let Some(endpoint) = &args.endpoint {
        return Ok((Store::local(endpoint, &args.table), None));
    }
    if let Ok(text) = std::fs::read_to_string(dev_info_path(&args.data_dir)) {
        if let Ok(info) = serde_json::from_str::<DevInfo>(&text) {
            let store = Store::local(&info.dynamodb, &args.table);
            if store.client.list_tables().send().await.is_ok() {
                return Ok((store, None));
            }
        }
    }
    let db = LocalDynamo::start_file(&args.data_dir.join("dynamodb.sqlite"))?;
    let store = Store::local(&db.endpoint, &args.table);
    schema::ensure_table(&store.client, &store.table).await?;
    Ok((store, Some(db)))
}

pub(crate) async fn aws_config_from_env() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

pub(crate) fn read_plan(file: &Path) -> anyhow::Result<bonus_domain::config::ConfigPlan> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match apply::plan_file(&text) {
        Ok(plan) => Ok(plan),
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {e}", file.display());
            }
            bail!(
                "{} problem(s) in {}; nothing was changed",
                errors.len(),
                file.display()
            )
        }
    }
}
