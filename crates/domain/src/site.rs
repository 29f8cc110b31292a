//! The member site's rules, pure: signed session cookies, CSRF tokens, one-time login
//! secrets, the partner's signed member token (like Shopify Multipass), login throttles, and
//! how figures are written in each locale.
//!
//! A session is an item in the table (so one can be ended, and all of a member's at once);
//! the cookie names it and is signed, so a forged or altered cookie is refused without a
//! read. Login links and codes are stored only as SHA-256 hashes, used once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ids::valid_id;
use crate::random::Random;

/// The session cookie's name. `__Host-` binds it to the exact origin over HTTPS; the local
/// server (plain HTTP) uses [`LOCAL_SESSION_COOKIE`].
pub const SESSION_COOKIE: &str = "__Host-bonus_session";
pub const LOCAL_SESSION_COOKIE: &str = "bonus_session";
/// Before login: the double-submit CSRF cookie of the login forms.
pub const PRELOGIN_COOKIE: &str = "bonus_prelogin";

/// How long a session lasts without a new login.
pub const SESSION_DAYS: i64 = 30;
/// How long a login link or SMS code works.
pub const LOGIN_SECRET_MINUTES: i64 = 15;
/// How long a code to confirm a new e-mail address or phone number works.
pub const CONTACT_CODE_MINUTES: i64 = 15;
/// Login requests per address (e-mail or phone, member or not) per hour.
pub const LOGIN_REQUESTS_PER_ADDRESS_PER_HOUR: u32 = 5;
/// Login messages sent to one member per hour (over all their addresses).
pub const LOGIN_MESSAGES_PER_MEMBER_PER_HOUR: u32 = 5;
/// Wrong codes before an SMS code (or a contact-change code) is void.
pub const CODE_ATTEMPTS: u32 = 5;
/// The longest a partner's member token may be valid for, from now.
pub const MEMBER_TOKEN_MAX_SECONDS: i64 = 600;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], purpose: &str, parts: &[&str]) -> HmacSha256 {
    // An HMAC key may be any length: new_from_slice cannot fail for HMAC.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(purpose.as_bytes());
    for p in parts {
        mac.update(b"\0");
        mac.update(p.as_bytes());
    }
    mac
}

/// A logged-in session, as its cookie names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub programme_id: String,
    pub member_id: String,
    /// Random, 128 bits, hex: the session item's id.
    pub session_id: String,
    pub expires_at: DateTime<Utc>,
}

impl SessionRef {
    pub fn new(
        random: &dyn Random,
        programme_id: &str,
        member_id: &str,
        now: DateTime<Utc>,
    ) -> Self {
        SessionRef {
            programme_id: programme_id.to_string(),
            member_id: member_id.to_string(),
            session_id: random.hex(16),
            expires_at: now + Duration::days(SESSION_DAYS),
        }
    }

    /// The cookie value: the four fields, base64url, then the HMAC.
    pub fn to_cookie(&self, key: &[u8]) -> String {
        let exp = self.expires_at.timestamp().to_string();
        let fields = [
            self.programme_id.as_str(),
            self.member_id.as_str(),
            self.session_id.as_str(),
            exp.as_str(),
        ];
        let payload = B64URL.encode(fields.join("\n"));
        let sig = mac(key, "session", &[&payload]).finalize().into_bytes();
        format!("{payload}.{}", B64URL.encode(sig))
    }

    /// The session a cookie names, if its signature holds and it has not run out.
    pub fn from_cookie(key: &[u8], value: &str, now: DateTime<Utc>) -> Option<SessionRef> {
        let (payload, sig) = value.split_once('.')?;
        let sig = B64URL.decode(sig).ok()?;
        mac(key, "session", &[payload]).verify_slice(&sig).ok()?;
        let text = String::from_utf8(B64URL.decode(payload).ok()?).ok()?;
        let mut fields = text.split('\n');
        let (p, m, s, exp) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        if fields.next().is_some() || !valid_id(p) || !valid_id(m) || !valid_id(s) {
            return None;
        }
        let expires_at = DateTime::from_timestamp(exp.parse().ok()?, 0)?;
        (now < expires_at).then(|| SessionRef {
            programme_id: p.to_string(),
            member_id: m.to_string(),
            session_id: s.to_string(),
            expires_at,
        })
    }

