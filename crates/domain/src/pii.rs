//! Personal data helpers. E-mail addresses are looked up through a keyed hash (HMAC-SHA256
//! with a secret key), so the table never holds an address in a key and a leaked table
//! cannot be matched against a list of addresses without the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key used by the local stack and the tests. Deployed functions get theirs from the
/// `EMAIL_HASH_KEY` environment variable (a template parameter).
pub const LOCAL_EMAIL_KEY: &[u8] = b"bonus-local-email-hash-key (local stack and tests only)";

/// An address as it is compared: trimmed and lower-cased. None if it is not an address.
pub fn normalize_email(email: &str) -> Option<String> {
    let e = email.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// Hex HMAC-SHA256 of the normalised address. None if it is not an address.
pub fn email_hash(key: &[u8], email: &str) -> Option<String> {
    let normal = normalize_email(email)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(normal.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn unsubscribe_mac(key: &[u8], programme_id: &str, member_id: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(b"unsubscribe\0");
    mac.update(programme_id.as_bytes());
    mac.update(b"\0");
    mac.update(member_id.as_bytes());
    Some(mac)
}

/// The token of a member's unsubscribe link: 128 bits of HMAC-SHA256 (same key as the
/// e-mail index), hex. Whoever has the e-mail can unsubscribe; nobody can guess a link.
pub fn unsubscribe_token(key: &[u8], programme_id: &str, member_id: &str) -> String {
    unsubscribe_mac(key, programme_id, member_id)
        .map(|m| hex::encode(&m.finalize().into_bytes()[..16]))
        .unwrap_or_default()
}

/// Check an unsubscribe token, in constant time.
pub fn verify_unsubscribe_token(
    key: &[u8],
    programme_id: &str,
    member_id: &str,
    token: &str,
) -> bool {
    match (
        hex::decode(token),
        unsubscribe_mac(key, programme_id, member_id),
    ) {
        (Ok(bytes), Some(mac)) if bytes.len() == 16 => mac.verify_truncated_left(&bytes).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_belong_to_one_member() {
        let t = unsubscribe_token(LOCAL_EMAIL_KEY, "velo", "M-1");
        assert_eq!(t.len(), 32);
        assert!(verify_unsubscribe_token(LOCAL_EMAIL_KEY, "velo", "M-1", &t));
        assert!(!verify_unsubscribe_token(
            LOCAL_EMAIL_KEY,
            "velo",
            "M-2",
            &t
        ));
        assert!(!verify_unsubscribe_token(
            LOCAL_EMAIL_KEY,
            "other",
            "M-1",
            &t
        ));
        assert!(!verify_unsubscribe_token(b"another key", "velo", "M-1", &t));
        assert!(!verify_unsubscribe_token(
            LOCAL_EMAIL_KEY,
            "velo",
            "M-1",
            &t[..30]
        ));
        assert!(!verify_unsubscribe_token(
            LOCAL_EMAIL_KEY,
            "velo",
            "M-1",
            "zz"
        ));
        // No ambiguity between ids: ("a", "b:c") and ("a:b", "c") differ.
        assert_ne!(
            unsubscribe_token(LOCAL_EMAIL_KEY, "a", "b:c"),
            unsubscribe_token(LOCAL_EMAIL_KEY, "a:b", "c")
        );
    }

    #[test]
    fn the_same_address_in_any_case_hashes_the_same_and_the_key_matters() {
        let a = email_hash(LOCAL_EMAIL_KEY, " Ann@Example.COM ").unwrap();
        assert_eq!(
            Some(a.clone()),
            email_hash(LOCAL_EMAIL_KEY, "ann@example.com")
        );
        assert_ne!(
            Some(a.clone()),
            email_hash(b"another key", "ann@example.com")
        );
        assert_eq!(a.len(), 64);
        assert!(!a.contains("ann"));
    }

    #[test]
    fn non_addresses_are_refused() {
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "a b@example.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
