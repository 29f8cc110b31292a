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
}

pub fn route(path: &str) -> Option<Function> {
    match segments(path).as_slice() {
        ["v1", "partners", _, "webhooks", ..] | ["v1", "partners", _, "events"] => {
            Some(Function::OrderWebhook)
        }
        ["v1", "members" | "holds" | "rewards" | "unsubscribe", ..] => Some(Function::MemberApi),
        _ => None,
    }
}

/// Send one request to the function that serves it, as API Gateway and the function's
/// runtime wiring would (bodies over 1 MiB refused).
pub async fn dispatch(ctx: &Ctx, req: http::Request<Bytes>) -> Response {
    if let Err(e) = check_body_size(req.body()) {
        return error_response(&e);
    }
    match route(req.uri().path()) {
        Some(Function::OrderWebhook) => order_webhook::handle(ctx, req).await,
        Some(Function::MemberApi) => member_api::handle(ctx, req).await,
        None => error_response(&Error::route_not_found()),
    }
}

/// Serve the API on `addr` until `shutdown` resolves.
pub async fn serve(
    ctx: Arc<Ctx>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let ctx = ctx.clone();
        async move {
            let (parts, body) = req.into_parts();
            let resp = match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(bytes) => dispatch(&ctx, http::Request::from_parts(parts, bytes)).await,
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
