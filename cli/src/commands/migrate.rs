//! `bonus migrate`: items written by an earlier version upgraded in place.

use crate::common::*;

pub async fn run(store: StoreArgs) -> anyhow::Result<()> {
    require_kms_for_aws(&store)?;
    let (store, _db) = open_store(&store).await?;
    let total = bonus_ops::migrate::approximate_items(&store).await?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("migrate [{bar:40}] {pos}/~{len} items {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let m = bonus_ops::migrate::migrate(&store, &|n| {
        let n = n as u64;
        if n > bar.length().unwrap_or(0) {
            bar.set_length(n);
        }
        bar.set_position(n);
    })
    .await?;
    bar.finish_and_clear();
    println!(
        "{} item(s) read ({} accounts): {} upgraded, {} marked current, {} left as they are (see `bonus audit`)",
        m.items, m.accounts, m.upgraded, m.marked, m.left
    );
    if m.left > 0 {
        anyhow::bail!(
            "{} item(s) could not be upgraded; run again, then `bonus audit`",
            m.left
        );
    }
    Ok(())
}
