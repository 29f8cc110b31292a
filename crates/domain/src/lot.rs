//! A lot is one accrual: the points of one order at one partner. It is pending until
//! `available_at` (the return window), then spendable, and its remaining points expire at the
//! end of the day `expires_on` in the programme's time zone.
//!
//! Dates:
//! - `available_at = earned_at + release_days` (exact instant, default 14 days);
//! - `expires_on = local date of earned_at + expiry_months` (calendar months, default 12; a
//!   31 January lot's last day is the last day of the target month), and the points are gone
//!   from the start of the next local day (`expires_at`).

use chrono::{DateTime, Duration, LocalResult, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::money::Points;
use crate::programme::Programme;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub lot_id: String,
    pub programme_id: String,
    pub member_id: String,
    /// The issuing partner (who pays for these points in a coalition).
    pub partner_id: String,
    pub order_id: String,
    pub points: Points,
    /// Points not spent, reversed or expired, and not reserved by a hold.
    pub remaining: Points,
    /// Points reserved by open holds (still the member's until captured).
    #[serde(default)]
    pub held: Points,
    pub earned_at: DateTime<Utc>,
    pub available_at: DateTime<Utc>,
    /// Last local date on which the points can be spent.
    pub expires_on: NaiveDate,
    /// The instant the points expire (start of the day after `expires_on`, programme time).
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotStatus {
    Pending,
    Available,
    Expired,
}

/// The dates of a lot earned at `earned_at` under a programme's settings.
pub fn lot_dates(
    programme: &Programme,
    earned_at: DateTime<Utc>,
) -> (DateTime<Utc>, NaiveDate, DateTime<Utc>) {
    let available_at = earned_at + Duration::days(i64::from(programme.release_days));
    let tz = programme.time_zone;
    let local_date = earned_at.with_timezone(&tz).date_naive();
    let expires_on = local_date
        .checked_add_months(Months::new(programme.expiry_months))
        .unwrap_or(NaiveDate::MAX);
    let expires_at = start_of_day(tz, expires_on.succ_opt().unwrap_or(NaiveDate::MAX));
    (available_at, expires_on, expires_at)
}

/// Midnight at the start of `date` in `tz`, as UTC. Where a DST change skips midnight the
/// first instant of the day is used.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // Midnight does not exist that day (DST gap): the day starts an hour later.
            let one = midnight + Duration::hours(1);
            tz.from_local_datetime(&one)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
        }
    }
}

impl Lot {
    /// The lot for an accrual. Its id is derived from the partner and order, so the same
    /// order can never make a second lot.
    pub fn new(
        programme: &Programme,
        member_id: &str,
        partner_id: &str,
        order_id: &str,
        points: Points,
        earned_at: DateTime<Utc>,
    ) -> Lot {
        let (available_at, expires_on, expires_at) = lot_dates(programme, earned_at);
        Lot {
            lot_id: format!("{partner_id}:{order_id}"),
            programme_id: programme.id.clone(),
            member_id: member_id.to_string(),
            partner_id: partner_id.to_string(),
            order_id: order_id.to_string(),
            points,
            remaining: points,
            held: 0,
            earned_at,
            available_at,
            expires_on,
            expires_at,
        }
    }

    pub fn status(&self, now: DateTime<Utc>) -> LotStatus {
        if now >= self.expires_at {
            LotStatus::Expired
        } else if now >= self.available_at {
            LotStatus::Available
        } else {
            LotStatus::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::programme::ProgrammeKind;

    fn programme(tz: Tz) -> Programme {
        let mut p = Programme::with_defaults(
            "p",
            "P",
            ProgrammeKind::Closed,
            Currency::parse("EUR").unwrap(),
        );
        p.time_zone = tz;
        p
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn pending_for_fourteen_days_then_available_until_twelve_months() {
        let p = programme(chrono_tz::Europe::Amsterdam);
        let lot = Lot::new(&p, "m", "shop", "A-1", 99, at("2026-01-10T15:30:00Z"));
        assert_eq!(lot.available_at, at("2026-01-24T15:30:00Z"));
        assert_eq!(
            lot.expires_on,
            NaiveDate::from_ymd_opt(2027, 1, 10).unwrap()
        );
        // Midnight Amsterdam (UTC+1 in winter).
        assert_eq!(lot.expires_at, at("2027-01-10T23:00:00Z"));
        assert_eq!(lot.status(at("2026-01-24T15:29:59Z")), LotStatus::Pending);
        assert_eq!(lot.status(at("2026-01-24T15:30:00Z")), LotStatus::Available);
        assert_eq!(lot.status(at("2027-01-10T22:59:59Z")), LotStatus::Available);
        assert_eq!(lot.status(at("2027-01-10T23:00:00Z")), LotStatus::Expired);
    }

    #[test]
    fn the_local_date_decides_the_expiry_day() {
        // 23:30 UTC on 9 January is already 10 January in Amsterdam.
        let p = programme(chrono_tz::Europe::Amsterdam);
        let lot = Lot::new(&p, "m", "shop", "A-1", 1, at("2026-01-09T23:30:00Z"));
        assert_eq!(
            lot.expires_on,
            NaiveDate::from_ymd_opt(2027, 1, 10).unwrap()
        );
    }

    #[test]
    fn month_ends_clamp() {
        let p = programme(chrono_tz::UTC);
        let lot = Lot::new(&p, "m", "shop", "A-1", 1, at("2027-01-31T12:00:00Z"));
        let mut one_month = p.clone();
        one_month.expiry_months = 1;
        let short = Lot::new(
            &one_month,
            "m",
            "shop",
            "A-1",
            1,
            at("2027-01-31T12:00:00Z"),
        );
        assert_eq!(
            lot.expires_on,
            NaiveDate::from_ymd_opt(2028, 1, 31).unwrap()
        );
        assert_eq!(
            short.expires_on,
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        );
    }
}
