//! The LEVELONE_FUTURES_OPTIONS key: `.` + `/` + root + month code + 2-digit year + `C`/`P` +
//! strike, e.g. `./OZCZ23C565` = root `/OZC`, December 2023, call, strike 565.
//!
//! Read from the end, since the root's length varies (1 to 4 upper-case letters or digits):
//! the strike is the trailing digits (with at most one decimal point, `4.25`), then `C` or `P`,
//! then the 2-digit year, then the month code; what is left after `./` is the root. The
//! service fills `futures_option_data`'s `root`, `contract_month`, `contract_type` and
//! `strike` from it; `FUTURES_OPTION_SYMBOLS` is validated with it.

use std::fmt;

use chrono::NaiveDate;

use crate::futures_symbol::{is_root, month_code, month_from_code};
pub use crate::option_symbol::ContractType;

/// What a futures option key says.
#[derive(Debug, Clone, PartialEq)]
pub struct FuturesOptionContract {
    /// The option root with its slash, e.g. `/OZC`.
    pub root: String,
    /// The contract month, 1–12 (from the month code, `Z` → 12).
    pub month: u32,
    /// 2000 + the 2-digit year.
    pub year: i32,
    /// Call or put.
    pub contract_type: ContractType,
    /// The strike as written (`565` → 565.0, `4.25` → 4.25).
    pub strike: f64,
}

/// Why a string is not a futures option key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuturesOptionSymbolError {
    #[error("must start with ./, e.g. ./OZCZ23C565")]
    Prefix,
    #[error("contains characters other than ASCII letters, digits, '.' and '/'")]
    NotAscii,
    #[error("must end with a strike: digits, optionally with one decimal point, e.g. 565 or 4.25")]
    Strike,
    #[error("the character before the strike must be C or P")]
    ContractType,
    #[error("C or P must follow a 2-digit year")]
    Year,
    #[error("the year must follow a month code: F G H J K M N Q U V X Z")]
    Month,
    #[error("the root between ./ and the month code must be 1 to 4 upper-case letters or digits")]
    Root,
}

impl FuturesOptionContract {
    /// Parses and validates a futures option key (upper case, no spaces).
    pub fn parse(symbol: &str) -> Result<Self, FuturesOptionSymbolError> {
        use FuturesOptionSymbolError as E;
        let body = symbol.strip_prefix("./").ok_or(E::Prefix)?;
        if !body.is_ascii() {
            return Err(E::NotAscii);
        }
        let strike_len = body
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (rest, strike_text) = body.split_at(body.len() - strike_len);
        let strike = parse_strike(strike_text).ok_or(E::Strike)?;
        let (rest, kind) = split_last(rest).ok_or(E::ContractType)?;
        let contract_type = match kind {
            b'C' => ContractType::Call,
            b'P' => ContractType::Put,
            _ => return Err(E::ContractType),
        };
        let year_at = rest.len().checked_sub(2).ok_or(E::Year)?;
        let (rest, yy) = rest.split_at(year_at);
        if !yy.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::Year);
        }
        let year = 2000 + yy.parse::<i32>().map_err(|_| E::Year)?;
        let (root, code) = split_last(rest).ok_or(E::Month)?;
        let month = month_from_code(char::from(code)).ok_or(E::Month)?;
        if !is_root(root) {
            return Err(E::Root);
        }
        Ok(Self {
            root: format!("/{root}"),
            month,
            year,
            contract_type,
            strike,
        })
    }

    /// The first day of the contract month (e.g. 2023-12-01 for `./OZCZ23C565`).
    pub fn contract_month(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a parsed month is valid")
    }
}

/// `s` without its last byte, and that byte (ASCII input only).
fn split_last(s: &str) -> Option<(&str, u8)> {
    let last = *s.as_bytes().last()?;
    Some((&s[..s.len() - 1], last))
}

/// Digits with at most one decimal point between digits.
fn parse_strike(text: &str) -> Option<f64> {
    let mut parts = text.split('.');
    let whole = parts.next()?;
    let fraction = parts.next();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for FuturesOptionContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            ".{}{}{:02}{}{}",
            self.root,
            month_code(self.month).unwrap_or('?'),
            self.year - 2000,
            self.contract_type.as_char(),
            self.strike
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let c = FuturesOptionContract::parse("./OZCZ23C565").expect("valid");
        assert_eq!(c.root, "/OZC");
        assert_eq!((c.year, c.month), (2023, 12));
        assert_eq!(c.contract_type, ContractType::Call);
        assert_eq!(c.strike, 565.0);
        assert_eq!(
            c.contract_month(),
            NaiveDate::from_ymd_opt(2023, 12, 1).expect("date")
        );
        assert_eq!(c.to_string(), "./OZCZ23C565");
    }

    #[test]
    fn roots_of_every_length_puts_and_fractional_strikes() {
        let c = FuturesOptionContract::parse("./EH26P4.25").expect("valid");
        assert_eq!(
            (c.root.as_str(), c.year, c.month, c.contract_type, c.strike),
            ("/E", 2026, 3, ContractType::Put, 4.25)
        );
        assert_eq!(c.to_string(), "./EH26P4.25");
        let c = FuturesOptionContract::parse("./OZCZ27C565").expect("the default");
        assert_eq!((c.root.as_str(), c.year), ("/OZC", 2027));
        let c = FuturesOptionContract::parse("./E1AUF25C6000").expect("4-character root");
        assert_eq!((c.root.as_str(), c.month, c.strike), ("/E1AU", 1, 6000.0));
        let c = FuturesOptionContract::parse("./6EM24C1.1").expect("digit root");
        assert_eq!(c.root, "/6E");
    }

    #[test]
    fn rejects_malformed_keys() {
        use FuturesOptionSymbolError::*;
        for (s, e) in [
            ("/OZCZ23C565", Prefix),
            ("OZCZ23C565", Prefix),
            ("./OZCZ23X565", ContractType),
            ("./Z23C5", Root),
            ("./OZCZ23C", Strike),
            ("./OZCZ23C5.", Strike),
            ("./OZCZ23C.5", Strike),
            ("./OZCZ23C4.2.5", Strike),
            ("./OZCZ3C565", Year),
            ("./23C565", Month),
            ("./OZCA23C565", Month),
            ("./OZCZX3C565", Year),
            ("./C565", Year),
            ("./", Strike),
            ("./ABCDEZ23C565", Root),
            ("./ozcZ23C565", Root),
            ("./OZC Z23C565", Root),
            ("./OZCZ23C56é", NotAscii),
        ] {
            assert_eq!(FuturesOptionContract::parse(s), Err(e), "{s}");
        }
    }
}
