//! Gift-shop rewards: the catalogue of a programme in one partition (one Query lists it),
//! stock on each reward item, per-member claim counts.

use crate::Stamped;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{key_map, keys, to_item, Store, StoreError, TxOutcome};
use bonus_domain::reward::Reward;

/// A restock as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restock {
    Done,
    /// Done before under this reference, with these units.
    Before(i64),
}

/// What `bonus apply` did with a reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardApplied {
    Created,
    /// Settings written; stock topped up by this many units.
    Updated {
        topped_up: i64,
    },
    /// The file has less stock than was already granted: nothing written.
    RefusedShrink {
        granted: i64,
    },
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A page of the catalogue, and the reward id to go on after (None: the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardsPage {
    pub rewards: Vec<Reward>,
    pub next_after: Option<String>,
}

impl Store {
    /// A reward as stored: in its category's GSI1 partition when it has one.
    fn reward_item(&self, r: &Reward) -> Result<super::Item, StoreError> {
        let item = to_item(keys::reward(&r.programme_id, &r.reward_id), "reward", r)?;
        Ok(match &r.category {
            Some(c) => super::with_gsi1(
                item,
                keys::reward_category_index(&r.programme_id, c),
                r.reward_id.clone(),
            ),
            None => item,
        })
    }

    /// One page of a programme's catalogue (of one category, through its GSI1 partition),
    /// after the reward id `after`, in id order: one Query, whatever the catalogue's size.
    pub async fn rewards_page(
        &self,
        programme_id: &str,
        category: Option<&str>,
        limit: i32,
        after: Option<&str>,
    ) -> Result<RewardsPage, StoreError> {
        let pk = keys::rewards_pk(programme_id);
        let q = match category {
            None => {
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#pk", keys::PK)
                    .expression_attribute_names("#sk", keys::SK)
                    .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                    .expression_attribute_values(
                        ":prefix",
                        AttributeValue::S(keys::REWARD_PREFIX.into()),
                    );
                if let Some(a) = after {
                    q = q.set_exclusive_start_key(Some(key_map(&keys::reward(programme_id, a))));
                }
                q
            }
            Some(c) => {
                let gpk = keys::reward_category_index(programme_id, c);
                let mut q = self.gsi1_query(gpk.clone());
                if let Some(a) = after {
                    let mut start = key_map(&keys::reward(programme_id, a));
                    start.insert(keys::GSI1PK.into(), AttributeValue::S(gpk));
                    start.insert(keys::GSI1SK.into(), AttributeValue::S(a.to_string()));
                    q = q.set_exclusive_start_key(Some(start));
                }
                q
            }
        };
        let out = q.limit(limit).send().await.map_err(StoreError::sdk)?;
        let rewards = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(super::from_item)
            .collect::<Result<Vec<Reward>, _>>()?;
        let next_after = match out.last_evaluated_key {
            Some(k) if !k.is_empty() => rewards.last().map(|r| r.reward_id.clone()),
            _ => None,
        };
        Ok(RewardsPage {
            rewards,
            next_after,
        })
    }

    /// Put `units` more into a reward's stock under the caller's `reference`, with the
    /// change in the partner's audit trail, in one transaction: None when done before
    /// under that reference (with the units it added then).
    pub async fn restock_reward(
        &self,
        r: &Reward,
        units: i64,
        reference: &str,
        change: &bonus_domain::changes::Change,
    ) -> Result<Restock, StoreError> {
        let marker = keys::restock(&r.programme_id, &r.reward_id, reference);
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Done {
            units: i64,
        }
        if let Some(done) = self.get::<Done>(marker.clone()).await? {
            return Ok(Restock::Before(done.units));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::reward(&r.programme_id, &r.reward_id))))
            .update_expression("ADD stock :u, granted :u")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":u", n(units))
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            self.put_new(to_item(marker.clone(), "restock", &Done { units })?)?,
            self.change_put(change)?,
        ];
        match self.transact_retrying(items).await? {
            TxOutcome::Committed => Ok(Restock::Done),
            _ => match self.get::<Done>(marker).await? {
                Some(done) => Ok(Restock::Before(done.units)),
                None => Err(StoreError::Contention(1)),
            },
        }
    }

    /// Create a partner's reward (put if absent) with its audit record: false when the id
    /// is taken in the programme.
    pub async fn create_reward(
        &self,
        r: &Reward,
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let mut fresh = r.clone();
        fresh.stock = r.granted;
        let items = vec![
            self.put_new(self.reward_item(&fresh)?)?,
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// Change a reward's settings (not its stock) over the settings read, with its audit
    /// record: false when it changed meanwhile.
    pub async fn update_reward(
        &self,
        old: &Reward,
        new: &Reward,
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let text = |v: &Option<String>| {
            v.clone()
                .map_or(AttributeValue::Null(true), AttributeValue::S)
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::reward(&old.programme_id, &old.reward_id))))
            .update_expression(format!(
                "SET #name = :name, points = :points, description = :d, per_member_limit = :l, category = :c, image_url = :img{}",
                if new.category.is_some() { ", GSI1PK = :gpk, GSI1SK = :gsk" } else { " REMOVE GSI1PK, GSI1SK" }
            ))
            .condition_expression("#name = :old_name AND points = :old_points AND granted = :granted")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", AttributeValue::S(new.name.clone()))
            .expression_attribute_values(":points", n(new.points))
            .expression_attribute_values(":d", text(&new.description))
            .expression_attribute_values(":l", new.per_member_limit.map_or(AttributeValue::Null(true), n))
            .expression_attribute_values(":c", text(&new.category))
            .expression_attribute_values(":img", text(&new.image_url))
            .expression_attribute_values(":old_name", AttributeValue::S(old.name.clone()))
            .expression_attribute_values(":old_points", n(old.points))
            .expression_attribute_values(":granted", n(old.granted));
        if let Some(c) = &new.category {
            update = update
                .expression_attribute_values(
                    ":gpk",
                    AttributeValue::S(keys::reward_category_index(&new.programme_id, c)),
                )
                .expression_attribute_values(":gsk", AttributeValue::S(new.reward_id.clone()));
        }
        let items = vec![
            TransactWriteItem::builder().update(update.build()?).build(),
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    pub async fn rewards(&self, programme_id: &str) -> Result<Vec<Reward>, StoreError> {
        self.query_prefix(&keys::rewards_pk(programme_id), keys::REWARD_PREFIX)
            .await
    }

    pub async fn get_reward(
        &self,
        programme_id: &str,
        reward_id: &str,
    ) -> Result<Option<Reward>, StoreError> {
        self.get(keys::reward(programme_id, reward_id)).await
    }

    /// Create a reward, or update its settings and top its stock up by the difference
    /// between the file's `granted` and what was granted before. Claims in flight are never
    /// overwritten: the stock moves by `ADD` on condition that `granted` is still as read.
    pub async fn put_reward(&self, r: &Reward) -> Result<RewardApplied, StoreError> {
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            let existing = self.get_reward(&r.programme_id, &r.reward_id).await?;
            let (item, outcome) = match existing {
                None => {
                    let mut fresh = r.clone();
                    fresh.stock = r.granted;
                    let put = self.put_new(self.reward_item(&fresh)?)?;
                    (put, RewardApplied::Created)
                }
                Some(old) if r.granted < old.granted => {
                    return Ok(RewardApplied::RefusedShrink {
                        granted: old.granted,
                    })
                }
                Some(old) => {
                    let mut update = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_map(&keys::reward(&r.programme_id, &r.reward_id))))
                        .update_expression(format!(
                            "SET #name = :name, points = :points, granted = :granted, description = :d, per_member_limit = :l, category = :c, image_url = :img{} ADD stock :delta",
                            if r.category.is_some() { ", GSI1PK = :gpk, GSI1SK = :gsk" } else { " REMOVE GSI1PK, GSI1SK" }
                        ))
                        .condition_expression("granted = :old")
                        .expression_attribute_names("#name", "name")
                        .expression_attribute_values(":name", AttributeValue::S(r.name.clone()))
                        .expression_attribute_values(":points", n(r.points))
                        .expression_attribute_values(":granted", n(r.granted))
                        .expression_attribute_values(":old", n(old.granted))
                        .expression_attribute_values(":delta", n(r.granted - old.granted));
                    let text = |v: &Option<String>| {
                        v.clone()
                            .map_or(AttributeValue::Null(true), AttributeValue::S)
                    };
                    update = update
                        .expression_attribute_values(":c", text(&r.category))
                        .expression_attribute_values(":img", text(&r.image_url));
                    if let Some(c) = &r.category {
                        update = update
                            .expression_attribute_values(
                                ":gpk",
                                AttributeValue::S(keys::reward_category_index(&r.programme_id, c)),
                            )
                            .expression_attribute_values(
                                ":gsk",
                                AttributeValue::S(r.reward_id.clone()),
                            );
                    }
                    update = update
                        .expression_attribute_values(
                            ":d",
                            r.description
                                .clone()
                                .map_or(AttributeValue::Null(true), AttributeValue::S),
                        )
                        .expression_attribute_values(
                            ":l",
                            r.per_member_limit.map_or(AttributeValue::Null(true), n),
                        );
                    (
                        TransactWriteItem::builder().update(update.build()?).build(),
                        RewardApplied::Updated {
                            topped_up: r.granted - old.granted,
                        },
                    )
                }
            };
            match self.transact(vec![item]).await? {
                TxOutcome::Committed => return Ok(outcome),
                _ => retry.backoff(),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }

    /// The items a claim adds to its hold's transaction: one unit of stock (if any is left)
    /// and the member's claim count (if under the limit).
    pub fn claim_items(
        &self,
        r: &Reward,
        member_id: &str,
        hold_id: &str,
        voucher_code: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let stock = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::reward(&r.programme_id, &r.reward_id))))
            .update_expression("SET stock = stock - :one")
            .condition_expression("stock >= :one")
            .expression_attribute_values(":one", n(1))
            .build()?;
        let mut count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::reward_claims(
                &r.programme_id,
                member_id,
                &r.reward_id,
            ))))
            // The claim's hold, for the member's list of vouchers.
            .stamped_expression("ADD claims :one, hold_ids :hold")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":hold", AttributeValue::Ss(vec![hold_id.to_string()]));
        if let Some(limit) = r.per_member_limit {
            count = count
                .condition_expression("attribute_not_exists(claims) OR claims < :limit")
                .expression_attribute_values(":limit", n(limit));
        }
        // The voucher code finds the claim (a return desk has only the code).
        let voucher = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.voucher_item(
                &r.programme_id,
                voucher_code,
                hold_id,
            )))
            .build()?;
        Ok(vec![
            TransactWriteItem::builder().update(stock).build(),
            TransactWriteItem::builder().update(count.build()?).build(),
            TransactWriteItem::builder().put(voucher).build(),
        ])
    }

    pub(crate) fn voucher_item(
        &self,
        programme_id: &str,
        voucher_code: &str,
        hold_id: &str,
    ) -> super::Item {
        let mut item = key_map(&keys::voucher(programme_id, voucher_code));
        item.insert("entity".into(), AttributeValue::S("voucher".into()));
        item.insert("hold_id".into(), AttributeValue::S(hold_id.to_string()));
        item
    }

    /// The claim (its hold) a voucher code of the programme names.
    pub async fn voucher_hold(
        &self,
        programme_id: &str,
        voucher_code: &str,
    ) -> Result<Option<bonus_domain::hold::Hold>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::voucher(programme_id, voucher_code))))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(AttributeValue::S(hold_id)) = out.item.as_ref().and_then(|i| i.get("hold_id"))
        else {
            return Ok(None);
        };
        Ok(self
            .get_hold(hold_id)
            .await?
            .filter(|h| h.programme_id == programme_id))
    }

    /// Write the voucher item of a claim made before voucher codes were looked up
    /// (`bonus migrate`): true when this call wrote it.
    pub async fn index_voucher(&self, hold: &bonus_domain::hold::Hold) -> Result<bool, StoreError> {
        let Some(r) = &hold.reward else {
            return Ok(false);
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.voucher_item(
                &hold.programme_id,
                &r.voucher_code,
                &hold.hold_id,
            )))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        super::written(put)
    }

    /// Give a claim back (its hold was released, not captured): the unit of stock and the
    /// member's count.
    pub fn unclaim_items(
        &self,
        programme_id: &str,
        reward_id: &str,
        member_id: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let stock = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::reward(programme_id, reward_id))))
            .update_expression("ADD stock :one")
            .expression_attribute_values(":one", n(1))
            .build()?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::reward_claims(
                programme_id,
                member_id,
                reward_id,
            ))))
            .update_expression("ADD claims :minus")
            .expression_attribute_values(":minus", n(-1))
            .build()?;
        Ok(vec![
            TransactWriteItem::builder().update(stock).build(),
            TransactWriteItem::builder().update(count).build(),
        ])
    }
}

