//! Offers: marketing messages a partner (or the programme's owner, through its own partner)
//! sends to a segment of the programme's members, and shows on the member site.
//!
//! - [`Offer`]: a title and text per locale, a validity window, an optional campaign or
//!   reward it points to, a segment and the channels it goes on.
//! - [`Segment`] over [`SegmentFacts`]: tier, locale, available points, last purchase,
//!   partners bought at, company. What changes with every booking (tier, points, purchases)
//!   is on the member's account, written in the booking's own transaction; what comes from
//!   the profile (locale, reachability, erasure) is on the member's entry in the member list
//!   ([`ListedFacts`]), written with every profile change. Sending and the preview Query the
//!   member list, pass over members whose listed facts rule them out, and read the accounts
//!   of the rest in batches of 100: never a Scan, and the balances as they are at the send.
//! - The frequency cap ([`MARKETING_PER_MONTH`]): marketing messages a member gets in a
//!   month, whatever their sender; messages about their own points are not counted.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::notify::{template_locale, Channel};

/// The programme default of marketing messages per member and month.
pub const MARKETING_PER_MONTH: u32 = 4;
/// Longest validity window of an offer.
pub const MAX_VALID_DAYS: i64 = 366;
pub const MAX_TITLE: usize = 120;
pub const MAX_TEXT: usize = 1_000;

/// What an offer says in one locale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferText {
    pub title: String,
    pub text: String,
}

/// What an offer points to: one of its partner's campaigns or rewards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OfferLink {
    Campaign(String),
    Reward(String),
}

/// Who an offer is for. Every condition given must hold; none given: every member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Tier names (the programme's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// Members who bought at any of these partners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bought_at: Vec<String>,
    /// Days since the last purchase, at least / at most (a member who never bought matches
    /// only a lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_days_since_purchase: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_days_since_purchase: Option<u32>,
    /// Available points, at least / at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_available: Option<i64>,
    /// Template locales (`de`, `nl`, ...): a member's `de-AT` is `de`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locales: Vec<String>,
    /// Only members of a company (true) or only members without one (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_members: Option<bool>,
}

/// What the member list keeps of a member, from their profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFacts {
    #[serde(default)]
    pub locale: String,
    /// Channels the member may be reached on (consent, an address that works).
    #[serde(default)]
    pub reachable: Vec<Channel>,
    /// A B2B member (their profile names a company).
    #[serde(default)]
    pub company: bool,
    /// Erased members are in no segment.
    #[serde(default)]
    pub erased: bool,
}

/// Everything a segment asks of a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentFacts {
    /// Tier name; empty: the programme's lowest.
    pub tier: String,
    pub locale: String,
    pub available: i64,
    /// Local date of the last purchase that earned points.
    pub last_purchase: Option<NaiveDate>,
    /// Partners the member bought at.
    pub bought_at: BTreeSet<String>,
    pub company: bool,
    pub reachable: Vec<Channel>,
    pub erased: bool,
}

impl Segment {
    /// Whether a member with these facts is in the segment on `today`.
    pub fn matches(&self, facts: &SegmentFacts, today: NaiveDate, lowest_tier: &str) -> bool {
        if facts.erased {
            return false;
        }
        let tier = if facts.tier.is_empty() {
            lowest_tier
        } else {
            &facts.tier
        };
        if !self.tiers.is_empty() && !self.tiers.iter().any(|t| t == tier) {
            return false;
        }
        if !self.bought_at.is_empty() && !self.bought_at.iter().any(|p| facts.bought_at.contains(p))
        {
            return false;
        }
        let days = facts.last_purchase.map(|d| (today - d).num_days());
        if let Some(min) = self.min_days_since_purchase {
            if days.is_some_and(|d| d < i64::from(min)) {
                return false;
            }
        }
        if let Some(max) = self.max_days_since_purchase {
            if days.is_none_or(|d| d > i64::from(max)) {
                return false;
            }
        }
        if self.min_available.is_some_and(|m| facts.available < m)
            || self.max_available.is_some_and(|m| facts.available > m)
        {
            return false;
        }
        if !self.locales.is_empty()
            && !self
                .locales
                .iter()
                .any(|l| l == template_locale(&facts.locale))
        {
            return false;
        }
        self.company_members.is_none_or(|c| c == facts.company)
    }

