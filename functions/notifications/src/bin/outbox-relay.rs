//! Lambda entry point: wiring only. A DynamoDB stream batch goes to
//! `notifications::relay_stream`; the 10-minute schedule runs the backstop,
//! `notifications::relay_once` for events older than 10 minutes.
use aws_lambda_events::event::dynamodb;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (ctx, _, sqs, queue_url) = bonus_lambda::run::queue_function("NOTIFY_QUEUE_URL").await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, sqs, queue_url) = (ctx.clone(), sqs.clone(), queue_url.clone());
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            if event.payload.get("Records").is_some() {
                let batch: dynamodb::Event = serde_json::from_value(event.payload)?;
                let response = notifications::relay_stream(&ctx, &sqs, &queue_url, batch).await;
                return Ok::<Value, lambda_runtime::Error>(serde_json::to_value(response)?);
            }
            let before = ctx.now() - chrono::Duration::minutes(10);
            let moved = notifications::relay_once(&ctx, &sqs, &queue_url, 100, Some(before))
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok(json!({ "relayed": moved }))
        })
    }))
    .await
}
