//! `bonus claims`: look up a gift-shop claim by its voucher code, and return it as ops (the
//! same service as the partner API's `/v1/partner/claims/{code}/return`,
//! crates/services/src/claims.rs). The acting person is `--as`, else `BONUS_ACTOR`, else
//! the login name.

use std::sync::Arc;
use std::time::Duration;

use bonus_domain::changes::{parse_actor, Actor};
use bonus_domain::claim_return::ReturnRequest;
use bonus_domain::clock::SystemClock;
use bonus_domain::error::Error;
use bonus_domain::hold::Hold;
use bonus_lambda::app::Ctx;
use bonus_services::claims;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum ClaimsCommand {
    /// A claim by its voucher code: reward, member, points, status, and its return.
    Show {
        #[arg(long)]
        programme: String,
        /// The voucher code (any case).
        code: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Return a claim once: its points back into the lots it took, its unit of stock and
    /// the member's claim count back. Again: nothing more happens.
    Return {
        #[arg(long)]
        programme: String,
        code: String,
        /// The partner that takes it back (default: the partner where it was claimed).
        #[arg(long)]
        partner: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// The person who acts.
        #[arg(long = "as")]
        actor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn failed(e: Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code, e.message)
}

fn line(h: &Hold) -> String {
    let (reward, code) = h
        .reward
        .as_ref()
        .map(|r| (r.reward_id.as_str(), r.voucher_code.as_str()))
        .unwrap_or_default();
    let mut out = format!(
        "{code}: {reward} for {} at {}, {} points, {:?}, claimed {}",
        h.member_id,
        h.partner_id,
        h.points,
        h.status,
        h.created_at.to_rfc3339()
    );
    if let Some(r) = &h.returned {
        out.push_str(&format!(
            "; returned {} to {} by {}: {} points back, {} expired",
            r.at.to_rfc3339(),
            r.partner_id,
            r.by,
            r.points,
            r.expired
        ));
    }
    out
}

pub async fn run(command: ClaimsCommand) -> anyhow::Result<()> {
    let (store_args, programme_id) = match &command {
        ClaimsCommand::Show {
            store, programme, ..
        }
        | ClaimsCommand::Return {
            store, programme, ..
        } => (store.clone(), programme.clone()),
    };
    let (store, _db) = open_store(&store_args).await?;
    let programme = store
        .get_programme(&programme_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no programme '{programme_id}'"))?;
    let ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(60));
    match command {
        ClaimsCommand::Show { code, .. } => {
            let claim = claims::find(&ctx, &programme.id, None, &code)
                .await
                .map_err(failed)?;
            println!("{}", line(&claim));
        }
        ClaimsCommand::Return {
            code,
            partner,
            note,
            actor,
            ..
        } => {
            let who = match actor {
                None => bonus_ops::apply::cli_actor(),
                Some(name) => Actor {
                    name: parse_actor(&name).map_err(|e| anyhow::anyhow!("--as: {e}"))?,
                    via: "cli".into(),
                },
            };
            let claim = claims::find(&ctx, &programme.id, None, &code)
                .await
                .map_err(failed)?;
            let ask = ReturnRequest {
                partner_id: partner.unwrap_or_else(|| claim.partner_id.clone()),
                by: who.name,
                note,
            };
            let (claim, returned_now) =
                claims::return_claim(&ctx, programme.time_zone, &claim, &ask, None)
                    .await
                    .map_err(failed)?;
            if !returned_now {
                println!("returned before, nothing more done");
            }
            println!("{}", line(&claim));
        }
    }
    Ok(())
}
