//! What operators run, as library code that the `bonus` CLI and the tests both call:
//! - [`apply`]: a config file checked, diffed and written;
//! - [`audit`]: the ledger recomputed from its entries;
//! - [`clearing`]: a coalition month shown or closed;
//! - [`report`]: the campaign report (text, CSV, SVG);
//! - [`webhook`]: signed webhooks sent as a shop would;
//! - [`dev`]: the local HTTP server routing to the real handlers;
//! - [`migrate`]: items written by earlier versions upgraded in place.

pub mod apply;
pub mod audit;
pub mod clearing;
pub mod dev;
pub mod import;
pub mod migrate;
pub mod report;
pub mod webhook;
