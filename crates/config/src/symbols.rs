//! Symbol lists: equity tickers and 21-character option symbols (checked with the one OCC
//! parser, [`OptionContract::parse`](crate::option_symbol::OptionContract::parse)), futures,
//! futures options, currency pairs, and screener keys.

use crate::futures_option_symbol::FuturesOptionContract;
use crate::futures_symbol::FuturesSymbol;
use crate::option_symbol::OptionContract;

/// What `FUTURES_SYMBOLS` (and `FUTURES_CHART_SYMBOLS`) allow.
pub const FUTURES_ALLOWED: &str = "comma-separated futures: / + a root of 1 to 4 letters or digits (front month), optionally + a month code (F G H J K M N Q U V X Z) + a 2-digit year (e.g. /ES,/NQ,/ESZ25); empty for none";

/// What `FUTURES_OPTION_SYMBOLS` allows.
pub const FUTURES_OPTIONS_ALLOWED: &str = "comma-separated futures options: ./ + a root of 1 to 4 letters or digits + a month code (F G H J K M N Q U V X Z) + a 2-digit year + C or P + the strike (digits, one decimal point allowed), e.g. ./OZCZ27C565; empty for none";

/// What `FOREX_SYMBOLS` allows.
pub const FOREX_ALLOWED: &str =
    "comma-separated currency pairs: 3 letters / 3 letters (e.g. EUR/USD,USD/JPY); empty for none";

/// Prefixes of SCREENER_EQUITY keys.
pub const SCREENER_EQUITY_PREFIXES: &[&str] = &[
    "$COMPX",
    "$DJI",
    "$SPX.X",
    "INDEX_AL",
    "NYSE",
    "NASDAQ",
    "OTCBB",
    "EQUITY_ALL",
];

/// Prefixes of SCREENER_OPTION keys.
pub const SCREENER_OPTION_PREFIXES: &[&str] = &["OPTION_PUT", "OPTION_CALL", "OPTION_ALL"];

/// Sort fields of both screeners.
pub const SCREENER_SORT_FIELDS: &[&str] = &[
    "VOLUME",
    "TRADES",
    "PERCENT_CHANGE_UP",
    "PERCENT_CHANGE_DOWN",
    "AVERAGE_PERCENT_VOLUME",
];

/// Frequencies of both screeners, in minutes (`0`: the whole day).
pub const SCREENER_FREQUENCIES: &[&str] = &["0", "1", "5", "10", "30", "60"];

/// What `SCREENER_EQUITY_KEYS` allows.
pub const SCREENER_EQUITY_ALLOWED: &str = "comma-separated keys PREFIX_SORTFIELD_FREQUENCY: prefix $COMPX, $DJI, $SPX.X, INDEX_AL, NYSE, NASDAQ, OTCBB or EQUITY_ALL; sort field VOLUME, TRADES, PERCENT_CHANGE_UP, PERCENT_CHANGE_DOWN or AVERAGE_PERCENT_VOLUME; frequency (minutes) 0, 1, 5, 10, 30 or 60 (e.g. NASDAQ_VOLUME_5,$SPX.X_PERCENT_CHANGE_UP_60); empty for none";

/// What `SCREENER_OPTION_KEYS` allows.
pub const SCREENER_OPTION_ALLOWED: &str = "comma-separated keys PREFIX_SORTFIELD_FREQUENCY: prefix OPTION_PUT, OPTION_CALL or OPTION_ALL; sort field VOLUME, TRADES, PERCENT_CHANGE_UP, PERCENT_CHANGE_DOWN or AVERAGE_PERCENT_VOLUME; frequency (minutes) 0, 1, 5, 10, 30 or 60 (e.g. OPTION_CALL_VOLUME_5); empty for none";

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

/// Parses a comma-separated list of keys checked by `check` (which says what is wrong):
/// upper-cased, de-duplicated, order kept; empty means none. Every bad key is named.
fn parse_keys(
    raw: &str,
    allowed: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for s in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let key = s.to_ascii_uppercase();
        match check(&key) {
            Ok(()) => {
                if !out.contains(&key) {
                    out.push(key);
                }
            }
            Err(why) => bad.push(format!("{s:?} ({why})")),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(format!("{} not valid; allowed: {allowed}", bad.join(", ")))
    }
}

