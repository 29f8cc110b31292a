//! The nightly job's reads and writes: the members due on a night (one GSI1 Query per
//! shard: the items read are the due members, nothing else), a member's night, the run
//! cursor, and per-shard completion markers.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{account_item, from_item, keys, Store, StoreError};
use bonus_domain::account::Account;
use bonus_domain::nightly::{NightCounts, NightPlan};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NightCursor {
    pub programme_id: String,
    /// The last night whose work was completed (all tasks sent).
    pub last_done: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDone {
    pub counts: NightCounts,
    pub done_at: DateTime<Utc>,
    /// DynamoDB items read for this shard.
    pub items_read: u64,
}

impl Store {
    /// The members of `programme_id` indexed as due on `night` in `shard` (eventually
    /// consistent: each write is conditional on the version read, and re-read on conflict).
    pub async fn due_members(
        &self,
        programme_id: &str,
        night: NaiveDate,
        shard: u32,
    ) -> Result<Vec<Account>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .gsi1_query(keys::due_index(programme_id, night, shard))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Is anyone indexed as due on `night` in `shard`? (A Query for at most one item, so the
    /// planner sends tasks only for shards with work.)
    pub async fn any_due(
        &self,
        programme_id: &str,
        night: NaiveDate,
        shard: u32,
    ) -> Result<bool, StoreError> {
        let page = self
            .gsi1_query(keys::due_index(programme_id, night, shard))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .limit(1)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(page.count > 0)
    }

    /// Write a member's night: the account (if still at `expected` version), its statement
    /// entries and its events. False when the account moved (re-read and plan again).
    pub async fn write_night(&self, plan: &NightPlan, expected: u64) -> Result<bool, StoreError> {
        let a = &plan.account;
        let mut items = vec![self.put_versioned(account_item(a)?, Some(expected))?];
        items.extend(self.entry_items(a, &plan.entries, plan.outstanding_change)?);
        items.extend(self.outbox_items(&plan.events)?);
        self.try_commit(items).await
    }

    pub async fn night_cursor(
        &self,
        programme_id: &str,
    ) -> Result<Option<NightCursor>, StoreError> {
        self.get(keys::night_cursor(programme_id)).await
    }

    pub async fn set_night_cursor(&self, c: &NightCursor) -> Result<(), StoreError> {
        self.put(keys::night_cursor(&c.programme_id), "night_cursor", c)
            .await
    }

    pub async fn shard_done(
        &self,
        programme_id: &str,
        night: NaiveDate,
        shard: u32,
    ) -> Result<Option<ShardDone>, StoreError> {
        self.get(keys::night_shard_done(programme_id, night, shard))
            .await
    }

    pub async fn mark_shard_done(
        &self,
        programme_id: &str,
        night: NaiveDate,
        shard: u32,
        done: &ShardDone,
    ) -> Result<(), StoreError> {
        self.put(
            keys::night_shard_done(programme_id, night, shard),
            "night_shard",
            done,
        )
        .await
    }

    /// Every programme id `bonus apply` has written (the job's list of work).
    pub async fn programme_ids(&self) -> Result<Vec<String>, StoreError> {
        self.id_list(keys::programme_list()).await
    }
}
