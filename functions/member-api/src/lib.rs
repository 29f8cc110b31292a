//! Member and redemption API, authenticated by a partner API key (`Authorization: Bearer`).
//!
//! Every route is in [`ROUTES`] (and in `docs/openapi.yaml`; a test keeps the two in step).
//! A key belongs to one partner and has scopes ([`Scope`]). A partner sees only members of
//! its programme, and in a closed programme only those enrolled with it or who bought there;
//! any other member is a 404, exactly as a member that does not exist.

mod holds;
mod members;
mod rewards;
mod unsubscribe;

use bytes::Bytes;
use http::Method;

use bonus_domain::account::Account;
use bonus_domain::ids::valid_id;
pub use bonus_domain::member::Scope;
use bonus_domain::programme::ProgrammeKind;
use bonus_lambda::api::{bearer, internal, respond, segments, Error, Response};
use bonus_lambda::app::{Ctx, KeyConfig};

/// Every route this function serves: (method, path template).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/members"),
    ("GET", "/v1/members/{member_id}"),
    ("PATCH", "/v1/members/{member_id}"),
    ("DELETE", "/v1/members/{member_id}"),
    ("GET", "/v1/members/{member_id}/balance"),
    ("GET", "/v1/members/{member_id}/entries"),
    ("POST", "/v1/members/{member_id}/holds"),
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
    respond("member-api", result)
}

/// Resolve the caller's API key and check it has `scope`.
pub(crate) async fn authorise(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    scope: Scope,
) -> Result<std::sync::Arc<KeyConfig>, Error> {
    let token = bearer(req.headers()).ok_or_else(Error::unauthorized)?;
    let key = ctx.api_key(token).await?.ok_or_else(Error::unauthorized)?;
    if !key.key.scopes.contains(&scope) {
        return Err(Error::forbidden(
            "missing_scope",
            format!("this API key lacks the {scope:?} scope"),
        ));
    }
    Ok(key)
}

pub(crate) fn member_not_found() -> Error {
    Error::not_found("member_not_found", "no such member in this programme")
}

/// May the key's partner see this member? Its own programme only; in a closed programme,
/// only members enrolled with it (or programme-wide) or who bought there.
pub(crate) fn visible(key: &KeyConfig, account: &Account) -> bool {
    account.programme_id == key.programme.id
        && (key.programme.kind == ProgrammeKind::Coalition
            || account.enrolled_with.is_empty()
            || account.enrolled_with.contains(&key.partner.id))
}

/// The member's account, if the caller may see it; 404 otherwise.
pub(crate) async fn member_account(
    ctx: &Ctx,
    key: &KeyConfig,
    member_id: &str,
) -> Result<Account, Error> {
    if !valid_id(member_id) {
        return Err(member_not_found());
    }
    match ctx.store.get_account(&key.programme.id, member_id).await? {
        Some(a) if visible(key, &a) => Ok(a),
        _ => Err(member_not_found()),
    }
}
