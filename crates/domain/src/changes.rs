//! The audit trail of a partner's own settings: every change to its campaigns, rewards and
//! settings, by whom, when, and the thing before and after (as JSON text), written in the
//! same transaction as the change itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Campaign,
    BehaviourCampaign,
    Reward,
    Settings,
    Adjustment,
    Offer,
    /// A gift-shop claim returned (its reward's stock went up).
    Claim,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub partner_id: String,
    /// Unique and time-ordered: the RFC 3339 time and a random suffix.
    pub change_id: String,
    pub at: DateTime<Utc>,
    /// The person who acted (the `Bonus-Actor` header, or the key's label).
    pub actor: String,
    /// Through what: `api:{key label}` or `cli`.
    pub via: String,
    pub subject: Subject,
    pub subject_id: String,
    /// `created`, `updated`, `topped_up`, `ended`, ...
    pub action: String,
    /// JSON text of the thing before (absent: it did not exist) and after.
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub after: Option<String>,
}

impl Change {
    /// A change of `subject_id` from `before` to `after` (each serialised to JSON text).
    #[allow(clippy::too_many_arguments)]
    pub fn of<T: Serialize>(
        partner_id: &str,
        suffix: &str,
        at: DateTime<Utc>,
        who: &Actor,
        subject: Subject,
        subject_id: &str,
        action: &str,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Change {
        let text = |v: Option<&T>| v.and_then(|v| serde_json::to_string(v).ok());
        Change {
            partner_id: partner_id.to_string(),
            change_id: format!(
                "{}#{suffix}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
            at,
            actor: who.name.clone(),
            via: who.via.clone(),
            subject,
            subject_id: subject_id.to_string(),
            action: action.to_string(),
            before: text(before),
            after: text(after),
        }
    }
}

/// Who acts: a person's name and the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub via: String,
}

/// A person's name as given with a request: 1-64 printable characters, trimmed.
pub fn parse_actor(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control) {
        return Err("the acting person's name: 1 to 64 printable characters".into());
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_keep_before_and_after_as_json() {
        let at: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().unwrap();
        let who = Actor {
            name: "Jana".into(),
            via: "api:backoffice".into(),
        };
        let c = Change::of(
            "shop",
            "ab12",
            at,
            &who,
            Subject::Campaign,
            "helmets",
            "topped_up",
            Some(&serde_json::json!({"budget": 100})),
            Some(&serde_json::json!({"budget": 250})),
        );
        assert_eq!(c.change_id, "2026-11-30T10:00:00.000Z#ab12");
        assert_eq!(c.before.as_deref(), Some(r#"{"budget":100}"#));
        assert_eq!(c.after.as_deref(), Some(r#"{"budget":250}"#));
        assert_eq!(parse_actor("  Jana "), Ok("Jana".into()));
        assert!(parse_actor("").is_err());
        assert!(parse_actor("a\nb").is_err());
        assert!(parse_actor(&"x".repeat(65)).is_err());
    }
}
