//! Campaign budgets: split over `budget_shards` counter items so that a busy campaign does
//! not make one item hot. An order reads the shards of the campaigns that may apply in its
//! one BatchGetItem and takes its bonus in its one TransactWriteItems, each take an update
//! conditional on `remaining >= take`: the budget can never go below zero, whatever runs
//! concurrently.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{from_item, key_map, keys, to_item, Store, StoreError, TxOutcome};
use bonus_domain::budget::{split_budget, BudgetShard, BudgetStatus, BudgetTake};
use bonus_domain::campaign::{BehaviourCampaign, Campaign};
use bonus_domain::changes::Change;
use bonus_domain::money::Points;

impl Store {
    /// A partner with its campaigns and behaviour campaigns: one Query on its partition.
    pub async fn partner_with_campaigns(
        &self,
        partner_id: &str,
    ) -> Result<Option<PartnerItems>, StoreError> {
        let items = self.query_items(&keys::partner(partner_id).0, "").await?;
        let mut out = PartnerItems::default();
        for item in items {
            match item.get(super::ENTITY) {
                Some(AttributeValue::S(e)) if e == "partner" => {
                    out.partner = Some(from_item(item)?)
                }
                Some(AttributeValue::S(e)) if e == "campaign" => {
                    out.campaigns.push(from_item(item)?)
                }
                Some(AttributeValue::S(e)) if e == "behaviour_campaign" => {
                    out.behaviour.push(from_item(item)?)
                }
                _ => {}
            }
        }
        Ok(out.partner.is_some().then_some(out))
    }

    /// Create or update a behaviour campaign; with a budget, its budget item (one shard,
    /// named by [`BehaviourCampaign::budget_id`]) is created with it, or topped up by the
    /// growth, in one transaction over the campaign as read. Budgets only grow: a smaller
    /// one is refused with what was granted.
    pub async fn put_behaviour_campaign(
        &self,
        c: &BehaviourCampaign,
    ) -> Result<Result<(), Points>, StoreError> {
        self.put_behaviour_campaign_with(c, None).await
    }

    /// A behaviour campaign and what its budget has left (none: unlimited).
    pub async fn behaviour_campaign(
        &self,
        partner_id: &str,
        campaign_id: &str,
    ) -> Result<Option<(BehaviourCampaign, Option<Points>)>, StoreError> {
        let Some(c): Option<BehaviourCampaign> = self
            .get(keys::behaviour_campaign(partner_id, campaign_id))
            .await?
        else {
            return Ok(None);
        };
        let left = match c.budget {
            None => None,
            Some(_) => self
                .get::<BudgetShard>(keys::budget_shard(partner_id, &c.budget_id(), 0))
                .await?
                .map(|s| s.remaining),
        };
        Ok(Some((c, left)))
    }

