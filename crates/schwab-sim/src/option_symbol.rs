//! Parsing and validation of 21-character option symbols (`AAPL  251219C00230000`).

use chrono::NaiveDate;

/// Length of an option symbol.
const SYMBOL_LEN: usize = 21;
/// Width of the space-padded root.
const ROOT_LEN: usize = 6;

/// A parsed option symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionSymbol {
    /// Root without padding, e.g. "AAPL" or "SPXW".
    pub root: String,
    /// Expiration date.
    pub expiry: NaiveDate,
    /// True for a call, false for a put.
    pub is_call: bool,
    /// Strike × 1000.
    pub strike_milli: i64,
}

impl OptionSymbol {
    /// Strike in dollars.
    pub(crate) fn strike(&self) -> f64 {
        self.strike_milli as f64 / 1000.0
    }
}

/// Parses `symbol`; the error is the reason it is malformed.
pub(crate) fn parse_option_symbol(symbol: &str) -> Result<OptionSymbol, String> {
    if !symbol.is_ascii() {
        return Err("it contains non-ASCII characters".into());
    }
    if symbol.len() != SYMBOL_LEN {
        return Err(format!("it has {} characters", symbol.len()));
    }
    let (root_field, rest) = symbol.split_at(ROOT_LEN);
    let (date_field, rest) = rest.split_at(6);
    let (kind_field, strike_field) = rest.split_at(1);

    let root = root_field.trim_end_matches(' ');
    if root.is_empty() {
        return Err("the root (first 6 characters) is blank".into());
    }
    if !root
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'/')
    {
        return Err(format!(
            "the root \"{root}\" must be upper-case letters, digits, '.' or '/', left-justified and padded with spaces"
        ));
    }
    let digits = |field: &str| field.bytes().all(|b| b.is_ascii_digit());
    if !digits(date_field) {
        return Err(format!("the expiry \"{date_field}\" is not YYMMDD digits"));
    }
    let number = |range: std::ops::Range<usize>| date_field[range].parse::<u32>().unwrap_or(0);
    let expiry = NaiveDate::from_ymd_opt(2000 + number(0..2) as i32, number(2..4), number(4..6))
        .ok_or_else(|| format!("the expiry \"{date_field}\" is not a valid date"))?;
    let is_call = match kind_field {
        "C" => true,
        "P" => false,
        other => return Err(format!("the contract type \"{other}\" must be C or P")),
    };
    if !digits(strike_field) {
        return Err(format!("the strike \"{strike_field}\" is not 8 digits"));
    }
    let strike_milli = strike_field.parse::<i64>().unwrap_or(0);
    if strike_milli == 0 {
        return Err("the strike is zero".into());
    }
    Ok(OptionSymbol {
        root: root.to_string(),
        expiry,
        is_call,
        strike_milli,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_parse() {
        let a = parse_option_symbol("AAPL  240517C00100000");
        assert_eq!(
            a,
            Ok(OptionSymbol {
                root: "AAPL".into(),
                expiry: NaiveDate::from_ymd_opt(2024, 5, 17).unwrap_or_default(),
                is_call: true,
                strike_milli: 100_000,
            })
        );
        let spy =
            parse_option_symbol("SPY   250421P00512000").map(|s| (s.strike(), s.root, s.is_call));
        assert_eq!(spy, Ok((512.0, "SPY".into(), false)));
        let spxw = parse_option_symbol("SPXW  251208C06880000").map(|s| s.strike());
        assert_eq!(spxw, Ok(6880.0));
        assert!(parse_option_symbol("GOOG  240517C00070000").is_ok());
        assert!(parse_option_symbol("BRK.B 251219C00500500").is_ok());
    }

    #[test]
    fn malformed_symbols_are_rejected_with_a_reason() {
        let cases = [
            ("AAPL 251219C00230000", "characters"),
            ("AAPL   251219C00230000", "characters"),
            ("aapl  251219C00230000", "root"),
            ("  AAPL251219C00230000", "root"),
            ("AA PL 251219C00230000", "root"),
            ("      251219C00230000", "blank"),
            ("AAPL  25121XC00230000", "YYMMDD"),
            ("AAPL  251319C00230000", "valid date"),
            ("AAPL  250230C00230000", "valid date"),
            ("AAPL  251219X00230000", "C or P"),
            ("AAPL  251219C0023000A", "8 digits"),
            ("AAPL  251219C00000000", "zero"),
            ("AAPL  251219C-0230000", "8 digits"),
            ("ÄAPL 251219C00230000", "non-ASCII"),
        ];
        for (symbol, reason) in cases {
            match parse_option_symbol(symbol) {
                Ok(parsed) => panic!("{symbol:?} parsed as {parsed:?}"),
                Err(e) => assert!(e.contains(reason), "{symbol:?}: {e}"),
            }
        }
    }
}
