//! Gift-shop rewards: the catalogue of a programme in one partition (one Query lists it),
//! stock on each reward item, per-member claim counts.

use crate::Stamped;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{key_map, keys, to_item, Store, StoreError, TxOutcome};
use bonus_domain::reward::Reward;

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

impl Store {
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
                    let put = self.put_new(to_item(
                        keys::reward(&r.programme_id, &r.reward_id),
                        "reward",
                        &fresh,
                    )?)?;
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
                        .update_expression(
                            "SET #name = :name, points = :points, granted = :granted, description = :d, per_member_limit = :l ADD stock :delta",
                        )
                        .condition_expression("granted = :old")
                        .expression_attribute_names("#name", "name")
                        .expression_attribute_values(":name", AttributeValue::S(r.name.clone()))
                        .expression_attribute_values(":points", n(r.points))
                        .expression_attribute_values(":granted", n(r.granted))
                        .expression_attribute_values(":old", n(old.granted))
                        .expression_attribute_values(":delta", n(r.granted - old.granted));
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
        Ok(vec![
            TransactWriteItem::builder().update(stock).build(),
            TransactWriteItem::builder().update(count.build()?).build(),
        ])
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
    /// The member's gift-shop claims that were completed (captured), newest first: the
    /// holds named by their claim counters (one Query, then BatchGetItem in hundreds).
    pub async fn member_vouchers(
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
        holds.retain(|h| {
            h.status == bonus_domain::hold::HoldStatus::Captured && h.member_id == member_id
        });
        holds.sort_by_key(|h| std::cmp::Reverse(h.created_at));
        Ok(holds)
    }
}
