//! Members and the keys partners call with: a member's personal data (kept apart from the
//! ledger so that erasure can remove it), consents and preferences, and API keys with their
//! scopes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an API key may do. Which members it may do it to is the access policy's
/// ([`crate::access`]); a scope never widens that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Balance and statement reads (a shop widget): nothing personal.
    ReadBalance,
    /// The member's personal data: e-mail, phone, name, consents, preferences.
    ReadProfile,
    /// Holds, captures, voids and gift-shop claims.
    Hold,
    /// Enrolment and profile changes.
    Enrol,
    /// Erasure of the member's personal data (GDPR).
    Erase,
}

impl Scope {
    /// The scopes a key stored before the split (schema 1) keeps: `enrol` then also covered
    /// profile reads and erasure. `read_balance` alone no longer shows the profile.
    pub fn upgrade_legacy(scopes: &[Scope]) -> Vec<Scope> {
        let mut out: Vec<Scope> = scopes.to_vec();
        if scopes.contains(&Scope::Enrol) {
            out.extend([Scope::ReadProfile, Scope::Erase]);
        }
        out.sort();
        out.dedup();
        out
    }
}

/// An API key as stored: only the SHA-256 of the key is in the key of the item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub partner_id: String,
    pub label: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    /// A revoked key is refused (rotation: add the new key, move the shop over, revoke the old).
    #[serde(default)]
    pub revoked: bool,
}

/// Hash of an API key as stored (hex SHA-256). Keys are long random strings, so a plain
/// hash is enough; nothing stores or logs the key itself.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A member's personal data, kept apart from the ledger so that erasure can remove it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The member's customer id at partners' shops (partner id -> customer id).
    #[serde(default)]
    pub external_ids: std::collections::BTreeMap<String, String>,
    /// IANA time zone for messages (quiet hours); default the programme's.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// For B2B members.
    #[serde(default)]
    pub company: Option<Company>,
    #[serde(default)]
    pub consents: Consents,
    #[serde(default)]
    pub preferences: Preferences,
    /// Partners the member enrolled with (empty: the programme as a whole).
    #[serde(default)]
    pub enrolled_with: Vec<String>,
    /// Set when the personal data was erased (GDPR); the ledger stays, anonymous.
    #[serde(default)]
    pub erased_at: Option<DateTime<Utc>>,
    /// The e-mail address failed for good (a hard bounce): no e-mail until a new address.
    #[serde(default)]
    pub email_undeliverable: Option<Undeliverable>,
    /// The phone number failed for good (invalid): no SMS until a new number.
    #[serde(default)]
    pub sms_undeliverable: Option<Undeliverable>,
}

/// Why and when a channel failed for good. The provider's error code only, never the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable {
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub name: String,
    #[serde(default)]
    pub vat_id: Option<String>,
}

/// What the member agreed to be contacted about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consents {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub sms: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Preferred channel: `email`, `sms` or `none`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Points-earned messages: `per_order`, `daily_digest` or `off`.
    #[serde(default)]
    pub earned_messages: Option<String>,
}

/// A partner's customer id pointing at a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalLink {
    pub programme_id: String,
    pub member_id: String,
}
