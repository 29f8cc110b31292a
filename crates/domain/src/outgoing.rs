//! Outgoing webhooks: a partner subscribes to its members' events (points earned, available,
//! expiring, tier changed, redeemed) so that its own e-mail tool can act on them. Which
//! ledger event becomes which webhook, to which partners, with what body (member id and the
//! partner's own customer id, never an address or a name), and the retry schedule. Signed
//! with Standard Webhooks (`crate::webhook_sig`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::{DomainEvent, EventKind};

/// The event types a partner may subscribe to.
pub const EVENT_TYPES: [&str; 5] = [
    "points.earned",
    "points.available",
    "points.expiring",
    "tier.changed",
    "points.redeemed",
];

/// Attempts before a delivery goes to the dead-letter queue (the queue's maxReceiveCount).
pub const MAX_ATTEMPTS: u32 = 8;
/// A receiver has this long to answer.
pub const TIMEOUT_SECS: u64 = 10;

/// A partner's subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// `https://...` (or `http://localhost` / `http://127.0.0.1` for trying it locally).
    pub url: String,
    /// Of [`EVENT_TYPES`].
    pub events: Vec<String>,
}

impl Subscription {
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.trim();
        let local = ["http://localhost", "http://127.0.0.1"].iter().any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
        let host_ok = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .is_some_and(|host| {
                !host.is_empty() && !host.contains('@') && !host.contains(char::is_whitespace)
            });
        if !(host_ok || local) || url.len() > 2_000 {
            return Err("webhooks.url: an https:// address (http://localhost or http://127.0.0.1 to try it locally)".into());
        }
        if self.events.is_empty() {
            return Err(format!(
                "webhooks.events: one or more of {}",
                EVENT_TYPES.join(", ")
            ));
        }
        if let Some(e) = self
            .events
            .iter()
            .find(|e| !EVENT_TYPES.contains(&e.as_str()))
        {
            return Err(format!(
                "webhooks.events: '{e}' is not one of {}",
                EVENT_TYPES.join(", ")
            ));
        }
        Ok(())
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == event_type)
    }
}

/// The webhook type of a ledger event, if partners can subscribe to it.
pub fn event_type(event: &DomainEvent) -> Option<&'static str> {
    Some(match &event.kind {
        EventKind::PointsEarned { .. } => "points.earned",
        EventKind::PointsAvailable { .. } => "points.available",
        EventKind::ExpiryWarning { .. } => "points.expiring",
        EventKind::TierChanged { .. } => "tier.changed",
        EventKind::PointsRedeemed { .. } => "points.redeemed",
        _ => return None,
    })
}

