//! A calendar month, the unit of tier volume, clearing and statements. Written `YYYY-MM`
//! in keys, config and commands; months of an instant are taken in a time zone (the
//! programme's), never silently in UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    /// 1 to 12.
    month: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a month: use YYYY-MM, e.g. 2026-11")]
pub struct MonthError(pub String);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=12).contains(&month) && (0..=9999).contains(&year)).then_some(Month { year, month })
    }

    /// The month of a date.
    pub fn of_date(date: NaiveDate) -> Self {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The month an instant falls in, in a time zone.
    pub fn of(at: DateTime<Utc>, tz: Tz) -> Self {
        Self::of_date(at.with_timezone(&tz).date_naive())
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// `n` months earlier.
    pub fn back(self, n: u32) -> Self {
        self.plus(-i64::from(n))
    }

    pub fn previous(self) -> Self {
        self.plus(-1)
    }

    pub fn next(self) -> Self {
        self.plus(1)
    }

    fn plus(self, n: i64) -> Self {
        let total = i64::from(self.year) * 12 + i64::from(self.month) - 1 + n;
        Month {
            year: total.div_euclid(12) as i32,
            month: (total.rem_euclid(12) + 1) as u32,
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The first instant of the month in a time zone, and the first instant of the next.
    pub fn bounds(self, tz: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = |d: NaiveDate| {
            tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        };
        Some((start(self.first_day())?, start(self.next().first_day())?))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = MonthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MonthError(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        Month::new(y.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?).ok_or_else(err)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(s: &str) -> Month {
        s.parse().unwrap()
    }

    #[test]
    fn months_parse_and_print_as_yyyy_mm() {
        assert_eq!(m("2026-11").to_string(), "2026-11");
        assert_eq!((m("2026-01").year(), m("2026-01").month()), (2026, 1));
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-1a",
            "",
            "2026-11-01",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&m("2026-02")).unwrap();
        assert_eq!(json, "\"2026-02\"");
        assert_eq!(serde_json::from_str::<Month>(&json).unwrap(), m("2026-02"));
        assert!(serde_json::from_str::<Month>("\"2026-2\"").is_err());
    }

    #[test]
    fn months_step_over_years() {
        assert_eq!(m("2026-01").previous(), m("2025-12"));
        assert_eq!(m("2025-12").next(), m("2026-01"));
        assert_eq!(m("2026-11").back(11), m("2025-12"));
        assert_eq!(m("2026-11").back(23), m("2024-12"));
        assert_eq!(
            m("2026-03").first_day(),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
    }

    #[test]
    fn the_month_of_an_instant_is_taken_in_the_time_zone() {
        let ams: Tz = "Europe/Amsterdam".parse().unwrap();
        let at: DateTime<Utc> = "2026-11-30T23:30:00Z".parse().unwrap();
        assert_eq!(Month::of(at, chrono_tz::UTC), m("2026-11"));
        assert_eq!(Month::of(at, ams), m("2026-12"));
        let (start, end) = m("2026-11").bounds(ams).unwrap();
        assert_eq!(
            start,
            "2026-10-31T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            end,
            "2026-11-30T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    proptest! {
        #[test]
        fn back_and_next_undo_each_other(y in 1900i32..2500, mo in 1u32..=12, n in 0u32..400) {
            let start = Month::new(y, mo).unwrap();
            let mut there = start.back(n);
            for _ in 0..n {
                there = there.next();
            }
            prop_assert_eq!(there, start);
            prop_assert_eq!(start.to_string().parse::<Month>().unwrap(), start);
        }
    }
}
