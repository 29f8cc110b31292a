//! Member and redemption API, authenticated by a partner API key (`Authorization: Bearer`).
//!
//! Every route is in [`ROUTES`] (and in `docs/openapi.yaml`; a test keeps the two in step).
//! A key belongs to one partner and has scopes ([`Scope`]). What it may do to which member is
//! the access policy's (`bonus_domain::access`, docs/security.md), asked by every member
//! route through [`member_account`]: a member the caller may not touch is a 404, exactly as
//! a member that does not exist.

mod companies;
mod holds;
mod members;
mod rewards;
mod transfers;
mod unsubscribe;

use bytes::Bytes;
use http::Method;

use bonus_domain::access::{self, Action, Grant};
use bonus_domain::account::Account;
use bonus_domain::ids::valid_id;
pub use bonus_domain::member::Scope;
use bonus_lambda::api::{bearer, respond, segments, with_allow, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

/// Every route this function serves: (method, path template).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/members"),
    ("POST", "/v1/companies"),
    ("GET", "/v1/companies/{company_id}"),
    ("PATCH", "/v1/companies/{company_id}"),
    ("PUT", "/v1/companies/{company_id}/users/{member_id}"),
    ("DELETE", "/v1/companies/{company_id}/users/{member_id}"),
    ("GET", "/v1/members/{member_id}"),
    ("PATCH", "/v1/members/{member_id}"),
    ("DELETE", "/v1/members/{member_id}"),
    ("GET", "/v1/members/{member_id}/balance"),
    ("GET", "/v1/members/{member_id}/entries"),
    ("POST", "/v1/members/{member_id}/holds"),
    ("POST", "/v1/members/{member_id}/transfers"),
    ("POST", "/v1/members/{member_id}/merge"),
    ("GET", "/v1/holds/{hold_id}"),
    ("POST", "/v1/holds/{hold_id}/capture"),
    ("POST", "/v1/holds/{hold_id}/void"),
    ("GET", "/v1/rewards"),
    ("POST", "/v1/members/{member_id}/rewards/{reward_id}/claim"),
    ("GET", "/v1/unsubscribe/{programme_id}/{member_id}/{token}"),
    ("POST", "/v1/unsubscribe/{programme_id}/{member_id}/{token}"),
];

/// Entry point for every route this function serves.
pub async fn handle(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    let path = segments(req.uri().path());
    let m = req.method().clone();
    let result = match path.as_slice() {
        ["v1", "members"] => match m {
            Method::POST => members::enrol(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "companies"] => match m {
            Method::POST => Box::pin(companies::create(ctx, &req)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "companies", id] => match m {
            Method::GET => Box::pin(companies::show(ctx, &req, id)).await,
            Method::PATCH => Box::pin(companies::update(ctx, &req, id)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "companies", id, "users", member] => match m {
            Method::PUT => Box::pin(companies::user(ctx, &req, id, member, true)).await,
            Method::DELETE => Box::pin(companies::user(ctx, &req, id, member, false)).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id] => match m {
            Method::GET => members::show(ctx, &req, id).await,
            Method::PATCH => members::update(ctx, &req, id).await,
            Method::DELETE => members::erase(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id, "balance"] => match m {
            Method::GET => members::balance(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id, "entries"] => match m {
            Method::GET => members::entries(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id, "holds"] => match m {
            Method::POST => holds::create(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id, "merge"] => match m {
            Method::POST => members::merge(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id, "transfers"] => match m {
            Method::POST => transfers::create(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "holds", id] => match m {
            Method::GET => holds::show(ctx, &req, id).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "holds", id, action @ ("capture" | "void")] => match m {
            Method::POST => holds::finish(ctx, &req, id, *action == "capture").await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "rewards"] => match m {
            Method::GET => rewards::list(ctx, &req).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "members", id, "rewards", reward, "claim"] => match m {
            Method::POST => rewards::claim(ctx, &req, id, reward).await,
            _ => Err(Error::method_not_allowed()),
        },
        ["v1", "unsubscribe", programme, id, token] => match m {
            Method::GET => unsubscribe::show(ctx, &req, programme, id, token).await,
            Method::POST => unsubscribe::confirm(ctx, &req, programme, id, token).await,
            _ => Err(Error::method_not_allowed()),
        },
        _ => Err(Error::route_not_found()),
    };
    with_allow(respond("member-api", result), ROUTES, req.uri().path())
}

/// Resolve the caller's API key and check it carries the scope `action` needs (asked
/// before any member is read, so a 403 says nothing about one).
pub(crate) async fn authorise(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    scope: Scope,
) -> Result<std::sync::Arc<KeyConfig>, Error> {
    let token = bearer(req.headers()).ok_or_else(Error::unauthorized)?;
    let key = ctx.api_key(token).await?.ok_or_else(Error::unauthorized)?;
    if !key.key.scopes.contains(&scope) {
        return Err(missing_scope(scope));
    }
    Ok(key)
}

pub(crate) use bonus_lambda::app::{member_not_found, missing_scope};

/// The member's account and what the policy grants the caller for `action`; a 403 for a
/// missing scope, and the same 404 for a member that does not exist and one the caller may
/// not touch.
pub(crate) async fn member_account(
    ctx: &Ctx,
    key: &KeyConfig,
    member_id: &str,
    action: Action,
) -> Result<(Account, Grant), Error> {
    if let Err(scope) = access::check_scope(&key.key.scopes, action) {
        return Err(missing_scope(scope));
    }
    let account = if valid_id(member_id) {
        ctx.store.get_account(&key.programme.id, member_id).await?
    } else {
        None
    };
    admit(key, account, action)
}

/// The policy's answer for a member as read (None: no such member): the account and the
/// grant, or the same 404 for a member that does not exist and one the caller may not touch.
pub(crate) fn admit(
    key: &KeyConfig,
    account: Option<Account>,
    action: Action,
) -> Result<(Account, Grant), Error> {
    key.admit(account, action)
}
