//! Messages to members, pure: which message an event becomes, which channels may carry it,
//! the variables each template gets, SMS encoding and length (GSM-7, 160 characters a
//! segment), and quiet hours for SMS. The templates themselves are rendered by the
//! `bonus-messages` crate.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::events::{DomainEvent, EventKind};
use crate::member::MemberProfile;

/// Locales with templates; any other falls back to English.
pub const LOCALES: [&str; 5] = ["en", "de", "nl", "sv", "fi"];

/// Message kinds, one template file each per locale.
pub const MESSAGES: [&str; 11] = [
    "points_earned",
    "points_earned_digest",
    "points_available",
    "points_expiring",
    "points_expired",
    "tier_changed",
    "points_redeemed",
    "monthly_statement",
    "points_sent",
    "points_received",
    "offer",
];

/// The template locale for a member's locale: `nl-BE` -> `nl`; unknown -> `en`.
pub fn template_locale(locale: &str) -> &'static str {
    let lang = locale
        .split(['-', '_'])
        .next()
        .unwrap_or("en")
        .to_lowercase();
    LOCALES.into_iter().find(|l| *l == lang).unwrap_or("en")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub locale: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
}

const MONTHS: [(&str, [&str; 12]); 5] = [
    (
        "en",
        [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
    ),
    (
        "de",
        [
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ],
    ),
    (
        "nl",
        [
            "januari",
            "februari",
            "maart",
            "april",
            "mei",
            "juni",
            "juli",
            "augustus",
            "september",
            "oktober",
            "november",
            "december",
        ],
    ),
    (
        "sv",
        [
            "januari",
            "februari",
            "mars",
            "april",
            "maj",
            "juni",
            "juli",
            "augusti",
            "september",
            "oktober",
            "november",
            "december",
        ],
    ),
    (
        "fi",
        [
            "tammikuuta",
            "helmikuuta",
            "maaliskuuta",
            "huhtikuuta",
            "toukokuuta",
            "kesäkuuta",
            "heinäkuuta",
            "elokuuta",
            "syyskuuta",
            "lokakuuta",
            "marraskuuta",
            "joulukuuta",
        ],
    ),
];

/// A date as people write it in the locale: "7 december 2026", "7. Dezember 2026", ...
pub fn format_date(locale: &str, date: NaiveDate) -> String {
    let locale = template_locale(locale);
    let months = MONTHS
        .iter()
        .find(|(l, _)| *l == locale)
        .map_or(MONTHS[0].1, |(_, m)| *m);
    let month = months[date.month0() as usize];
    match locale {
        "en" => format!("{month} {}, {}", date.day(), date.year()),
        "de" | "fi" => format!("{}. {month} {}", date.day(), date.year()),
        _ => format!("{} {month} {}", date.day(), date.year()),
    }
}

/// A month as people write it in the locale: "November 2026", "november 2026",
/// "marraskuu 2026" (Finnish takes the nominative here, the partitive in dates).
pub fn format_month(locale: &str, year: i32, month: u32) -> String {
    let locale = template_locale(locale);
    let months = MONTHS
        .iter()
        .find(|(l, _)| *l == locale)
        .map_or(MONTHS[0].1, |(_, m)| *m);
    let name = months[(month.clamp(1, 12) - 1) as usize];
    let name = if locale == "fi" {
        name.strip_suffix("ta").unwrap_or(name)
    } else {
        name
    };
    format!("{name} {year}")
}

/// A member's month in points, for the monthly statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonthTotals {
    /// Earned, net of points taken back by returns.
    pub earned: i64,
    pub spent: i64,
    pub expired: i64,
}

