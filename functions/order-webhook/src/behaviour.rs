//! Behaviour events: `POST /v1/partners/{partner_id}/events`, signed like order webhooks.
//! A behaviour campaign of the partner pays fixed points for the event type, at most
//! `per_member_cap` times per member; the event reference makes it idempotent.
//!
//! ```json
//! {"type": "webinar.attended", "event_ref": "WEB-2026-11-M-1001", "member_id": "M-1001",
//!  "occurred_at": "2026-11-23T10:00:00Z"}
//! ```

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::booking::{LedgerWrite, OrderRecord};
use bonus_domain::campaign::valid_event_type;
use bonus_domain::ids::require_id;
use bonus_domain::ledger::plan_order;
use bonus_domain::order::parse_occurred_at;
use bonus_dynamodb::keys;
use bonus_dynamodb::retry;
use bonus_lambda::api::{parse_json, raw_json, Error, Response};
use bonus_lambda::app::Ctx;

use crate::{authenticate, commit, internal, replay, Dialect};

/// The idempotency record of a behaviour event is keyed by its reference.
pub const RECORD_EVENT: &str = "behaviour";

#[derive(Debug, Deserialize)]
struct EventIn {
    #[serde(rename = "type")]
    event_type: String,
    event_ref: String,
    member_id: String,
    occurred_at: String,
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

pub async fn event(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Response, Error> {
    let now = ctx.now();
    let cfg = authenticate(ctx, partner_id, req, now).await?;
    let input: EventIn = parse_json(req.body())?;
    if !valid_event_type(&input.event_type) {
        return Err(Error::invalid(
            "invalid_event_type",
            "type: must look like webinar.attended",
        ));
    }
    require_id(&input.event_ref, "event_ref", "invalid_event_ref")?;
    require_id(&input.member_id, "member_id", "invalid_member_id")?;
    let occurred_at = parse_occurred_at(&input.occurred_at, now)?;
    let local_date = occurred_at
        .with_timezone(&cfg.partner.time_zone)
        .date_naive();
    let campaign = cfg
        .behaviour
        .iter()
        .find(|c| c.event_type == input.event_type && c.active_on(local_date))
        .ok_or_else(|| {
            Error::invalid(
                "no_active_campaign",
                format!(
                    "no behaviour campaign of this partner pays for '{}' on {local_date}",
                    input.event_type
                ),
            )
        })?;
    let programme = &cfg.programme;
    let body_sha256 = hex::encode(Sha256::digest(req.body()));
    let record_keys = keys::order_event(partner_id, &input.event_ref, RECORD_EVENT);
    let account_keys = keys::account(&programme.id, &input.member_id);

    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let read = ctx
            .store
            .read_for_order(Some(account_keys.clone()), record_keys.clone(), None, &[])
            .await
            .map_err(internal)?;
        if let Some(record) = read.record {
            return replay(record, &body_sha256, Dialect::Canonical);
        }
        let used = read
            .account
            .as_ref()
            .and_then(|a| a.behaviour.get(&campaign.id))
            .copied()
            .unwrap_or(0);
        let capped = campaign.per_member_cap.is_some_and(|cap| used >= cap);
        let plan = match &read.account {
            Some(a) if !capped => {
                // '#' never occurs in an order id, so this lot can never collide with an order's.
                let source = format!("evt#{}", input.event_ref);
                let tier = a.tier_name(programme).to_string();
                let mut plan = plan_order(
                    programme,
                    a,
                    partner_id,
                    &source,
                    campaign.points,
                    0,
                    &tier,
                    occurred_at,
                    now,
                )
                .map_err(internal)?;
                *plan
                    .account
                    .behaviour
                    .entry(campaign.id.clone())
                    .or_insert(0) += 1;
                if let Some(entry) = plan.entry.as_mut() {
                    entry.reason =
                        format!("{} {} at {partner_id}", input.event_type, input.event_ref);
                }
                Some(plan)
            }
            _ => None,
        };
        let (status, status_text) = match (&read.account, capped) {
            (None, _) => (StatusCode::ACCEPTED, "recorded_non_member"),
            (Some(_), true) => (StatusCode::OK, "cap_reached"),
            (Some(_), false) => (StatusCode::OK, "earned"),
        };
        let lot = plan.as_ref().and_then(|p| p.lot.clone());
        let answer = Answer {
            status: status_text,
            partner_id,
            event_ref: &input.event_ref,
            event_type: &input.event_type,
            member_id: &input.member_id,
            campaign_id: &campaign.id,
            points: lot.as_ref().map_or(0, |l| l.points),
            available_at: lot.as_ref().map(|l| l.available_at),
            expires_on: lot.as_ref().map(|l| l.expires_on),
        };
        let response = serde_json::to_string(&answer).map_err(internal)?;
        let record = OrderRecord {
            partner_id: partner_id.to_string(),
            order_id: input.event_ref.clone(),
            event: RECORD_EVENT.to_string(),
            body_sha256: body_sha256.clone(),
            member_id: read.account.as_ref().map(|a| a.member_id.clone()),
            points: answer.points,
            lot_id: lot.as_ref().map(|l| l.lot_id.clone()),
            campaign_points: [(campaign.id.clone(), answer.points)]
                .into_iter()
                .filter(|(_, p)| *p > 0)
                .collect(),
            status: status.as_u16(),
            response: response.clone(),
            recorded_at: now,
        };
        let booking = match (plan, &read.account) {
            (Some(plan), Some(a)) => LedgerWrite::accrual(record, Some(a.version), plan),
            _ => LedgerWrite::record_only(record),
        };
        if commit(ctx, &booking, &mut retry).await? {
            info!(partner_id, campaign_id = %campaign.id, points = answer.points, status = status.as_u16(), "behaviour event booked");
            return Ok(raw_json(status, response));
        }
    }
    Err(Error::unavailable())
}
