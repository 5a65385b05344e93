//! Symbol lists: equity tickers and 21-character option symbols (checked with the one OCC
//! parser, [`OptionContract::parse`](crate::option_symbol::OptionContract::parse)).

use crate::option_symbol::OptionContract;

/// Parses a comma-separated symbol list: upper-cased, de-duplicated, order kept.
pub fn parse_symbols(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for s in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let s = s.to_ascii_uppercase();
        let ok = s.len() <= 12
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '$' | '-'));
        if !ok {
            bad.push(s);
        } else if !out.contains(&s) {
            out.push(s);
        }
    }
    if !bad.is_empty() {
        return Err(format!(
            "{} not valid; allowed: comma-separated tickers of up to 12 letters, digits, '.', '/', '$' or '-' (e.g. AAPL,BRK.B,$SPX)",
            bad.join(", ")
        ));
    }
    if out.is_empty() {
        return Err("is empty; allowed: comma-separated tickers, e.g. AAPL,MSFT".into());
    }
    Ok(out)
}

/// Parses a comma-separated list of 21-character option symbols (`MSFT  251219C00480000`).
/// An empty value means no options.
pub fn parse_option_symbols(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for s in raw.split(',').filter(|s| !s.trim().is_empty()) {
        // A root never starts with a space and a strike ends in a digit, so trimming the
        // list separator's spaces cannot eat the root's inner padding.
        let s = s.trim();
        match OptionContract::parse(s) {
            Ok(_) => {
                if !out.iter().any(|o: &String| o == s) {
                    out.push(s.to_string());
                }
            }
            Err(e) => bad.push(format!("{s:?} ({e})")),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "{} not valid; allowed: 21-character Schwab option symbols, root padded to 6 with spaces + YYMMDD + C/P + strike x1000 in 8 digits, e.g. \"MSFT  251219C00480000\"",
            bad.join(", ")
        ))
    }
}
