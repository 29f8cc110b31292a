//! `bonus members merge`: merge a duplicate member into another, as ops (any member of the
//! programme). The enrolling partner does the same with `POST /v1/members/{id}/merge`.

use std::sync::Arc;
use std::time::Duration;

use bonus_domain::clock::SystemClock;
use bonus_domain::error::Error;
use bonus_lambda::app::Ctx;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum MembersCommand {
    /// Merge DUPLICATE into SURVIVOR: its points (with their expiry and issuer), debt,
    /// purchase history, customer ids, e-mail and phone move; both statements say so.
    Merge {
        #[arg(long)]
        programme: String,
        /// The member that stays.
        #[arg(long)]
        into: String,
        /// The duplicate, merged away.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: MembersCommand) -> anyhow::Result<()> {
    match command {
        MembersCommand::Merge {
            programme,
            into,
            from,
            store,
        } => {
            let (store, _db) = open_store(&store).await?;
            let ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(60));
            // Ops may touch any member of the programme.
            let admit = |a: Option<bonus_domain::account::Account>| {
                a.ok_or_else(|| {
                    Error::not_found("member_not_found", "no such member in this programme")
                })
            };
            let merged = bonus_services::merge::merge(&ctx, &programme, &into, &from, &admit)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
            println!(
                "merged {} into {}: {} points in {} lot(s), {} step(s)",
                merged.duplicate_id, merged.survivor_id, merged.points, merged.lots, merged.steps
            );
            Ok(())
        }
    }
}
