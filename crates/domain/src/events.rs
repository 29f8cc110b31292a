//! Domain events and ledger entries. Every ledger change writes its entry and its event in
//! the same TransactWriteItems as the change itself (a transactional outbox), so an event
//! exists if and only if the change happened.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Points;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Deterministic from the business key, so a re-published event can be deduplicated.
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub programme_id: String,
    pub member_id: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    PointsEarned {
        partner_id: String,
        order_id: String,
        lot_id: String,
        points: Points,
        available_at: DateTime<Utc>,
        expires_on: NaiveDate,
    },
    TierChanged {
        from: String,
        to: String,
        reason: String,
    },
    /// Pending points became available (the nightly job; the balance showed them already).
    PointsAvailable {
        points: Points,
        released_at: DateTime<Utc>,
    },
    /// Points whose last valid day passed, and what of them was left.
    PointsExpired {
        points: Points,
        expires_on: NaiveDate,
    },
    /// `points` expire after `expires_on`, `days` days from the night it was sent.
    ExpiryWarning {
        points: Points,
        expires_on: NaiveDate,
        days: u32,
    },
    /// Points spent at `partner_id` (a captured hold), per issuing partner.
    PointsRedeemed {
        partner_id: String,
        hold_id: String,
        reference: String,
        points: Points,
        by_issuer: std::collections::BTreeMap<String, Points>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voucher_code: Option<String>,
    },
    /// A refund or cancellation took points back: `from_own` out of the order's own lot,
    /// `from_others` out of other available lots, `to_debt` owed.
    PointsReversed {
        partner_id: String,
        order_id: String,
        refund_id: String,
        points: Points,
        from_own: Points,
        from_others: Points,
        to_debt: Points,
    },
    /// The member sent `points` (and paid `fee`) to `to` (display name or masked id).
    PointsSent {
        transfer_id: String,
        points: Points,
        fee: Points,
        to: String,
    },
    /// The member received `points` from `from` (display name or masked id).
    PointsReceived {
        transfer_id: String,
        points: Points,
        from: String,
    },
}

impl DomainEvent {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            EventKind::PointsEarned { .. } => "PointsEarned",
            EventKind::TierChanged { .. } => "TierChanged",
            EventKind::PointsReversed { .. } => "PointsReversed",
            EventKind::PointsRedeemed { .. } => "PointsRedeemed",
            EventKind::PointsAvailable { .. } => "PointsAvailable",
            EventKind::PointsExpired { .. } => "PointsExpired",
            EventKind::ExpiryWarning { .. } => "ExpiryWarning",
            EventKind::PointsSent { .. } => "PointsSent",
            EventKind::PointsReceived { .. } => "PointsReceived",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Earn,
    /// Points taken back by a refund, out of one lot (the order's own, or another).
    Reversal,
    /// Reversed points that were already spent: owed, paid off by later accruals.
    Debt,
    /// Points spent (a captured hold or a gift-shop claim).
    Redeem,
    /// A returned gift-shop claim's points back to the member (crate::claim_return), from
    /// the partner where they were spent: a redemption taken back.
    ClaimReturn,
    /// Points that expired unspent.
    Expire,
    /// Points sent to another member (they keep their expiry and issuer).
    TransferOut,
    /// Points received from another member.
    TransferIn,
    /// The fee of a transfer: breakage of the points' issuers.
    TransferFee,
    /// Points (or a debt, issuer `_debt`) moved by merging a duplicate member into another.
    Merge,
    /// Points credited (a lot of the adjusting partner) or debited (reversed from the lots'
    /// issuers) by customer service, with a reason (crate::adjustment).
    Adjustment,
}

/// One line of the member's statement. Numbered by the account version it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    /// Signed change of the member's points.
    pub points: Points,
    pub reason: String,
    pub partner_id: Option<String>,
    pub order_id: Option<String>,
    pub lot_id: Option<String>,
    pub event_id: String,
    /// For a transfer: the other member, as they chose to be named or by a masked id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    /// Whose points moved: issuing partner -> points (> 0), summing to `points.abs()`. For
    /// a debt, the partner whose refund caused it. What the clearing counters are made of.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub issuers: std::collections::BTreeMap<String, Points>,
}
