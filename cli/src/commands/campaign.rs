//! `bonus campaign show`: a campaign and its budget.

use anyhow::Context;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// A campaign's settings and its budget: granted, spent, remaining, per shard.
    Show {
        partner: String,
        campaign: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: CampaignCommand) -> anyhow::Result<()> {
    match command {
        CampaignCommand::Show {
            partner,
            campaign,
            store,
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
    }
}
