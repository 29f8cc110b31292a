//! Identifiers that end up inside DynamoDB keys. They are checked once at the edge so that a
//! key can never be forged by putting a separator into an id.

use sha2::{Digest, Sha256};

pub const ID_RULE: &str = "must be 1-128 characters of A-Z a-z 0-9 . _ : @ / -";

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'/' | b'-')
        })
}

/// A 422 naming `field` unless `id` is a valid id.
pub fn require_id(id: &str, field: &str, code: &'static str) -> Result<(), crate::error::Error> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            code,
            format!("{field}: {ID_RULE}"),
        ))
    }
}

/// A shop's own id for a customer or an order (digits, GIDs, e-mail-like strings...): 1-128
/// characters, no '#' (our key separator) and no control characters.
pub fn valid_external_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.chars().any(|c| c == '#' || c.is_control())
}

/// A stable small hash of a string, for shard numbers.
pub fn shard_of(key: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_carry_key_separators() {
        assert!(valid_id("A-1001"));
        assert!(valid_id("shop.example/42"));
        assert!(!valid_id(""));
        assert!(!valid_id("a#b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"x".repeat(129)));
    }
}
