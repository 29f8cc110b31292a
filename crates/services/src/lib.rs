//! Services that several functions share. A function crate never depends on another
//! function crate; what two of them need lives here.

pub mod adjust;
pub mod claims;
pub mod holds;
pub mod merge;
pub mod offers;
pub mod report;
pub mod spend;
pub mod transfer;
