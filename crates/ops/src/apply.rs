//! `bonus apply FILE`: config as code. Validates the whole file first; writes nothing if any
//! field is wrong. Safe to run twice: programmes, partners and keys are overwritten with the
//! same values, members already enrolled are left as they are.

use bonus_domain::changes::{parse_actor, Actor, Change, Subject};
use bonus_domain::config::{parse, ConfigPlan};
use bonus_dynamodb::campaigns::CampaignApplied;
use bonus_dynamodb::rewards::RewardApplied;
use bonus_dynamodb::Store;
use bonus_secrets::{open_partner, seal_partner, Sealer};
use chrono::Utc;

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

/// Apply with the secrets key from the environment ([`Sealer::from_env`]: KMS when
/// `SECRETS_KMS_KEY_ID` is set, as it must be for a deployed table).
pub async fn apply(store: &Store, plan: &ConfigPlan) -> anyhow::Result<ApplySummary> {
    apply_with(store, plan, &Sealer::from_env().await?).await
}

/// The person running the CLI, for partners' audit trails: `BONUS_ACTOR`, else the login
/// name, else "ops".
pub fn cli_actor() -> Actor {
    let name = ["BONUS_ACTOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|n| parse_actor(&n).ok())
        .unwrap_or_else(|| "ops".into());
    Actor {
        name,
        via: "cli".into(),
    }
}

/// Apply: partners' signing secrets are sealed with `sealer` before they are stored.
pub async fn apply_with(
    store: &Store,
    plan: &ConfigPlan,
    sealer: &Sealer,
) -> anyhow::Result<ApplySummary> {
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
    for r in &plan.rewards {
        if let Some(old) = store.get_reward(&r.programme_id, &r.reward_id).await? {
            if r.granted < old.granted {
                anyhow::bail!(
                    "reward {}: stock {} is below the {} already put in; stock only grows",
                    r.reward_id,
                    r.granted,
                    old.granted
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
        let mut p = p.clone();
        if let Some(stored) = store.get_partner(&p.id).await? {
            if plan.partner_settings_kept.contains(&p.id) {
                p.rates = stored.rates;
                p.redemption = stored.redemption;
                p.sandbox = stored.sandbox;
            }
            if plan.partner_secrets_kept.contains(&p.id) {
                p.webhook_secrets = stored.webhook_secrets.clone();
            }
            // Subscriptions are the partner's own (the partner API): never in the file.
            p.webhooks = stored.webhooks.clone();
            p.settings_version = stored.settings_version + 1;
        }
        store.put_partner(&seal_partner(sealer, &p).await?).await?;
        s.partners += 1;
    }
    for (hash, rec) in &plan.api_keys {
        store.put_api_key(hash, rec).await?;
        s.api_keys += 1;
    }
    let who = cli_actor();
    for c in &plan.campaigns {
        let old = store.get_campaign(&c.partner_id, &c.id).await?;
        if old.as_ref() == Some(c) {
            s.campaigns.push(format!("campaign {} unchanged", c.id));
            continue;
        }
        let change = Change::of(
            &c.partner_id,
            &store.random.hex(4),
            chrono::Utc::now(),
            &who,
            Subject::Campaign,
            &c.id,
            if old.is_some() { "updated" } else { "created" },
            old.as_ref(),
            Some(c),
        );
        let line = match store.put_campaign(c, Some(&change)).await? {
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
            CampaignApplied::Raced => {
                anyhow::bail!("campaign {} changed while applying; apply again", c.id)
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
        if let Err(was) = store.put_behaviour_campaign(b).await? {
            anyhow::bail!(
                "behaviour campaign {}: budget {:?} is below the {was} already granted; budgets only grow",
                b.id,
                b.budget
            );
        }
        s.campaigns.push(format!(
            "behaviour campaign {} ({} points per {})",
            b.id, b.points, b.event_type
        ));
    }
    for r in &plan.rewards {
        let line = match store.put_reward(r).await? {
            RewardApplied::Created => {
                format!(
                    "reward {} created with a stock of {}",
                    r.reward_id, r.granted
                )
            }
            RewardApplied::Updated { topped_up: 0 } => format!("reward {} updated", r.reward_id),
            RewardApplied::Updated { topped_up } => {
                format!("reward {} topped up by {topped_up}", r.reward_id)
            }
            RewardApplied::RefusedShrink { granted } => anyhow::bail!(
                "reward {}: stock {} is below the {granted} already put in",
                r.reward_id,
                r.granted
            ),
        };
        s.campaigns.push(line);
    }
    for m in &plan.members {
        if store.enrol_member(m).await? == bonus_dynamodb::config::Enrolled::Yes {
            s.members_enrolled += 1;
        } else {
            // Customer ids listed later still link to the member (the profile itself is
            // left as it is).
            store.link_external_ids(m).await?;
            s.members_existing += 1;
        }
    }
    for c in &plan.companies {
        let (p, id) = (&c.profile.programme_id, &c.profile.member_id);
        if store
            .enrol_with(&c.profile, Some(c.company.clone()))
            .await?
            == bonus_dynamodb::config::Enrolled::Yes
        {
            s.members_enrolled += 1;
        } else {
            match store.get_account(p, id).await? {
                Some(a) if a.company.is_some() => s.members_existing += 1,
                _ => {
                    anyhow::bail!("company {id}: a member with this id exists and is not a company")
                }
            }
        }
        // Users: the file's roles (setting a role again changes nothing).
        for (user, default) in &c.users {
            store.put_company_user(user, *default).await?;
        }
    }
    Ok(s)
}

/// What applying `plan` would change, one line per entity: create, update, unchanged (or
/// refused). Reads only.
pub async fn diff(store: &Store, plan: &ConfigPlan) -> anyhow::Result<Vec<String>> {
    let sealer = Sealer::from_env().await?;
    fn verdict<T: PartialEq>(old: Option<T>, new: &T) -> &'static str {
        match old {
            None => "create   ",
            Some(o) if &o == new => "unchanged",
            Some(_) => "update   ",
        }
    }
    let mut out = Vec::new();
    for p in &plan.programmes {
        out.push(format!(
            "{} programme {}",
            verdict(store.get_programme(&p.id).await?, p),
            p.id
        ));
    }
    for p in &plan.partners {
        out.push(format!(
            "{} partner {}",
            verdict(
                match store.get_partner(&p.id).await? {
                    Some(stored) => Some(open_partner(&sealer, &stored).await?),
                    None => None,
                },
                p
            ),
            p.id
        ));
    }
    for (hash, k) in &plan.api_keys {
        let old = store
            .get_api_key(hash)
            .await?
            .map(|o| (o.partner_id, o.label, o.scopes));
        let new = (k.partner_id.clone(), k.label.clone(), k.scopes.clone());
        out.push(format!(
            "{} api key '{}' of {}",
            verdict(old, &new),
            k.label,
            k.partner_id
        ));
    }
    for c in &plan.campaigns {
        let line = match store.get_campaign(&c.partner_id, &c.id).await? {
            None => format!("create    campaign {} with a budget of {}", c.id, c.budget),
            Some(old) if c.budget < old.budget => {
                format!(
                    "REFUSED   campaign {}: budget {} below the {} granted",
                    c.id, c.budget, old.budget
                )
            }
            Some(old) if old.budget_shards != c.budget_shards => {
                format!(
                    "REFUSED   campaign {}: budget_shards is fixed at {}",
                    c.id, old.budget_shards
                )
            }
            Some(old) if c.budget > old.budget => {
                format!(
                    "update    campaign {}: top up by {}",
                    c.id,
                    c.budget - old.budget
                )
            }
            Some(old) => format!("{} campaign {}", verdict(Some(old), c), c.id),
        };
        out.push(line);
    }
    for b in &plan.behaviour {
        let old: Option<bonus_domain::campaign::BehaviourCampaign> = store
            .get(bonus_dynamodb::keys::behaviour_campaign(
                &b.partner_id,
                &b.id,
            ))
            .await?;
        out.push(format!("{} behaviour campaign {}", verdict(old, b), b.id));
    }
    for r in &plan.rewards {
        let line = match store.get_reward(&r.programme_id, &r.reward_id).await? {
            None => format!("create    reward {} (stock {})", r.reward_id, r.granted),
            Some(old) if r.granted < old.granted => format!(
                "REFUSED   reward {}: stock {} below the {} already put in",
                r.reward_id, r.granted, old.granted
            ),
            Some(old) if r.granted > old.granted => format!(
                "update    reward {}: top up by {}",
                r.reward_id,
                r.granted - old.granted
            ),
            Some(_) => format!("update    reward {}", r.reward_id),
        };
        out.push(line);
    }
    for m in &plan.members {
        let exists = store
            .get_account(&m.programme_id, &m.member_id)
            .await?
            .is_some();
        out.push(format!(
            "{} member {} in {}",
            if exists { "unchanged" } else { "create   " },
            m.member_id,
            m.programme_id
        ));
    }
    for c in &plan.companies {
        let (p, id) = (&c.profile.programme_id, &c.profile.member_id);
        let exists = store.get_account(p, id).await?.is_some();
        out.push(format!(
            "{} company {id} in {p} ({} user(s))",
            if exists { "update   " } else { "create   " },
            c.users.len()
        ));
    }
    Ok(out)
}