/// Sum the statement entries of `[from, to)`.
pub fn month_totals(
    entries: &[crate::events::LedgerEntry],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> MonthTotals {
    use crate::events::EntryKind;
    let mut t = MonthTotals::default();
    for e in entries.iter().filter(|e| e.at >= from && e.at < to) {
        match e.kind {
            EntryKind::Earn | EntryKind::Reversal | EntryKind::Debt => t.earned += e.points,
            // A returned claim's points take back what was spent.
            EntryKind::Redeem
            | EntryKind::TransferOut
            | EntryKind::TransferFee
            | EntryKind::ClaimReturn => t.spent -= e.points,
            EntryKind::TransferIn | EntryKind::Merge => t.earned += e.points,
            EntryKind::Adjustment if e.points > 0 => t.earned += e.points,
            EntryKind::Adjustment => t.spent -= e.points,
            EntryKind::Expire => t.expired -= e.points,
        }
    }
    t
}

/// The message an event becomes, if members hear about it.
pub fn message_for(event: &DomainEvent) -> Option<&'static str> {
    match &event.kind {
        EventKind::PointsEarned { .. } => Some("points_earned"),
        EventKind::PointsAvailable { .. } => Some("points_available"),
        EventKind::ExpiryWarning { .. } => Some("points_expiring"),
        EventKind::PointsExpired { .. } => Some("points_expired"),
        EventKind::TierChanged { .. } => Some("tier_changed"),
        EventKind::PointsRedeemed { .. } => Some("points_redeemed"),
        EventKind::PointsReversed { .. } => None,
        EventKind::PointsSent { .. } => Some("points_sent"),
        EventKind::PointsReceived { .. } => Some("points_received"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// The channels a member may be reached on now: consented, with an address or number that
/// has not failed for good, within their channel preference. Nothing for an erased member.
pub fn channels(profile: &MemberProfile) -> Vec<Channel> {
    if profile.erased_at.is_some() {
        return Vec::new();
    }
    let preferred = profile.preferences.channel.as_deref();
    let mut out = Vec::new();
    if profile.consents.email
        && profile.email.is_some()
        && profile.email_undeliverable.is_none()
        && matches!(preferred, None | Some("email"))
    {
        out.push(Channel::Email);
    }
    if profile.consents.sms
        && profile.phone.is_some()
        && profile.sms_undeliverable.is_none()
        && matches!(preferred, None | Some("sms"))
    {
        out.push(Channel::Sms);
    }
    out
}

/// Quiet hours for SMS, in the member's local time: [start, end) wraps midnight.
pub const QUIET_HOURS: (u32, u32) = (21, 8);

/// When an SMS may go: now, or the end of the quiet hours in the member's time zone.
pub fn sms_send_at(now: DateTime<Utc>, tz: Tz, quiet: (u32, u32)) -> DateTime<Utc> {
    let local = now.with_timezone(&tz);
    let hour = local.hour();
    let (start, end) = quiet;
    let quiet_now = if start > end {
        hour >= start || hour < end
    } else {
        hour >= start && hour < end
    };
    if !quiet_now {
        return now;
    }
    let day = if hour >= start && start > end {
        local.date_naive() + Duration::days(1)
    } else {
        local.date_naive()
    };
    let wake = day.and_hms_opt(end, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&wake)
        .earliest()
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// When the daily digest that an event processed at `after` joins goes out: the next
/// `hour`:00 in the member's time zone strictly after `after` (a DST gap moves it to the
/// first valid local time after).
pub fn next_digest_slot(after: DateTime<Utc>, tz: Tz, hour: u32) -> DateTime<Utc> {
    let local = after.with_timezone(&tz);
    let mut day = local.date_naive();
    for _ in 0..3 {
        let at = day
            .and_hms_opt(hour.min(23), 0, 0)
            .and_then(|t| {
                tz.from_local_datetime(&t)
                    .earliest()
                    .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
            })
            .map(|t| t.with_timezone(&Utc));
        if let Some(at) = at.filter(|at| *at > after) {
            return at;
        }
        day += Duration::days(1);
    }
    after + Duration::days(1)
}

/// GSM 03.38 basic character set (plus the extension table, which costs two septets).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sms {
    pub text: String,
    pub encoding: SmsEncoding,
    /// Segments it is sent in: 1 up to 160 GSM-7 septets (70 UCS-2 characters), then
    /// 153 (67) per segment of a concatenated message.
    pub segments: u32,
}

/// Letters outside GSM-7 that have a close GSM-7 spelling (Dutch, German, Nordic, ...).
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ë' | 'ê' => "e",
        'ï' | 'î' | 'í' => "i",
        'á' | 'â' | 'ã' => "a",
        'ó' | 'ô' | 'õ' => "o",
        'ú' | 'û' => "u",
        'ç' => "c",
        'Ë' | 'Ê' | 'È' => "E",
        'Á' | 'À' | 'Â' => "A",
        'Ó' | 'Ô' => "O",
        'Ú' | 'Û' => "U",
        'Í' | 'Ï' => "I",
        '’' | '‘' => "'",
        '“' | '”' | '„' => "\"",
        '–' | '—' => "-",
        '…' => "...",
        '\u{a0}' => " ",
        _ => return None,
    })
}

