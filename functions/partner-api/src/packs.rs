//! Point packs (`bonus_domain::packs`, ALSO):
//! - `GET /v1/partner/packs`: the programme's pack catalogue;
//! - `POST /v1/partner/campaigns/{id}/packs` `{pack_id, reference}`: buy a pack for a
//!   campaign: its budget grows by the pack and an invoice line is recorded for the month,
//!   in one transaction, once per reference;
//! - `GET /v1/partner/invoices/{yyyy-mm}`: the month's invoice lines and their total;
//! - `POST /v1/partner/plans`: the planner (1.3 % x cost price x units on the days it runs)
//!   with the packs that cover it, and a warning when the chosen pack is too small.

use bytes::Bytes;
use chrono::{NaiveDate, Weekday};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::info;

use bonus_domain::changes::{Change, Subject};
use bonus_domain::error::parse_json;
use bonus_domain::ids::valid_external_id;
use bonus_domain::money::{Money, Points};
use bonus_domain::month::Month;
use bonus_domain::packs::{plan_campaign, InvoiceLine, PlannedSku, PointPack};
use bonus_dynamodb::campaigns::TopUp;
use bonus_lambda::api::{json, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::campaigns::own_campaign;
use crate::{actor, authorise};

#[derive(Debug, Serialize)]
struct PackView<'a> {
    pack_id: &'a str,
    points: Points,
    price: String,
    currency: &'a str,
    period: &'a str,
}

fn pack_view<'a>(key: &'a KeyConfig, p: &'a PointPack) -> PackView<'a> {
    PackView {
        pack_id: &p.id,
        points: p.points,
        price: Money::new(p.price_minor, key.programme.currency).amount_string(),
        currency: key.programme.currency.code(),
        period: &p.period,
    }
}

pub(crate) async fn list(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let packs: Vec<PackView> = key
        .programme
        .point_packs
        .iter()
        .map(|p| pack_view(&key, p))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "packs": packs })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuyIn {
    pack_id: String,
    /// The caller's name for this purchase: sent again, nothing more is bought.
    reference: String,
}

#[derive(Debug, Serialize)]
struct LineView<'a> {
    reference: &'a str,
    pack_id: &'a str,
    campaign_id: &'a str,
    points: Points,
    price: String,
    currency: &'a str,
    bought_by: &'a str,
    at: chrono::DateTime<chrono::Utc>,
}

fn line_view(l: &InvoiceLine) -> LineView<'_> {
    LineView {
        reference: &l.reference,
        pack_id: &l.pack_id,
        campaign_id: &l.campaign_id,
        points: l.points,
        price: Money::new(l.price_minor, l.currency).amount_string(),
        currency: l.currency.code(),
        bought_by: &l.bought_by,
        at: l.at,
    }
}

fn month_of(key: &KeyConfig, at: chrono::DateTime<chrono::Utc>) -> String {
    Month::of(at, key.partner.time_zone).to_string()
}

