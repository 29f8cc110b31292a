//! Structured JSON logs through `tracing`. Log ids, counts and codes; never e-mail
//! addresses, phone numbers or names (those live only in the member profile item).

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON logs to stdout (CloudWatch on Lambda). `RUST_LOG` sets the level (default info),
/// as `level` or `level,target=level,...` (targets and levels only: the filter needs no
/// regular expressions, which keeps them out of the binary and the cold start).
pub fn init_json() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(default_filter);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_target(false)
                .without_time(),
        )
        .with(filter)
        .try_init();
    bonus_metrics::enable_from_env();
}

/// Info, with the SDK's and the emulator's chatter at errors only.
fn default_filter() -> Targets {
    Targets::new().with_default(LevelFilter::INFO).with_targets(
        [
            "aws_smithy_runtime",
            "aws_smithy_runtime_api",
            "aws_config",
            "aws_sdk_dynamodb",
            "dynoxide",
        ]
        .map(|t| (t, LevelFilter::ERROR)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_levels_and_targets_parse_as_the_template_sets_them() {
        for level in ["error", "warn", "info", "debug"] {
            let t: Targets = level.parse().unwrap();
            assert_eq!(t.default_level(), Some(level.parse().unwrap()), "{level}");
        }
        let t: Targets = "info,aws_config=error".parse().unwrap();
        assert!(t.would_enable("aws_config", &tracing::Level::ERROR));
        assert!(!t.would_enable("aws_config", &tracing::Level::INFO));
        assert!(default_filter().would_enable("order_webhook", &tracing::Level::INFO));
        assert!(!default_filter().would_enable("aws_smithy_runtime::client", &tracing::Level::WARN));
    }
}
