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
    /// Sending a member's points to another member.
    Transfer,
    /// The partner's own programme settings: campaigns, rates, limits, adjustments, reports
    /// (the partner API, `/v1/partner/...`). Never another partner's.
    Manage,
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

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "bk_";

/// The checksum part of a key: the first 4 bytes of SHA-256 over prefix and random part.
fn api_key_checksum(random_part: &str) -> String {
    let digest = Sha256::digest(format!("{API_KEY_PREFIX}{random_part}").as_bytes());
    hex::encode(&digest[..4])
}

/// A new API key: `bk_`, 160 random bits as 40 hex digits, `_`, and an 8-digit checksum.
/// The checksum lets a function refuse a made-up key without reading the table.
pub fn new_api_key(random: &dyn crate::random::Random) -> String {
    let random_part = random.hex(20);
    let check = api_key_checksum(&random_part);
    format!("{API_KEY_PREFIX}{random_part}_{check}")
}

/// Whether `token` has the shape of a key we issued and its checksum holds. Cheap and
/// without I/O: anything else is refused before any read (a random key costs nothing).
pub fn api_key_well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(API_KEY_PREFIX) else {
        return false;
    };
    let Some((random_part, check)) = rest.split_once('_') else {
        return false;
    };
    let hex_digits = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    hex_digits(random_part, 40) && hex_digits(check, 8) && api_key_checksum(random_part) == check
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
    /// The name other members see on transfers (chosen by the member; else a masked id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether other members may find this member by e-mail or phone to send points.
    #[serde(default)]
    pub findable: Findable,
}

/// Ways other members may find a member to send them points. Off unless the member turns
/// them on (the member site, or a partner's API call on their behalf).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findable {
    #[serde(default)]
    pub by_email: bool,
    #[serde(default)]
    pub by_phone: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;

    #[test]
    fn new_keys_are_well_formed_and_a_changed_character_is_not() {
        let random = SeededRandom::new(7);
        for _ in 0..100 {
            let key = new_api_key(&random);
            assert_eq!(key.len(), 3 + 40 + 1 + 8);
            assert!(api_key_well_formed(&key), "{key}");
            // Any one character changed breaks the checksum (or the shape).
            for i in 3..key.len() {
                let mut bytes = key.clone().into_bytes();
                bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
                let changed = String::from_utf8(bytes).unwrap();
                assert!(!api_key_well_formed(&changed), "{changed}");
            }
        }
        for bad in [
            "",
            "bk_",
            "not-a-key",
            "test-shop-api-key-0001",
            "bk_xyz_12345678",
        ] {
            assert!(!api_key_well_formed(bad), "{bad}");
        }
    }
}
