//! Money: integer minor units plus an ISO-4217 currency. Never floating point.
//!
//! Webhook prices arrive as decimal strings ("49.95"); [`Money::parse`] turns them into minor
//! units exactly, and refuses anything it cannot represent exactly (too many decimals for the
//! currency, exponent notation, values out of range).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Points are plain integers. One point is worth `point_value_minor` minor units of the
/// programme currency (1 cent by default).
pub type Points = i64;

/// The largest amount we accept in one field: 10^13 minor units (100 billion EUR). This keeps
/// every product of amount, quantity and rate far inside `Decimal` and `i64`.
pub const MAX_MINOR: i64 = 10_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not an ISO-4217 currency with minor units")]
    UnknownCurrency(String),
    #[error("'{0}' is not a decimal amount (use a string such as \"49.95\")")]
    NotADecimal(String),
    #[error("'{amount}' has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        amount: String,
        currency: &'static str,
        exponent: u32,
    },
    #[error("'{0}' is out of range")]
    OutOfRange(String),
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(&'static str, &'static str),
}

/// An ISO-4217 currency that has minor units (EUR, SEK, JPY, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let c = iso_currency::Currency::from_code(code.trim())
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))?;
        // Funds and metals (XAU, XDR, ...) have no minor unit: they are not shop currencies.
        c.exponent()
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))?;
        Ok(Currency(c))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Number of decimals of the minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units plus a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Parse a decimal string exactly into minor units. "49.95" EUR is 4995; "49.9" is 4990;
    /// "49.955" EUR is refused, but "49.950" is fine (trailing zeros carry no value).
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        let well_formed = !trimmed.is_empty()
            && trimmed
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'));
        if !well_formed {
            return Err(MoneyError::NotADecimal(text.to_string()));
        }
        let d = Decimal::from_str_exact(trimmed)
            .map_err(|_| MoneyError::NotADecimal(text.to_string()))?;
        Money::from_decimal(d, currency).map_err(|e| match e {
            MoneyError::TooManyDecimals {
                currency, exponent, ..
            } => MoneyError::TooManyDecimals {
                amount: text.to_string(),
                currency,
                exponent,
            },
            MoneyError::OutOfRange(_) => MoneyError::OutOfRange(text.to_string()),
            other => other,
        })
    }

    /// Convert an exact decimal amount in major units into minor units, refusing any
    /// fraction of a minor unit.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let scaled = amount
            .checked_mul(Decimal::from(10i64.pow(exponent)))
            .ok_or_else(|| MoneyError::OutOfRange(amount.to_string()))?
            .normalize();
        if scaled.scale() != 0 {
            return Err(MoneyError::TooManyDecimals {
                amount: amount.to_string(),
                currency: currency.code(),
                exponent,
            });
        }
        let minor: i64 = scaled
            .try_into()
            .map_err(|_| MoneyError::OutOfRange(amount.to_string()))?;
        if minor.abs() > MAX_MINOR {
            return Err(MoneyError::OutOfRange(amount.to_string()));
        }
        Ok(Money { minor, currency })
    }

    /// The amount in major units, exactly.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money {
                minor,
                currency: self.currency,
            })
            .ok_or_else(|| MoneyError::OutOfRange(format!("{} + {}", self, other)))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money {
                minor,
                currency: self.currency,
            })
            .ok_or_else(|| MoneyError::OutOfRange(format!("{} - {}", self, other)))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(factor)
            .map(|minor| Money {
                minor,
                currency: self.currency,
            })
            .ok_or_else(|| MoneyError::OutOfRange(format!("{} x {}", self, factor)))
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(
                self.currency.code(),
                other.currency.code(),
            ))
        }
    }

    /// The plain decimal text, "49.95", as it appears in JSON responses.
    pub fn amount_string(&self) -> String {
        self.to_decimal().to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

/// JSON shape for money in API responses: `{"amount": "49.95", "currency": "EUR", "minor": 4995}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyJson {
    pub amount: String,
    pub currency: String,
    pub minor: i64,
}

impl From<Money> for MoneyJson {
    fn from(m: Money) -> Self {
        MoneyJson {
            amount: m.amount_string(),
            currency: m.currency.code().to_string(),
            minor: m.minor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(Money::parse("49.95", eur()).unwrap().minor, 4995);
        assert_eq!(Money::parse("49.9", eur()).unwrap().minor, 4990);
        assert_eq!(Money::parse("49", eur()).unwrap().minor, 4900);
        assert_eq!(Money::parse("49.950", eur()).unwrap().minor, 4995);
        assert_eq!(Money::parse("0.01", eur()).unwrap().minor, 1);
        assert_eq!(Money::parse("-5.10", eur()).unwrap().minor, -510);
        // 0.1 + 0.2 style traps do not exist here.
        assert_eq!(
            Money::parse("0.10", eur()).unwrap().minor + Money::parse("0.20", eur()).unwrap().minor,
            30
        );
    }

    #[test]
    fn refuses_what_it_cannot_represent() {
        assert!(matches!(
            Money::parse("49.955", eur()),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse("1e3", eur()),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("", eur()),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("12,50", eur()),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("+1", eur()),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("1.2.3", eur()),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("NaN", eur()),
            Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("999999999999999999999999", eur()),
            Err(MoneyError::OutOfRange(_)) | Err(MoneyError::NotADecimal(_))
        ));
        assert!(matches!(
            Money::parse("100000000001", eur()),
            Err(MoneyError::OutOfRange(_))
        ));
    }

    #[test]
    fn currencies_know_their_minor_units() {
        for code in [
            "EUR", "SEK", "NOK", "DKK", "RON", "PLN", "CHF", "GBP", "USD",
        ] {
            assert_eq!(Currency::parse(code).unwrap().exponent(), 2, "{code}");
        }
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.exponent(), 0);
        assert_eq!(Money::parse("1500", jpy).unwrap().minor, 1500);
        assert!(Money::parse("1500.5", jpy).is_err());
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert!(Currency::parse("XAU").is_err());
        assert!(Currency::parse("EURO").is_err());
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let a = Money::new(100, eur());
        let b = Money::new(100, Currency::parse("SEK").unwrap());
        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch("EUR", "SEK"))
        ));
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_round_trips(minor in -MAX_MINOR..=MAX_MINOR) {
            let m = Money::new(minor, eur());
            prop_assert_eq!(Money::parse(&m.amount_string(), eur()).unwrap(), m);
        }

        #[test]
        fn parse_of_whole_and_cents_is_exact(whole in 0i64..1_000_000_000, cents in 0i64..100) {
            let text = format!("{whole}.{cents:02}");
            prop_assert_eq!(Money::parse(&text, eur()).unwrap().minor, whole * 100 + cents);
        }
    }
}
