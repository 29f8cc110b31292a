//! `bonus holds sweep`: release checkout holds whose time ran out.

use std::sync::Arc;
use std::time::Duration;

use bonus_domain::clock::SystemClock;
use bonus_lambda::app::Ctx;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum HoldsCommand {
    /// Release holds whose time ran out (what the scheduled sweeper does every 5 minutes).
    Sweep {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: HoldsCommand) -> anyhow::Result<()> {
    match command {
        HoldsCommand::Sweep { store } => {
            let (store, _db) = open_store(&store).await?;
            let ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(60));
            let summary = bonus_services::holds::sweep(&ctx, 1_000)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            println!(
                "{} lapsed hold(s) found, {} released, {} failed (see the log)",
                summary.lapsed, summary.released, summary.failed
            );
            Ok(())
        }
    }
}
