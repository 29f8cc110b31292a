//! Lambda entry point: wiring only. The work is `notifications::handle_sqs`.
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (ctx, config, sqs, queue_url) =
        bonus_lambda::run::queue_function("NOTIFY_QUEUE_URL").await?;
    let from = bonus_lambda::run::required_env("SENDER_EMAIL")?;
    let senders = Arc::new(notifications::Senders::from_env(&config, from));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (ctx, senders, sqs, queue_url) =
            (ctx.clone(), senders.clone(), sqs.clone(), queue_url.clone());
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            Ok::<_, lambda_runtime::Error>(
                notifications::handle_sqs(&ctx, &senders, &sqs, &queue_url, event.payload).await,
            )
        })
    }))
    .await
}
