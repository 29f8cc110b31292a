//! The Lambda side of an HTTP function: API Gateway (HTTP API) events in, the handler's
//! response out. `main.rs` of each HTTP function is only this wiring.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use crate::api::Response;
use crate::app::Ctx;
use bonus_dynamodb::EmailKey;
pub use bonus_dynamodb::{required_env, MissingEnv};

/// Run an HTTP handler on the Lambda runtime with JSON logs and a context from the environment.
pub async fn run_http<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<Ctx>, http::Request<Bytes>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Response> + Send,
{
    crate::telemetry::init_json();
    let ctx = Arc::new(Ctx::from_env().await?);
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let ctx = ctx.clone();
        async move {
            ctx.store.email_key.resolve().await;
            let req = to_http(req);
            let resp = match crate::api::check_body_size(req.body()) {
                Ok(()) => handler(ctx, req).await,
                Err(e) => crate::api::error_response(&e),
            };
            bonus_metrics::flush();
            let (parts, body) = resp.into_parts();
            Ok::<_, lambda_http::Error>(lambda_http::Response::from_parts(
                parts,
                lambda_http::Body::from(body),
            ))
        }
    }))
    .await
}

/// The request a handler sees. lambda_http has already decoded a body that API Gateway
/// base64-encoded (`isBase64Encoded`, as it does for form posts such as WooCommerce's ping)
/// into the raw bytes, which is what webhook signatures are computed over.
pub fn to_http(req: lambda_http::Request) -> http::Request<Bytes> {
    let (parts, body) = req.into_parts();
    http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()))
}

/// One invocation of an event (queue, stream, schedule) function: the e-mail key read if
/// this is the first that may need it, and what it counted written out as metrics at its
/// end (HTTP functions: [`run_http`] does both).
pub async fn metered<T>(email_key: EmailKey, invocation: impl Future<Output = T>) -> T {
    email_key.resolve().await;
    let out = invocation.await;
    bonus_metrics::flush();
    out
}

/// What a scheduled or queue-fed function needs: JSON logs, the context from the environment,
/// the SDK configuration, an SQS client and the queue URL in the environment variable `var`.
/// A missing variable fails the cold start with a message that names it.
pub async fn queue_function(var: &str) -> Result<QueueFunction, MissingEnv> {
    crate::telemetry::init_json();
    let queue_url = Arc::new(required_env(var)?);
    let config = crate::aws::sdk_config().await;
    let ctx = Arc::new(Ctx::from_config(&config)?);
    let sqs = Arc::new(aws_sdk_sqs::Client::new(&config));
    Ok((ctx, config, sqs, queue_url))
}

/// The context, SDK configuration, SQS client and queue URL of a queue-fed function.
pub type QueueFunction = (
    Arc<Ctx>,
    aws_config::SdkConfig,
    Arc<aws_sdk_sqs::Client>,
    Arc<String>,
);

/// JSON logs and the context from the environment, for a function without a queue.
pub async fn plain_function() -> Result<Arc<Ctx>, MissingEnv> {
    crate::telemetry::init_json();
    Ok(Arc::new(Ctx::from_env().await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A REST API (v1) proxy event, as API Gateway sends it through the WAF-protected API:
    /// the handler sees the path without the stage, the raw body and the WAF's header.
    #[test]
    fn a_rest_api_event_reaches_the_handler_as_the_http_api_event_did() {
        // Set for every function by template.yaml (Globals).
        std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
        let event = serde_json::json!({
            "resource": "/v1/partners/{partner_id}/webhooks/orders",
            "path": "/v1/partners/shop/webhooks/orders",
            "httpMethod": "POST",
            "headers": {"content-type": "application/json", "x-amzn-waf-bonus-over-limit": "1"},
            "multiValueHeaders": {"content-type": ["application/json"], "x-amzn-waf-bonus-over-limit": ["1"]},
            "queryStringParameters": null,
            "multiValueQueryStringParameters": null,
            "pathParameters": {"partner_id": "shop"},
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012", "resourceId": "abc", "stage": "prod",
                "requestId": "r-1", "identity": {"sourceIp": "192.0.2.1"},
                "resourcePath": "/v1/partners/{partner_id}/webhooks/orders",
                "httpMethod": "POST", "apiId": "api1", "path": "/prod/v1/partners/shop/webhooks/orders"
            },
            "body": "{\"type\":\"order.paid\"}",
            "isBase64Encoded": false
        })
        .to_string();
        let req = to_http(lambda_http::request::from_str(&event).expect("a REST API event"));
        assert_eq!(req.uri().path(), "/v1/partners/shop/webhooks/orders");
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.body().as_ref(), br#"{"type":"order.paid"}"#);
        assert_eq!(
            req.headers()
                .get("x-amzn-waf-bonus-over-limit")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
}