/// The partners an event concerns: those the member enrolled with (their own members), and
/// the partner the points were earned or spent at.
pub fn concerned(event: &DomainEvent, enrolled_with: &[String]) -> Vec<String> {
    let mut out: Vec<String> = enrolled_with.to_vec();
    match &event.kind {
        EventKind::PointsEarned { partner_id, .. }
        | EventKind::PointsRedeemed { partner_id, .. } => out.push(partner_id.clone()),
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// One delivery to one partner: what the sender posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `webhook-id`: the same for every attempt (receivers deduplicate on it).
    pub webhook_id: String,
    pub partner_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl Delivery {
    /// The body: `{"type", "timestamp", "data"}` as Standard Webhooks suggests.
    pub fn body(&self) -> String {
        json!({"type": self.event_type, "timestamp": self.occurred_at, "data": self.data})
            .to_string()
    }
}

/// What `partner` is told about an event: the member id, the partner's own customer id for
/// the member (if it has one), and the event's figures.
pub fn delivery(event: &DomainEvent, partner: &str, customer_id: Option<&str>) -> Option<Delivery> {
    let event_type = event_type(event)?;
    let mut data = match &event.kind {
        EventKind::PointsEarned {
            partner_id,
            order_id,
            points,
            available_at,
            expires_on,
            ..
        } => json!({
            "partner_id": partner_id, "order_id": order_id, "points": points,
            "available_at": available_at, "expires_on": expires_on,
        }),
        EventKind::PointsAvailable { points, .. } => json!({"points": points}),
        EventKind::ExpiryWarning {
            points,
            expires_on,
            days,
        } => {
            json!({"points": points, "expires_on": expires_on, "days": days})
        }
        EventKind::TierChanged { from, to, .. } => json!({"from": from, "to": to}),
        EventKind::PointsRedeemed {
            partner_id,
            points,
            reference,
            ..
        } => {
            json!({"partner_id": partner_id, "points": points, "reference": reference})
        }
        _ => return None,
    };
    if let Some(o) = data.as_object_mut() {
        o.insert("programme_id".into(), json!(event.programme_id));
        o.insert("member_id".into(), json!(event.member_id));
        o.insert("customer_id".into(), json!(customer_id));
    }
    Some(Delivery {
        webhook_id: format!("msg_{}_{}", partner, event.event_id).replace([':', '/', ' '], "_"),
        partner_id: partner.to_string(),
        event_type: event_type.to_string(),
        occurred_at: event.occurred_at,
        data,
    })
}

/// How long to wait before attempt `attempt` + 1 (attempt 1 failed: 30 s, then doubling,
/// at most 6 hours); the jitter spreads a receiver's outage's retries.
pub fn retry_after(attempt: u32, jitter_permille: u32) -> Duration {
    let base = 30i64.saturating_mul(1i64 << attempt.saturating_sub(1).min(20));
    let capped = base.min(6 * 3_600);
    Duration::seconds(capped + capped * i64::from(jitter_permille.min(1_000)) / 4_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earned() -> DomainEvent {
        DomainEvent {
            event_id: "earned:velo:shop:A-1".into(),
            occurred_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            programme_id: "velo".into(),
            member_id: "M-1".into(),
            kind: EventKind::PointsEarned {
                partner_id: "shop".into(),
                order_id: "A-1".into(),
                lot_id: "shop:A-1".into(),
                points: 99,
                available_at: "2026-12-07T10:00:00Z".parse().unwrap(),
                expires_on: "2027-11-23".parse().unwrap(),
            },
        }
    }

    #[test]
    fn subscriptions_take_https_and_known_events_only() {
        let s = |url: &str, events: &[&str]| Subscription {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
        };
        assert_eq!(
            s("https://hooks.example/bonus", &["points.earned"]).validate(),
            Ok(())
        );
        assert_eq!(
            s("http://127.0.0.1:8080/x", &["tier.changed"]).validate(),
            Ok(())
        );
        for bad in [
            "http://hooks.example",
            "ftp://x",
            "https://",
            "https://user@host/",
            "http://localhost.evil.example",
        ] {
            assert!(
                s(bad, &["points.earned"])
                    .validate()
                    .unwrap_err()
                    .starts_with("webhooks.url"),
                "{bad}"
            );
        }
        assert!(s("https://h.example", &[]).validate().is_err());
        assert!(s("https://h.example", &["points.spent"])
            .validate()
            .unwrap_err()
            .contains("points.spent"));
    }

    #[test]
    fn an_event_goes_to_the_members_partners_and_where_it_happened() {
        let e = earned();
        assert_eq!(
            concerned(&e, &["bakery".into(), "shop".into()]),
            ["bakery", "shop"]
        );
        assert_eq!(concerned(&e, &[]), ["shop"]);
        let d = delivery(&e, "shop", Some("C-77")).unwrap();
        assert_eq!(d.event_type, "points.earned");
        assert_eq!(d.webhook_id, "msg_shop_earned_velo_shop_A-1");
        assert_eq!(d.data["customer_id"], "C-77");
        assert_eq!(d.data["points"], 99);
        let body: Value = serde_json::from_str(&d.body()).unwrap();
        assert_eq!(body["type"], "points.earned");
        assert_eq!(body["data"]["member_id"], "M-1");
    }

    #[test]
    fn retries_back_off_to_six_hours() {
        assert_eq!(retry_after(1, 0), Duration::seconds(30));
        assert_eq!(retry_after(2, 0), Duration::seconds(60));
        assert_eq!(retry_after(4, 1_000), Duration::seconds(240 + 60));
        assert_eq!(retry_after(30, 0), Duration::hours(6));
    }
}
