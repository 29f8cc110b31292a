//! `bonus`: the ops CLI and local runner. See `bonus --help`. Argument parsing and dispatch
//! only: each command is a module of `commands/`, and the work they start is library code
//! (`bonus-ops`, `bonus-local-stack`) that the tests call too.

mod commands;
mod common;

use common::StoreArgs;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        command: commands::campaign::CampaignCommand,
    },
    /// Webhook tools.
    Webhook {
        #[command(subcommand)]
        command: commands::webhook::WebhookCommand,
    },
    /// Checkout holds.
    Holds {
        #[command(subcommand)]
        command: commands::holds::HoldsCommand,
    },
    /// Run jobs.
    Run {
        #[command(subcommand)]
        command: commands::run::RunCommand,
    },
    /// Member messages: templates.
    Notify {
        #[command(subcommand)]
        command: commands::notify::NotifyCommand,
    },
    /// Member messages: what was sent.
    Notifications {
        #[command(subcommand)]
        command: commands::notifications::NotificationsCommand,
    },
    /// Upgrade items written by an earlier version in place (idempotent; `bonus dev` runs it
    /// on start). With --aws, the deployed table.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// API keys: `bonus keys new` prints a new key for a partner's `api_keys` in the
    /// config file, and its SHA-256 (`key_sha256`, to keep the key itself out of the file).
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
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
        command: commands::report::ReportCommand,
    },
    /// Coalition clearing between partners (monthly statements).
    Clearing {
        #[command(subcommand)]
        command: commands::clearing::ClearingCommand,
    },
    /// Dead-letter queues: list them, look into one, redrive one to its source queue.
    Dlq {
        #[command(subcommand)]
        command: commands::dlq::DlqCommand,
    },
    /// Adjustments: credit or debit a member's points with a reason; approve or reject
    /// those waiting for a second person.
    Adjust {
        #[command(subcommand)]
        command: commands::adjust::AdjustCommand,
    },
    /// Gift-shop claims: look one up by its voucher code, return it.
    Claims {
        #[command(subcommand)]
        command: commands::claims::ClaimsCommand,
    },
    /// Bulk imports: the orders, refunds and cancellations a shop did not deliver.
    Import {
        #[command(subcommand)]
        command: commands::import::ImportCommand,
    },
    /// Members: merge a duplicate into another.
    Members {
        #[command(subcommand)]
        command: commands::members::MembersCommand,
    },
    /// The member site, locally: the newest login link or code it sent.
    Site {
        #[command(subcommand)]
        command: commands::site::SiteCommand,
    },
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
        Command::Site { command } => commands::site::run(command).await,
        Command::Members { command } => commands::members::run(command).await,
        Command::Adjust { command } => commands::adjust::run(command).await,
        Command::Claims { command } => commands::claims::run(command).await,
        Command::Import { command } => commands::import::run(command).await,
        Command::Dev { port, seed, store } => commands::dev::run(port, seed, store).await,
        Command::Apply {
            file,
            dry_run,
            store,
        } => commands::apply::run(file, dry_run, store).await,
        Command::Migrate { store } => commands::migrate::run(store).await,
        Command::Keys { command } => commands::keys::run(command),
        Command::Audit { programme, store } => commands::audit::run(programme, store).await,
        Command::Campaign { command } => commands::campaign::run(command).await,
        Command::Webhook { command } => commands::webhook::run(command).await,
        Command::Holds { command } => commands::holds::run(command).await,
        Command::Run { command } => commands::run::run(command).await,
        Command::Notify { command } => commands::notify::run(command).await,
        Command::Notifications { command } => commands::notifications::run(command).await,
        Command::Report { command } => commands::report::run(command).await,
        Command::Clearing { command } => commands::clearing::run(command).await,
        Command::Dlq { command } => commands::dlq::run(command).await,
    }
}
