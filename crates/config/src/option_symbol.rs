//! The 21-character Schwab (OCC) option symbol: `RRRRRRYYMMDDTSSSSSsss`.
//!
//! Root (6, left-justified, space-padded) + expiry `YYMMDD` + `C`/`P` + strike × 1000 in
//! 8 digits, e.g. `MSFT  251219C00480000` = MSFT, 2025-12-19, call, strike 480.
//!
//! Its single home is this leaf crate: `OPTION_SYMBOLS` is validated with it here, and the
//! service's `market` module (which parses the symbols of incoming frames) re-exports it as
//! `market::option_symbol`. Config cannot import `market` (config is the leaf every component
//! may depend on), so the parser lives on the side both can reach. The Schwab simulator keeps
//! its own on purpose: it is an independent oracle of the protocol.

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ContractType {
    Call,
    Put,
}

impl ContractType {
    /// `'C'` or `'P'`, as stored in `option_data.contract_type`.
    pub const fn as_char(self) -> char {
        match self {
            Self::Call => 'C',
            Self::Put => 'P',
        }
    }

    /// `"C"` or `"P"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Call => "C",
            Self::Put => "P",
        }
    }
}

/// What a 21-character option symbol says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptionContract {
    /// The root, trimmed (e.g. `SPXW`, `MSFT`).
    pub underlying: Arc<str>,
    pub expiration: NaiveDate,
    pub contract_type: ContractType,
    /// Strike in dollars (`00480000` → 480.0).
    pub strike: f64,
}

/// Why a string is not a 21-character option symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionSymbolError {
    #[error("is {0} characters long, expected 21")]
    Length(usize),
    #[error("contains characters other than ASCII letters, digits and spaces")]
    NotAscii,
    #[error(
        "root (first 6 characters) must be letters or digits, left-justified and padded with spaces"
    )]
    Root,
    #[error("expiry (characters 7-12) must be a real date YYMMDD")]
    Expiry,
    #[error("character 13 must be C or P")]
    ContractType,
    #[error("strike (last 8 characters) must be 8 digits, strike x 1000")]
    Strike,
}

impl OptionContract {
    /// Parses and validates a 21-character symbol.
    pub fn parse(symbol: &str) -> Result<Self, OptionSymbolError> {
        let b = symbol.as_bytes();
        if !symbol.is_ascii() {
            return Err(OptionSymbolError::NotAscii);
        }
        if b.len() != 21 {
            return Err(OptionSymbolError::Length(b.len()));
        }
        let root = &symbol[..6];
        let trimmed = root.trim_end_matches(' ');
        if trimmed.is_empty()
            || !trimmed
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(OptionSymbolError::Root);
        }
        let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
        let exp = &symbol[6..12];
        if !digits(exp) {
            return Err(OptionSymbolError::Expiry);
        }
        let num = |s: &str| s.parse::<u32>().map_err(|_| OptionSymbolError::Expiry);
        let expiration = NaiveDate::from_ymd_opt(
            2000 + num(&exp[0..2])? as i32,
            num(&exp[2..4])?,
            num(&exp[4..6])?,
        )
        .ok_or(OptionSymbolError::Expiry)?;
        let contract_type = match b[12] {
            b'C' => ContractType::Call,
            b'P' => ContractType::Put,
            _ => return Err(OptionSymbolError::ContractType),
        };
        let strike_text = &symbol[13..21];
        if !digits(strike_text) {
            return Err(OptionSymbolError::Strike);
        }
        let strike_milli: u64 = strike_text.parse().map_err(|_| OptionSymbolError::Strike)?;
        Ok(Self {
            underlying: Arc::from(trimmed),
            expiration,
            contract_type,
            strike: strike_milli as f64 / 1000.0,
        })
    }
}

impl fmt::Display for OptionContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<6}{}{}{:08}",
            self.underlying,
            self.expiration.format("%y%m%d"),
            self.contract_type.as_char(),
            (self.strike * 1000.0).round() as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_examples() {
        let c = OptionContract::parse("AAPL  240517C00100000").expect("valid");
        assert_eq!(&*c.underlying, "AAPL");
        assert_eq!(
            c.expiration,
            NaiveDate::from_ymd_opt(2024, 5, 17).expect("date")
        );
        assert_eq!(c.contract_type, ContractType::Call);
        assert_eq!(c.strike, 100.0);

        let p = OptionContract::parse("SPY   250421P00512000").expect("valid");
        assert_eq!(&*p.underlying, "SPY");
        assert_eq!(p.contract_type, ContractType::Put);
        assert_eq!(p.strike, 512.0);

        let w = OptionContract::parse("SPXW  251208C06880000").expect("valid");
        assert_eq!(&*w.underlying, "SPXW");
        assert_eq!(w.strike, 6880.0);

        let m = OptionContract::parse("MSFT  251219C00480000").expect("valid");
        assert_eq!(
            m.expiration,
            NaiveDate::from_ymd_opt(2025, 12, 19).expect("date")
        );
        assert_eq!(m.to_string(), "MSFT  251219C00480000");
    }

    #[test]
    fn fractional_strikes_keep_their_decimals() {
        let c = OptionContract::parse("F     260116C00012500").expect("valid");
        assert_eq!(c.strike, 12.5);
        assert_eq!(&*c.underlying, "F");
    }

    #[test]
    fn rejects_malformed_symbols() {
        use OptionSymbolError::*;
        assert_eq!(
            OptionContract::parse("AAPL 240517C00100000"),
            Err(Length(20))
        );
        assert_eq!(OptionContract::parse("      240517C00100000"), Err(Root));
        assert_eq!(OptionContract::parse("aapl  240517C00100000"), Err(Root));
        assert_eq!(OptionContract::parse("AAPL  241317C00100000"), Err(Expiry));
        assert_eq!(OptionContract::parse("AAPL  240230C00100000"), Err(Expiry));
        assert_eq!(
            OptionContract::parse("AAPL  240517X00100000"),
            Err(ContractType)
        );
        assert_eq!(OptionContract::parse("AAPL  240517C0010000A"), Err(Strike));
        assert_eq!(
            OptionContract::parse("AAPL  240517C0010000é"),
            Err(NotAscii)
        );
    }
}