    /// The CSRF token of every form of this session (synchroniser token, derived, so it
    /// needs no storage): HMAC of the session id.
    pub fn csrf_token(&self, key: &[u8]) -> String {
        let sig = mac(key, "csrf", &[&self.session_id])
            .finalize()
            .into_bytes();
        B64URL.encode(&sig[..18])
    }
}

/// The CSRF token of a login form, bound to the pre-login cookie's random value.
pub fn prelogin_csrf(key: &[u8], cookie: &str) -> String {
    let sig = mac(key, "prelogin", &[cookie]).finalize().into_bytes();
    B64URL.encode(&sig[..18])
}

/// Compare a submitted token with the expected one in constant time.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 hex of a secret (a login link's token, a code): what the table stores.
pub fn secret_hash(purpose: &str, secret: &str) -> String {
    hex::encode(Sha256::digest(format!("{purpose}\0{secret}")))
}

/// A login link's token: 256 random bits, base64url.
pub fn link_token(random: &dyn Random) -> String {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    B64URL.encode(bytes)
}

/// A six-digit code (SMS login, contact changes), uniform over 000000..=999999.
pub fn six_digit_code(random: &dyn Random) -> String {
    format!("{:06}", random.up_to(999_999))
}

/// A code as a person may type it: spaces and dashes dropped; None unless six digits.
pub fn normalize_code(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A phone number as compared: `+` and 8-15 digits, spaces, dots, dashes and brackets
/// dropped. None if it is not one.
pub fn normalize_phone(text: &str) -> Option<String> {
    let t: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = t.strip_prefix('+')?;
    ((8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(t)
}

/// The keyed hash of a phone number (the same key as the e-mail index), for the phone index.
pub fn phone_hash(key: &[u8], phone: &str) -> Option<String> {
    let normal = normalize_phone(phone)?;
    Some(hex::encode(
        mac(key, "phone", &[&normal]).finalize().into_bytes(),
    ))
}

/// The throttle bucket of an address (hashed: the throttle item names no address).
pub fn address_bucket(key: &[u8], channel: &str, address: &str, now: DateTime<Utc>) -> String {
    let hour = now.timestamp() / 3600;
    let h = mac(key, "throttle", &[channel, address])
        .finalize()
        .into_bytes();
    format!("{}#{hour}", hex::encode(&h[..16]))
}

/// The throttle bucket of a member's login messages this hour.
pub fn member_bucket(programme_id: &str, member_id: &str, now: DateTime<Utc>) -> String {
    format!("{programme_id}#{member_id}#{}", now.timestamp() / 3600)
}

/// Why a partner's member token was refused (all answered alike to the browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Expired,
    TooLong,
    BadSignature,
}

/// A partner's signed member token: the partner's logged-in shop customer opens the member
/// site without a second login. `sig` = base64url HMAC-SHA256 over
/// `member-token\0{partner_id}\0{member_id}\0{expires}` with the partner's signing secret
/// (the decoded `whsec_` key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberToken {
    pub partner_id: String,
    pub member_id: String,
    /// Unix seconds.
    pub expires: i64,
}

impl MemberToken {
    pub fn sign(&self, secret: &[u8]) -> String {
        let exp = self.expires.to_string();
        let sig = mac(
            secret,
            "member-token",
            &[&self.partner_id, &self.member_id, &exp],
        )
        .finalize()
        .into_bytes();
        B64URL.encode(sig)
    }

    /// Check the signature against any of the partner's secrets (a rotation has two), and
    /// the expiry: in the future, and at most [`MEMBER_TOKEN_MAX_SECONDS`] away.
    pub fn verify(
        &self,
        secrets: &[Vec<u8>],
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), TokenError> {
        if !valid_id(&self.partner_id) || !valid_id(&self.member_id) {
            return Err(TokenError::Malformed);
        }
        let sig = B64URL.decode(sig).map_err(|_| TokenError::Malformed)?;
        let exp = self.expires.to_string();
        let ok = secrets.iter().any(|s| {
            mac(
                s,
                "member-token",
                &[&self.partner_id, &self.member_id, &exp],
            )
            .verify_slice(&sig)
            .is_ok()
        });
        if !ok {
            return Err(TokenError::BadSignature);
        }
        let left = self.expires - now.timestamp();
        if left <= 0 {
            Err(TokenError::Expired)
        } else if left > MEMBER_TOKEN_MAX_SECONDS {
            Err(TokenError::TooLong)
        } else {
            Ok(())
        }
    }
}

/// The locales the site is written in.
pub const SITE_LOCALES: [&str; 5] = crate::notify::LOCALES;

/// An integer as people write it in the locale: 12,345 (en), 12.345 (de, nl),
/// 12 345 (sv, fi; a no-break space).
pub fn format_points(locale: &str, n: i64) -> String {
    let sep = match crate::notify::template_locale(locale) {
        "de" | "nl" => ".",
        "sv" | "fi" => "\u{a0}",
        _ => ",",
    };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Money in minor units as people write it: €1,234.50 (en), 1.234,50 € (de, nl: € 1.234,50),
/// 1 234,50 € (sv, fi). Two decimals for every currency but those without minor units.
pub fn format_money(locale: &str, minor: i64, currency: &str, exponent: u32) -> String {
    let locale = crate::notify::template_locale(locale);
    let scale = 10i64.pow(exponent);
    let whole = format_points(locale, minor / scale);
    let whole = if minor < 0 && minor / scale == 0 {
        format!("-{whole}")
    } else {
        whole
    };
    let frac = (minor % scale).unsigned_abs();
    let dec = if locale == "en" { "." } else { "," };
    let number = if exponent == 0 {
        whole
    } else {
        format!("{whole}{dec}{frac:0width$}", width = exponent as usize)
    };
    let symbol = match currency {
        "EUR" => "€",
        "GBP" => "£",
        "USD" => "$",
        "SEK" => "kr",
        other => other,
    };
    match (locale, symbol.len() <= 3 && currency != "SEK") {
        ("en", true) => format!("{symbol}{number}"),
        ("nl", true) => format!("{symbol}\u{a0}{number}"),
        _ => format!("{number}\u{a0}{symbol}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_session_cookie_round_trips_and_refuses_any_change_or_expiry() {
        let r = SeededRandom::new(7);
        let s = SessionRef::new(&r, "velo", "M-1001", now());
        let c = s.to_cookie(b"k1");
        assert_eq!(SessionRef::from_cookie(b"k1", &c, now()), Some(s.clone()));
        assert_eq!(SessionRef::from_cookie(b"k2", &c, now()), None);
        let later = now() + Duration::days(SESSION_DAYS);
        assert_eq!(SessionRef::from_cookie(b"k1", &c, later), None);
        // Another member's id in the payload, with the old signature.
        let (_, sig) = c.split_once('.').unwrap();
        let forged = B64URL.encode(format!(
            "velo\nM-1002\n{}\n{}",
            s.session_id,
            s.expires_at.timestamp()
        ));
        assert_eq!(
            SessionRef::from_cookie(b"k1", &format!("{forged}.{sig}"), now()),
            None
        );
    }

    proptest! {
        #[test]
        fn no_altered_cookie_is_accepted(pos in 0usize..200, byte in any::<u8>()) {
            let r = SeededRandom::new(1);
            let s = SessionRef::new(&r, "bonvito", "B-2001", now());
            let c = s.to_cookie(b"key");
            let mut bytes = c.clone().into_bytes();
            let i = pos % bytes.len();
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let altered = String::from_utf8_lossy(&bytes).to_string();
            prop_assert_eq!(SessionRef::from_cookie(b"key", &altered, now()), None);
        }

        #[test]
        fn points_keep_their_digits_in_every_locale(n in any::<i64>()) {
            for l in SITE_LOCALES {
                let text = format_points(l, n);
                let digits: String = text.chars().filter(|c| c.is_ascii_digit() || *c == '-').collect();
                prop_assert_eq!(digits, n.to_string());
            }
        }
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let r = SeededRandom::new(3);
        let a = SessionRef::new(&r, "velo", "M-1", now());
        let b = SessionRef::new(&r, "velo", "M-1", now());
        assert_ne!(a.csrf_token(b"k"), b.csrf_token(b"k"));
        assert!(tokens_match(&a.csrf_token(b"k"), &a.csrf_token(b"k")));
        assert!(!tokens_match(&a.csrf_token(b"k"), ""));
        assert!(!tokens_match("", ""));
        assert_ne!(prelogin_csrf(b"k", "x"), prelogin_csrf(b"k", "y"));
    }

    #[test]
    fn member_tokens_need_the_secret_and_a_short_future_expiry() {
        let t = MemberToken {
            partner_id: "velo-shop".into(),
            member_id: "M-1001".into(),
            expires: now().timestamp() + 300,
        };
        let secret = b"0123456789abcdef".to_vec();
        let sig = t.sign(&secret);
        assert_eq!(
            t.verify(&[b"old".to_vec(), secret.clone()], &sig, now()),
            Ok(())
        );
        assert_eq!(
            t.verify(&[b"other".to_vec()], &sig, now()),
            Err(TokenError::BadSignature)
        );
        let other = MemberToken {
            member_id: "M-1002".into(),
            ..t.clone()
        };
        assert_eq!(
            other.verify(std::slice::from_ref(&secret), &sig, now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            t.verify(
                std::slice::from_ref(&secret),
                &sig,
                now() + Duration::seconds(300)
            ),
            Err(TokenError::Expired)
        );
        let long = MemberToken {
            expires: now().timestamp() + 3600,
            ..t.clone()
        };
        let long_sig = long.sign(&secret);
        assert_eq!(
            long.verify(&[secret], &long_sig, now()),
            Err(TokenError::TooLong)
        );
    }

    #[test]
    fn codes_phones_and_figures() {
        let r = SeededRandom::new(9);
        for _ in 0..100 {
            let c = six_digit_code(&r);
            assert_eq!(normalize_code(&c), Some(c.clone()));
        }
        assert_eq!(normalize_code("123 456"), Some("123456".into()));
        assert_eq!(normalize_code("12345"), None);
        assert_eq!(normalize_code("12345a"), None);
        assert_eq!(
            normalize_phone("+49 151 123-456 78"),
            Some("+4915112345678".into())
        );
        assert_eq!(normalize_phone("015112345678"), None);
        assert_eq!(
            phone_hash(b"k", "+49 15112345678"),
            phone_hash(b"k", "+4915112345678")
        );
        assert_eq!(format_points("en", 1234567), "1,234,567");
        assert_eq!(format_points("de", 1234), "1.234");
        assert_eq!(format_points("sv", 1234), "1\u{a0}234");
        assert_eq!(format_points("fi", -999), "-999");
        assert_eq!(format_money("en", 123450, "EUR", 2), "€1,234.50");
        assert_eq!(format_money("de", 123450, "EUR", 2), "1.234,50\u{a0}€");
        assert_eq!(format_money("nl", 5, "EUR", 2), "€\u{a0}0,05");
        assert_eq!(format_money("fi", -150, "EUR", 2), "-1,50\u{a0}€");
        assert_eq!(format_money("sv", 1000, "SEK", 2), "10,00\u{a0}kr");
    }

    #[test]
    fn throttle_buckets_hide_the_address_and_turn_over_hourly() {
        let a = address_bucket(b"k", "email", "anna@example.com", now());
        assert!(!a.contains("anna"));
        assert_eq!(a, address_bucket(b"k", "email", "anna@example.com", now()));
        assert_ne!(
            a,
            address_bucket(
                b"k",
                "email",
                "anna@example.com",
                now() + Duration::hours(1)
            )
        );
    }
}
