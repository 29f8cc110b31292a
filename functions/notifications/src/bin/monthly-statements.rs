//! Lambda entry point: wiring only. On the 1st, `notifications::statement::plan` queues last
//! month's statements (`{"month": "YYYY-MM"}` in the event re-runs a month).
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (ctx, _, sqs, queue_url) = bonus_lambda::run::queue_function("NOTIFY_QUEUE_URL").await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, sqs, queue_url) = (ctx.clone(), sqs.clone(), queue_url.clone());
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            let month = match event.payload.get("month").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None => notifications::statement::previous_month(ctx.now().date_naive()),
            };
            let tasks = notifications::statement::plan(&ctx, &sqs, &queue_url, &month)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<Value, lambda_runtime::Error>(json!({ "month": month, "tasks": tasks }))
        })
    }))
    .await
}