    /// As [`Store::put_behaviour_campaign`], with the partner API's audit record in the
    /// same transaction.
    pub async fn put_behaviour_campaign_with(
        &self,
        c: &BehaviourCampaign,
        change: Option<&Change>,
    ) -> Result<Result<(), Points>, StoreError> {
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let keys_ = keys::behaviour_campaign(&c.partner_id, &c.id);
            let old: Option<BehaviourCampaign> = self.get(keys_.clone()).await?;
            let granted = old.as_ref().and_then(|o| o.budget);
            if let (Some(was), new) = (granted, c.budget) {
                if new.unwrap_or(0) < was {
                    return Ok(Err(was));
                }
            }
            let item = to_item(keys_, "behaviour_campaign", c)?;
            let put = match &old {
                None => self.put_new(item)?,
                Some(o) => {
                    let put = aws_sdk_dynamodb::types::Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(if o.budget.is_some() {
                            "budget = :old"
                        } else {
                            "attribute_not_exists(budget) OR budget = :null"
                        })
                        .expression_attribute_values(
                            if o.budget.is_some() { ":old" } else { ":null" },
                            o.budget.map_or(AttributeValue::Null(true), |b| {
                                AttributeValue::N(b.to_string())
                            }),
                        )
                        .build()?;
                    TransactWriteItem::builder().put(put).build()
                }
            };
            let mut items = vec![put];
            if let Some(change) = change {
                items.push(self.change_put(change)?);
            }
            let shard_keys = keys::budget_shard(&c.partner_id, &c.budget_id(), 0);
            match (granted, c.budget) {
                (None, Some(b)) => {
                    let s = BudgetShard {
                        partner_id: c.partner_id.clone(),
                        campaign_id: c.budget_id(),
                        shard: 0,
                        remaining: b,
                        spent: 0,
                    };
                    items.push(self.put_new(to_item(shard_keys, "budget", &s)?)?);
                }
                (Some(was), Some(b)) if b > was => {
                    let update = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_map(&shard_keys)))
                        .update_expression("ADD remaining :t")
                        .expression_attribute_values(":t", AttributeValue::N((b - was).to_string()))
                        .condition_expression("attribute_exists(PK)")
                        .build()?;
                    items.push(TransactWriteItem::builder().update(update).build());
                }
                _ => {}
            }
            match self.transact(items).await? {
                TxOutcome::Committed => return Ok(Ok(())),
                _ => retry.backoff(),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    pub async fn get_campaign(
        &self,
        partner_id: &str,
        campaign_id: &str,
    ) -> Result<Option<Campaign>, StoreError> {
        self.get(keys::campaign(partner_id, campaign_id)).await
    }

    pub async fn budget_shards(&self, campaign: &Campaign) -> Result<Vec<BudgetShard>, StoreError> {
        self.query_prefix(
            &keys::budget_shard(&campaign.partner_id, &campaign.id, 0).0,
            "SHARD#",
        )
        .await
    }

    pub async fn budget_status(&self, campaign: &Campaign) -> Result<BudgetStatus, StoreError> {
        let shards = self.budget_shards(campaign).await?;
        Ok(BudgetStatus {
            budget: campaign.budget,
            spent: shards.iter().map(|s| s.spent).sum(),
            remaining: shards.iter().map(|s| s.remaining).sum(),
            shards,
        })
    }

    /// Create or update a campaign. A new campaign gets its budget shards; an existing one
    /// may only grow its budget (a top-up goes to shard 0). All in one transaction, with
    /// the change in the partner's audit trail when one is given.
    pub async fn put_campaign(
        &self,
        c: &Campaign,
        change: Option<&Change>,
    ) -> Result<CampaignApplied, StoreError> {
        let existing: Option<Campaign> = self.get(keys::campaign(&c.partner_id, &c.id)).await?;
        let mut items: Vec<TransactWriteItem> = Vec::new();
        if let Some(change) = change {
            items.push(self.change_put(change)?);
        }
        let config = to_item(keys::campaign(&c.partner_id, &c.id), "campaign", c)?;
        let outcome = match &existing {
            None => {
                items.push(self.put_new(config)?);
                for (shard, remaining) in split_budget(c.budget, c.budget_shards)
                    .into_iter()
                    .enumerate()
                {
                    let s = BudgetShard {
                        partner_id: c.partner_id.clone(),
                        campaign_id: c.id.clone(),
                        shard: shard as u32,
                        remaining,
                        spent: 0,
                    };
                    items.push(self.put_new(to_item(
                        keys::budget_shard(&c.partner_id, &c.id, s.shard),
                        "budget",
                        &s,
                    )?)?);
                }
                CampaignApplied::Created
            }
            Some(old) if old.budget_shards != c.budget_shards => {
                return Ok(CampaignApplied::ShardsFixed(old.budget_shards))
            }
            Some(old) if c.budget < old.budget => {
                return Ok(CampaignApplied::BudgetCannotShrink(old.budget))
            }
            Some(old) => {
                let top_up = c.budget - old.budget;
                // Only over the version we read: a concurrent apply cannot top up twice.
                let put = aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(config))
                    .condition_expression("budget = :old")
                    .expression_attribute_values(":old", AttributeValue::N(old.budget.to_string()))
                    .build()?;
                items.push(TransactWriteItem::builder().put(put).build());
                if top_up > 0 {
                    let update = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_map(&keys::budget_shard(&c.partner_id, &c.id, 0))))
                        .update_expression("ADD remaining :t")
                        .expression_attribute_values(":t", AttributeValue::N(top_up.to_string()))
                        .condition_expression("attribute_exists(PK)")
                        .build()?;
                    items.push(TransactWriteItem::builder().update(update).build());
                }
                if top_up > 0 {
                    CampaignApplied::ToppedUp(top_up)
                } else {
                    CampaignApplied::Updated
                }
            }
        };
        match self.transact_retrying(items).await? {
            TxOutcome::Committed => Ok(outcome),
            // Created or changed by someone else between the read and the write.
            _ => Ok(CampaignApplied::Raced),
        }
    }
}

