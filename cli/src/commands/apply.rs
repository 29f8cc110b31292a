//! `bonus apply FILE`: a config file checked, diffed and written.

use std::path::PathBuf;

use bonus_ops::apply;

use crate::common::*;

pub async fn run(file: PathBuf, dry_run: bool, store: StoreArgs) -> anyhow::Result<()> {
    let plan = read_plan(&file)?;
    if dry_run {
        require_kms_for_aws(&store)?;
        let (store, _db) = open_store(&store).await?;
        for line in apply::diff(&store, &plan).await? {
            println!("{line}");
        }
        println!("dry run: nothing written");
        return Ok(());
    }
    require_kms_for_aws(&store)?;
    let (store, _db) = open_store(&store).await?;
    let s = apply::apply(&store, &plan).await?;
    println!(
                "applied {}: {} programme(s), {} partner(s), {} API key(s), {} member(s) enrolled, {} already enrolled",
                file.display(),
                s.programmes,
                s.partners,
                s.api_keys,
                s.members_enrolled,
                s.members_existing
            );
    for line in &s.campaigns {
        println!("{line}");
    }
    Ok(())
}
