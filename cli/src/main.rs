//! `bonus`: the ops CLI and local runner. See `bonus --help`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bonus_domain::clock::SystemClock;
use bonus_dynamodb::{schema, Store};
use bonus_lambda::app::Ctx;
use bonus_local_stack::dynamo::LocalDynamo;
use bonus_ops::{apply, dev, webhook};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bonus",
    version,
    about = "Bonus points platform: ops CLI and local runner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole API locally on 127.0.0.1 over the embedded DynamoDB (data in --data-dir).
    Dev {
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Apply this config file on start (idempotent).
        #[arg(long)]
        seed: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Load programmes, partners, API keys and members from a YAML file (idempotent).
    Apply {
        file: PathBuf,
        /// Validate and show what would be written, write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Campaign tools.
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// Webhook tools.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Checkout holds.
    Holds {
        #[command(subcommand)]
        command: HoldsCommand,
    },
    /// Run jobs.
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// Member messages: templates.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Member messages: what was sent.
    Notifications {
        #[command(subcommand)]
        command: NotificationsCommand,
    },
    /// Recompute every member's balances and every partner's monthly clearing counters from
    /// the ledger entries, and report each difference (offline; reads the whole ledger).
    /// Exits with status 1 when there is a difference.
    Audit {
        /// Only this programme (default: all).
        #[arg(long)]
        programme: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Coalition clearing between partners (monthly statements).
    Clearing {
        #[command(subcommand)]
        command: ClearingCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// A campaign against the 3 equal periods before it: turnover, quantity and buyers of its
    /// SKUs (members and non-members), points issued and their cost, uplift and marketing
    /// ROI (docs/reports.md).
    Campaign {
        /// The campaign id.
        id: String,
        /// The partner, when several partners have a campaign with this id.
        #[arg(long)]
        partner: Option<String>,
        /// Write the figures as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the chart (the four periods side by side) as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum ClearingCommand {
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

#[derive(Subcommand)]
enum NotificationsCommand {
    /// The member messages recorded on a day (UTC; default today): channel, member, message,
    /// status, subject or SMS text.
    List {
        #[arg(long)]
        day: Option<chrono::NaiveDate>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Render a message template with sample data: subject, text, HTML and SMS.
    Preview {
        /// points_earned, points_earned_digest, points_available, points_expiring, points_expired,
        /// tier_changed, points_redeemed or monthly_statement.
        message: String,
        /// en, de, nl, sv or fi (others fall back to en).
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

#[derive(Subcommand)]
enum RunCommand {
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

#[derive(Subcommand)]
enum HoldsCommand {
    /// Release holds whose time ran out (what the scheduled sweeper does every 5 minutes).
    Sweep {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// A campaign's settings and its budget: granted, spent, remaining, per shard.
    Show {
        partner: String,
        campaign: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
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
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// DynamoDB endpoint; default: the running `bonus dev`, else the local data file.
    #[arg(long, env = "BONUS_DYNAMODB_ENDPOINT")]
    endpoint: Option<String>,
    /// Use the AWS account of the environment (TABLE_NAME, AWS_PROFILE, AWS_REGION).
    #[arg(long, conflicts_with = "endpoint")]
    aws: bool,
    #[arg(long, env = "TABLE_NAME", default_value = "bonus")]
    table: String,
    #[arg(long, env = "BONUS_DATA_DIR", default_value = ".bonus")]
    data_dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DevInfo {
    api: String,
    dynamodb: String,
    /// The local SQS (moto) that `bonus dev` started.
    #[serde(default)]
    sqs: Option<String>,
}

/// The queue of the nightly job, locally.
const LOCAL_NIGHTLY_QUEUE: &str = "bonus-nightly";
/// The queue of member messages, locally.
const LOCAL_NOTIFY_QUEUE: &str = "bonus-notifications";

/// Invoke a deployed function with a JSON payload; its answer.
async fn invoke_function(function: &str, payload: &serde_json::Value) -> anyhow::Result<String> {
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

fn dev_info_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev.json")
}

/// The store a command works on, and the embedded database if it had to start one.
async fn open_store(args: &StoreArgs) -> anyhow::Result<(Store, Option<LocalDynamo>)> {
    if args.aws {
        let config = aws_config_from_env().await;
        let mut store = Store::new(aws_sdk_dynamodb::Client::new(&config), &args.table);
        // The deployed e-mail index key (the EmailHashKey parameter); without it, members
        // are written without an e-mail index entry.
        store.email_key = std::env::var("EMAIL_HASH_KEY")
            .ok()
            .filter(|k| k.len() >= 16)
            .map(|k| k.into_bytes().into());
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

async fn aws_config_from_env() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

fn read_plan(file: &Path) -> anyhow::Result<bonus_domain::config::ConfigPlan> {
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Piped into `head`: end quietly when the reader goes away, as command-line tools do,
    // instead of failing on a closed stdout.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes to a pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev { port, seed, store } => run_dev(port, seed, store).await,
        Command::Apply {
            file,
            dry_run,
            store,
        } => {
            let plan = read_plan(&file)?;
            if dry_run {
                let (store, _db) = open_store(&store).await?;
                for line in apply::diff(&store, &plan).await? {
                    println!("{line}");
                }
                println!("dry run: nothing written");
                return Ok(());
            }
            let (store, _db) = open_store(&store).await?;
            let s = apply::apply(&store, &plan).await?;
            println!(
                "applied {}: {} programme(s), {} partner(s), {} API key(s), {} member(s) enrolled, {} already enrolled",
                file.display(),
                s.programmes,
                s.partners,
                s.api_keys,
                s.members_enrolled,
                s.members_existing
            );
            for line in &s.campaigns {
                println!("{line}");
            }
            Ok(())
        }
        Command::Run {
            command:
                RunCommand::Nightly {
                    as_of,
                    function,
                    store,
                },
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
        Command::Run {
            command:
                RunCommand::Statements {
                    month,
                    function,
                    store,
                },
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
        Command::Report {
            command:
                ReportCommand::Campaign {
                    id,
                    partner,
                    csv,
                    svg,
                    store,
                },
        } => {
            let (store, _db) = open_store(&store).await?;
            let (programme, campaign) =
                bonus_ops::report::find_campaign(&store, &id, partner.as_deref()).await?;
            let report = bonus_ops::report::gather(&store, &programme, &campaign).await?;
            print!("{}", bonus_ops::report::text(&report, programme.currency));
            if let Some(path) = csv {
                std::fs::write(&path, bonus_domain::report::csv(&report))
                    .with_context(|| format!("{}", path.display()))?;
                println!("CSV written to {}", path.display());
            }
            if let Some(path) = svg {
                let chart = bonus_ops::report::svg(&report, programme.currency)
                    .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
                std::fs::write(&path, chart).with_context(|| format!("{}", path.display()))?;
                println!("chart written to {}", path.display());
            }
            Ok(())
        }
        Command::Audit { programme, store } => {
            let (store, _db) = open_store(&store).await?;
            let programmes = match programme {
                Some(p) => vec![p],
                None => store.programme_ids().await?,
            };
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "audit [{bar:40}] {pos}/{len} members {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report =
                bonus_ops::audit::audit(&store, &programmes, chrono::Utc::now(), |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "audited {} programme(s): {} members, {} entries, {} partner-month counters",
                report.programmes, report.members, report.entries, report.counters
            );
            if report.differences.is_empty() {
                println!("no differences: balances and counters agree with the entries");
                return Ok(());
            }
            for d in &report.differences {
                println!("DIFFERENCE {d}");
            }
            bail!("{} difference(s)", report.differences.len())
        }
        Command::Clearing {
            command:
                ClearingCommand::Show {
                    programme,
                    month,
                    csv,
                    json,
                    store,
                },
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
        Command::Clearing {
            command:
                ClearingCommand::Close {
                    programme,
                    month,
                    function,
                    store,
                },
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
        Command::Notifications {
            command: NotificationsCommand::List { day, store },
        } => {
            let (store, _db) = open_store(&store).await?;
            let day = day.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let sent = store.deliveries_on(day).await?;
            if sent.is_empty() {
                println!("no messages on {day}");
            }
            for d in sent {
                println!(
                    "{} {:5} {:10} {:18} {:6} {:7} {}",
                    d.at.format("%H:%M:%S"),
                    d.channel,
                    d.member_id,
                    d.message,
                    d.locale,
                    d.status,
                    d.summary
                );
            }
            Ok(())
        }
        Command::Notify {
            command: NotifyCommand::Preview { message, locale },
        } => {
            let env = bonus_messages::environment();
            let r = bonus_messages::render(
                &env,
                &message,
                &locale,
                &bonus_domain::notify::sample(&message, &locale),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e} (messages: {})",
                    bonus_domain::notify::MESSAGES.join(", ")
                )
            })?;
            let sms = bonus_domain::notify::sms(&r.sms);
            println!("locale   {}", r.locale);
            println!("subject  {}\n", r.subject);
            println!("--- text ---\n{}\n", r.text);
            println!("--- html ---\n{}\n", r.html);
            println!(
                "--- sms ({:?}, {} segment(s)) ---\n{}",
                sms.encoding, sms.segments, sms.text
            );
            Ok(())
        }
        Command::Holds {
            command: HoldsCommand::Sweep { store },
        } => {
            let (store, _db) = open_store(&store).await?;
            let ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(60));
            let summary = bonus_services::holds::sweep(&ctx, 1_000)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            println!(
                "{} lapsed hold(s) found, {} released",
                summary.lapsed, summary.released
            );
            Ok(())
        }
        Command::Campaign {
            command:
                CampaignCommand::Show {
                    partner,
                    campaign,
                    store,
                },
        } => {
            let (store, _db) = open_store(&store).await?;
            let c = store
                .get_campaign(&partner, &campaign)
                .await?
                .with_context(|| format!("no campaign '{campaign}' at partner '{partner}'"))?;
            let status = store.budget_status(&c).await?;
            println!("campaign  {} ({}) at {}", c.id, c.name, c.partner_id);
            println!(
                "runs      {} to {}{}",
                c.starts_on,
                c.ends_on,
                if c.weekdays.is_empty() {
                    String::new()
                } else {
                    format!(" on {:?}", c.weekdays)
                }
            );
            println!("rule      {:?}", c.rule);
            println!(
                "skus      {}",
                c.skus.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            println!(
                "budget    {} points: {} spent, {} remaining",
                status.budget, status.spent, status.remaining
            );
            for s in &status.shards {
                println!(
                    "  shard {:02}: {} spent, {} remaining",
                    s.shard, s.spent, s.remaining
                );
            }
            Ok(())
        }
        Command::Webhook {
            command:
                WebhookCommand::Send {
                    partner,
                    file,
                    platform,
                    topic,
                    url,
                    secret,
                    order_id,
                    path,
                    store,
                },
        } => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
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
                    let p = store
                        .get_partner(&partner)
                        .await?
                        .with_context(|| format!("no partner '{partner}'"))?;
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

async fn run_dev(port: u16, seed: Option<PathBuf>, args: StoreArgs) -> anyhow::Result<()> {
    bonus_lambda::telemetry::init_json();
    let (listener, addr) = dev::bind(port).await?;
    let db_path = args.data_dir.join("dynamodb.sqlite");
    let db = LocalDynamo::start_file(&db_path)?;
    let store = Store::local(&db.endpoint, &args.table);
    if schema::ensure_table(&store.client, &store.table).await? {
        println!("created table '{}' in {}", store.table, db_path.display());
    }
    if let Some(seed) = &seed {
        let plan = read_plan(seed)?;
        let s = apply::apply(&store, &plan).await?;
        println!(
            "applied {}: {} programme(s), {} partner(s), {} member(s) new, {} existing",
            seed.display(),
            s.programmes,
            s.partners,
            s.members_enrolled,
            s.members_existing
        );
    }
    // SQS for the nightly job (and notifications): moto from .venv, on a free port.
    let moto = bonus_local_stack::moto::LocalMoto::start()?;
    let sqs = aws_sdk_sqs::Client::from_conf(bonus_sqs::local_config(&moto.endpoint));
    bonus_sqs::ensure_queue(&sqs, LOCAL_NIGHTLY_QUEUE, 30, 5).await?;
    let info = DevInfo {
        api: format!("http://{addr}"),
        dynamodb: db.endpoint.clone(),
        sqs: Some(moto.endpoint.clone()),
    };
    std::fs::write(
        dev_info_path(&args.data_dir),
        serde_json::to_string_pretty(&info)?,
    )?;
    // Configuration changes (bonus apply) show within 2 seconds locally.
    let ctx = Arc::new(Ctx::new(
        store,
        Arc::new(SystemClock),
        Duration::from_secs(2),
    ));
    println!(
        r#"
Bonus points platform, local
  API       http://{addr}
  DynamoDB  {dynamodb} (data in {db})
  SQS/SES/SNS {sqs} (moto; sent messages in full: {sqs}/moto-api/data.json)

Try:
  ./target/debug/bonus webhook send velo-shop infra/examples/order-paid.json
  curl -s -H 'Authorization: Bearer demo-velo-widget-key-0001' http://{addr}/v1/members/M-1001/balance
  ./target/debug/bonus webhook send velo-shop infra/examples/order-paid.json --order-id A-1002
  ./target/debug/bonus webhook send velo-shop infra/examples/order-paid.json --order-id A-1003 --secret whsec_d3Jvbmc=   # 401
  ./target/debug/bonus webhook send velo-shop infra/examples/order-campaign.json   # 150 + 130 campaign bonus (Fri) + 9
  ./target/debug/bonus campaign show velo-shop helmets-weekdays
  ./target/debug/bonus webhook send velo-shop infra/examples/webinar.json --path events   # 250 points, once
  ./target/debug/bonus webhook send velo-shop infra/examples/refund.json   # 1 of 2 helmets back: -49
  ./target/debug/bonus webhook send velo-shop infra/examples/shopify-orders-paid.json --platform shopify   # 120, matched by customer id
  ./target/debug/bonus webhook send velo-shop infra/examples/shopify-refund.json --platform shopify --topic refunds/create   # -10
  ./target/debug/bonus webhook send velo-shop infra/examples/woocommerce-order.json --platform woocommerce   # 90, matched by e-mail
  ./target/debug/bonus webhook send bonvito-bakery infra/examples/bonvito-last-month.json   # 1500, available already
  curl -s -X POST -H 'Authorization: Bearer demo-bonvito-cafe-key-0001' http://{addr}/v1/members/B-2001/holds --data '{{"points":1000,"reference":"receipt-42"}}'
  curl -s -X POST -H 'Authorization: Bearer demo-bonvito-cafe-key-0001' http://{addr}/v1/holds/<hold_id>/capture
  curl -s -X POST -H 'Authorization: Bearer demo-bonvito-bakery-key-0001' http://{addr}/v1/members/B-2001/rewards/espresso-cup/claim
  ./target/debug/bonus notifications list   # messages sent: e-mail to M-1001, SMS to B-2001 (after 08:00 Berlin)
  ./target/debug/bonus notify preview points_earned --locale nl
  ./target/debug/bonus run statements       # last month's statement e-mails
More in README.md. Ctrl-C stops; data stays in {data_dir}/.
"#,
        dynamodb = db.endpoint,
        sqs = moto.endpoint,
        db = db_path.display(),
        data_dir = args.data_dir.display(),
    );
    // Member messages: relay the outbox to the notifications queue and deliver, every 2 s,
    // through SES and SNS on moto (`bonus notifications list` shows what went out).
    let notify_queue = bonus_sqs::ensure_queue(&sqs, LOCAL_NOTIFY_QUEUE, 30, 10).await?;
    let mut senders =
        bonus_local_stack::moto::local_senders(&moto.endpoint, "points@bonus.local").await?;
    senders.unsubscribe_url =
        format!("http://{addr}/v1/unsubscribe/{{programme_id}}/{{member_id}}/{{token}}");
    let relay_ctx = ctx.clone();
    let relay = tokio::spawn(async move {
        loop {
            if let Err(e) =
                notifications::relay_once(&relay_ctx, &sqs, &notify_queue, 100, None).await
            {
                tracing::warn!(error = %e, "relay failed; retrying");
            }
            if let Err(e) =
                notifications::consume_all(&relay_ctx, &senders, &sqs, &notify_queue, 100).await
            {
                tracing::warn!(error = %e, "notifications failed; retrying");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let result = dev::serve(ctx, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    relay.abort();
    let _ = std::fs::remove_file(dev_info_path(&args.data_dir));
    println!("stopped");
    result
}
