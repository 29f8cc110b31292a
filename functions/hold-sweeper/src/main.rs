//! Lambda entry point: wiring only. The work is `bonus_services::holds::sweep`.
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let ctx = bonus_lambda::run::plain_function().await?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            let summary = bonus_services::holds::sweep(&ctx, 1_000)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<Value, lambda_runtime::Error>(serde_json::json!({
                "lapsed": summary.lapsed, "released": summary.released, "failed": summary.failed,
                "settled": summary.settled, "takes_rolled_back": summary.takes_rolled_back,
                "sales_finished": summary.sales_finished, "sales_failed": summary.sales_failed
            }))
        })
    }))
    .await
}
