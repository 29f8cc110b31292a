//! `bonus apply FILE`: config as code. Validates the whole file first; writes nothing if any
//! field is wrong. Safe to run twice: programmes, partners and keys are overwritten with the
//! same values, members already enrolled are left as they are.

use chrono::Utc;
use shared::config::{parse, ConfigPlan};
use shared::store::campaigns::CampaignApplied;
use shared::store::Store;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    pub programmes: usize,
    pub partners: usize,
    pub api_keys: usize,
    pub members_enrolled: usize,
    pub members_existing: usize,
    pub campaigns: Vec<String>,
}

/// Parse and validate a config file. Errors are one line per problem, naming the field.
pub fn plan_file(text: &str) -> Result<ConfigPlan, Vec<String>> {
    let file = parse(text).map_err(|e| vec![e])?;
    file.plan(Utc::now())
}

pub async fn apply(store: &Store, plan: &ConfigPlan) -> anyhow::Result<ApplySummary> {
    // Checks that need the stored state come before any write, so a refused file changes nothing.
    for c in &plan.campaigns {
        if let Some(old) = store.get_campaign(&c.partner_id, &c.id).await? {
            if c.budget < old.budget {
                anyhow::bail!(
                    "campaign {}: budget {} is below the {} already granted; budgets only grow",
                    c.id,
                    c.budget,
                    old.budget
                );
            }
            if c.budget_shards != old.budget_shards {
                anyhow::bail!(
                    "campaign {}: budget_shards is fixed at {} once created",
                    c.id,
                    old.budget_shards
                );
            }
        }
    }
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
    for c in &plan.campaigns {
        let line = match store.put_campaign(c).await? {
            CampaignApplied::Created => format!(
                "campaign {} created with a budget of {} points",
                c.id, c.budget
            ),
            CampaignApplied::Updated => format!("campaign {} updated", c.id),
            CampaignApplied::ToppedUp(p) => format!("campaign {} topped up by {p} points", c.id),
            CampaignApplied::BudgetCannotShrink(old) => {
                anyhow::bail!(
                    "campaign {}: budget {} is below the {old} already granted; budgets only grow",
                    c.id,
                    c.budget
                )
            }
            CampaignApplied::ShardsFixed(old) => {
                anyhow::bail!(
                    "campaign {}: budget_shards is fixed at {old} once created",
                    c.id
                )
            }
        };
        s.campaigns.push(line);
    }
    for b in &plan.behaviour {
        store.put_behaviour_campaign(b).await?;
        s.campaigns.push(format!(
            "behaviour campaign {} ({} points per {})",
            b.id, b.points, b.event_type
        ));
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
