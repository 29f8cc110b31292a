//! `bonus run nightly|statements`: the scheduled jobs, locally or on AWS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bonus_domain::clock::SystemClock;
use bonus_lambda::app::Ctx;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum RunCommand {
    /// The nightly job for a night (release, expire, warn, tiers, sweep holds): locally the
    /// planner and workers run in this process over the local SQS; with --aws the deployed
    /// planner is invoked.
    Nightly {
        /// The night (local date) to bring members up to; default yesterday.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// With --aws: the planner function (output NightlyPlannerFunctionName).
        #[arg(long, env = "NIGHTLY_PLANNER_FUNCTION")]
        function: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The monthly statement e-mails of a month (what the 1st of each month runs): locally
    /// queued for `bonus dev` to send; with --aws the deployed function is invoked.
    Statements {
        /// YYYY-MM; default last month.
        #[arg(long)]
        month: Option<String>,
        /// With --aws: the function (output MonthlyStatementsFunctionName).
        #[arg(long, env = "MONTHLY_STATEMENTS_FUNCTION")]
        function: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: RunCommand) -> anyhow::Result<()> {
    match command {
        RunCommand::Nightly {
            as_of,
            function,
            store,
        } => {
            let as_of = as_of
                .unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Duration::days(1));
            if store.aws {
                let function = function
                    .context("--function or NIGHTLY_PLANNER_FUNCTION: the deployed planner")?;
                let payload = serde_json::json!({ "as_of": as_of.to_string() });
                println!("{}", invoke_function(&function, &payload).await?);
                return Ok(());
            }
            let (db_store, _db) = open_store(&store).await?;
            let dev = std::fs::read_to_string(dev_info_path(&store.data_dir))
                .ok()
                .and_then(|t| serde_json::from_str::<DevInfo>(&t).ok())
                .and_then(|i| i.sqs);
            let (_moto, endpoint) = match dev {
                Some(e) => (None, e),
                None => {
                    let m = bonus_local_stack::moto::LocalMoto::start()?;
                    let e = m.endpoint.clone();
                    (Some(m), e)
                }
            };
            let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&endpoint));
            let url = bonus_sqs::ensure_queue(&sqs, LOCAL_NIGHTLY_QUEUE, 30, 5).await?;
            let ctx = Ctx::new(db_store, Arc::new(SystemClock), Duration::from_secs(60));
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "night {msg} [{bar:40}] {pos}/{len} shard tasks",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(as_of.to_string());
            let s = nightly::run_in_process(&ctx, &sqs, &url, as_of, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            let c = s.counts;
            println!(
                "nightly run up to {as_of}: {} night(s), {} shard task(s)",
                s.nights, s.tasks
            );
            println!("  members processed   {}", c.members);
            println!(
                "  releases            {} ({} points)",
                c.releases, c.points_released
            );
            println!(
                "  expiries            {} ({} points)",
                c.expiries, c.points_expired
            );
            println!(
                "  expiries deferred   {} (points held by open holds)",
                c.expiries_deferred
            );
            println!("  warnings queued     {}", c.warnings);
            println!("  tiers changed       {}", c.tiers_changed);
            println!("  holds swept         {}", s.holds_swept);
            println!("  DynamoDB items read {}", s.items_read);
            Ok(())
        }
        RunCommand::Statements {
            month,
            function,
            store,
        } => {
            let month = match month {
                Some(m)
                    if chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d")
                        .is_ok() =>
                {
                    m
                }
                Some(m) => anyhow::bail!("--month {m}: YYYY-MM"),
                None => notifications::statement::previous_month(chrono::Utc::now().date_naive()),
            };
            if store.aws {
                let function = function
                    .context("--function or MONTHLY_STATEMENTS_FUNCTION: the deployed function")?;
                let payload = serde_json::json!({ "month": month });
                println!("{}", invoke_function(&function, &payload).await?);
                return Ok(());
            }
            let endpoint = std::fs::read_to_string(dev_info_path(&store.data_dir))
                .ok()
                .and_then(|t| serde_json::from_str::<DevInfo>(&t).ok())
                .and_then(|i| i.sqs)
                .context("start the local system first (make run): it sends the statements")?;
            let (db_store, _db) = open_store(&store).await?;
            let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&endpoint));
            let url = bonus_sqs::ensure_queue(&sqs, LOCAL_NOTIFY_QUEUE, 30, 10).await?;
            let ctx = Ctx::new(db_store, Arc::new(SystemClock), Duration::from_secs(60));
            let tasks = notifications::statement::plan(&ctx, &sqs, &url, &month)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "statements for {month}: {tasks} shard task(s) queued; `bonus dev` sends them \
                 within seconds (see `bonus notifications list`)"
            );
            Ok(())
        }
    }
}
