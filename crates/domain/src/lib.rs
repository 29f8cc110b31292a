//! The bonus points domain: every rule, and nothing else. No AWS SDK, Lambda, tokio or HTTP
//! crate is a dependency of this crate (a test in `tests/tests/architecture.rs` keeps it so);
//! the adapters (`bonus-dynamodb`, `bonus-sqs`, `bonus-messages`) and the Lambda/HTTP glue
//! (`bonus-lambda`) sit around it.
//!
//! - [`money`]: integer minor units + currency, exact decimal parsing;
//! - [`earning`]: **where the points of one order line are computed** (`points_for_line`);
//! - [`campaign`], [`budget`]: which lines a campaign pays on, and the takes from its budget;
//! - [`lot`]: one accrual with its pending/available/expiry dates;
//! - [`account`]: the member's balance aggregate and the balance view;
//! - [`ledger`]: pure decisions (what an accrual or a reversal writes);
//! - [`refund`]: how much of an order a refund or cancellation takes back, line by line;
//! - [`hold`]: spending (holds, capture, void, expiry);
//! - [`company`]: companies, their users' roles, who earns for a company's orders;
//! - [`transfer`]: points members send each other (P2P), with their expiry and issuer;
//! - [`nightly`]: releases, expiries, warnings and tier changes of a member's night;
//! - [`clearing`]: coalition clearing between partners, with its conservation checks;
//! - [`report`], [`sales`]: the campaign report and the sales it is built from;
//! - [`order`], [`platforms`]: the canonical order webhook schema, Shopify and WooCommerce;
//! - [`config`]: the config file and its validation; [`member`]: profiles and API keys;
//! - [`notify`]: which message an event becomes, channels, SMS encoding, quiet hours;
//! - [`offer`]: offers to segments of members, segment facts, the marketing frequency cap;
//! - [`webhook_sig`]: Standard Webhooks signatures; [`pii`]: keyed e-mail hashes;
//! - [`outgoing`]: partners' subscriptions to their members' events (outgoing webhooks);
//! - [`error`]: the one error type, with a kind the HTTP glue maps to a status.

pub mod access;
pub mod account;
pub mod adjustment;
pub mod booking;
pub mod budget;
pub mod campaign;
pub mod changes;
pub mod claim_return;
pub mod clearing;
pub mod clock;
pub mod company;
pub mod config;
pub mod earning;
pub mod error;
pub mod events;
pub mod hold;
pub mod ids;
pub mod ledger;
pub mod line;
pub mod lot;
pub mod member;
pub mod merge;
pub mod money;
pub mod month;
pub mod nightly;
pub mod notify;
pub mod offer;
pub mod order;
pub mod outgoing;
pub mod packs;
pub mod pii;
pub mod platforms;
pub mod programme;
pub mod random;
pub mod refund;
pub mod refund_event;
pub mod report;
pub mod retry;
pub mod reward;
pub mod sales;
pub mod site;
#[cfg(test)]
mod testing;
pub mod transfer;
pub mod webhook_sig;

pub use error::{Error, ErrorKind};
