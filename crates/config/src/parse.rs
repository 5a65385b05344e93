//! The value parsers the settings table uses. Each takes the raw value and the variable's
//! allowed text, and returns the value or the problem (printed right after the variable's
//! name, so it starts with the quoted value and ends with what is allowed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::database::{DatabaseTarget, redact_url_password};
use crate::secret::Secret;
use crate::{DEFAULT_HEALTH_ADDR, RealtimeMode, RealtimePlan, SchwabMode, TokenStoreKind};

/// A parser result: the value, or the problem text after the variable's name.
pub type Parsed<T> = Result<T, String>;

fn invalid<T>(raw: &str, allowed: &str) -> Parsed<T> {
    Err(format!(" ({raw:?}) is not valid; allowed: {allowed}"))
}

/// A number of type `T` (trimmed) for which `valid` holds.
pub fn within<T: FromStr + Copy>(valid: impl Fn(T) -> bool) -> impl Fn(&str, &str) -> Parsed<T> {
    move |raw, allowed| match raw.trim().parse::<T>() {
        Ok(v) if valid(v) => Ok(v),
        _ => invalid(raw, allowed),
    }
}

/// Seconds from `min` to `max`, fractions allowed; a trailing `s` is accepted.
pub fn seconds(min: f64, max: f64) -> impl Fn(&str, &str) -> Parsed<Duration> {
    move |raw, allowed| match raw.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min && v <= max => Ok(Duration::from_secs_f64(v)),
        _ => invalid(raw, allowed),
    }
}

/// `0` (off), or seconds from `min` to `max`, fractions allowed.
pub fn off_or_seconds(min: f64, max: f64) -> impl Fn(&str, &str) -> Parsed<Duration> {
    let seconds = seconds(min, max);
    move |raw, allowed| match raw.trim().trim_end_matches('s').parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => seconds(raw, allowed),
    }
}

/// `DATABASE_URL`; the value is shown with its password redacted.
pub fn database_url(raw: &str, allowed: &str) -> Parsed<DatabaseTarget> {
    DatabaseTarget::parse(raw)
        .map_err(|e| format!(" ({}): {e}; allowed: {allowed}", redact_url_password(raw)))
}

/// A trimmed text.
pub fn text(raw: &str, _allowed: &str) -> Parsed<Option<String>> {
    Ok(Some(raw.trim().to_string()))
}

/// A trimmed secret.
pub fn secret(raw: &str, _allowed: &str) -> Parsed<Option<Secret>> {
    Ok(Some(Secret::new(raw.trim())))
}

/// A trimmed path.
pub fn path(raw: &str, _allowed: &str) -> Parsed<PathBuf> {
    Ok(PathBuf::from(raw.trim()))
}

/// `SPOOL_DIR`: a folder, or `off`.
pub fn spool_dir(raw: &str, _allowed: &str) -> Parsed<Option<PathBuf>> {
    let v = raw.trim();
    Ok((!v.eq_ignore_ascii_case("off")).then(|| PathBuf::from(v)))
}

/// `SPOOL_MAX_BYTES`: 1M to 1024G.
pub fn spool_bytes(raw: &str, allowed: &str) -> Parsed<u64> {
    match bytes(raw) {
        Some(b) if (1024 * 1024..=1024 * 1024 * 1024 * 1024).contains(&b) => Ok(b),
        _ => invalid(raw, allowed),
    }
}

/// `MAX_FRAME_BYTES`: a size from 64K to 256M.
pub fn frame_bytes(raw: &str, allowed: &str) -> Parsed<usize> {
    match bytes(raw).and_then(|b| usize::try_from(b).ok()) {
        Some(b) if ((64 << 10)..=(256 << 20)).contains(&b) => Ok(b),
        _ => invalid(raw, allowed),
    }
}

/// Parses `123`, `64K`, `512M`, `2G` (binary units) into bytes.
fn bytes(raw: &str) -> Option<u64> {
    let t = raw.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// `SYMBOLS`, `CHART_SYMBOLS`.
pub fn symbols(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_symbols(raw).map_err(|e| format!(": {e}"))
}

/// `OPTION_SYMBOLS`.
pub fn option_symbols(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_option_symbols(raw).map_err(|e| format!(": {e}"))
}

/// `NYSE_BOOK_SYMBOLS`, `NASDAQ_BOOK_SYMBOLS`: tickers, or empty for none.
pub fn symbols_or_none(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_symbols_or_none(raw).map_err(|e| format!(": {e}"))
}

/// `FUTURES_SYMBOLS`.
pub fn futures_symbols(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_futures_symbols(raw).map_err(|e| format!(": {e}"))
}

/// `FUTURES_CHART_SYMBOLS`: futures keys, or `none` (unset or empty follows `FUTURES_SYMBOLS`,
/// see `Config::resolve`).
pub fn futures_chart_symbols(raw: &str, allowed: &str) -> Parsed<Vec<String>> {
    if raw.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    match crate::symbols::parse_futures_with(raw, allowed) {
        Ok(list) if list.is_empty() => Err(format!(" ({raw:?}) is empty; allowed: {allowed}")),
        Ok(list) => Ok(list),
        Err(e) => Err(format!(": {e}")),
    }
}

/// `FUTURES_OPTION_SYMBOLS`.
pub fn futures_option_symbols(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_futures_option_symbols(raw).map_err(|e| format!(": {e}"))
}

/// `FOREX_SYMBOLS`.
pub fn forex_symbols(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_forex_symbols(raw).map_err(|e| format!(": {e}"))
}

/// `SCREENER_EQUITY_KEYS`.
pub fn screener_equity_keys(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_screener_equity_keys(raw).map_err(|e| format!(": {e}"))
}

/// `SCREENER_OPTION_KEYS`.
pub fn screener_option_keys(raw: &str, _allowed: &str) -> Parsed<Vec<String>> {
    crate::symbols::parse_screener_option_keys(raw).map_err(|e| format!(": {e}"))
}

/// `on` or `off` (also `true`/`false`, `yes`/`no`, `1`/`0`), any case.
pub fn on_off(raw: &str, allowed: &str) -> Parsed<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => invalid(raw, allowed),
    }
}

