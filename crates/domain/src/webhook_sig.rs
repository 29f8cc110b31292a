//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{raw body}` with the partner's `whsec_` secret, base64,
//! sent as `v1,<sig>` (several, space separated, during a rotation). Timestamps more than 5
//! minutes away from now are refused. Comparison is constant time (`Mac::verify_slice`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TOLERANCE_SECS: i64 = 5 * 60;
/// The shortest signing key a partner may have (decoded bytes of its `whsec_` secret).
pub const MIN_SECRET_BYTES: usize = 16;
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("timestamp is not a number")]
    BadTimestamp,
    #[error("timestamp outside the tolerance window")]
    Stale,
    #[error("no signature matches")]
    NoMatch,
    #[error("secret is not whsec_ base64")]
    BadSecret,
}

pub fn decode_secret(secret: &str) -> Result<Vec<u8>, SigError> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = B64.decode(b64).map_err(|_| SigError::BadSecret)?;
    if key.is_empty() {
        return Err(SigError::BadSecret);
    }
    Ok(key)
}

fn mac(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `webhook-signature` value for a message: `v1,<base64>`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigError> {
    let key = decode_secret(secret)?;
    let tag = mac(&key, msg_id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", B64.encode(tag)))
}

/// Verify a delivery against any of the partner's current secrets.
pub fn verify(
    secrets: &[String],
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SigError> {
    let msg_id = msg_id
        .filter(|s| !s.is_empty())
        .ok_or(SigError::MissingHeader(HEADER_ID))?;
    let timestamp = timestamp.ok_or(SigError::MissingHeader(HEADER_TIMESTAMP))?;
    let signatures = signatures.ok_or(SigError::MissingHeader(HEADER_SIGNATURE))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SigError::BadTimestamp)?;
    // Checked: a timestamp near i64::MIN must be stale, not an overflow.
    let off = now.timestamp().checked_sub(ts).map(i64::unsigned_abs);
    if off.is_none_or(|off| off > TOLERANCE_SECS.unsigned_abs()) {
        return Err(SigError::Stale);
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| B64.decode(sig).ok())
        .collect();
    for secret in secrets {
        let Ok(key) = decode_secret(secret) else {
            continue;
        };
        for candidate in &candidates {
            if mac(&key, msg_id, timestamp.trim(), body)
                .verify_slice(candidate)
                .is_ok()
            {
                return Ok(());
            }
        }
    }
    Err(SigError::NoMatch)
}

/// A fresh random secret in the `whsec_` format (24 random bytes).
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // Test vector from the Standard Webhooks specification repository.
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn accepts_good_refuses_bad() {
        let body = b"{}";
        let ts = now().timestamp();
        let sig = sign(SECRET, "m1", ts, body).unwrap();
        let secrets = vec![SECRET.to_string()];
        let ok = |id: &str, t: i64, s: &str, b: &[u8]| {
            verify(&secrets, Some(id), Some(&t.to_string()), Some(s), b, now())
        };
        assert_eq!(ok("m1", ts, &sig, body), Ok(()));
        assert_eq!(ok("m2", ts, &sig, body), Err(SigError::NoMatch));
        assert_eq!(ok("m1", ts, &sig, b"{ }"), Err(SigError::NoMatch));
        let old = ts - 6 * 60;
        let old_sig = sign(SECRET, "m1", old, body).unwrap();
        assert_eq!(ok("m1", old, &old_sig, body), Err(SigError::Stale));
        let future = ts + 6 * 60;
        assert_eq!(
            ok(
                "m1",
                future,
                &sign(SECRET, "m1", future, body).unwrap(),
                body
            ),
            Err(SigError::Stale)
        );
        assert_eq!(ok("m1", ts, "v1,not-base64!", body), Err(SigError::NoMatch));
        assert_eq!(
            ok("m1", ts, &sig.replace("v1,", "v2,"), body),
            Err(SigError::NoMatch)
        );
        assert_eq!(
            verify(&secrets, None, Some("1"), Some(&sig), body, now()),
            Err(SigError::MissingHeader(HEADER_ID))
        );
        assert_eq!(
            verify(
                &secrets,
                Some("m1"),
                Some("yesterday"),
                Some(&sig),
                body,
                now()
            ),
            Err(SigError::BadTimestamp)
        );
    }

    #[test]
    fn rotation_accepts_any_current_secret_and_any_listed_signature() {
        let new = new_secret();
        let body = b"{}";
        let ts = now().timestamp();
        let by_new = sign(&new, "m", ts, body).unwrap();
        let by_old = sign(SECRET, "m", ts, body).unwrap();
        let both = vec![SECRET.to_string(), new.clone()];
        assert_eq!(
            verify(
                &both,
                Some("m"),
                Some(&ts.to_string()),
                Some(&by_new),
                body,
                now()
            ),
            Ok(())
        );
        let header = format!("v1,AAAA {by_old}");
        assert_eq!(
            verify(
                &[SECRET.to_string()],
                Some("m"),
                Some(&ts.to_string()),
                Some(&header),
                body,
                now()
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &[SECRET.to_string()],
                Some("m"),
                Some(&ts.to_string()),
                Some(&by_new),
                body,
                now()
            ),
            Err(SigError::NoMatch)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        let body = b"{}";
        let sig = sign(SECRET, "m", 0, body).unwrap();
        for ts in ["-9223372036854775808", "9223372036854775807", "-1"] {
            assert_eq!(
                verify(
                    &[SECRET.to_string()],
                    Some("m"),
                    Some(ts),
                    Some(&sig),
                    body,
                    now()
                ),
                Err(SigError::Stale),
                "{ts}"
            );
        }
    }
}
