//! The bare runtime the cold-start bench compares every function with: `lambda_http` and
//! tokio, nothing of ours (tests/benches/cold_start.rs).
use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