impl Store {
    /// The member's gift-shop claims that were completed (captured) and not returned,
    /// newest first.
    pub async fn member_vouchers(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<Vec<bonus_domain::hold::Hold>, StoreError> {
        let mut holds = self.member_claims(programme_id, member_id).await?;
        holds.retain(|h| h.status == bonus_domain::hold::HoldStatus::Captured);
        Ok(holds)
    }

    /// Every gift-shop claim of the member, whatever became of it, newest first: the holds
    /// named by their claim counters (one Query, then BatchGetItem in hundreds).
    pub async fn member_claims(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<Vec<bonus_domain::hold::Hold>, StoreError> {
        let claims = self
            .query_items(&keys::member_pk(programme_id, member_id), "CLAIMS#")
            .await?;
        let ids: Vec<(String, String)> = claims
            .iter()
            .filter_map(|i| match i.get("hold_ids") {
                Some(AttributeValue::Ss(ids)) => Some(ids.clone()),
                _ => None,
            })
            .flatten()
            .map(|id| keys::hold(&id))
            .collect();
        let mut holds: Vec<bonus_domain::hold::Hold> = self
            .batch_get(&ids)
            .await?
            .into_values()
            .map(super::from_item)
            .collect::<Result<_, _>>()?;
        holds.retain(|h| h.member_id == member_id && h.reward.is_some());
        holds.sort_by_key(|h| std::cmp::Reverse(h.created_at));
        Ok(holds)
    }
}
