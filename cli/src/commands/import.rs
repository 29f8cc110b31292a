//! `bonus import orders --partner P FILE.jsonl`: book the deliveries a shop lost, one
//! canonical event per line (`order.paid`, `order.refunded`, `order.cancelled`, as the order
//! webhook takes them; `-` reads stdin), with a progress bar and a summary. Idempotent: run
//! it again and what was booked is not booked twice (bonus_ops::import).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bonus_domain::clock::SystemClock;
use bonus_lambda::app::Ctx;
use clap::Subcommand;

use crate::common::*;

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Orders, refunds and cancellations a shop did not deliver (JSON lines).
    Orders {
        #[arg(long)]
        partner: String,
        /// The JSON-lines file (`-`: standard input).
        file: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Orders {
        partner,
        file,
        store,
    } = command;
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(&file)
            .map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?;
    }
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (store, _db) = open_store(&store).await?;
    if store.get_partner(&partner).await?.is_none() {
        anyhow::bail!("no partner '{partner}'");
    }
    let ctx = Ctx::new(store, Arc::new(SystemClock), Duration::from_secs(60));
    let bar = indicatif::ProgressBar::new(lines.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("import [{bar:40}] {pos}/{len} lines {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let s = bonus_ops::import::import(&ctx, &partner, &lines, |done| bar.set_position(done as u64))
        .await;
    bar.finish_and_clear();
    println!(
        "{} lines: {} booked, {} booked before (nothing written), {} refused, {} failed",
        s.lines,
        s.booked,
        s.already_booked,
        s.refusals.len(),
        s.failed
    );
    for (code, n) in &s.refused {
        println!("  refused {code}: {n}");
    }
    for (line, code, message) in s.refusals.iter().take(20) {
        println!("  line {line}: {code}: {message}");
    }
    if s.failed > 0 {
        anyhow::bail!(
            "{} lines failed on our side: run the import again (it books nothing twice)",
            s.failed
        );
    }
    Ok(())
}
