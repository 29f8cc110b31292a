//! Member and redemption API, authenticated by a partner API key (`Authorization: Bearer`).
//! Routes so far: `GET /v1/members/{member_id}/balance`.

use bytes::Bytes;
use http::{Method, StatusCode};
use tracing::{error, info};

use shared::api::{bearer, json, segments, ApiError, Response};
use shared::app::{Ctx, KeyConfig};
use shared::ids::valid_id;
use shared::store::config::Scope;

/// Entry point for every route this function serves.
pub async fn handle(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    let path = segments(req.uri().path());
    let result = match (req.method(), path.as_slice()) {
        (&Method::GET, ["v1", "members", member_id, "balance"]) => {
            balance(ctx, &req, member_id).await
        }
        (_, ["v1", "members", _, "balance"]) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::route_not_found()),
    };
    result.unwrap_or_else(|e| {
        if e.status.is_server_error() {
            error!(code = e.code, "member api failed");
        }
        e.into_response()
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    error!(error = %e, "store error");
    ApiError::internal()
}

/// Resolve the caller's API key and check it has `scope`.
async fn authorise(
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

async fn balance(
    ctx: &Ctx,
    req: &http::Request<Bytes>,
    member_id: &str,
) -> Result<Response, ApiError> {
    let key = authorise(ctx, req, Scope::ReadBalance).await?;
    let not_found = || ApiError::not_found("member_not_found", "no such member in this programme");
    if !valid_id(member_id) {
        return Err(not_found());
    }
    let account = ctx
        .store
        .get_account(&key.programme.id, member_id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let view = account.view(&key.programme, ctx.now());
    info!(partner_id = %key.partner.id, "balance read");
    Ok(json(StatusCode::OK, &view))
}
