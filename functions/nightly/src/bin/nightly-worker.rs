//! Lambda entry point: wiring only. The work is `nightly::handle_sqs`.
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    bonus_lambda::telemetry::init_json();
    let store = Arc::new(bonus_dynamodb::Store::from_config(
        &bonus_lambda::aws::sdk_config().await,
    )?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let store = store.clone();
        bonus_lambda::run::metered(store.email_key.clone(), async move {
            Ok::<_, lambda_runtime::Error>(
                nightly::handle_sqs(&store, event.payload, chrono::Utc::now()).await,
            )
        })
    }))
    .await
}
