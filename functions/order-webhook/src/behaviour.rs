//! Behaviour events: `POST /v1/partners/{partner_id}/events`, signed like order webhooks.
//! A behaviour campaign of the partner pays fixed points for the event type, at most
//! `per_member_cap` times per member; the event reference makes it idempotent.
//!
//! ```json
//! {"type": "webinar.attended", "event_ref": "WEB-2026-11-M-1001", "member_id": "M-1001",
//!  "occurred_at": "2026-11-23T10:00:00Z"}
//! ```

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tracing::info;

use bonus_domain::booking::behaviour::{
    plan_behaviour_booking, BehaviourContext, BehaviourEventIn, RECORD_EVENT,
};
use bonus_domain::campaign::valid_event_type;
use bonus_domain::ids::require_id;
use bonus_domain::order::parse_occurred_at;
use bonus_dynamodb::keys;
use bonus_dynamodb::retry;
use bonus_lambda::api::{parse_json, Error, Response};
use bonus_lambda::app::Ctx;

use crate::{answer, authenticate, commit, internal, replay, Dialect};

pub async fn event(
    ctx: &Ctx,
    partner_id: &str,
    req: &http::Request<Bytes>,
) -> Result<Response, Error> {
    let now = crate::defer::judged_at(ctx, req);
    let cfg = authenticate(ctx, partner_id, req, now).await?;
    let input: BehaviourEventIn = parse_json(req.body())?;
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

    // A campaign with a budget: its one budget item joins the read.
    let budget_keys: Vec<(String, String)> = campaign
        .budget
        .map(|_| vec![keys::budget_shard(partner_id, &campaign.budget_id(), 0)])
        .unwrap_or_default();
    let mut cx = BehaviourContext {
        partner_id,
        programme,
        campaign,
        event: &input,
        occurred_at,
        body_sha256: &body_sha256,
        now,
        budget_left: None,
    };
    let _turn = ctx.lanes.enter(&account_keys.0).await;
    let mut retry = ctx.booking_retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let read = ctx
            .store
            .read_for_order(
                Some(account_keys.clone()),
                record_keys.clone(),
                None,
                &budget_keys,
            )
            .await?;
        if let Some(record) = read.record {
            return replay(record, &body_sha256, Dialect::Canonical);
        }
        if campaign.budget.is_some() {
            cx.budget_left = Some(
                read.budgets
                    .get(&campaign.budget_id())
                    .map_or(0, |shards| shards.iter().map(|s| s.remaining).sum()),
            );
        }
        let booking = plan_behaviour_booking(&cx, read.account.as_ref())?;
        if cfg.partner.sandbox {
            info!(partner_id, "sandbox behaviour event answered, not booked");
            return Ok(crate::sandbox_answer(booking));
        }
        let write = booking
            .write
            .as_ref()
            .ok_or_else(|| internal("a behaviour event without a write"))?;
        if commit(ctx, write, &mut retry).await? {
            info!(partner_id, campaign_id = %campaign.id, points = booking.points, status = booking.status, "behaviour event booked");
            return Ok(answer(booking));
        }
    }
    Err(Error::unavailable())
}
