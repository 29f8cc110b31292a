//! Lambda entry point: wiring only. The handler is `order_webhook::defer::handle_deferred`.
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let ctx = bonus_lambda::run::plain_function().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let ctx = ctx.clone();
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            Ok::<_, lambda_runtime::Error>(
                Box::pin(order_webhook::defer::handle_deferred(&ctx, event.payload)).await,
            )
        })
    }))
    .await
}
