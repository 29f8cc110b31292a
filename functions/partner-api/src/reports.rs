//! Reports for the calling partner only:
//! - `GET /v1/partner/clearing/{yyyy-mm}`: its statement of a closed month (coalitions),
//!   with where its points were spent and whose points were spent at it;
//! - `GET /v1/partner/members/{member_id}` and `GET /v1/partner/members?customer_id=...`: a
//!   member it may see, found by id or by its own customer id (only its own links are
//!   keyed by it), with the balance the access policy lets it read. A member it may not
//!   see is the same 404 as none.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use bonus_domain::access::{self, Action, Grant};
use bonus_domain::account::{Account, BalanceView};
use bonus_domain::clearing::PartnerStatement;
use bonus_domain::ids::{valid_external_id, valid_id};
use bonus_domain::month::Month;
use bonus_lambda::api::{json, query_param, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

use crate::authorise;

#[derive(Debug, Serialize)]
struct ClearingView<'a> {
    programme_id: &'a str,
    month: &'a str,
    currency: &'a str,
    point_value_minor: i64,
    closed_at: chrono::DateTime<chrono::Utc>,
    statement: &'a PartnerStatement,
    /// Its points redeemed at each partner.
    spent_at: BTreeMap<String, i64>,
    /// Each partner's points redeemed at it.
    spent_here_from: BTreeMap<String, i64>,
}

fn month_not_closed() -> Error {
    Error::not_found(
        "month_not_closed",
        "no closed clearing month of this partner for that month",
    )
}

pub(crate) async fn clearing(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    month: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let month: Month = month
        .parse()
        .map_err(|_| Error::malformed("invalid_month", "month: YYYY-MM"))?;
    let month = month.to_string();
    let Some((closed, clearing)) = ctx.store.closed_month(&key.programme.id, &month).await? else {
        return Err(month_not_closed());
    };
    let me = key.partner.id.as_str();
    let statement = clearing
        .statements
        .iter()
        .find(|s| s.partner_id == me)
        .ok_or_else(month_not_closed)?;
    let spent_at = clearing.matrix.get(me).cloned().unwrap_or_default();
    let spent_here_from: BTreeMap<String, i64> = clearing
        .matrix
        .iter()
        .filter_map(|(issuer, row)| row.get(me).map(|p| (issuer.clone(), *p)))
        .filter(|(_, p)| *p != 0)
        .collect();
    Ok(json(
        StatusCode::OK,
        &ClearingView {
            programme_id: &closed.programme_id,
            month: &closed.month,
            currency: key.programme.currency.code(),
            point_value_minor: closed.point_value_minor,
            closed_at: closed.closed_at,
            statement,
            spent_at,
            spent_here_from,
        },
    ))
}

#[derive(Debug, Serialize)]
struct MemberView<'a> {
    member_id: &'a str,
    /// Whether this partner enrolled the member.
    enrolled_here: bool,
    balance: BalanceView,
}

use bonus_lambda::app::member_not_found;

/// The member as this partner may see it (the access policy's balance read), or the 404.
fn admit(key: &KeyConfig, account: Option<Account>) -> Result<Account, Error> {
    let Some(account) = account else {
        return Err(member_not_found());
    };
    // The manage scope reads what the policy lets the partner's balance reads see.
    match access::grant(key.relation_to(&account), Action::ReadBalance) {
        Grant::None => Err(member_not_found()),
        _ => Ok(account),
    }
}

async fn answer(ctx: &Ctx, key: &KeyConfig, member_id: &str) -> Result<Response, Error> {
    let account = if valid_id(member_id) {
        ctx.store.get_account(&key.programme.id, member_id).await?
    } else {
        None
    };
    let account = admit(key, account)?;
    Ok(json(
        StatusCode::OK,
        &MemberView {
            member_id: &account.member_id,
            enrolled_here: account.enrolled_with.contains(&key.partner.id),
            balance: account.view(&key.programme, ctx.now()),
        },
    ))
}

pub(crate) async fn member(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    answer(ctx, &key, member_id).await
}

pub(crate) async fn find_member(ctx: &Ctx, req: &http::Request<Bytes>) -> Result<Response, Error> {
    let key = authorise(ctx, req).await?;
    let customer_id = query_param(req, "customer_id")
        .filter(|c| valid_external_id(c))
        .ok_or_else(|| {
            Error::malformed(
                "invalid_customer_id",
                "customer_id: the partner's own customer id (1-128 characters, no '#')",
            )
        })?;
    let link = ctx
        .store
        .member_by_external_id(&key.partner.id, customer_id)
        .await?
        .filter(|l| l.programme_id == key.programme.id)
        .ok_or_else(member_not_found)?;
    answer(ctx, &key, &link.member_id).await
}
