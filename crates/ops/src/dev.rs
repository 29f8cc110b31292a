//! `bonus dev`: the HTTP API on 127.0.0.1, routing every request in-process to the same
//! handler functions that run on Lambda, over the embedded DynamoDB.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use bonus_lambda::api::{
    check_body_size, error_response, segments, Error, ErrorKind, Response, MAX_BODY,
};
use bonus_lambda::app::Ctx;
use bytes::Bytes;

/// Which function serves a path: the same split as the HttpApi events in template.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    OrderWebhook,
    MemberApi,
    PartnerApi,
    MemberSite,
}

pub fn route(path: &str) -> Option<Function> {
    match segments(path).as_slice() {
        ["v1", "partners", _, "webhooks", ..] | ["v1", "partners", _, "events"] => {
            Some(Function::OrderWebhook)
        }
        ["v1", "members" | "companies" | "holds" | "rewards" | "unsubscribe", ..] => {
            Some(Function::MemberApi)
        }
        ["v1", "partner", ..] => Some(Function::PartnerApi),
        ["m", ..] => Some(Function::MemberSite),
        _ => None,
    }
}

/// Send one request to the function that serves it, as API Gateway and the function's
/// runtime wiring would (bodies over 1 MiB refused).
pub async fn dispatch(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    if let Err(e) = check_body_size(req.body()) {
        return error_response(&e);
    }
    // Boxed: each function's future is deep; a caller awaiting several at once (a test,
    // the dev server) keeps only pointers to them.
    match route(req.uri().path()) {
        Some(Function::OrderWebhook) => Box::pin(order_webhook::handle(ctx, req)).await,
        Some(Function::MemberApi) => Box::pin(member_api::handle(ctx, req)).await,
        Some(Function::PartnerApi) => Box::pin(partner_api::handle(ctx, req)).await,
        _ => error_response(&Error::route_not_found()),
    }
}

/// [`dispatch`], with the member site served too (`/m/...`) when `site` is given.
pub async fn dispatch_with(
    ctx: &Ctx,
    site: Option<&member_site::Site>,
    req: http::Request<Bytes>,
) -> Response {
    match (route(req.uri().path()), site) {
        (Some(Function::MemberSite), Some(site)) => {
            if let Err(e) = check_body_size(req.body()) {
                return error_response(&e);
            }
            // Boxed: the site's future is deep, and the server would carry its layout.
            Box::pin(member_site::handle(ctx, site, req)).await
        }
        _ => Box::pin(dispatch(ctx, req)).await,
    }
}

/// Serve the API on `addr` until `shutdown` resolves.
pub async fn serve(
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(ctx, None, listener, shutdown).await
}

/// [`serve`], with the member site under `/m/` when `site` is given.
pub async fn serve_with(
    ctx: Arc<Ctx>,
    site: Option<Arc<member_site::Site>>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (ctx, site) = (ctx.clone(), site.clone());
        async move {
            let (parts, body) = req.into_parts();
            let resp = match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(bytes) => {
                    let req = http::Request::from_parts(parts, bytes);
                    Box::pin(dispatch_with(&ctx, site.as_deref(), req)).await
                }
                Err(_) => error_response(&Error::new(
                    ErrorKind::TooLarge,
                    "body_too_large",
                    "body over 1 MiB",
                )),
            };
            let (parts, body) = resp.into_parts();
            http::Response::from_parts(parts, Body::from(body))
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

pub async fn bind(port: u16) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on 127.0.0.1:{port}: {e} (is another `bonus dev` running?)"
            )
        })?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
