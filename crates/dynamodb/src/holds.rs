//! Holds in DynamoDB.
//!
//! Reserving is one TransactWriteItems of conditional **updates**, not read-modify-write:
//! the hold put-if-absent, the account `available -= p, held += p` on condition
//! `available >= need`, and each chosen lot `remaining -= t, held += t` on condition
//! `remaining >= t`. Concurrent holds therefore never invalidate each other while points are
//! left (no version to race on), and can never together reserve more than there is: the
//! conditions are checked against the item as it is at commit.
//!
//! Resolving (capture, void, expiry) is read-modify-write on the hold (`version`), the
//! account (`version`) and the hold's lots, in one transaction.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{key_map, keys, to_item, Item, Store, StoreError, TxOutcome};
use bonus_domain::account::Account;
use bonus_domain::clock::ts;
use bonus_domain::hold::{Hold, HoldStatus, OpenHold, Settlement, MAX_OPEN_HOLDS};

/// Shards of the open-hold index (GSI1), so that no index partition takes every hold.
pub const OPEN_HOLD_SHARDS: u32 = 8;

/// The outcome of a reservation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    Reserved,
    /// A hold with this id exists (a repeat of the request): read it and answer with it.
    Duplicate,
    /// The account no longer has the points (or the open-hold limit was reached): re-read
    /// and decide (usually: refuse).
    AccountShort,
    /// A lot was taken meanwhile: re-read and choose again.
    Stale,
    /// Conflict or throttling: back off and try again.
    Retry,
    /// A condition of the caller's extra items failed (a reward's stock or limit).
    ExtraRefused,
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Store {
    pub async fn get_hold(&self, hold_id: &str) -> Result<Option<Hold>, StoreError> {
        self.get(keys::hold(hold_id)).await
    }

    fn hold_item(&self, hold: &Hold) -> Result<Item, StoreError> {
        let mut item = to_item(keys::hold(&hold.hold_id), "hold", hold)?;
        if hold.status == HoldStatus::Open {
            // Sparse index of open holds by expiry, for the sweeper; gone once resolved.
            let shard = super::shard_of(&hold.hold_id, OPEN_HOLD_SHARDS);
            item.insert(
                keys::GSI1PK.into(),
                AttributeValue::S(keys::open_holds_index(shard)),
            );
            item.insert(
                keys::GSI1SK.into(),
                AttributeValue::S(format!("{}#{}", ts(hold.expires_at), hold.hold_id)),
            );
        }
        Ok(item)
    }

    /// Reserve a hold's points: see the module documentation. `need` is what the account's
    /// available points must be at least (the points, or the programme's minimum balance if
    /// that is higher).
    pub async fn reserve(
        &self,
        hold: &Hold,
        need: i64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<Reserve, StoreError> {
        let open = OpenHold {
            points: hold.points,
            expires_at: hold.expires_at,
        };
        let account = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::account(
                &hold.programme_id,
                &hold.member_id,
            ))))
            .update_expression(
                "SET available = available - :p, held = held + :p, #v = #v + :one, open_holds.#h = :open",
            )
            .condition_expression(
                "attribute_exists(PK) AND available >= :need AND size(open_holds) < :max",
            )
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#h", &hold.hold_id)
            .expression_attribute_values(":p", n(hold.points))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":need", n(need))
            .expression_attribute_values(":max", n(MAX_OPEN_HOLDS as i64))
            .expression_attribute_values(":open", serde_dynamo::to_attribute_value(&open)?)
            .build()?;
        let mut items = vec![
            self.put_new(self.hold_item(hold)?)?,
            TransactWriteItem::builder().update(account).build(),
        ];
        for l in &hold.lots {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::lot(
                    &hold.programme_id,
                    &hold.member_id,
                    &l.lot_id,
                ))))
                .update_expression(
                    "SET remaining = remaining - :t, held = if_not_exists(held, :zero) + :t",
                )
                .condition_expression("remaining >= :t")
                .expression_attribute_values(":t", n(l.points))
                .expression_attribute_values(":zero", n(0))
                .build()?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let first_extra = items.len();
        let extras = extra.len();
        items.extend(extra);
        Ok(match self.transact(items).await? {
            TxOutcome::Committed => Reserve::Reserved,
            o if o.failed_condition(0) => Reserve::Duplicate,
            o if o.failed_condition(1) => Reserve::AccountShort,
            o if (first_extra..first_extra + extras).any(|i| o.failed_condition(i)) => {
                Reserve::ExtraRefused
            }
            TxOutcome::Cancelled(r) if r.iter().any(|c| c == "ConditionalCheckFailed") => {
                Reserve::Stale
            }
            _ => Reserve::Retry,
        })
    }

    /// Write a resolution: the hold (if still at the version read and open), the account
    /// (if still at the version read), the lots, the statement entry and the events.
    /// True when written; false when something moved (re-read and decide again).
    pub async fn settle(
        &self,
        s: &Settlement,
        hold_version: u64,
        account_version: u64,
        extra: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let a = &s.account;
        let mut items = vec![
            self.put_versioned(self.hold_item(&s.hold)?, Some(hold_version))?,
            self.put_versioned(super::account_item(a)?, Some(account_version))?,
        ];
        for lot in &s.lots {
            items.push(self.put_item(
                to_item(
                    keys::lot(&a.programme_id, &a.member_id, &lot.lot_id),
                    "lot",
                    lot,
                )?,
                None,
            )?);
        }
        items.extend(self.entry_items(a, s.entry.as_slice(), s.outstanding_change)?);
        items.extend(self.outbox_items(&s.events)?);
        items.extend(extra);
        self.try_commit(items).await
    }

    /// Save an account as read plus changes that need no other item (due releases folded in).
    pub async fn save_account(&self, a: &Account, expected: u64) -> Result<bool, StoreError> {
        let item = self.put_versioned(super::account_item(a)?, Some(expected))?;
        Ok(matches!(
            self.transact(vec![item]).await?,
            TxOutcome::Committed
        ))
    }

    /// Open holds whose time ran out by `now`, from the sparse index (oldest first, at most
    /// `limit` per shard).
    pub async fn lapsed_holds(
        &self,
        now: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..OPEN_HOLD_SHARDS {
            let page = self
                .gsi1_query(keys::open_holds_index(shard))
                .key_condition_expression("#pk = :pk AND #sk <= :now")
                .expression_attribute_names("#sk", keys::GSI1SK)
                .expression_attribute_values(":now", AttributeValue::S(format!("{}#~", ts(now))))
                .limit(limit)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in page.items.unwrap_or_default() {
                if let Some(AttributeValue::S(id)) = item.get("hold_id") {
                    out.push(id.clone());
                }
            }
        }
        Ok(out)
    }
}
