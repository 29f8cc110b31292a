//! Lambda entry point: wiring only. The work is `member_api::sweep`.
use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json();
    let ctx = Arc::new(shared::app::Ctx::from_env().await);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            let summary = member_api::sweep(&ctx, 1_000)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
            Ok::<Value, lambda_runtime::Error>(serde_json::json!({
                "lapsed": summary.lapsed, "released": summary.released
            }))
        }
    }))
    .await
}
