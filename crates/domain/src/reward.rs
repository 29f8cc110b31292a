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
    /// The catalogue's category ("coffee", "bikes"): listed by it in one Query.
    #[serde(default)]
    pub category: Option<String>,
    /// A picture of it (https).
    #[serde(default)]
    pub image_url: Option<String>,
    /// The partner whose reward it is (it manages it over the partner API); None: the
    /// programme's (ops, the config file).
    #[serde(default)]
    pub partner_id: Option<String>,
}

impl Reward {
    /// Check what a partner or the config file may set (the message names the field).
    pub fn validate(&self) -> Result<(), String> {
        if !crate::ids::valid_id(&self.reward_id) || self.reward_id.contains('/') {
            return Err(format!("id: '{}' {}", self.reward_id, crate::ids::ID_RULE));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("name: 1 to 200 characters".into());
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2000)
        {
            return Err("description: at most 2000 characters".into());
        }
        if self.points <= 0 || self.points > 100_000_000 {
            return Err("points: a whole number from 1 to 100000000".into());
        }
        if self.granted < 0 || self.granted > 10_000_000 {
            return Err("stock: 0 to 10000000".into());
        }
        if self.per_member_limit.is_some_and(|l| l <= 0) {
            return Err("per_member_limit: a whole number above 0".into());
        }
        if self
            .category
            .as_ref()
            .is_some_and(|c| !crate::ids::valid_id(c) || c.len() > 64 || c.contains('/'))
        {
            return Err("category: 1-64 characters of A-Z a-z 0-9 . _ : @ -".into());
        }
        if let Some(url) = &self.image_url {
            let ok = url.len() <= 500
                && url.starts_with("https://")
                && url.len() > "https://".len()
                && !url.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>'
                });
            if !ok {
                return Err("image_url: an https:// address of at most 500 characters".into());
            }
        }
        Ok(())
    }
}

/// Is `code` shaped as [`voucher_code`] makes them (four groups of four, upper case)?
pub fn valid_voucher_code(code: &str) -> bool {
    code.len() == 19
        && code.split('-').count() == 4
        && code.split('-').all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(&b))
        })
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
        assert!(valid_voucher_code(&c));
        for bad in [
            "",
            "ABCD-EFGH-JKLM-NPQ",
            "abcd-efgh-jklm-npqr",
            "ABCD-EFGH-JKLM-NPQ0",
            "ABCDEFGHJKLMNPQRSTU",
        ] {
            assert!(!valid_voucher_code(bad), "{bad}");
        }
        // The same seed gives the same codes (a simulation replays them).
        assert_eq!(voucher_code(&crate::random::SeededRandom::new(3)), c);
    }
}
