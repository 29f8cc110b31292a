//! `bonus migrate`: items written by an earlier version upgraded in place.

use crate::common::*;

pub async fn run(store: StoreArgs) -> anyhow::Result<()> {
    let (store, _db) = open_store(&store).await?;
    let m = bonus_ops::migrate::migrate(&store).await?;
    println!(
        "{} account(s) read: {} upgraded, {} left as they are (see `bonus audit`)",
        m.accounts, m.upgraded, m.left
    );
    if m.left > 0 {
        anyhow::bail!("{} account(s) could not be upgraded", m.left);
    }
    Ok(())
}
