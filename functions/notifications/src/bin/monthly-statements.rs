//! Lambda entry point: wiring only. On the 1st, `notifications::statement::plan` queues last
//! month's statements (`{"month": "YYYY-MM"}` in the event re-runs a month).
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json();
    let ctx = Arc::new(shared::app::Ctx::from_env().await);
    let config = aws_config::load_from_env().await;
    let sqs = Arc::new(aws_sdk_sqs::Client::new(&config));
    let queue_url = Arc::new(std::env::var("NOTIFY_QUEUE_URL").unwrap_or_default());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, sqs, queue_url) = (ctx.clone(), sqs.clone(), queue_url.clone());
        async move {
            let month = match event.payload.get("month").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None => notifications::statement::previous_month(ctx.now().date_naive()),
            };
            let tasks = notifications::statement::plan(&ctx, &sqs, &queue_url, &month)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<Value, lambda_runtime::Error>(json!({ "month": month, "tasks": tasks }))
        }
    }))
    .await
}
