//! The bonus points domain crate.
//!
//! Pure domain first (no I/O, no AWS types):
//! - [`money`]: integer minor units + currency, exact decimal parsing;
//! - [`earning`]: **where the points of one order line are computed** (`points_for_line`);
//! - [`lot`]: one accrual with its pending/available/expiry dates;
//! - [`account`]: the member's balance aggregate and the balance view;
//! - [`ledger`]: pure decisions (what an accrual or a reversal writes);
//! - [`refund`]: how much of an order a refund or cancellation takes back, line by line;
//! - [`clearing`]: coalition clearing between partners, with its conservation checks;
//! - [`report`]: the campaign report (campaign period against the three before it);
//! - [`order`]: the canonical order webhook schema and its validation;
//! - [`webhook_sig`]: Standard Webhooks signatures.
//!
//! Adapters: [`store`] (DynamoDB), [`app`] (context shared by the Lambda handlers),
//! [`api`] (HTTP error mapping).

pub mod account;
pub mod api;
pub mod app;
pub mod campaign;
pub mod clearing;
pub mod clock;
pub mod config;
pub mod earning;
pub mod events;
pub mod hold;
pub mod ids;
pub mod lambda;
pub mod ledger;
pub mod lot;
pub mod money;
pub mod nightly;
pub mod notify;
pub mod order;
pub mod pii;
pub mod platforms;
pub mod programme;
pub mod queue;
pub mod refund;
pub mod report;
pub mod reward;
pub mod store;
pub mod telemetry;
pub mod webhook_sig;
