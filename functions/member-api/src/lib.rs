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
use tracing::error;

use shared::account::Account;
use shared::api::{bearer, segments, ApiError, Response};
use shared::app::{Ctx, KeyConfig};
use shared::ids::valid_id;
use shared::programme::ProgrammeKind;
pub use shared::store::config::Scope;

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
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "members", id] => match m {
            Method::GET => members::show(ctx, &req, id).await,
            Method::PATCH => members::update(ctx, &req, id).await,
            Method::DELETE => members::erase(ctx, &req, id).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "members", id, "balance"] => match m {
            Method::GET => members::balance(ctx, &req, id).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "members", id, "entries"] => match m {
            Method::GET => members::entries(ctx, &req, id).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "members", id, "holds"] => match m {
            Method::POST => holds::create(ctx, &req, id).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "holds", id] => match m {
            Method::GET => holds::show(ctx, &req, id).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "holds", id, action @ ("capture" | "void")] => match m {
            Method::POST => holds::finish(ctx, &req, id, *action == "capture").await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "rewards"] => match m {
            Method::GET => rewards::list(ctx, &req).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "members", id, "rewards", reward, "claim"] => match m {
            Method::POST => rewards::claim(ctx, &req, id, reward).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["v1", "unsubscribe", programme, id, token] => match m {
            Method::GET => unsubscribe::show(ctx, &req, programme, id, token).await,
            Method::POST => unsubscribe::confirm(ctx, &req, programme, id, token).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        _ => Err(ApiError::route_not_found()),
    };
    result.unwrap_or_else(|e| {
        if e.status.is_server_error() {
            error!(code = e.code, "member api failed");
        }
        e.into_response()
    })
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    error!(error = %e, "store error");
    ApiError::internal()
}

/// Resolve the caller's API key and check it has `scope`.
pub(crate) async fn authorise(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    scope: Scope,
) -> Result<std::sync::Arc<KeyConfig>, ApiError> {
    let token = bearer(req.headers()).ok_or_else(ApiError::unauthorized)?;
    let key = ctx
        .api_key(token)
        .await
        .map_err(internal)?
        .ok_or_else(ApiError::unauthorized)?;
    if !key.key.scopes.contains(&scope) {
        return Err(ApiError::forbidden(
            "missing_scope",
            format!("this API key lacks the {scope:?} scope"),
        ));
    }
    Ok(key)
}

pub(crate) fn member_not_found() -> ApiError {
    ApiError::not_found("member_not_found", "no such member in this programme")
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
) -> Result<Account, ApiError> {
    if !valid_id(member_id) {
        return Err(member_not_found());
    }
    match ctx
        .store
        .get_account(&key.programme.id, member_id)
        .await
        .map_err(internal)?
    {
        Some(a) if visible(key, &a) => Ok(a),
        _ => Err(member_not_found()),
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepSummary {
    /// Open holds found past their time.
    pub lapsed: usize,
    /// Of those, released by this sweep (the rest were resolved by someone else meanwhile).
    pub released: usize,
}

/// Release holds whose time ran out (the sweeper; holds are also released lazily whenever
/// they or their member's balance are touched). Reads only the lapsed holds, through their
/// sparse index; at most `limit` per index shard per run.
pub async fn sweep(ctx: &Ctx, limit: i32) -> Result<SweepSummary, ApiError> {
    let now = ctx.now();
    let ids = ctx.store.lapsed_holds(now, limit).await.map_err(internal)?;
    let mut summary = SweepSummary {
        lapsed: ids.len(),
        released: 0,
    };
    for id in ids {
        if let Some(h) = ctx.store.get_hold(&id).await.map_err(internal)? {
            if h.status == shared::hold::HoldStatus::Open
                && holds::resolve(ctx, &h, 0, shared::hold::HoldStatus::Expired)
                    .await?
                    .is_some()
            {
                summary.released += 1;
            }
        }
    }
    tracing::info!(
        lapsed = summary.lapsed,
        released = summary.released,
        "holds swept"
    );
    Ok(summary)
}
