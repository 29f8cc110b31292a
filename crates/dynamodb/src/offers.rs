//! Offers (`bonus_domain::offer`): stored under their programme, sent once (the send and the
//! task that fans it out are one transaction, through the outbox), the profile's facts on
//! the member list, and the per-member marketing count the frequency cap checks.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};

use bonus_domain::account::Account;
use bonus_domain::changes::Change;
use bonus_domain::clock::ts;
use bonus_domain::member::MemberProfile;
use bonus_domain::offer::{listed_facts, ListedFacts, Offer};

use crate::{from_item, key_map, keys, to_item, Store, StoreError, TxOutcome};

/// The member list's attribute with what the member's profile says for segments.
pub const FACTS: &str = "facts";

/// How long a member's marketing records are kept: past any month the cap looks at.
pub const MARKETING_KEEP_DAYS: i64 = 400;

/// Whether a marketing message may go to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketingCount {
    /// Counted now: send it.
    Counted,
    /// Counted by an earlier try of the same offer: send it (the claims keep it once).
    AlreadyCounted,
    /// The member had their month's marketing messages: not sent.
    Capped,
}

/// One member's entry in the member list, with their listed facts (none: listed before
/// offers, until `bonus migrate` or their next profile change fills them in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    pub member_id: String,
    pub facts: Option<ListedFacts>,
}

impl Store {
    pub async fn get_offer(
        &self,
        programme_id: &str,
        partner_id: &str,
        offer_id: &str,
    ) -> Result<Option<Offer>, StoreError> {
        self.get(keys::offer(programme_id, partner_id, offer_id))
            .await
    }

    /// Every offer of a programme (each partner's, in id order): one Query, paged.
    pub async fn offers(&self, programme_id: &str) -> Result<Vec<Offer>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(keys::offers_pk(programme_id)),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    fn offer_put(&self, o: &Offer, expected: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(
            keys::offer(&o.programme_id, &o.partner_id, &o.offer_id),
            "offer",
            o,
        )?;
        self.put_versioned(item, expected)
    }

    /// A new offer with its audit record: false if the id is taken by this partner.
    pub async fn create_offer(&self, o: &Offer, change: &Change) -> Result<bool, StoreError> {
        let items = vec![self.offer_put(o, None)?, self.change_put(change)?];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// An offer changed over the version read (`new.version` is one more), with its audit
    /// record and, when it is being sent, the outbox task that fans it out: false when it
    /// changed meanwhile.
    pub async fn update_offer(
        &self,
        new: &Offer,
        change: &Change,
        task: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let mut items = vec![
            self.offer_put(new, Some(new.version - 1))?,
            self.change_put(change)?,
        ];
        if let Some(task) = task {
            let id = format!("offer-{}-{}-{}", new.partner_id, new.offer_id, new.version);
            let at = new.sent_at.unwrap_or(new.created_at);
            items.push(self.put_new(to_item(keys::outbox(&id, &ts(at)), "task", task)?)?);
        }
        self.try_commit(items).await
    }

    /// A page of one member-list shard with the members' segment facts.
    pub async fn listed_members(
        &self,
        programme_id: &str,
        shard: u32,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<ListedMember>, Option<String>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk > :after")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::member_list_pk(programme_id, shard)),
            )
            .expression_attribute_values(":after", AttributeValue::S(after.unwrap_or("").into()))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let mut members = Vec::new();
        for item in out.items.unwrap_or_default() {
            members.push(listed(item)?);
        }
        let next = out
            .last_evaluated_key
            .is_some()
            .then(|| members.last().map(|m: &ListedMember| m.member_id.clone()))
            .flatten();
        Ok((members, next))
    }

    /// What the member list keeps of a profile, written after every change of it (a
    /// crash in between leaves the old facts until the next change; the send checks
    /// consent on the profile itself).
    pub async fn put_member_facts(&self, profile: &MemberProfile) -> Result<(), StoreError> {
        let facts = serde_dynamo::to_attribute_value(listed_facts(profile))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::member_list(
                &profile.programme_id,
                &profile.member_id,
            ))))
            .update_expression("SET #f = :f, member_id = :m, #e = :e")
            .expression_attribute_names("#f", FACTS)
            .expression_attribute_names("#e", crate::ENTITY)
            .expression_attribute_values(":f", facts)
            .expression_attribute_values(":m", AttributeValue::S(profile.member_id.clone()))
            .expression_attribute_values(":e", AttributeValue::S("member_list".into()))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// The accounts of some members of a programme, 100 keys per BatchGetItem.
    pub async fn accounts_of(
        &self,
        programme_id: &str,
        member_ids: &[&str],
    ) -> Result<Vec<Account>, StoreError> {
        let keys: Vec<(String, String)> = member_ids
            .iter()
            .map(|m| keys::account(programme_id, m))
            .collect();
        self.batch_get(&keys)
            .await?
            .into_values()
            .map(from_item)
            .collect()
    }

    /// Count an offer against a member's month: the offer's marker (once per member) and the
    /// month's count (below `cap`) in one transaction.
    pub async fn count_marketing(
        &self,
        offer: &Offer,
        member_id: &str,
        month: &str,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<MarketingCount, StoreError> {
        let p = &offer.programme_id;
        let ttl = (now + Duration::days(MARKETING_KEEP_DAYS)).timestamp();
        let marker = to_item(
            keys::marketing_sent(p, member_id, &offer.partner_id, &offer.offer_id),
            "marketing_sent",
            &serde_json::json!({"month": month, "at": ts(now), "expires_ttl": ttl}),
        )?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::marketing_month(p, member_id, month))))
            .update_expression("SET #n = if_not_exists(#n, :zero) + :one, #ttl = :ttl, #e = :e")
            .condition_expression("attribute_not_exists(#n) OR #n < :cap")
            .expression_attribute_names("#n", "sent")
            .expression_attribute_names("#ttl", crate::schema::TTL_ATTRIBUTE)
            .expression_attribute_names("#e", crate::ENTITY)
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":cap", AttributeValue::N(cap.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
            .expression_attribute_values(":e", AttributeValue::S("marketing_month".into()))
            .build()?;
        let items = vec![
            self.put_new(marker)?,
            TransactWriteItem::builder().update(count).build(),
        ];
        let outcome = self.transact_retrying(items).await?;
        Ok(match outcome {
            TxOutcome::Committed => MarketingCount::Counted,
            o if o.failed_condition(0) => MarketingCount::AlreadyCounted,
            o if o.failed_condition(1) => MarketingCount::Capped,
            o => {
                return Err(StoreError::Sdk(format!(
                    "marketing count not written: {o:?}"
                )))
            }
        })
    }

    /// A member's marketing messages counted in `month`.
    pub async fn marketing_count(
        &self,
        programme_id: &str,
        member_id: &str,
        month: &str,
    ) -> Result<u32, StoreError> {
        let item: Option<serde_json::Value> = self
            .get(keys::marketing_month(programme_id, member_id, month))
            .await?;
        Ok(item
            .and_then(|v| v.get("sent").and_then(serde_json::Value::as_u64))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0))
    }
}

fn listed(item: crate::Item) -> Result<ListedMember, StoreError> {
    let member_id = match item.get(keys::SK) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    };
    let facts = match item.get(FACTS) {
        Some(v) => Some(serde_dynamo::from_attribute_value(v.clone())?),
        None => None,
    };
    Ok(ListedMember { member_id, facts })
}