pub(crate) async fn buy(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let who = actor(&key, req)?;
    let input: BuyIn = parse_json(req.body())?;
    let pack = key
        .programme
        .point_packs
        .iter()
        .find(|p| p.id == input.pack_id)
        .ok_or_else(|| {
            Error::invalid(
                "invalid_pack",
                format!(
                    "pack_id: one of {}",
                    key.programme
                        .point_packs
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    crate::check_reference(&input.reference)?;
    let mut retry = ctx.retry();
    while let Some(pause) = retry.next() {
        bonus_dynamodb::retry::pause(pause).await;
        let old = own_campaign(ctx, &key, id).await?;
        let mut after = old.clone();
        after.budget = old.budget.saturating_add(pack.points);
        if after.budget > bonus_domain::campaign::MAX_BUDGET {
            return Err(Error::invalid(
                "invalid_field",
                "pack_id: the budget would pass its maximum",
            ));
        }
        let now = ctx.now();
        let line = InvoiceLine {
            partner_id: key.partner.id.clone(),
            month: month_of(&key, now),
            reference: input.reference.clone(),
            pack_id: pack.id.clone(),
            campaign_id: old.id.clone(),
            points: pack.points,
            price_minor: pack.price_minor,
            currency: key.programme.currency,
            bought_by: who.name.clone(),
            at: now,
        };
        let change = Change::of(
            &old.partner_id,
            &ctx.random.hex(4),
            now,
            &who,
            Subject::Campaign,
            &old.id,
            &format!("pack_bought:{}", pack.id),
            Some(&old),
            Some(&after),
        );
        let extra = vec![ctx.store.invoice_line_put(&line)?];
        let (status, line, budget_after) = match ctx
            .store
            .top_up_campaign(&old, pack.points, &input.reference, &change, extra)
            .await?
        {
            TopUp::Done(done, _) => {
                ctx.forget_partner(&key.partner.id);
                info!(partner = %key.partner.id, campaign = %old.id, pack = %pack.id, "point pack bought");
                (StatusCode::CREATED, line, done.budget_after)
            }
            TopUp::Before(done) => {
                let month = month_of(&key, done.at);
                match ctx
                    .store
                    .invoice_line(&key.partner.id, &month, &input.reference)
                    .await?
                {
                    Some(l) if l.pack_id == pack.id && l.campaign_id == old.id => {
                        (StatusCode::OK, l, done.budget_after)
                    }
                    _ => {
                        return Err(Error::conflict(
                            "top_up_conflict",
                            "this reference was used for another top-up or pack",
                        ))
                    }
                }
            }
            TopUp::Raced => {
                retry.backoff();
                continue;
            }
        };
        return Ok(json(
            status,
            &serde_json::json!({
                "campaign_id": old.id,
                "invoice_line": line_view(&line),
                "budget": budget_after,
            }),
        ));
    }
    Err(Error::unavailable())
}

pub(crate) async fn invoices(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    month: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let month: Month = month
        .parse()
        .map_err(|_| Error::malformed("invalid_month", "month: YYYY-MM"))?;
    let lines = ctx
        .store
        .invoice_lines(&key.partner.id, &month.to_string())
        .await?;
    let total: i64 = lines.iter().map(|l| l.price_minor).sum();
    let views: Vec<LineView> = lines.iter().map(line_view).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "month": month.to_string(),
            "currency": key.programme.currency.code(),
            "lines": views,
            "total": Money::new(total, key.programme.currency).amount_string(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanSkuIn {
    sku: String,
    cost_price: String,
    units_per_day: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanIn {
    skus: Vec<PlanSkuIn>,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    #[serde(default)]
    weekdays: Vec<Weekday>,
    /// Of the cost price (default 1.3).
    #[serde(default)]
    percent: Option<bonus_domain::config::ExactDecimal>,
    /// The pack to check against, or a budget in points.
    #[serde(default)]
    pack_id: Option<String>,
    #[serde(default)]
    budget: Option<Points>,
}

pub(crate) async fn plan(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let input: PlanIn = parse_json(req.body())?;
    let invalid = |m: String| Error::invalid("invalid_field", m);
    let mut skus = Vec::new();
    for s in &input.skus {
        if !valid_external_id(&s.sku) {
            return Err(invalid(format!("skus: '{}' is not a valid SKU", s.sku)));
        }
        let cost_price = Money::parse(&s.cost_price, key.programme.currency)
            .map_err(|e| invalid(format!("skus.{}.cost_price: {e}", s.sku)))?;
        skus.push(PlannedSku {
            sku: s.sku.clone(),
            cost_price,
            units_per_day: s.units_per_day,
        });
    }
    let chosen = match (&input.pack_id, input.budget) {
        (Some(id), None) => Some(
            key.programme
                .point_packs
                .iter()
                .find(|p| &p.id == id)
                .ok_or_else(|| Error::invalid("invalid_pack", format!("pack_id: no pack '{id}'")))?
                .points,
        ),
        (None, b) => b,
        (Some(_), Some(_)) => {
            return Err(invalid("give pack_id or budget, not both".into()));
        }
    };
    let plan = plan_campaign(
        &skus,
        input
            .percent
            .map_or(rust_decimal::Decimal::new(13, 1), |p| p.0),
        key.programme.point_value_minor,
        input.starts_on,
        input.ends_on,
        &input.weekdays,
        &key.programme.point_packs,
        chosen,
    )
    .map_err(invalid)?;
    Ok(json(StatusCode::OK, &plan))
}
