//! Lambda entry point: wiring only. The handler is `partner_api::handle`.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bonus_lambda::run::run_http(|ctx, req| async move { partner_api::handle(&ctx, req).await })
        .await
}
