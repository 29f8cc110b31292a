//! Lambda entry point: wiring only. The handler is `member_site::handle`.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let site: &'static member_site::Site =
        Box::leak(Box::new(member_site::Site::from_env().await?));
    bonus_lambda::run::run_http(move |ctx, req| async move {
        member_site::handle(&ctx, site, req).await
    })
    .await
}
