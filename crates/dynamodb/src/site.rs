//! The member site's items: sessions, one-time login secrets, throttle counters, the phone
//! index and pending contact changes. Every one of them expires by TTL as well (DynamoDB
//! deletes within days); reads check the expiry themselves.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_item, key_map, keys, to_item, Item, Store, StoreError};
use bonus_domain::member::MemberProfile;
use bonus_domain::site::SessionRef;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub programme_id: String,
    pub member_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// How the member logged in: `email`, `sms` or `partner:{id}`.
    pub via: String,
    /// The locale chosen on the site (the profile's until changed).
    #[serde(default)]
    pub locale: Option<String>,
}

/// A one-time login secret: a link's token or an SMS code, stored as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSecret {
    pub programme_id: String,
    pub member_id: String,
    /// `email` or `sms`.
    pub channel: String,
    /// The code's hash (SMS); the link's token is the key itself.
    #[serde(default)]
    pub code_sha256: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    pub expires_at: DateTime<Utc>,
}

/// A new e-mail address or phone number waiting for its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChange {
    pub channel: String,
    pub address: String,
    pub code_sha256: String,
    #[serde(default)]
    pub attempts: u32,
    pub expires_at: DateTime<Utc>,
}

/// What checking a code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck<T> {
    /// Right: the secret is used up (deleted), here is what it was for.
    Accepted(T),
    /// Wrong, this many tries left.
    Wrong(u32),
    /// None pending, run out, or too many wrong tries.
    Void,
}

fn with_ttl(mut item: Item, at: DateTime<Utc>) -> Item {
    item.insert(
        super::schema::TTL_ATTRIBUTE.into(),
        AttributeValue::N(at.timestamp().to_string()),
    );
    item
}

impl Store {
    pub async fn put_session(&self, s: &Session) -> Result<(), StoreError> {
        let item = to_item(
            keys::session(&s.programme_id, &s.member_id, &s.session_id),
            "session",
            s,
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_ttl(item, s.expires_at)))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// The session a (verified) cookie names, if it still exists and has not run out.
    pub async fn session(
        &self,
        r: &SessionRef,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let s: Option<Session> = self
            .get(keys::session(&r.programme_id, &r.member_id, &r.session_id))
            .await?;
        Ok(s.filter(|s| now < s.expires_at))
    }

    pub async fn set_session_locale(&self, s: &Session, locale: &str) -> Result<(), StoreError> {
        let mut s = s.clone();
        s.locale = Some(locale.to_string());
        self.put_session(&s).await
    }

