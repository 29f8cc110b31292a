//! `bonus apply FILE`: config as code. Validates the whole file first; writes nothing if any
//! field is wrong. Safe to run twice: programmes, partners and keys are overwritten with the
//! same values, members already enrolled are left as they are.

use chrono::Utc;
use shared::config::{parse, ConfigPlan};
use shared::store::Store;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    pub programmes: usize,
    pub partners: usize,
    pub api_keys: usize,
    pub members_enrolled: usize,
    pub members_existing: usize,
}

/// Parse and validate a config file. Errors are one line per problem, naming the field.
pub fn plan_file(text: &str) -> Result<ConfigPlan, Vec<String>> {
    let file = parse(text).map_err(|e| vec![e])?;
    file.plan(Utc::now())
}

pub async fn apply(store: &Store, plan: &ConfigPlan) -> anyhow::Result<ApplySummary> {
    let mut s = ApplySummary::default();
    for p in &plan.programmes {
        store.put_programme(p).await?;
        s.programmes += 1;
    }
    for p in &plan.partners {
        store.put_partner(p).await?;
        s.partners += 1;
    }
    for (hash, rec) in &plan.api_keys {
        store.put_api_key(hash, rec).await?;
        s.api_keys += 1;
    }
    for m in &plan.members {
        if store.enrol_member(m).await? {
            s.members_enrolled += 1;
        } else {
            s.members_existing += 1;
        }
    }
    Ok(s)
}