/// `RUST_LOG`: checked with the filter parser the service's logging uses; kept as written.
pub fn log_filter(raw: &str, allowed: &str) -> Parsed<String> {
    match tracing_subscriber::EnvFilter::try_new(raw) {
        Ok(_) => Ok(raw.to_string()),
        Err(e) => Err(format!(" ({raw:?}): {e}; allowed: {allowed}")),
    }
}

/// `WARM_START_BARS`: 0 or up to 1000000 (the lower bound follows the periods and is the
/// indicators' to check).
pub fn warm_start_bars(raw: &str, allowed: &str) -> Parsed<Option<usize>> {
    within(|v: usize| v <= 1_000_000)(raw, allowed).map(Some)
}

/// `REALTIME_MODE`.
pub fn realtime_mode(raw: &str, allowed: &str) -> Parsed<RealtimeMode> {
    RealtimeMode::parse(raw).ok_or_else(|| format!(" ({raw:?}) is not valid; allowed: {allowed}"))
}

/// `REALTIME_PLAN`.
pub fn realtime_plan(raw: &str, allowed: &str) -> Parsed<RealtimePlan> {
    RealtimePlan::parse(raw).ok_or_else(|| format!(" ({raw:?}) is not valid; allowed: {allowed}"))
}

/// `REALTIME_TOPIC`.
pub fn realtime_topic(raw: &str, allowed: &str) -> Parsed<String> {
    let t = raw.trim();
    if t.len() > 200 || t.eq_ignore_ascii_case("realtime") || t.chars().any(char::is_whitespace) {
        invalid(raw, allowed)
    } else {
        Ok(t.to_string())
    }
}

/// `HEALTH_ADDR`: `IP:PORT` (port 0 picks a free port), `localhost:PORT` or `off`.
pub fn health_addr(raw: &str, allowed: &str) -> Parsed<Option<SocketAddr>> {
    let v = raw.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if let Some(port) = v.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!(" ({raw:?}): {port:?} is not a port; allowed: {allowed}"))?;
        return Ok(Some(SocketAddr::new(DEFAULT_HEALTH_ADDR.ip(), port)));
    }
    v.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| format!(" ({raw:?}): not an address; allowed: {allowed}"))
}

/// `SCHWAB_MODE`.
pub fn schwab_mode(raw: &str, allowed: &str) -> Parsed<SchwabMode> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "live" => Ok(SchwabMode::Live),
        "simulated" => Ok(SchwabMode::Simulated),
        _ => invalid(raw.trim(), allowed),
    }
}

/// `TOKEN_STORE`.
pub fn token_store(raw: &str, allowed: &str) -> Parsed<TokenStoreKind> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "file" => Ok(TokenStoreKind::File),
        "database" => Ok(TokenStoreKind::Database),
        _ => invalid(raw, allowed),
    }
}

/// `SCHWAB_CALLBACK_URL`: https only.
pub fn callback_url(raw: &str, allowed: &str) -> Parsed<String> {
    check_url(raw, true).map_err(|e| format!(" ({raw:?}): {e}; allowed: {allowed}"))
}

/// `SCHWAB_API_BASE`, `SCHWAB_AUTH_BASE`: http(s), trailing `/` removed; shown redacted.
pub fn base_url(raw: &str, allowed: &str) -> Parsed<String> {
    check_url(raw, false)
        .map(|url| url.trim_end_matches('/').to_string())
        .map_err(|e| format!(" ({}): {e}; allowed: {allowed}", redact_url_password(raw)))
}

/// Checks an http(s) URL (`https_only` for the callback) and returns it trimmed.
fn check_url(raw: &str, https_only: bool) -> Result<String, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        other => {
            return Err(format!(
                "scheme {other}:// is not allowed{}",
                if https_only {
                    " (Schwab requires https)"
                } else {
                    ""
                }
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(raw.to_string())
}

/// A comma list of field numbers up to `max`: ascending, with field 0, without duplicates.
pub fn fields(max: u32) -> impl Fn(&str, &str) -> Parsed<Vec<u32>> {
    move |raw, allowed| {
        let mut fields = vec![0];
        let mut bad = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u32>() {
                Ok(n) if n <= max => fields.push(n),
                _ => bad.push(part.to_string()),
            }
        }
        if !bad.is_empty() {
            return Err(format!(
                " ({raw:?}): {} not valid; allowed: {allowed}",
                bad.join(", ")
            ));
        }
        fields.sort_unstable();
        fields.dedup();
        Ok(fields)
    }
}