/// Prepare an SMS: transliterate what has a GSM-7 spelling; if anything else is left it goes
/// as UCS-2. The number of segments is counted, so a long text is split knowingly.
pub fn sms(text: &str) -> Sms {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match transliterate(c) {
            Some(t) if !GSM7_BASIC.contains(c) => out.push_str(t),
            _ => out.push(c),
        }
    }
    let gsm = out
        .chars()
        .all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENDED.contains(c));
    let (units, single, multi, encoding) = if gsm {
        let septets: usize = out
            .chars()
            .map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 })
            .sum();
        (septets, 160, 153, SmsEncoding::Gsm7)
    } else {
        let units: usize = out.chars().map(char::len_utf16).sum();
        (units, 70, 67, SmsEncoding::Ucs2)
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    Sms {
        text: out,
        encoding,
        segments: u32::try_from(segments).unwrap_or(u32::MAX),
    }
}

/// Sample variables for each message in a locale (previews, and the test that every
/// template renders).
pub fn sample(message: &str, locale: &str) -> serde_json::Value {
    let date = |y, m, d| {
        NaiveDate::from_ymd_opt(y, m, d).map_or(String::new(), |d| format_date(locale, d))
    };
    let common = serde_json::json!({
        "programme_name": "Veloprobeg Club",
        "unsubscribe_url": "https://example.com/unsubscribe/M-1001",
        "points": 99,
        "balance": 1250,
    });
    let extra = match message {
        "points_earned" => {
            serde_json::json!({"order_id": "A-1001", "partner_name": "Veloprobeg webshop", "available_on": date(2026, 12, 7)})
        }
        "points_earned_digest" => {
            serde_json::json!({"orders": 3, "available_on": date(2026, 12, 7)})
        }
        "points_expiring" => serde_json::json!({"expires_on": date(2027, 1, 10), "days": 30}),
        "points_expired" => serde_json::json!({"expires_on": date(2027, 1, 10)}),
        "tier_changed" => serde_json::json!({"tier": "Gold", "previous_tier": "Silver"}),
        "points_redeemed" => {
            serde_json::json!({"partner_name": "Café Mokka", "voucher_code": "ABCD-EFGH-JKLM-NPQR"})
        }
        "points_sent" => serde_json::json!({"other": "Anna B.", "fee": 2}),
        "points_received" => serde_json::json!({"other": "M-•••01"}),
        "offer" => {
            serde_json::json!({"title": "Double points on helmets", "text": "This weekend, every helmet earns double points.",
            "partner_name": "Veloprobeg webshop", "valid_until": date(2026, 12, 7)})
        }
        "monthly_statement" => {
            serde_json::json!({"month": "November 2026", "earned": 340, "spent": 120, "expired": 0, "available": 1250, "expiring_soon": 40})
        }
        _ => serde_json::json!({}),
    };
    let mut vars = common;
    if let (Some(v), Some(e)) = (vars.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_sums_its_own_entries_only() {
        use crate::events::{EntryKind, LedgerEntry};
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let e = |at: &str, kind, points| LedgerEntry {
            seq: 0,
            at: t(at),
            kind,
            points,
            reason: String::new(),
            partner_id: None,
            order_id: None,
            lot_id: None,
            event_id: String::new(),
            counterparty: None,
            issuers: Default::default(),
        };
        let entries = [
            e("2026-09-30T21:59:59Z", EntryKind::Earn, 1000), // Sept in Amsterdam
            e("2026-09-30T22:00:00Z", EntryKind::Earn, 300),  // 1 Oct 00:00 local
            e("2026-10-05T10:00:00Z", EntryKind::Reversal, -100),
            e("2026-10-06T10:00:00Z", EntryKind::Redeem, -150),
            e("2026-10-31T22:59:59Z", EntryKind::Expire, -20), // 31 Oct 23:59:59 local
            e("2026-10-31T23:00:00Z", EntryKind::Earn, 500),   // November
        ];
        assert_eq!(
            month_totals(
                &entries,
                t("2026-09-30T22:00:00Z"),
                t("2026-10-31T23:00:00Z")
            ),
            MonthTotals {
                earned: 200,
                spent: 150,
                expired: 20
            }
        );
    }

    #[test]
    fn months_read_naturally() {
        assert_eq!(format_month("nl", 2026, 10), "oktober 2026");
        assert_eq!(format_month("fi", 2026, 11), "marraskuu 2026");
        assert_eq!(format_month("de-AT", 2026, 3), "März 2026");
        assert_eq!(format_month("pt", 2026, 12), "December 2026");
    }

    #[test]
    fn the_daily_digest_goes_at_the_next_digest_hour_member_time() {
        let ams: Tz = "Europe/Amsterdam".parse().unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 10:00 local (09:00 UTC, winter) -> 18:00 local the same day.
        assert_eq!(
            next_digest_slot(t("2026-11-23T09:00:00Z"), ams, 18),
            t("2026-11-23T17:00:00Z")
        );
        // Exactly 18:00 local is the slot going out now: the next one is tomorrow.
        assert_eq!(
            next_digest_slot(t("2026-11-23T17:00:00Z"), ams, 18),
            t("2026-11-24T17:00:00Z")
        );
        // 23:30 local -> tomorrow 18:00.
        assert_eq!(
            next_digest_slot(t("2026-11-23T22:30:00Z"), ams, 18),
            t("2026-11-24T17:00:00Z")
        );
        // Summer time: 18:00 CEST is 16:00 UTC.
        assert_eq!(
            next_digest_slot(t("2026-07-01T08:00:00Z"), ams, 18),
            t("2026-07-01T16:00:00Z")
        );
        // 02:00 does not exist on the spring-forward day: 03:00 local instead.
        assert_eq!(
            next_digest_slot(t("2026-03-28T23:00:00Z"), ams, 2),
            t("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn dates_read_as_in_the_locale() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(format_date("nl", d), "7 december 2026");
        assert_eq!(format_date("de", d), "7. Dezember 2026");
        assert_eq!(format_date("en", d), "December 7, 2026");
        assert_eq!(format_date("fi", d), "7. joulukuuta 2026");
    }

    #[test]
    fn sms_length_and_encoding() {
        let short = sms("Velo: 99 punten, beschikbaar vanaf 7 december.");
        assert_eq!((short.encoding, short.segments), (SmsEncoding::Gsm7, 1));
        // ë has a GSM-7 spelling; € costs two septets.
        let s = sms("Ik heb geëerd: 10 €");
        assert_eq!(
            (s.text.as_str(), s.encoding),
            ("Ik heb geeerd: 10 €", SmsEncoding::Gsm7)
        );
        assert_eq!(sms(&"a".repeat(160)).segments, 1);
        assert_eq!(sms(&"a".repeat(161)).segments, 2);
        assert_eq!(sms(&"€".repeat(80)).segments, 1);
        assert_eq!(sms(&"€".repeat(81)).segments, 2);
        // Nothing GSM-7 can spell: UCS-2, 70 a segment.
        let cyr = sms(&"Ж".repeat(71));
        assert_eq!((cyr.encoding, cyr.segments), (SmsEncoding::Ucs2, 2));
    }

    #[test]
    fn quiet_hours_delay_sms_to_eight_in_the_morning_member_time() {
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 23:00 in Amsterdam (winter, UTC+1) -> 08:00 the next morning.
        assert_eq!(
            sms_send_at(at("2026-11-23T22:00:00Z"), tz, QUIET_HOURS),
            at("2026-11-24T07:00:00Z")
        );
        // 03:00 -> 08:00 the same morning.
        assert_eq!(
            sms_send_at(at("2026-11-24T02:00:00Z"), tz, QUIET_HOURS),
            at("2026-11-24T07:00:00Z")
        );
        // 12:00 -> now.
        assert_eq!(
            sms_send_at(at("2026-11-24T11:00:00Z"), tz, QUIET_HOURS),
            at("2026-11-24T11:00:00Z")
        );
    }

    #[test]
    fn channels_follow_consent_preference_and_erasure() {
        let mut p = MemberProfile {
            email: Some("a@example.com".into()),
            phone: Some("+31612345678".into()),
            ..Default::default()
        };
        assert!(channels(&p).is_empty(), "no consent, no message");
        p.consents.email = true;
        p.consents.sms = true;
        assert_eq!(channels(&p), vec![Channel::Email, Channel::Sms]);
        p.preferences.channel = Some("email".into());
        assert_eq!(channels(&p), vec![Channel::Email]);
        p.preferences.channel = Some("none".into());
        assert!(channels(&p).is_empty());
        p.preferences.channel = None;
        p.erased_at = Some(Utc::now());
        assert!(channels(&p).is_empty());
    }
}
