//! Structured JSON logs through `tracing`. Log ids, counts and codes; never e-mail
//! addresses, phone numbers or names (those live only in the member profile item).

use tracing_subscriber::EnvFilter;

/// JSON logs to stdout (CloudWatch on Lambda). `RUST_LOG` sets the level (default info).
pub fn init_json() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_smithy_runtime=error,aws_smithy_runtime_api=error,aws_config=error,aws_sdk_dynamodb=error,dynoxide=error"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
    bonus_metrics::enable_from_env();
}
