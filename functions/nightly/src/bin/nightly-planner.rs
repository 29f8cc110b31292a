//! Lambda entry point: wiring only. The work is `nightly::planner`.
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (ctx, _, sqs, queue_url) = bonus_lambda::run::queue_function("WORK_QUEUE_URL").await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ctx, sqs, queue_url) = (ctx.clone(), sqs.clone(), queue_url.clone());
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            let summary = nightly::planner(&ctx, &sqs, &queue_url, &event.payload)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<Value, lambda_runtime::Error>(serde_json::to_value(summary)?)
        })
    }))
    .await
}
