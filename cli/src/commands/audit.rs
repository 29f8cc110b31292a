//! `bonus audit`: the ledger recomputed from its entries; exit 1 on any difference.

use anyhow::bail;

use crate::common::*;

pub async fn run(programme: Option<String>, store: StoreArgs) -> anyhow::Result<()> {
    let (store, _db) = open_store(&store).await?;
    let programmes = match programme {
        Some(p) => vec![p],
        None => store.programme_ids().await?,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("audit [{bar:40}] {pos}/{len} members {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = bonus_ops::audit::audit(&store, &programmes, chrono::Utc::now(), |done, total| {
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