    /// Whether a member with these listed facts could be in the segment: if not, their
    /// account is not read.
    pub fn may_hold(&self, listed: &ListedFacts) -> bool {
        !listed.erased
            && (self.locales.is_empty()
                || self
                    .locales
                    .iter()
                    .any(|l| l == template_locale(&listed.locale)))
    }

    /// Check a segment against the programme's tiers and partners.
    pub fn validate(&self, tiers: &[String], partners: &BTreeSet<String>) -> Result<(), String> {
        if let Some(t) = self.tiers.iter().find(|t| !tiers.contains(t)) {
            return Err(format!(
                "segment.tiers: '{t}' is not a tier of the programme (tiers: {})",
                tiers.join(", ")
            ));
        }
        if let Some(p) = self.bought_at.iter().find(|p| !partners.contains(*p)) {
            return Err(format!(
                "segment.bought_at: '{p}' is not a partner of the programme"
            ));
        }
        if let (Some(a), Some(b)) = (self.min_days_since_purchase, self.max_days_since_purchase) {
            if a > b {
                return Err(
                    "segment: min_days_since_purchase is more than max_days_since_purchase".into(),
                );
            }
        }
        if let (Some(a), Some(b)) = (self.min_available, self.max_available) {
            if a > b {
                return Err("segment: min_available is more than max_available".into());
            }
        }
        if self.min_available.is_some_and(|a| a < 0) || self.max_available.is_some_and(|a| a < 0) {
            return Err("segment: available points are 0 or more".into());
        }
        if let Some(l) = self
            .locales
            .iter()
            .find(|l| !crate::notify::LOCALES.contains(&l.as_str()))
        {
            return Err(format!(
                "segment.locales: '{l}' is not one of {}",
                crate::notify::LOCALES.join(", ")
            ));
        }
        Ok(())
    }
}

/// An offer as stored: under its programme, keyed by partner and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub programme_id: String,
    pub partner_id: String,
    pub offer_id: String,
    /// Locale (`en`, `de`, ...) -> title and text. The member's locale, else English, else
    /// the first.
    pub texts: BTreeMap<String, OfferText>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: DateTime<Utc>,
    #[serde(default)]
    pub link: Option<OfferLink>,
    #[serde(default)]
    pub segment: Segment,
    /// Channels it is sent on (the member's consent and preference still decide).
    pub channels: Vec<Channel>,
    /// When it was sent, and by whom: it is sent once.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sent_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub version: u64,
}

impl Offer {
    /// Check what a partner wrote. `now` bounds the window: it may not have ended already.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), String> {
        if !crate::ids::valid_id(&self.offer_id) {
            return Err("id: letters, digits, '-', '_' or '.', at most 64".into());
        }
        if self.texts.is_empty() {
            return Err("texts: at least one locale".into());
        }
        for (locale, t) in &self.texts {
            let f = |name: &str| format!("texts.{locale}.{name}");
            if !crate::notify::LOCALES.contains(&locale.as_str()) {
                return Err(format!(
                    "texts.{locale}: not one of {}",
                    crate::notify::LOCALES.join(", ")
                ));
            }
            if t.title.trim().is_empty() || t.title.chars().count() > MAX_TITLE {
                return Err(format!("{}: 1 to {MAX_TITLE} characters", f("title")));
            }
            if t.text.trim().is_empty() || t.text.chars().count() > MAX_TEXT {
                return Err(format!("{}: 1 to {MAX_TEXT} characters", f("text")));
            }
        }
        if self.valid_to <= self.valid_from {
            return Err("valid_to: after valid_from".into());
        }
        if self.valid_to - self.valid_from > Duration::days(MAX_VALID_DAYS) {
            return Err(format!(
                "valid_to: at most {MAX_VALID_DAYS} days after valid_from"
            ));
        }
        if self.valid_to <= now {
            return Err("valid_to: in the future".into());
        }
        if self.channels.is_empty() {
            return Err("channels: email, sms or both".into());
        }
        Ok(())
    }

    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from <= at && at < self.valid_to
    }

    /// The text for a member's locale: theirs, else English, else the first.
    pub fn text_for(&self, locale: &str) -> (&str, &OfferText) {
        let want = template_locale(locale);
        self.texts
            .get_key_value(want)
            .or_else(|| self.texts.get_key_value("en"))
            .or_else(|| self.texts.iter().next())
            .map(|(l, t)| (l.as_str(), t))
            .unwrap_or(("en", &EMPTY))
    }

    /// The id of this offer's message to a member (keys the claim per channel).
    pub fn message_id(&self, member_id: &str) -> String {
        format!(
            "offer:{}:{}:{}:{member_id}",
            self.programme_id, self.partner_id, self.offer_id
        )
    }
}

