//! What the booking tests start from: a closed programme at 1 point per EUR, a shop with a
//! bell campaign (5 points a unit, a budget of 12 over 3 shards), and a shop that enrols
//! unknown members from their first order.

use chrono::{DateTime, Utc};

use crate::config::{parse, ConfigPlan};
use crate::error::parse_json;
use crate::order::Order;

const CONFIG: &str = r#"
programmes:
  - id: velo
    name: Velo
    kind: closed
    currency: EUR
    time_zone: Europe/Amsterdam
partners:
  - id: shop
    programme: velo
    name: Shop
    time_zone: Europe/Amsterdam
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
  - id: enrols
    programme: velo
    name: Enrolling shop
    auto_enrol: true
    webhook_secrets: [whsec_dGVzdC1zaG9wLXNlY3JldC0wMTIzNDU2Nzg5]
campaigns:
  - id: bells
    partner: shop
    name: Bells, 5 a unit
    skus: [BELL]
    starts_on: 2026-11-01
    ends_on: 2026-11-30
    rule: {kind: fixed_per_unit, points: 5}
    budget: 12
    budget_shards: 3
"#;

pub fn now() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse().unwrap()
}

pub fn config() -> ConfigPlan {
    parse(CONFIG).unwrap().plan(now()).unwrap()
}

/// Order A-1 at 10:00 UTC on 23 November 2026 with these lines (JSON), for a member or not.
pub fn order(member: Option<&str>, lines: &str) -> Order {
    let member = member.map_or("null".to_string(), |m| format!("\"{m}\""));
    let json = format!(
        r#"{{"type":"order.paid","order_id":"A-1","member_id":{member},"occurred_at":"2026-11-23T10:00:00Z",
            "currency":"EUR","lines":[{lines}]}}"#
    );
    crate::order::validate(parse_json(json.as_bytes()).unwrap(), now()).unwrap()
}
