//! Programmes, partners, API keys and member enrolment: written by `bonus apply`, read (and
//! cached) by the functions.

use crate::Stamped;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{keys, to_item, Item, Store, StoreError, TxOutcome};
use bonus_domain::account::Account;
use bonus_domain::member::{ApiKeyRecord, ExternalLink, MemberProfile};
use bonus_domain::programme::{Partner, Programme};

/// A profile item whose number is in the phone index carries this attribute.
pub const PHONE_INDEXED: &str = "phone_indexed";

impl Store {
    /// The phone index writes that go with replacing `before` by `after`: the old number's
    /// entry deleted, the new one's put.
    pub fn phone_index_writes(
        &self,
        before: Option<&MemberProfile>,
        after: &MemberProfile,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
        let old = before.and_then(|b| self.phone_index_key(b));
        let new = self.phone_index_key(after);
        let mut items = Vec::new();
        if let Some(old) = old.filter(|o| Some(o) != new.as_ref()) {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .set_key(Some(super::key_map(&old)))
                .build()?;
            items.push(
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .delete(delete)
                    .build(),
            );
        }
        if let Some(item) = self.phone_index_item(after)? {
            items.push(self.put_item(item, None)?);
        }
        Ok(items)
    }

    /// The member a partner's customer id belongs to.
    pub async fn member_by_external_id(
        &self,
        partner_id: &str,
        customer_id: &str,
    ) -> Result<Option<ExternalLink>, StoreError> {
        self.get(keys::external_id(partner_id, customer_id)).await
    }

