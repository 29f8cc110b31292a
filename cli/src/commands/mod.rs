//! One module per `bonus` command.

pub mod adjust;
pub mod apply;
pub mod audit;
pub mod campaign;
pub mod claims;
pub mod clearing;
pub mod dev;
pub mod dlq;
pub mod holds;
pub mod import;
pub mod keys;
pub mod members;
pub mod migrate;
pub mod notifications;
pub mod notify;
pub mod report;
pub mod run;
pub mod site;
pub mod webhook;
