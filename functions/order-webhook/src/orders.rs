//! Booking an order that earns: one BatchGetItem (account, the event's record, the order's
//! state, the budget shards of campaigns that may apply), the decision
//! (`bonus_domain::booking::order::plan_order_booking`), and one TransactWriteItems. Refunds
//! that arrived before the order are applied in the same transaction.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use bonus_domain::booking::order::{campaigns_for, plan_order_booking, OrderContext, OrderState};
use bonus_domain::booking::{Need, Planned};
use bonus_domain::order::Order;
use bonus_dynamodb::{keys, retry};
use bonus_lambda::api::{Error, Response};
use bonus_lambda::app::{Ctx, PartnerConfig};

use crate::{answer, commit, fetch, internal, replay, Dialect, Fetched};

/// Read, decide, write; again if the account, the order or a budget moved in between.
pub(crate) async fn book(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    order: &Order,
    body_sha256: String,
    dialect: Dialect,
    now: DateTime<Utc>,
) -> Result<Response, Error> {
    let partner_id = cfg.partner.id.as_str();
    let programme = &cfg.programme;
    let record_keys = keys::order_event(partner_id, &order.order_id, order.event.as_str());
    let book_keys = keys::order_book(partner_id, &order.order_id);
    let account_keys = order
        .member_id
        .as_deref()
        .map(|m| keys::account(&programme.id, m));
    // Campaigns that may pay for this order: their budget shards join the one read.
    let campaigns = campaigns_for(&cfg.partner, programme, &cfg.campaigns, order);
    let budget_keys: Vec<(String, String)> = campaigns
        .iter()
        .flat_map(|c| (0..c.budget_shards).map(|s| keys::budget_shard(&c.partner_id, &c.id, s)))
        .collect();
    let cx = OrderContext {
        partner: &cfg.partner,
        programme,
        campaigns: &campaigns,
        order,
        body_sha256: &body_sha256,
        now,
    };

    // Bookings into this account in this process take turns (no race with ourselves).
    let _turn = match &account_keys {
        Some((pk, _)) => Some(ctx.lanes.enter(pk).await),
        None => None,
    };
    // An order for a company books into the company's account: its orders take turns too.
    let mut company_turn = None;
    let mut retry = ctx.booking_retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let read = ctx
            .store
            .read_for_order(
                account_keys.clone(),
                record_keys.clone(),
                Some(book_keys.clone()),
                &budget_keys,
            )
            .await?;
        let mut record = read.record;
        if record.is_none() && read.book.as_ref().is_some_and(|b| b.paid.is_some()) {
            // Booked: the batch read may have seen the state but not yet the record written
            // with it; one consistent read tells that from an expired answer.
            record = ctx.store.get(record_keys.clone()).await?;
        }
        if let Some(record) = record {
            info!(partner_id, order_id = %order.order_id, "order webhook replayed");
            return replay(record, &body_sha256, dialect);
        }
        // A member merged into another earns there (bonus_domain::merge): the same order,
        // for the survivor.
        if let Some(survivor) = read.account.as_ref().and_then(|a| a.merged_into.clone()) {
            let mut redirected = order.clone();
            redirected.member_id = Some(survivor);
            drop(_turn);
            return Box::pin(book(ctx, cfg, &redirected, body_sha256, dialect, now)).await;
        }
        let mut state = OrderState {
            account: read.account,
            book: read.book,
            budgets: read.budgets,
            lots: None,
            company: None,
            companion_lots: None,
        };
        let booking = loop {
            match plan_order_booking(&cx, &state)? {
                Planned::Ready(booking) => break booking,
                Planned::Needs(need) => {
                    // The employee's lots (a company order's share that waited refunds
                    // take back) have their own place.
                    let for_employee = matches!(need, Need::CompanionLots { .. });
                    match Box::pin(fetch(ctx, &programme.id, need)).await? {
                        Fetched::Lots(lots) if for_employee => state.companion_lots = Some(lots),
                        Fetched::Lots(lots) => state.lots = Some(lots),
                        Fetched::Company(read) => {
                            if company_turn.is_none() {
                                let pk = keys::account(&programme.id, &read.company_id).0;
                                company_turn = Some(ctx.lanes.enter(&pk).await);
                            }
                            state.company = Some(*read);
                        }
                        Fetched::Member(..) => {
                            return Err(internal("an order asked for its member"))
                        }
                    }
                }
            }
        };
        if cfg.partner.sandbox {
            info!(partner_id, order_id = %order.order_id, points = booking.points, "sandbox order answered, not booked");
            return Ok(crate::sandbox_answer(booking));
        }
        let write = booking
            .write
            .as_ref()
            .ok_or_else(|| internal("an order without a write"))?;
        if commit(ctx, write, &mut retry).await? {
            let refunds = write.records.len();
            info!(partner_id, order_id = %order.order_id, points = booking.points, refunds, status = booking.status, "order booked");
            return Ok(answer(booking));
        }
    }
    warn!(partner_id, order_id = %order.order_id, "order webhook gave up under contention");
    Err(Error::unavailable())
}
