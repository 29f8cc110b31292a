//! An order line as the earning rules and campaigns see it (kept apart from both, which
//! each need it).

use crate::money::Money;

/// One order line after validation: what earning needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarnLine {
    pub line_id: String,
    pub sku: String,
    pub quantity: i64,
    /// Net line amount that earns: quantity x unit price - discount (tax as the programme says).
    pub net: Money,
    /// Unit cost price, for cost-price campaigns.
    pub cost_price: Option<Money>,
    pub product_group: Option<String>,
}
