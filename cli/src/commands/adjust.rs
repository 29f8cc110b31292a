//! `bonus adjust`: credit or debit a member's points with a reason, as ops on behalf of a
//! partner (the issuer of a credit, and whose own points a debit takes first), and approve
//! or reject adjustments that wait for a second person. The same rules as the partner API
//! (`/v1/partner/adjustments`, crates/services/src/adjust.rs); the acting person is `--as`,
//! else `BONUS_ACTOR`, else the login name.

use std::sync::Arc;
use std::time::Duration;

use bonus_domain::adjustment::{Adjustment, Reason, Status};
use bonus_domain::changes::{parse_actor, Actor};
use bonus_domain::clock::SystemClock;
use bonus_domain::error::Error;
use bonus_lambda::app::Ctx;
use bonus_services::adjust::{self, AdjustAsk};
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum AdjustCommand {
    /// Credit (points above 0) or debit (below 0) a member; above the programme's
    /// approval threshold it waits for `bonus adjust approve` by someone else.
    Request {
        /// The partner the adjustment is made for.
        #[arg(long)]
        partner: String,
        #[arg(long)]
        member: String,
        #[arg(long, allow_hyphen_values = true)]
        points: i64,
        /// goodwill, compensation, correction, migration, chargeback or fraud.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        note: String,
        /// Your name for it: the same reference again does nothing more.
        #[arg(long)]
        reference: String,
        /// The person who acts.
        #[arg(long = "as")]
        actor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Approve an adjustment waiting for a second person (never the one who asked).
    Approve {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        id: String,
        #[arg(long = "as")]
        actor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reject an adjustment waiting for a second person.
    Reject {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        id: String,
        #[arg(long = "as")]
        actor: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A partner's adjustments, newest first (`--pending`: those waiting for approval).
    List {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        pending: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn who(actor: Option<String>) -> anyhow::Result<Actor> {
    match actor {
        None => Ok(bonus_ops::apply::cli_actor()),
        Some(name) => Ok(Actor {
            name: parse_actor(&name).map_err(|e| anyhow::anyhow!("--as: {e}"))?,
            via: "cli".into(),
        }),
    }
}

fn line(a: &Adjustment) -> String {
    let mut out = format!(
        "{} {} {:+} ({}) for {}: {:?}, asked by {}",
        a.adjustment_id,
        a.reference,
        a.points,
        a.reason.code(),
        a.member_id,
        a.status,
        a.requested_by
    );
    if let Some(by) = &a.decided_by {
        out.push_str(&format!(", decided by {by}"));
    }
    if a.status == Status::Applied {
        out.push_str(&format!(", {} applied", a.applied));
        if a.debt > 0 {
            out.push_str(&format!(", {} owed", a.debt));
        }
        if a.shortfall > 0 {
            out.push_str(&format!(", {} short", a.shortfall));
        }
    }
    out
}

fn failed(e: Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code, e.message)
}

pub async fn run(command: AdjustCommand) -> anyhow::Result<()> {
    let (store_args, partner_id) = match &command {
        AdjustCommand::Request { store, partner, .. }
        | AdjustCommand::Approve { store, partner, .. }
        | AdjustCommand::Reject { store, partner, .. }
        | AdjustCommand::List { store, partner, .. } => (store.clone(), partner.clone()),
    };
    let (store, _db) = open_store(&store_args).await?;
    let partner = store
        .get_partner(&partner_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no partner '{partner_id}'"))?;
    let programme = store
        .get_programme(&partner.programme_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no programme '{}'", partner.programme_id))?;
    let ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(60));
    match command {
        AdjustCommand::Request {
            member,
            points,
            reason,
            note,
            reference,
            actor,
            ..
        } => {
            let reason = Reason::parse(&reason).ok_or_else(|| {
                anyhow::anyhow!(
                    "--reason: goodwill, compensation, correction, migration, chargeback or fraud"
                )
            })?;
            let ask = AdjustAsk {
                member_id: &member,
                points,
                reason,
                note: &note,
                reference: &reference,
            };
            // Ops may adjust any member of the programme.
            let admit = |a: Option<bonus_domain::account::Account>| {
                a.ok_or_else(|| {
                    Error::not_found("member_not_found", "no such member in this programme")
                })
            };
            let (adj, _) = Box::pin(adjust::request(
                &ctx,
                &programme,
                &partner.id,
                &who(actor)?,
                &ask,
                &admit,
            ))
            .await
            .map_err(failed)?;
            println!("{}", line(&adj));
        }
        AdjustCommand::Approve { id, actor, .. } => {
            let adj = Box::pin(adjust::decide(
                &ctx,
                &programme,
                &partner.id,
                &id,
                true,
                &who(actor)?,
            ))
            .await
            .map_err(failed)?;
            println!("{}", line(&adj));
        }
        AdjustCommand::Reject { id, actor, .. } => {
            let adj = Box::pin(adjust::decide(
                &ctx,
                &programme,
                &partner.id,
                &id,
                false,
                &who(actor)?,
            ))
            .await
            .map_err(failed)?;
            println!("{}", line(&adj));
        }
        AdjustCommand::List { pending, .. } => {
            let status = pending.then_some(Status::PendingApproval);
            for a in ctx.store.adjustments(&partner.id, status, 1000).await? {
                println!("{}", line(&a));
            }
        }
    }
    Ok(())
}
