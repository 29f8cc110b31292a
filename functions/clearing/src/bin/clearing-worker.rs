//! Lambda entry point: wiring only. The work is `clearing::handle_sqs`.
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (ctx, _, sqs, notify_url) = bonus_lambda::run::queue_function("NOTIFY_QUEUE_URL").await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (ctx, sqs, notify_url) = (ctx.clone(), sqs.clone(), notify_url.clone());
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            Ok::<_, lambda_runtime::Error>(
                clearing::handle_sqs(&ctx, &sqs, &notify_url, event.payload).await,
            )
        })
    }))
    .await
}
