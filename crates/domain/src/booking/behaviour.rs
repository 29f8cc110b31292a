//! A behaviour event (a webinar attended, a review written), decided: the partner's behaviour
//! campaign pays its fixed points as a lot of their own, at most `per_member_cap` times per
//! member; a non-member's event is recorded with nothing.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{to_json, Booking, LedgerWrite, OrderRecord, ANSWER_ACCEPTED, ANSWER_DONE};
use crate::account::Account;
use crate::campaign::BehaviourCampaign;
use crate::error::Error;
use crate::ledger::plan_order;
use crate::programme::Programme;

/// The idempotency record of a behaviour event is keyed by its reference.
pub const RECORD_EVENT: &str = "behaviour";

/// `POST /v1/partners/{partner_id}/events`.
#[derive(Debug, Deserialize)]
pub struct BehaviourEventIn {
    #[serde(rename = "type")]
    pub event_type: String,
    pub event_ref: String,
    pub member_id: String,
    pub occurred_at: String,
}

#[derive(Debug, Serialize)]
struct Answer<'a> {
    status: &'static str,
    partner_id: &'a str,
    event_ref: &'a str,
    event_type: &'a str,
    member_id: &'a str,
    campaign_id: &'a str,
    points: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    available_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_on: Option<NaiveDate>,
}

/// A validated behaviour event at a partner, with the campaign that pays for it.
#[derive(Debug, Clone, Copy)]
pub struct BehaviourContext<'a> {
    pub partner_id: &'a str,
    pub programme: &'a Programme,
    pub campaign: &'a BehaviourCampaign,
    pub event: &'a BehaviourEventIn,
    pub occurred_at: DateTime<Utc>,
    pub body_sha256: &'a str,
    pub now: DateTime<Utc>,
    /// What the campaign's budget has left, as read (None: it has no budget).
    pub budget_left: Option<crate::money::Points>,
}

