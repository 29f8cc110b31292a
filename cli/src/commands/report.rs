//! `bonus report campaign`: the campaign report (text, CSV, SVG).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum ReportCommand {
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

pub async fn run(command: ReportCommand) -> anyhow::Result<()> {
    match command {
        ReportCommand::Campaign {
            id,
            partner,
            csv,
            svg,
            store,
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
    }
}
