//! Lambda entry point: wiring only. The work is `notifications::handle_sqs`.
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_json();
    let ctx = Arc::new(shared::app::Ctx::from_env().await);
    let config = aws_config::load_from_env().await;
    let senders = Arc::new(notifications::Senders::from_env(&config));
    let sqs = Arc::new(aws_sdk_sqs::Client::new(&config));
    let queue_url = Arc::new(std::env::var("NOTIFY_QUEUE_URL").unwrap_or_default());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (ctx, senders, sqs, queue_url) =
            (ctx.clone(), senders.clone(), sqs.clone(), queue_url.clone());
        async move {
            Ok::<_, lambda_runtime::Error>(
                notifications::handle_sqs(&ctx, &senders, &sqs, &queue_url, event.payload).await,
            )
        }
    }))
    .await
}