/// Decide a behaviour event for the member's account as read (None: not a member).
pub fn plan_behaviour_booking(
    cx: &BehaviourContext<'_>,
    account: Option<&Account>,
) -> Result<Booking, Error> {
    let (campaign, event) = (cx.campaign, cx.event);
    // A member another partner enrolled in a closed programme is not this partner's to pay
    // (crate::access): the event is answered as for an unknown member.
    let account = account.filter(|a| {
        crate::access::relation(
            cx.partner_id,
            &cx.programme.id,
            cx.programme.kind,
            &a.programme_id,
            &a.enrolled_with,
        ) != crate::access::Relation::Outsider
    });
    let used = account
        .and_then(|a| a.behaviour.get(&campaign.id))
        .copied()
        .unwrap_or(0);
    let capped = campaign.per_member_cap.is_some_and(|cap| used >= cap);
    let exhausted = campaign.budget.is_some() && cx.budget_left.unwrap_or(0) < campaign.points;
    let plan = match account {
        Some(a) if !capped && !exhausted => {
            // '#' never occurs in an order id, so this lot can never collide with an order's.
            let source = format!("evt#{}", event.event_ref);
            let tier = a.tier_name(cx.programme).to_string();
            let mut plan = plan_order(
                cx.programme,
                a,
                cx.partner_id,
                &source,
                campaign.points,
                0,
                &tier,
                cx.occurred_at,
                cx.now,
            )?;
            *plan
                .account
                .behaviour
                .entry(campaign.id.clone())
                .or_insert(0) += 1;
            if let Some(entry) = plan.entry.as_mut() {
                entry.reason = format!(
                    "{} {} at {}",
                    event.event_type, event.event_ref, cx.partner_id
                );
            }
            Some(plan)
        }
        _ => None,
    };
    let (status, status_text) = match (account, capped, exhausted) {
        (None, _, _) => (ANSWER_ACCEPTED, "recorded_non_member"),
        (Some(_), true, _) => (ANSWER_DONE, "cap_reached"),
        (Some(_), false, true) => (ANSWER_DONE, "budget_exhausted"),
        (Some(_), false, false) => (ANSWER_DONE, "earned"),
    };
    let lot = plan.as_ref().and_then(|p| p.lot.clone());
    let answer = Answer {
        status: status_text,
        partner_id: cx.partner_id,
        event_ref: &event.event_ref,
        event_type: &event.event_type,
        member_id: &event.member_id,
        campaign_id: &campaign.id,
        points: lot.as_ref().map_or(0, |l| l.points),
        available_at: lot.as_ref().map(|l| l.available_at),
        expires_on: lot.as_ref().map(|l| l.expires_on),
    };
    let response = to_json(&answer)?;
    let record = OrderRecord {
        partner_id: cx.partner_id.to_string(),
        order_id: event.event_ref.clone(),
        event: RECORD_EVENT.to_string(),
        body_sha256: cx.body_sha256.to_string(),
        member_id: account.map(|a| a.member_id.clone()),
        points: answer.points,
        lot_id: lot.as_ref().map(|l| l.lot_id.clone()),
        campaign_points: [(campaign.id.clone(), answer.points)]
            .into_iter()
            .filter(|(_, p)| *p > 0)
            .collect(),
        status,
        response: response.clone(),
        recorded_at: cx.now,
        // The record is the event's only guard against a second booking: kept.
        expires_ttl: None,
    };
    let paid = answer.points;
    let write = match (plan, account) {
        (Some(plan), Some(a)) => {
            let mut w = LedgerWrite::accrual(record, Some(a.version), plan);
            // Taken from the budget in the same transaction, on condition that it has it.
            if campaign.budget.is_some() && paid > 0 {
                w.takes.push(crate::budget::BudgetTake {
                    partner_id: cx.partner_id.to_string(),
                    campaign_id: campaign.budget_id(),
                    shard: 0,
                    points: paid,
                });
            }
            w
        }
        _ => LedgerWrite::record_only(record),
    };
    Ok(Booking {
        write: Some(write),
        status,
        response,
        points: answer.points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn decide(account: Option<&Account>, cap: Option<u32>) -> Booking {
        decide_with_budget(account, cap, None)
    }

    fn decide_with_budget(
        account: Option<&Account>,
        cap: Option<u32>,
        budget: Option<(i64, i64)>,
    ) -> Booking {
        let programme = Programme::with_defaults(
            "velo",
            "Velo",
            ProgrammeKind::Closed,
            Currency::parse("EUR").unwrap(),
        );
        let campaign = BehaviourCampaign {
            id: "webinars".into(),
            partner_id: "shop".into(),
            name: "Webinars".into(),
            event_type: "webinar.attended".into(),
            points: 50,
            per_member_cap: cap,
            starts_on: "2026-11-01".parse().unwrap(),
            ends_on: "2026-11-30".parse().unwrap(),
            budget: budget.map(|(b, _)| b),
        };
        let event = BehaviourEventIn {
            event_type: "webinar.attended".into(),
            event_ref: "W-1".into(),
            member_id: "M-1".into(),
            occurred_at: "2026-11-23T10:00:00Z".into(),
        };
        plan_behaviour_booking(
            &BehaviourContext {
                partner_id: "shop",
                programme: &programme,
                campaign: &campaign,
                event: &event,
                occurred_at: "2026-11-23T10:00:00Z".parse().unwrap(),
                body_sha256: "sha",
                now: now(),
                budget_left: budget.map(|(_, left)| left),
            },
            account,
        )
        .unwrap()
    }

    #[test]
    fn a_budget_pays_whole_events_while_it_covers_them() {
        let member = Account::open("velo", "M-1");
        let b = decide_with_budget(Some(&member), None, Some((1_000, 50)));
        assert_eq!(b.points, 50);
        let takes = &b.write.unwrap().takes;
        assert_eq!(takes.len(), 1);
        assert_eq!(
            (takes[0].campaign_id.as_str(), takes[0].points),
            ("webinars#behaviour", 50)
        );
        let b = decide_with_budget(Some(&member), None, Some((1_000, 49)));
        assert_eq!((b.status, b.points), (ANSWER_DONE, 0));
        assert!(b.response.contains("\"budget_exhausted\""));
        assert!(b.write.unwrap().takes.is_empty());
    }

    #[test]
    fn an_event_pays_its_points_until_the_cap_and_a_non_member_gets_nothing() {
        let member = Account::open("velo", "M-1");
        let b = decide(Some(&member), Some(1));
        assert_eq!((b.status, b.points), (ANSWER_DONE, 50));
        let w = b.write.unwrap();
        let after = w.account.unwrap().0;
        assert_eq!(after.behaviour.get("webinars"), Some(&1));
        assert_eq!(w.entries[0].reason, "webinar.attended W-1 at shop");
        assert_eq!(w.record.campaign_points.get("webinars"), Some(&50));
        // The cap is reached: recorded, nothing earned.
        let b = decide(Some(&after), Some(1));
        assert_eq!((b.status, b.points), (ANSWER_DONE, 0));
        assert!(b.response.contains("\"cap_reached\""));
        assert!(b.write.unwrap().account.is_none());
        // Without a cap it pays again.
        assert_eq!(decide(Some(&after), None).points, 50);
        let b = decide(None, None);
        assert_eq!((b.status, b.points), (ANSWER_ACCEPTED, 0));
        assert!(b.response.contains("\"recorded_non_member\""));
    }
}
