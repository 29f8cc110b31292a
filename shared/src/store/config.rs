//! Programmes, partners, API keys and member enrolment: written by `bonus apply`, read (and
//! cached) by the functions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{keys, to_item, Store, StoreError, TxOutcome};
use crate::account::Account;
use crate::programme::{Partner, Programme};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    ReadBalance,
}

/// An API key as stored: only the SHA-256 of the key is in the key of the item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub partner_id: String,
    pub label: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
}

/// Hash of an API key as stored (hex SHA-256). Keys are long random strings, so a plain
/// hash is enough; nothing stores or logs the key itself.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A member's personal data, kept apart from the ledger so that erasure can remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberProfile {
    pub member_id: String,
    pub programme_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub locale: String,
    pub enrolled_at: DateTime<Utc>,
}

impl Store {
    pub async fn put_programme(&self, p: &Programme) -> Result<(), StoreError> {
        self.put(keys::programme(&p.id), "programme", p).await
    }

    pub async fn get_programme(&self, id: &str) -> Result<Option<Programme>, StoreError> {
        self.get(keys::programme(id)).await
    }

    pub async fn put_partner(&self, p: &Partner) -> Result<(), StoreError> {
        self.put(keys::partner(&p.id), "partner", p).await
    }

    pub async fn get_partner(&self, id: &str) -> Result<Option<Partner>, StoreError> {
        self.get(keys::partner(id)).await
    }

    pub async fn put_api_key(&self, key_hash: &str, rec: &ApiKeyRecord) -> Result<(), StoreError> {
        self.put(keys::api_key(key_hash), "api_key", rec).await
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

    /// Enrol a member: their (empty) account and their profile, in one transaction.
    /// Returns false if the member already existed (nothing is changed then).
    pub async fn enrol_member(&self, profile: &MemberProfile) -> Result<bool, StoreError> {
        let account = Account::open(&profile.programme_id, &profile.member_id);
        let items = vec![
            self.put_new(to_item(
                keys::account(&profile.programme_id, &profile.member_id),
                "account",
                &account,
            )?)?,
            self.put_new(to_item(
                keys::profile(&profile.programme_id, &profile.member_id),
                "profile",
                profile,
            )?)?,
        ];
        for attempt in 0..super::retry::MAX_ATTEMPTS {
            match self.transact(items.clone()).await? {
                TxOutcome::Committed => return Ok(true),
                o if o.conflicted() => super::retry::sleep_backoff(attempt).await,
                _ => return Ok(false),
            }
        }
        Err(StoreError::Contention(super::retry::MAX_ATTEMPTS))
    }
}
