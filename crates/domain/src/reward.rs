//! The gift shop: rewards with a point price and a stock, claimed with a hold that is
//! captured at once (`bonus_domain::hold`). A claim takes one unit of stock in the same
//! transaction as the hold, on condition that stock is left, so stock never goes below 0.

use crate::random::Random;
use serde::{Deserialize, Serialize};

use crate::money::Points;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    pub programme_id: String,
    pub reward_id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Price in points.
    pub points: Points,
    /// Units ever put into stock (the config file's `stock`); a larger value tops up.
    pub granted: i64,
    /// Units left.
    pub stock: i64,
    /// At most this many claims per member.
    #[serde(default)]
    pub per_member_limit: Option<i64>,
}

/// A voucher code: 16 random characters from an alphabet without look-alikes, in groups.
pub fn voucher_code(random: &dyn Random) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    random.fill(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voucher_codes_are_grouped_and_unambiguous() {
        let random = crate::random::SeededRandom::new(3);
        let c = voucher_code(&random);
        assert_eq!(c.len(), 19);
        assert!(c
            .split('-')
            .all(|g| g.len() == 4 && g.chars().all(|ch| !"01IO".contains(ch))));
        assert_ne!(voucher_code(&random), c);
        // The same seed gives the same codes (a simulation replays them).
        assert_eq!(voucher_code(&crate::random::SeededRandom::new(3)), c);
    }
}
