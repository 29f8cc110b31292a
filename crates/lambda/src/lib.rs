//! The Lambda and HTTP glue every function shares:
//! - [`app`]: the handler context (store, clock, cached configuration);
//! - [`api`]: HTTP helpers, and the one place where domain errors become HTTP statuses;
//! - [`run`]: wiring an HTTP or queue handler onto the Lambda runtime;
//! - [`telemetry`]: JSON logs through `tracing`.

pub mod api;
pub mod app;
pub mod aws;
pub mod lanes;
pub mod run;
pub mod telemetry;
