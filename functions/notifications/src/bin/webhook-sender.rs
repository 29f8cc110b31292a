//! Lambda entry point: wiring only. The work is `notifications::outgoing::handle_sqs`.
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (ctx, _, sqs, queue_url) =
        bonus_lambda::run::queue_function("PARTNER_WEBHOOKS_QUEUE_URL").await?;
    let http = Arc::new(notifications::outgoing::http_client());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (ctx, http, sqs, queue_url) =
            (ctx.clone(), http.clone(), sqs.clone(), queue_url.clone());
        bonus_lambda::run::metered(ctx.store.email_key.clone(), async move {
            Ok::<_, lambda_runtime::Error>(
                Box::pin(notifications::outgoing::handle_sqs(
                    &ctx,
                    &http,
                    &sqs,
                    &queue_url,
                    event.payload,
                ))
                .await,
            )
        })
    }))
    .await
}
