//! `bonus clearing show|close`: a coalition month between partners.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bonus_domain::clock::SystemClock;
use bonus_lambda::app::Ctx;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum ClearingCommand {
    /// A month's partner statements and the partner x partner matrix: the closed month as
    /// stored, or (still open) a preview from the counters.
    Show {
        programme: String,
        /// YYYY-MM.
        month: String,
        /// Also write the statements as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Also write the whole clearing (statements, matrix) as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Close a month now (what the worker does on the 1st): checks conservation and writes
    /// the statements once; a closed month is only compared. With --aws the deployed
    /// planner is invoked for the month.
    Close {
        programme: String,
        /// YYYY-MM.
        month: String,
        /// With --aws: the planner function (output ClearingPlannerFunctionName).
        #[arg(long, env = "CLEARING_PLANNER_FUNCTION")]
        function: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: ClearingCommand) -> anyhow::Result<()> {
    match command {
        ClearingCommand::Show {
            programme,
            month,
            csv,
            json,
            store,
        } => {
            let (store, _db) = open_store(&store).await?;
            let p = store
                .get_programme(&programme)
                .await?
                .with_context(|| format!("no programme {programme}"))?;
            let (c, closed) = bonus_ops::clearing::load(&store, &programme, &month).await?;
            print!(
                "{}",
                bonus_ops::clearing::text(&c, closed.as_ref(), p.currency)
            );
            bonus_ops::clearing::write_exports(&c, csv.as_deref(), json.as_deref())
        }
        ClearingCommand::Close {
            programme,
            month,
            function,
            store,
        } => {
            if store.aws {
                let function = function
                    .context("--function or CLEARING_PLANNER_FUNCTION: the deployed planner")?;
                let payload = serde_json::json!({ "month": month });
                println!("{}", invoke_function(&function, &payload).await?);
                return Ok(());
            }
            let sqs_endpoint = std::fs::read_to_string(dev_info_path(&store.data_dir))
                .ok()
                .and_then(|t| serde_json::from_str::<DevInfo>(&t).ok())
                .and_then(|i| i.sqs);
            let (db_store, _db) = open_store(&store).await?;
            if let Some(endpoint) = sqs_endpoint {
                // `bonus dev` is running: close as the worker does, and its notifications
                // loop e-mails each partner's statement (see `bonus notifications list`).
                let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&endpoint));
                let url = bonus_sqs::ensure_queue(&sqs, LOCAL_NOTIFY_QUEUE, 30, 10).await?;
                let ctx = Ctx::new(db_store, Arc::new(SystemClock), Duration::from_secs(60));
                let task = clearing::CloseTask {
                    programme_id: programme.clone(),
                    month: month.clone(),
                };
                let closing = clearing::run_task(&ctx, &sqs, &url, &task).await?;
                println!(
                    "{programme} {month}: {} (statements queued for partners with a finance contact)",
                    bonus_ops::clearing::closing_text(&closing)
                );
                return Ok(());
            }
            let (c, what) =
                bonus_ops::clearing::close(&db_store, &programme, &month, chrono::Utc::now())
                    .await?;
            println!(
                "{programme} {month}: {what} ({} partner statements)",
                c.statements.len()
            );
            Ok(())
        }
    }
}