/// Parses a comma-separated list of futures keys (`/ES,/ESZ25`): upper-cased, de-duplicated,
/// order kept. An empty value means none.
pub fn parse_futures_symbols(raw: &str) -> Result<Vec<String>, String> {
    parse_futures_with(raw, FUTURES_ALLOWED)
}

/// [`parse_futures_symbols`], whose error ends with `allowed`.
pub(crate) fn parse_futures_with(raw: &str, allowed: &str) -> Result<Vec<String>, String> {
    parse_keys(raw, allowed, |s| {
        FuturesSymbol::parse(s).map(drop).map_err(|e| e.to_string())
    })
}

/// Parses a comma-separated list of futures option keys (`./OZCZ23C565`): upper-cased,
/// de-duplicated, order kept. An empty value means none.
pub fn parse_futures_option_symbols(raw: &str) -> Result<Vec<String>, String> {
    parse_keys(raw, FUTURES_OPTIONS_ALLOWED, |s| {
        FuturesOptionContract::parse(s)
            .map(drop)
            .map_err(|e| e.to_string())
    })
}

/// Parses a comma-separated list of currency pairs (`EUR/USD`): upper-cased, de-duplicated,
/// order kept. An empty value means none.
pub fn parse_forex_symbols(raw: &str) -> Result<Vec<String>, String> {
    parse_keys(raw, FOREX_ALLOWED, |s| {
        let letters = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
        match s.split_once('/') {
            Some((base, quote)) if letters(base) && letters(quote) => Ok(()),
            _ => Err("must be 3 letters, /, 3 letters".into()),
        }
    })
}

/// Parses a comma-separated list of equity tickers like [`parse_symbols`], where an empty
/// value means none (the order book lists).
pub fn parse_symbols_or_none(raw: &str) -> Result<Vec<String>, String> {
    if raw.split(',').all(|s| s.trim().is_empty()) {
        Ok(Vec::new())
    } else {
        parse_symbols(raw)
    }
}

/// True when `key` is `PREFIX_SORTFIELD_FREQUENCY` with one of `prefixes`.
fn is_screener_key(key: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|prefix| {
        key.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| {
                SCREENER_SORT_FIELDS.iter().any(|field| {
                    rest.strip_prefix(field)
                        .and_then(|rest| rest.strip_prefix('_'))
                        .is_some_and(|freq| SCREENER_FREQUENCIES.contains(&freq))
                })
            })
    })
}

/// Why `key` is not a screener key with one of `prefixes` (`other`: the other screener's
/// prefixes and variable, to point there).
fn check_screener_key(key: &str, prefixes: &[&str], other: (&[&str], &str)) -> Result<(), String> {
    if is_screener_key(key, prefixes) {
        return Ok(());
    }
    let (other_prefixes, other_variable) = other;
    if is_screener_key(key, other_prefixes) {
        return Err(format!(
            "a key of the other screener: put it in {other_variable}"
        ));
    }
    let Some(rest) = prefixes
        .iter()
        .find_map(|p| key.strip_prefix(p).and_then(|r| r.strip_prefix('_')))
    else {
        return Err("unknown prefix".into());
    };
    let Some(freq) = SCREENER_SORT_FIELDS
        .iter()
        .find_map(|f| rest.strip_prefix(f).and_then(|r| r.strip_prefix('_')))
    else {
        return Err("unknown sort field".into());
    };
    Err(format!("unknown frequency {freq:?}"))
}

/// Parses a comma-separated list of SCREENER_EQUITY keys (`NASDAQ_VOLUME_5`): upper-cased,
/// de-duplicated, order kept. An empty value means none.
pub fn parse_screener_equity_keys(raw: &str) -> Result<Vec<String>, String> {
    parse_keys(raw, SCREENER_EQUITY_ALLOWED, |s| {
        check_screener_key(
            s,
            SCREENER_EQUITY_PREFIXES,
            (SCREENER_OPTION_PREFIXES, "SCREENER_OPTION_KEYS"),
        )
    })
}

/// Parses a comma-separated list of SCREENER_OPTION keys (`OPTION_CALL_VOLUME_5`):
/// upper-cased, de-duplicated, order kept. An empty value means none.
pub fn parse_screener_option_keys(raw: &str) -> Result<Vec<String>, String> {
    parse_keys(raw, SCREENER_OPTION_ALLOWED, |s| {
        check_screener_key(
            s,
            SCREENER_OPTION_PREFIXES,
            (SCREENER_EQUITY_PREFIXES, "SCREENER_EQUITY_KEYS"),
        )
    })
}