    pub async fn delete_session(&self, r: &SessionRef) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::session(
                &r.programme_id,
                &r.member_id,
                &r.session_id,
            ))))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// End every session of a member ("log out everywhere", erasure). Returns how many.
    pub async fn delete_all_sessions(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<usize, StoreError> {
        let sessions = self
            .query_items(
                &keys::member_pk(programme_id, member_id),
                keys::SESSION_PREFIX,
            )
            .await?;
        for item in &sessions {
            let key = [keys::PK, keys::SK]
                .iter()
                .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .map_err(StoreError::sdk)?;
        }
        Ok(sessions.len())
    }

    /// Store a login secret under `key_hash` (replacing one pending for the same key).
    pub async fn put_login_secret(
        &self,
        key_hash: &str,
        secret: &LoginSecret,
    ) -> Result<(), StoreError> {
        let item = to_item(keys::login_secret(key_hash), "login_secret", secret)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_ttl(item, secret.expires_at)))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Use a login link's secret: deleted on the way out, so of two uses exactly one gets it.
    pub async fn take_login_secret(
        &self,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<LoginSecret>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::login_secret(key_hash))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let secret: Option<LoginSecret> = out.attributes.map(from_item).transpose()?;
        Ok(secret.filter(|s| now < s.expires_at))
    }

    /// Check an SMS code against the secret under `key_hash`: right once (then gone), wrong
    /// at most [`bonus_domain::site::CODE_ATTEMPTS`] times (then void).
    pub async fn check_login_code(
        &self,
        key_hash: &str,
        code_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck<LoginSecret>, StoreError> {
        let key = keys::login_secret(key_hash);
        let Some(secret) = self.get::<LoginSecret>(key.clone()).await? else {
            return Ok(CodeCheck::Void);
        };
        let stored = secret.code_sha256.clone().unwrap_or_default();
        self.check_code(
            key,
            secret.attempts,
            &stored,
            secret.expires_at,
            code_sha256,
            now,
        )
        .await
        .map(|c| match c {
            CodeCheck::Accepted(()) => CodeCheck::Accepted(secret),
            CodeCheck::Wrong(n) => CodeCheck::Wrong(n),
            CodeCheck::Void => CodeCheck::Void,
        })
    }

    /// The shared code check: a right code deletes the item (conditional on the attempts
    /// read, so a racing wrong try cannot be skipped); a wrong one counts.
    async fn check_code(
        &self,
        key: (String, String),
        attempts: u32,
        stored_sha256: &str,
        expires_at: DateTime<Utc>,
        given_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck<()>, StoreError> {
        use bonus_domain::site::{tokens_match, CODE_ATTEMPTS};
        if now >= expires_at || attempts >= CODE_ATTEMPTS {
            return Ok(CodeCheck::Void);
        }
        if tokens_match(stored_sha256, given_sha256) {
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_map(&key)))
                .condition_expression("attempts = :n")
                .expression_attribute_values(":n", AttributeValue::N(attempts.to_string()))
                .send()
                .await;
            return Ok(if super::written(deleted)? {
                CodeCheck::Accepted(())
            } else {
                CodeCheck::Void
            });
        }
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&key)))
            .update_expression("SET attempts = attempts + :one")
            .condition_expression("attribute_exists(PK) AND attempts < :max")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(CODE_ATTEMPTS.to_string()))
            .send()
            .await;
        super::written(counted)?;
        Ok(CodeCheck::Wrong(CODE_ATTEMPTS.saturating_sub(attempts + 1)))
    }

    /// Count one request in a throttle bucket: false (and nothing counted) when it already
    /// holds `limit`.
    pub async fn throttle(
        &self,
        kind: &str,
        bucket: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let expires = now + chrono::Duration::hours(2);
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&keys::throttle(kind, bucket))))
            .update_expression("ADD #n :one SET #ttl = :ttl, entity = :e")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "count")
            .expression_attribute_names("#ttl", super::schema::TTL_ATTRIBUTE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires.timestamp().to_string()))
            .expression_attribute_values(":e", AttributeValue::S("throttle".into()))
            .send()
            .await;
        super::written(counted)
    }

    /// Members of a programme with this phone number (through the keyed-hash phone index).
    pub async fn members_by_phone(
        &self,
        programme_id: &str,
        phone: &str,
    ) -> Result<Vec<String>, StoreError> {
        let Some(hash) = self
            .email_key
            .get()
            .and_then(|k| bonus_domain::site::phone_hash(&k, phone))
        else {
            return Ok(Vec::new());
        };
        let (pk, _) = keys::phone_index(programme_id, &hash, "");
        Ok(self
            .query_items(&pk, "")
            .await?
            .into_iter()
            .filter_map(|i| match i.get(keys::SK) {
                Some(AttributeValue::S(m)) => Some(m.clone()),
                _ => None,
            })
            .collect())
    }

    /// The phone index key of a profile's number (None: no number, or no hash key).
    pub fn phone_index_key(&self, profile: &MemberProfile) -> Option<(String, String)> {
        let key = self.email_key.get()?;
        let hash = bonus_domain::site::phone_hash(&key, profile.phone.as_deref()?)?;
        Some(keys::phone_index(
            &profile.programme_id,
            &hash,
            &profile.member_id,
        ))
    }

    /// The phone index item of a profile's number, if it has one.
    pub fn phone_index_item(&self, profile: &MemberProfile) -> Result<Option<Item>, StoreError> {
        self.phone_index_key(profile)
            .map(|k| {
                to_item(
                    k,
                    "phone_index",
                    &serde_json::json!({ "member_id": profile.member_id }),
                )
            })
            .transpose()
    }

    pub async fn put_contact_change(
        &self,
        programme_id: &str,
        member_id: &str,
        change: &ContactChange,
    ) -> Result<(), StoreError> {
        let item = to_item(
            keys::contact_change(programme_id, member_id, &change.channel),
            "contact_change",
            change,
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_ttl(item, change.expires_at)))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Check the code of a pending contact change; accepted: the change (now deleted).
    pub async fn check_contact_code(
        &self,
        programme_id: &str,
        member_id: &str,
        channel: &str,
        code_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck<ContactChange>, StoreError> {
        let key = keys::contact_change(programme_id, member_id, channel);
        let Some(change) = self.get::<ContactChange>(key.clone()).await? else {
            return Ok(CodeCheck::Void);
        };
        let check = self
            .check_code(
                key,
                change.attempts,
                &change.code_sha256,
                change.expires_at,
                code_sha256,
                now,
            )
            .await?;
        Ok(match check {
            CodeCheck::Accepted(()) => CodeCheck::Accepted(change),
            CodeCheck::Wrong(n) => CodeCheck::Wrong(n),
            CodeCheck::Void => CodeCheck::Void,
        })
    }

    /// Whether a change of `channel` is waiting for its code (the address is not shown).
    pub async fn contact_change_pending(
        &self,
        programme_id: &str,
        member_id: &str,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let change: Option<ContactChange> = self
            .get(keys::contact_change(programme_id, member_id, channel))
            .await?;
        Ok(change
            .is_some_and(|c| now < c.expires_at && c.attempts < bonus_domain::site::CODE_ATTEMPTS))
    }

    /// Delete the pending contact changes of a member (erasure: they hold an address).
    pub async fn delete_contact_changes(
        &self,
        programme_id: &str,
        member_id: &str,
    ) -> Result<(), StoreError> {
        for channel in ["email", "sms"] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_map(&keys::contact_change(
                    programme_id,
                    member_id,
                    channel,
                ))))
                .send()
                .await
                .map_err(StoreError::sdk)?;
        }
        Ok(())
    }

    /// Mark a one-time token (a partner's member token) used: true the first time only.
    pub async fn use_once(
        &self,
        key_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let item = to_item(
            keys::login_secret(key_hash),
            "used_token",
            &serde_json::json!({ "used": true }),
        )?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(with_ttl(item, expires_at)))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        super::written(put)
    }
}
