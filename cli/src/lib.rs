//! The `bonus` ops CLI and local runner, as a library so that tests drive the same code.

pub mod apply;
pub mod audit;
pub mod clearing_cmd;
pub mod dev;
pub mod local;
pub mod moto;
pub mod report_cmd;
pub mod webhook;