impl Store {
    /// The put of one audit-trail record (new, so a retried write cannot record it twice).
    pub fn change_put(&self, change: &Change) -> Result<TransactWriteItem, StoreError> {
        self.put_new(to_item(
            keys::change(&change.partner_id, &change.change_id),
            "change",
            change,
        )?)
    }

    /// A partner's audit trail, newest first: up to `limit` changes older than `before`
    /// (a change id), and whether there are more.
    pub async fn changes(
        &self,
        partner_id: &str,
        limit: i32,
        before: Option<&str>,
    ) -> Result<(Vec<Change>, bool), StoreError> {
        let (pk, _) = keys::change(partner_id, "");
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .scan_index_forward(false)
            .limit(limit + 1);
        q = match before {
            Some(b) => q
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":before", AttributeValue::S(b.to_string())),
            None => q.key_condition_expression("#pk = :pk"),
        };
        let out = q.send().await.map_err(StoreError::sdk)?;
        let mut changes = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Change>, _>>()?;
        let want = usize::try_from(limit).unwrap_or(0);
        let more = changes.len() > want;
        changes.truncate(want);
        Ok((changes, more))
    }

    /// Add `points` to a campaign's budget under the caller's `reference`, in one
    /// transaction: the campaign (only over the version read), shard 0, the reference and
    /// the audit record. Done before under the same reference: what was done then.
    pub async fn top_up_campaign(
        &self,
        old: &Campaign,
        points: Points,
        reference: &str,
        change: &Change,
        extra: Vec<TransactWriteItem>,
    ) -> Result<TopUp, StoreError> {
        let marker_keys = keys::top_up(&old.partner_id, &old.id, reference);
        if let Some(done) = self.get::<TopUpRecord>(marker_keys.clone()).await? {
            return Ok(TopUp::Before(done));
        }
        let mut new = old.clone();
        new.budget = old
            .budget
            .checked_add(points)
            .filter(|b| *b <= bonus_domain::campaign::MAX_BUDGET)
            .ok_or_else(|| StoreError::Build("budget out of range".into()))?;
        let record = TopUpRecord {
            reference: reference.to_string(),
            points,
            budget_after: new.budget,
            at: change.at,
        };
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(
                keys::campaign(&new.partner_id, &new.id),
                "campaign",
                &new,
            )?))
            .condition_expression("budget = :old")
            .expression_attribute_values(":old", AttributeValue::N(old.budget.to_string()))
            .build()?;
        let shard = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::budget_shard(
                &old.partner_id,
                &old.id,
                0,
            ))))
            .update_expression("ADD remaining :t")
            .expression_attribute_values(":t", AttributeValue::N(points.to_string()))
            .condition_expression("attribute_exists(PK)")
            .build()?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(shard).build(),
            self.put_new(to_item(marker_keys.clone(), "top_up", &record)?)?,
            self.change_put(change)?,
        ];
        items.extend(extra);
        match self.transact_retrying(items).await? {
            TxOutcome::Committed => Ok(TopUp::Done(record, Box::new(new))),
            _ => match self.get::<TopUpRecord>(marker_keys).await? {
                Some(done) => Ok(TopUp::Before(done)),
                // The campaign changed between the read and the write: read again.
                None => Ok(TopUp::Raced),
            },
        }
    }
}

