//! Campaign budgets, pure: a budget is split over shard counters so that a busy campaign
//! does not make one item hot; an order takes its bonus from the shards, starting at one it
//! picks, never more than a shard has left.

use serde::{Deserialize, Serialize};

use crate::campaign::Campaign;
use crate::money::Points;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetShard {
    pub partner_id: String,
    pub campaign_id: String,
    pub shard: u32,
    pub remaining: Points,
    pub spent: Points,
}

/// A campaign's budget as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    pub budget: Points,
    pub spent: Points,
    pub remaining: Points,
    pub shards: Vec<BudgetShard>,
}

/// One conditional take from one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetTake {
    pub partner_id: String,
    pub campaign_id: String,
    pub shard: u32,
    pub points: Points,
}

/// The initial split of a budget: equal shares, the remainder on shard 0.
pub fn split_budget(budget: Points, shards: u32) -> Vec<Points> {
    let n = i64::from(shards.max(1));
    let mut parts = vec![budget / n; n as usize];
    parts[0] += budget % n;
    parts
}

/// Spread a campaign's take over its shards: starting at a shard chosen by the order (so
/// concurrent orders start on different shards), then around.
pub fn plan_takes(
    campaign: &Campaign,
    shards: &[BudgetShard],
    start: u32,
    mut points: Points,
) -> Vec<BudgetTake> {
    let n = campaign.budget_shards.max(1);
    let mut takes = Vec::new();
    for i in 0..n {
        if points <= 0 {
            break;
        }
        let shard = (start + i) % n;
        let left = shards
            .iter()
            .find(|s| s.shard == shard)
            .map_or(0, |s| s.remaining);
        let take = left.min(points);
        if take > 0 {
            takes.push(BudgetTake {
                partner_id: campaign.partner_id.clone(),
                campaign_id: campaign.id.clone(),
                shard,
                points: take,
            });
            points -= take;
        }
    }
    takes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_split_exactly() {
        assert_eq!(split_budget(150_000, 4), vec![37_500; 4]);
        assert_eq!(split_budget(10, 4), vec![4, 2, 2, 2]);
        assert_eq!(split_budget(10, 4).iter().sum::<i64>(), 10);
    }
}
