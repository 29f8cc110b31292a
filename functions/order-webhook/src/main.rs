//! Lambda entry point: wiring only. The handler is `order_webhook::handle`.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bonus_lambda::run::run_http(|ctx, req| async move { order_webhook::handle(&ctx, req).await })
        .await
}