impl Store {
    /// The put of a new invoice line (in a pack's top-up transaction).
    pub fn invoice_line_put(
        &self,
        line: &bonus_domain::packs::InvoiceLine,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put_new(to_item(
            keys::invoice_line(&line.partner_id, &line.month, &line.reference),
            "invoice_line",
            line,
        )?)
    }

    pub async fn invoice_line(
        &self,
        partner_id: &str,
        month: &str,
        reference: &str,
    ) -> Result<Option<bonus_domain::packs::InvoiceLine>, StoreError> {
        self.get(keys::invoice_line(partner_id, month, reference))
            .await
    }

    /// A partner's invoice lines of a month.
    pub async fn invoice_lines(
        &self,
        partner_id: &str,
        month: &str,
    ) -> Result<Vec<bonus_domain::packs::InvoiceLine>, StoreError> {
        self.query_prefix(&keys::invoice_line(partner_id, month, "").0, "LINE#")
            .await
    }
}

/// A top-up as recorded under its reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopUpRecord {
    pub reference: String,
    pub points: Points,
    pub budget_after: Points,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone)]
pub enum TopUp {
    Done(TopUpRecord, Box<Campaign>),
    /// Done before under this reference (perhaps with other points: the caller compares).
    Before(TopUpRecord),
    /// The campaign changed meanwhile; nothing was written.
    Raced,
}

/// What the partner's partition holds.
#[derive(Debug, Clone, Default)]
pub struct PartnerItems {
    pub partner: Option<bonus_domain::programme::Partner>,
    pub campaigns: Vec<Campaign>,
    pub behaviour: Vec<BehaviourCampaign>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignApplied {
    Created,
    Updated,
    ToppedUp(Points),
    BudgetCannotShrink(Points),
    ShardsFixed(u32),
    /// The campaign changed between the read and the write: nothing was written.
    Raced,
}

/// The conditional update that takes points from a shard.
pub fn take_item(store: &Store, t: &BudgetTake) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(&store.table)
        .set_key(Some(key_map(&keys::budget_shard(
            &t.partner_id,
            &t.campaign_id,
            t.shard,
        ))))
        .update_expression("SET remaining = remaining - :t, spent = spent + :t")
        .condition_expression("remaining >= :t")
        .expression_attribute_values(":t", AttributeValue::N(t.points.to_string()))
        .build()?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Parse budget shards out of BatchGetItem results, by campaign id.
/// Give points back to a budget shard (a refund). ADD, so it cannot fail on the shard's
/// current figures: a refund is never refused for budget reasons.
pub fn give_back_item(store: &Store, t: &BudgetTake) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(&store.table)
        .set_key(Some(key_map(&keys::budget_shard(
            &t.partner_id,
            &t.campaign_id,
            t.shard,
        ))))
        .update_expression("ADD remaining :t, spent :minus")
        .expression_attribute_values(":t", AttributeValue::N(t.points.to_string()))
        .expression_attribute_values(":minus", AttributeValue::N((-t.points).to_string()))
        .build()?;
    Ok(TransactWriteItem::builder().update(update).build())
}

pub fn shards_by_campaign(
    items: Vec<super::Item>,
) -> Result<BTreeMap<String, Vec<BudgetShard>>, StoreError> {
    let mut out: BTreeMap<String, Vec<BudgetShard>> = BTreeMap::new();
    for item in items {
        let s: BudgetShard = from_item(item)?;
        out.entry(s.campaign_id.clone()).or_default().push(s);
    }
    Ok(out)
}
