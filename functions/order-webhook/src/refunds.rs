//! Refunds and cancellations: take back what the refunded part of an order earned.
//!
//! Reads the refund's record and the order's state (one BatchGetItem); the decision
//! (`bonus_domain::booking::refund::plan_refund_booking`) then asks for the member's account
//! and the order's lot (one more BatchGetItem), and only when the order's own points were
//! already spent, the member's other lots (one Query). Writes the refund's record, the
//! order's state, the account, the lots, one statement entry per step, the PointsReversed
//! event and the campaign budget given back, in one TransactWriteItems. A refund whose order
//! has not arrived yet is kept on the order's state (202) and applied when the order comes.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use bonus_domain::booking::refund::{plan_refund_booking, RefundContext, RefundRead};
use bonus_domain::booking::{Need, OrderRecord, Planned};
use bonus_domain::refund::{OrderBook, RefundRequest};
use bonus_dynamodb::{from_item, keys, retry};
use bonus_lambda::api::{Error, Response};
use bonus_lambda::app::{Ctx, PartnerConfig};

use crate::{answer, commit, fetch, replay, Dialect, Fetched};

/// Book a refund or cancellation of `order_id`.
pub(crate) async fn reverse(
    ctx: &Ctx,
    cfg: &PartnerConfig,
    order_id: &str,
    req: &RefundRequest,
    dialect: Dialect,
    now: DateTime<Utc>,
) -> Result<Response, Error> {
    let partner_id = cfg.partner.id.as_str();
    let programme = &cfg.programme;
    let record_keys = keys::order_event(partner_id, order_id, &req.record_event());
    let book_keys = keys::order_book(partner_id, order_id);
    let cx = RefundContext {
        partner_id,
        programme,
        campaigns: &cfg.campaigns,
        order_id,
        request: req,
        strict: dialect.strict(),
        now,
    };
    let mut retry = ctx.booking_retry();
    while let Some(pause) = retry.next() {
        retry::pause(pause).await;
        let mut found = ctx
            .store
            .batch_get(&[record_keys.clone(), book_keys.clone()])
            .await?;
        if let Some(item) = found.remove(&record_keys) {
            let record: OrderRecord = from_item(item)?;
            info!(partner_id, order_id, "refund replayed");
            return replay(record, &req.body_sha256, dialect);
        }
        let book: Option<OrderBook> = found.remove(&book_keys).map(from_item).transpose()?;
        let mut read = RefundRead {
            book,
            ..RefundRead::default()
        };
        let booking = loop {
            match plan_refund_booking(&cx, &read)? {
                Planned::Ready(booking) => break booking,
                Planned::Needs(need) => {
                    // The employee's side of a company order is read into its own place.
                    let for_employee =
                        matches!(need, Need::Companion { .. } | Need::CompanionLots { .. });
                    match Box::pin(fetch(ctx, &programme.id, need)).await? {
                        Fetched::Member(found) if for_employee => read.companion = Some(*found),
                        Fetched::Lots(lots) if for_employee => read.companion_lots = Some(lots),
                        Fetched::Member(found) => read.member = Some(*found),
                        Fetched::Lots(lots) => read.lots = Some(lots),
                        Fetched::Company(_) => {
                            return Err(bonus_lambda::api::internal("a refund asked for a company"))
                        }
                    }
                }
            }
        };
        if cfg.partner.sandbox {
            info!(partner_id, order_id, "sandbox refund answered, not booked");
            return Ok(crate::sandbox_answer(booking));
        }
        let Some(write) = &booking.write else {
            return Ok(answer(booking));
        };
        if commit(ctx, write, &mut retry).await? {
            info!(
                partner_id,
                order_id,
                points = booking.points,
                status = booking.status,
                "refund booked"
            );
            return Ok(answer(booking));
        }
    }
    warn!(partner_id, order_id, "refund gave up under contention");
    Err(Error::unavailable())
}
