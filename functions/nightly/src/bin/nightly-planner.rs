//! Lambda entry point: wiring only. The work is `nightly::planner`.
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json();
    let ctx = Arc::new(shared::app::Ctx::from_env().await);
    let config = aws_config::load_from_env().await;
    let sqs = Arc::new(aws_sdk_sqs::Client::new(&config));
    let queue_url = std::env::var("WORK_QUEUE_URL").unwrap_or_default();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, sqs, queue_url) = (ctx.clone(), sqs.clone(), queue_url.clone());
        async move {
            let summary = nightly::planner(&ctx, &sqs, &queue_url, &event.payload)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<Value, lambda_runtime::Error>(serde_json::to_value(summary)?)
        }
    }))
    .await
}