static EMPTY: OfferText = OfferText {
    title: String::new(),
    text: String::new(),
};

/// What the member list keeps of a member's profile.
pub fn listed_facts(profile: &crate::member::MemberProfile) -> ListedFacts {
    ListedFacts {
        locale: profile.locale.clone(),
        reachable: crate::notify::channels(profile),
        company: profile.company.is_some(),
        erased: profile.erased_at.is_some(),
    }
}

/// A member's facts from their listed facts and their account, now.
pub fn facts_of(
    listed: &ListedFacts,
    account: &crate::account::Account,
    programme: &crate::programme::Programme,
    now: DateTime<Utc>,
) -> SegmentFacts {
    SegmentFacts {
        tier: account.tier.clone(),
        locale: listed.locale.clone(),
        available: account.view(programme, now).available,
        last_purchase: account.last_purchase,
        bought_at: account.bought_at.clone(),
        company: listed.company || account.company.is_some() || account.default_company.is_some(),
        reachable: listed.reachable.clone(),
        erased: listed.erased,
    }
}

/// The month a marketing message counts in (`YYYY-MM`, the member's local date).
pub fn cap_month(local_day: NaiveDate) -> String {
    local_day.format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn gold() -> SegmentFacts {
        SegmentFacts {
            tier: "Gold".into(),
            locale: "de-AT".into(),
            available: 1200,
            last_purchase: Some(d("2026-11-01")),
            bought_at: ["velo-shop".to_string()].into(),
            company: false,
            reachable: vec![Channel::Email],
            erased: false,
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let today = d("2026-11-30");
        let f = gold();
        let all = Segment::default();
        assert!(all.matches(&f, today, "Basic"));
        let s = Segment {
            tiers: vec!["Gold".into()],
            bought_at: vec!["velo-shop".into(), "bakery".into()],
            min_days_since_purchase: Some(29),
            max_days_since_purchase: Some(29),
            min_available: Some(1200),
            max_available: Some(1200),
            locales: vec!["de".into()],
            company_members: Some(false),
        };
        assert!(s.matches(&f, today, "Basic"));
        for broken in [
            Segment {
                tiers: vec!["Silver".into()],
                ..s.clone()
            },
            Segment {
                bought_at: vec!["bakery".into()],
                ..s.clone()
            },
            Segment {
                min_days_since_purchase: Some(30),
                ..s.clone()
            },
            Segment {
                max_days_since_purchase: Some(28),
                ..s.clone()
            },
            Segment {
                min_available: Some(1201),
                ..s.clone()
            },
            Segment {
                max_available: Some(1199),
                ..s.clone()
            },
            Segment {
                locales: vec!["nl".into()],
                ..s.clone()
            },
            Segment {
                company_members: Some(true),
                ..s.clone()
            },
        ] {
            assert!(!broken.matches(&f, today, "Basic"), "{broken:?}");
        }
        // The lowest tier is written as empty on the account.
        let basic = SegmentFacts {
            tier: String::new(),
            ..f.clone()
        };
        let s = Segment {
            tiers: vec!["Basic".into()],
            ..Segment::default()
        };
        assert!(s.matches(&basic, today, "Basic"));
        // Erased: never.
        assert!(!Segment::default().matches(&SegmentFacts { erased: true, ..f }, today, "Basic"));
    }

    #[test]
    fn a_member_who_never_bought_matches_only_a_lower_bound_on_days() {
        let never = SegmentFacts {
            last_purchase: None,
            ..gold()
        };
        let today = d("2026-11-30");
        let lapsed = Segment {
            min_days_since_purchase: Some(90),
            ..Segment::default()
        };
        let recent = Segment {
            max_days_since_purchase: Some(30),
            ..Segment::default()
        };
        assert!(lapsed.matches(&never, today, ""));
        assert!(!recent.matches(&never, today, ""));
    }

    #[test]
    fn listed_facts_pass_over_members_without_reading_their_accounts() {
        let listed = ListedFacts {
            locale: "de-AT".into(),
            reachable: vec![Channel::Email],
            company: false,
            erased: false,
        };
        let de = Segment {
            locales: vec!["de".into()],
            ..Segment::default()
        };
        assert!(de.may_hold(&listed));
        let nl = Segment {
            locales: vec!["nl".into()],
            ..Segment::default()
        };
        assert!(!nl.may_hold(&listed));
        let gone = ListedFacts {
            erased: true,
            ..listed
        };
        assert!(!Segment::default().may_hold(&gone));
    }

    fn offer() -> Offer {
        let t = |s: &str| OfferText {
            title: s.into(),
            text: format!("{s} text"),
        };
        Offer {
            programme_id: "velo".into(),
            partner_id: "velo-shop".into(),
            offer_id: "gold-weekend".into(),
            texts: [
                ("en".to_string(), t("Gold weekend")),
                ("de".to_string(), t("Gold-Wochenende")),
            ]
            .into(),
            valid_from: "2026-11-30T00:00:00Z".parse().unwrap(),
            valid_to: "2026-12-07T00:00:00Z".parse().unwrap(),
            link: None,
            segment: Segment::default(),
            channels: vec![Channel::Email],
            sent_at: None,
            sent_by: None,
            created_at: "2026-11-29T00:00:00Z".parse().unwrap(),
            version: 1,
        }
    }

    #[test]
    fn texts_fall_back_to_english() {
        let o = offer();
        assert_eq!(o.text_for("de-CH").1.title, "Gold-Wochenende");
        assert_eq!(o.text_for("fi").0, "en");
        let only_de = Offer {
            texts: o
                .texts
                .iter()
                .filter(|(l, _)| *l == "de")
                .map(|(l, t)| (l.clone(), t.clone()))
                .collect(),
            ..o
        };
        assert_eq!(only_de.text_for("sv").0, "de");
    }

    #[test]
    fn validation_names_the_field() {
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        assert_eq!(offer().validate(now), Ok(()));
        let mut o = offer();
        o.texts.insert(
            "xx".into(),
            OfferText {
                title: "a".into(),
                text: "b".into(),
            },
        );
        assert!(o.validate(now).unwrap_err().starts_with("texts.xx"));
        let mut o = offer();
        o.valid_to = o.valid_from;
        assert!(o.validate(now).unwrap_err().starts_with("valid_to"));
        let mut o = offer();
        o.valid_to = o.valid_from + Duration::days(400);
        assert!(o.validate(now).unwrap_err().starts_with("valid_to"));
        let late: DateTime<Utc> = "2026-12-08T00:00:00Z".parse().unwrap();
        assert!(offer().validate(late).unwrap_err().starts_with("valid_to"));
        let mut o = offer();
        o.channels.clear();
        assert!(o.validate(now).unwrap_err().starts_with("channels"));
        let mut o = offer();
        o.texts.insert(
            "en".into(),
            OfferText {
                title: "x".repeat(121),
                text: "b".into(),
            },
        );
        assert!(o.validate(now).unwrap_err().starts_with("texts.en.title"));
        let tiers = vec!["Basic".to_string(), "Gold".to_string()];
        let partners: BTreeSet<String> = ["velo-shop".to_string()].into();
        let s = Segment {
            tiers: vec!["Platinum".into()],
            ..Segment::default()
        };
        assert!(s
            .validate(&tiers, &partners)
            .unwrap_err()
            .starts_with("segment.tiers"));
        let s = Segment {
            bought_at: vec!["other".into()],
            ..Segment::default()
        };
        assert!(s
            .validate(&tiers, &partners)
            .unwrap_err()
            .starts_with("segment.bought_at"));
        let s = Segment {
            min_available: Some(10),
            max_available: Some(5),
            ..Segment::default()
        };
        assert!(s.validate(&tiers, &partners).is_err());
    }

    proptest! {
        /// Widening a segment's bounds never drops a member it matched.
        #[test]
        fn wider_bounds_keep_members(avail in 0i64..10_000, lo in 0i64..10_000, span in 0i64..10_000, widen in 0i64..1_000) {
            let f = SegmentFacts { available: avail, ..gold() };
            let today = d("2026-11-30");
            let narrow = Segment { min_available: Some(lo), max_available: Some(lo + span), ..Segment::default() };
            let wide = Segment { min_available: Some((lo - widen).max(0)), max_available: Some(lo + span + widen), ..Segment::default() };
            if narrow.matches(&f, today, "") {
                prop_assert!(wide.matches(&f, today, ""));
            }
            prop_assert_eq!(narrow.matches(&f, today, ""), avail >= lo && avail <= lo + span);
        }
    }
}