    /// Members of a programme with this e-mail address (through the keyed-hash index; at
    /// most a few). Empty when the store has no hash key or the text is not an address.
    pub async fn members_by_email(
        &self,
        programme_id: &str,
        email: &str,
    ) -> Result<Vec<String>, StoreError> {
        let Some(hash) = self
            .email_key
            .get()
            .and_then(|k| bonus_domain::pii::email_hash(&k, email))
        else {
            return Ok(Vec::new());
        };
        let out = self
            .gsi1_query(keys::email_index(programme_id, &hash))
            .limit(10)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| match i.get(keys::GSI1SK) {
                Some(AttributeValue::S(m)) => Some(m.clone()),
                _ => None,
            })
            .collect())
    }

    pub async fn put_programme(&self, p: &Programme) -> Result<(), StoreError> {
        self.put(keys::programme(&p.id), "programme", p).await?;
        self.add_to_id_list(keys::programme_list(), &p.id).await
    }

    /// Add an id to a list item (a string set; adding twice changes nothing).
    async fn add_to_id_list(&self, list: (String, String), id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_map(&list)))
            .stamped_expression("ADD ids :id")
            .expression_attribute_values(":id", AttributeValue::Ss(vec![id.to_string()]))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// The ids in a list item, sorted.
    pub(crate) async fn id_list(&self, list: (String, String)) -> Result<Vec<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(super::key_map(&list)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let mut ids = match out.item.and_then(|i| i.get("ids").cloned()) {
            Some(AttributeValue::Ss(ids)) => ids,
            _ => Vec::new(),
        };
        ids.sort();
        Ok(ids)
    }

    /// Every partner id of every programme: two requests (the programme list, then one
    /// BatchGetItem of the partner lists per 100 programmes). The functions keep it for the
    /// cache period, so an unknown partner id costs no read of its own.
    pub async fn all_partner_ids(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let programmes = self.id_list(keys::programme_list()).await?;
        let lists: Vec<(String, String)> =
            programmes.iter().map(|p| keys::partner_list(p)).collect();
        let mut ids = std::collections::BTreeSet::new();
        for item in self.batch_get(&lists).await?.into_values() {
            if let Some(AttributeValue::Ss(list)) = item.get("ids") {
                ids.extend(list.iter().cloned());
            }
        }
        Ok(ids)
    }

    /// Every partner id of a programme that `bonus apply` has written.
    pub async fn partner_ids(&self, programme_id: &str) -> Result<Vec<String>, StoreError> {
        self.id_list(keys::partner_list(programme_id)).await
    }

    pub async fn get_programme(&self, id: &str) -> Result<Option<Programme>, StoreError> {
        self.get(keys::programme(id)).await
    }

    /// Put a partner in its programme's partner list (idempotent; `bonus migrate`).
    pub async fn list_partner(&self, p: &Partner) -> Result<(), StoreError> {
        self.add_to_id_list(keys::partner_list(&p.programme_id), &p.id)
            .await
    }

    pub async fn put_partner(&self, p: &Partner) -> Result<(), StoreError> {
        self.put(keys::partner(&p.id), "partner", p).await?;
        self.add_to_id_list(keys::partner_list(&p.programme_id), &p.id)
            .await
    }

    /// Change a partner's own rates, redemption limits and sandbox mode, over the version read,
    /// with the change in its audit trail: false when the partner changed meanwhile (nothing written).
    pub async fn update_partner_settings(
        &self,
        old: &Partner,
        new: &Partner,
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let rates: super::Item = serde_dynamo::to_item(&new.rates)?;
        let redemption: super::Item = serde_dynamo::to_item(&new.redemption)?;
        let webhooks = match &new.webhooks {
            Some(w) => AttributeValue::M(serde_dynamo::to_item(w)?),
            None => AttributeValue::Null(true),
        };
        self.update_partner_versioned(
            old,
            "rates = :r, redemption = :x, sandbox = :sandbox, webhooks = :w",
            vec![
                (":r", AttributeValue::M(rates)),
                (":x", AttributeValue::M(redemption)),
                (":sandbox", AttributeValue::Bool(new.sandbox)),
                (":w", webhooks),
            ],
            change,
        )
        .await
    }

    /// `SET {set}` on the partner item with its `settings_version` bumped, only over the
    /// version read, with the change in its audit trail, in one transaction: false when the
    /// partner changed meanwhile (nothing written).
    async fn update_partner_versioned(
        &self,
        old: &Partner,
        set: &str,
        values: Vec<(&str, AttributeValue)>,
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key_map(&keys::partner(&old.id))))
            .update_expression(format!("SET {set}, settings_version = :next"))
            .condition_expression(if old.settings_version == 0 {
                "attribute_exists(PK) AND (attribute_not_exists(settings_version) OR settings_version = :v)"
            } else {
                "settings_version = :v"
            })
            .expression_attribute_values(":v", AttributeValue::N(old.settings_version.to_string()))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((old.settings_version + 1).to_string()),
            );
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .update(update.build()?)
                .build(),
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    pub async fn get_partner(&self, id: &str) -> Result<Option<Partner>, StoreError> {
        self.get(keys::partner(id)).await
    }

    /// Store a key and its place in its partner's list (`bonus apply`). A key revoked
    /// before stays revoked: the file can revoke keys, never bring one back.
    pub async fn put_api_key(&self, key_hash: &str, rec: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut rec = rec.clone();
        if self
            .get_api_key(key_hash)
            .await?
            .is_some_and(|stored| stored.revoked)
        {
            rec.revoked = true;
        }
        self.put(keys::api_key(key_hash), "api_key", &rec).await?;
        self.put(
            keys::partner_key(&rec.partner_id, key_hash),
            "partner_key",
            &rec,
        )
        .await
    }

    /// A new key made over the partner API, with its list item and audit record: false when
    /// the hash exists (never, for a random key).
    pub async fn create_api_key(
        &self,
        key_hash: &str,
        rec: &ApiKeyRecord,
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let items = vec![
            self.put_new(to_item(keys::api_key(key_hash), "api_key", rec)?)?,
            self.put_item(
                to_item(
                    keys::partner_key(&rec.partner_id, key_hash),
                    "partner_key",
                    rec,
                )?,
                None,
            )?,
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// Revoke one of a partner's keys, with its audit record: false when it is not the
    /// partner's.
    pub async fn revoke_api_key(
        &self,
        partner_id: &str,
        key_hash: &str,
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let revoke = |k: (String, String)| -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
            let update = aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(super::key_map(&k)))
                .update_expression("SET revoked = :t")
                .condition_expression("partner_id = :p")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":p", AttributeValue::S(partner_id.to_string()))
                .build()?;
            Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .update(update)
                .build())
        };
        let items = vec![
            revoke(keys::api_key(key_hash))?,
            revoke(keys::partner_key(partner_id, key_hash))?,
            self.change_put(change)?,
        ];
        Ok(matches!(
            self.transact_retrying(items).await?,
            TxOutcome::Committed
        ))
    }

    /// A partner's keys (hash, record) as listed with them.
    pub async fn partner_keys(
        &self,
        partner_id: &str,
    ) -> Result<Vec<(String, ApiKeyRecord)>, StoreError> {
        let items = self
            .query_items(&keys::partner_key(partner_id, "").0, "")
            .await?;
        let mut out = Vec::new();
        for item in items {
            let hash = match item.get(keys::SK) {
                Some(AttributeValue::S(h)) => h.clone(),
                _ => continue,
            };
            out.push((hash, super::from_item(item)?));
        }
        Ok(out)
    }

    /// Replace a partner's (sealed) webhook secrets over the version read, with the change
    /// in its audit trail: false when the partner changed meanwhile.
    pub async fn replace_webhook_secrets(
        &self,
        old: &Partner,
        sealed: &[String],
        change: &bonus_domain::changes::Change,
    ) -> Result<bool, StoreError> {
        let list = AttributeValue::L(sealed.iter().cloned().map(AttributeValue::S).collect());
        self.update_partner_versioned(old, "webhook_secrets = :s", vec![(":s", list)], change)
            .await
    }

    pub async fn get_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(keys::api_key(key_hash)).await
    }

    pub async fn get_account(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<Option<Account>, StoreError> {
        self.get(keys::account(programme_id, member_id)).await
    }

    pub async fn get_profile(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<Option<MemberProfile>, StoreError> {
        self.get(keys::profile(programme_id, member_id)).await
    }

    /// A profile as stored: with its e-mail index entry (GSI1, keyed hash of the address)
    /// when it has an address and the store has a hash key.
    pub fn profile_item(&self, profile: &MemberProfile) -> Result<Item, StoreError> {
        let mut item = to_item(
            keys::profile(&profile.programme_id, &profile.member_id),
            "profile",
            profile,
        )?;
        let hash = match (self.email_key.get(), profile.email.as_deref()) {
            (Some(key), Some(email)) => bonus_domain::pii::email_hash(&key, email),
            _ => None,
        };
        if let Some(hash) = hash {
            item.insert(
                keys::GSI1PK.into(),
                AttributeValue::S(keys::email_index(&profile.programme_id, &hash)),
            );
            item.insert(
                keys::GSI1SK.into(),
                AttributeValue::S(profile.member_id.clone()),
            );
        }
        // Written with its phone index item (`bonus migrate` indexes profiles from before).
        if self.phone_index_key(profile).is_some() {
            item.insert(PHONE_INDEXED.into(), AttributeValue::Bool(true));
        }
        Ok(item)
    }

    fn external_link_items(&self, profile: &MemberProfile) -> Result<Vec<Item>, StoreError> {
        let link = ExternalLink {
            programme_id: profile.programme_id.clone(),
            member_id: profile.member_id.clone(),
        };
        profile
            .external_ids
            .iter()
            .map(|(partner, customer)| {
                to_item(keys::external_id(partner, customer), "external_id", &link)
            })
            .collect()
    }

    /// Point the member's customer ids at partners to them (for members enrolled before
    /// the ids were known). Idempotent.
    pub async fn link_external_ids(&self, profile: &MemberProfile) -> Result<(), StoreError> {
        for item in self.external_link_items(profile)? {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(StoreError::sdk)?;
        }
        Ok(())
    }

    /// Replace a member's profile `before` (as read) with `profile`, keeping its e-mail
    /// index entry and customer-id links in step: links the profile no longer has are
    /// deleted. False, and nothing written, when the member was erased meanwhile (a change
    /// racing an erasure never writes personal data back).
    pub async fn save_profile(
        &self,
        before: &MemberProfile,
        profile: &MemberProfile,
    ) -> Result<bool, StoreError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.profile_item(profile)?))
            // Erased profiles carry `erased_at` (a string): never overwrite one.
            .condition_expression("attribute_exists(PK) AND NOT attribute_type(erased_at, :s)")
            .expression_attribute_values(":s", AttributeValue::S("S".into()))
            .build()?;
        let mut items = vec![aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build()];
        for item in self.external_link_items(profile)? {
            items.push(self.put_item(item, None)?);
        }
        for (partner, customer) in &before.external_ids {
            if profile.external_ids.get(partner) != Some(customer) {
                items.push(self.delete_link(partner, customer)?);
            }
        }
        items.extend(self.phone_index_writes(Some(before), profile)?);
        match self.transact_retrying(items).await? {
            TxOutcome::Committed => {
                self.put_member_facts(profile).await?;
                Ok(true)
            }
            o if o.failed_condition(0) => Ok(false),
            other => Err(StoreError::Sdk(format!("profile not saved: {other:?}"))),
        }
    }

    fn delete_link(
        &self,
        partner: &str,
        customer: &str,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(super::key_map(&keys::external_id(partner, customer))))
            .build()?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .delete(delete)
            .build())
    }

    /// Erase a member's personal data: the profile keeps only the member id, programme,
    /// locale, enrolment and the erasure time; the customer-id links are deleted. The
    /// account, lots and statement are left alone (they hold no personal data).
    pub async fn erase_member(
        &self,
        profile: &MemberProfile,
        now: DateTime<Utc>,
    ) -> Result<MemberProfile, StoreError> {
        let erased = MemberProfile {
            member_id: profile.member_id.clone(),
            programme_id: profile.programme_id.clone(),
            locale: profile.locale.clone(),
            enrolled_at: profile.enrolled_at,
            enrolled_with: profile.enrolled_with.clone(),
            erased_at: Some(profile.erased_at.unwrap_or(now)),
            ..Default::default()
        };
        let mut items = vec![self.put_item(self.profile_item(&erased)?, None)?];
        for (partner, customer) in &profile.external_ids {
            items.push(self.delete_link(partner, customer)?);
        }
        items.extend(self.phone_index_writes(Some(profile), &erased)?);
        match self.transact_retrying(items).await? {
            TxOutcome::Committed => {
                self.put_member_facts(&erased).await?;
                Ok(erased)
            }
            other => Err(StoreError::Sdk(format!("erasure not written: {other:?}"))),
        }
    }

    /// A new member's entry in their programme's member list, with what their profile says
    /// for offers' segments (crate::offers).
    pub fn member_list_item(
        &self,
        profile: &MemberProfile,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let item = to_item(
            keys::member_list(&profile.programme_id, &profile.member_id),
            "member_list",
            &serde_json::json!({
                "member_id": profile.member_id,
                crate::offers::FACTS: bonus_domain::offer::listed_facts(profile),
            }),
        )?;
        self.put_item(item, None)
    }

    /// A page of one shard of a programme's member list, after `after`; with the last id
    /// when there may be more.
    pub async fn members_page(
        &self,
        programme_id: &str,
        shard: u32,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let (members, next) = self
            .listed_members(programme_id, shard, after, limit)
            .await?;
        Ok((members.into_iter().map(|m| m.member_id).collect(), next))
    }

    /// Enrol a member: their (empty) account, their profile and the lookups of their
    /// customer ids at partners, in one transaction. Returns false if the member already
    /// existed (nothing is changed then). A customer id already pointing at another member
    /// is taken over by this one (last writer wins, as in the shop).
    /// Enrol a new member: account, profile, member list entry and customer-id links in one
    /// transaction. A link already taken (the partner enrolled that customer before) or a
    /// member id already taken writes nothing.
    pub async fn enrol_member(&self, profile: &MemberProfile) -> Result<Enrolled, StoreError> {
        self.enrol_with(profile, None).await
    }

    /// Enrol a member; with `company`, a company's account (crate::company).
    pub async fn enrol_with(
        &self,
        profile: &MemberProfile,
        company: Option<bonus_domain::company::CompanyAccount>,
    ) -> Result<Enrolled, StoreError> {
        let mut account = Account::open(&profile.programme_id, &profile.member_id);
        account.enrolled_with = profile.enrolled_with.clone();
        account.company = company;
        let mut items = vec![
            self.put_new(super::account_item(&account)?)?,
            self.put_new(self.profile_item(profile)?)?,
            self.member_list_item(profile)?,
        ];
        let first_link = items.len();
        for item in self.external_link_items(profile)? {
            items.push(self.put_new(item)?);
        }
        items.extend(self.phone_index_writes(None, profile)?);
        let mut retry = self.retry();
        while let Some(pause) = retry.next() {
            super::retry::pause(pause).await;
            match self.transact(items.clone()).await? {
                TxOutcome::Committed => return Ok(Enrolled::Yes),
                o if o.conflicted() => retry.backoff(),
                o if (first_link..items.len()).any(|i| o.failed_condition(i)) => {
                    return Ok(Enrolled::CustomerIdTaken)
                }
                _ => return Ok(Enrolled::MemberIdTaken),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }
}

/// What an enrolment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolled {
    Yes,
    /// The member id is in use.
    MemberIdTaken,
    /// The partner's customer id already points at a member.
    CustomerIdTaken,
}
