//! One validated configuration struct, read from the environment (plus an optional `.env`).
//!
//! Every default lives in [`Config::default`]; [`Config::from_lookup`] collects *every* bad
//! setting before failing, so an operator fixes them all in one go. Secrets (the database
//! password, `SCHWAB_CLIENT_SECRET`) are redacted from `Debug`. The Schwab session settings
//! live in [`SchwabConfig`] (`crate::schwab::settings`), parsed from here.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::market::option_symbol::OptionContract;
use crate::schwab::settings::{self as schwab_settings, SchwabConfig};

/// Where rows go: the embedded SQLite default or a PostgreSQL (e.g. Supabase) server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// `sqlite://PATH`: a file, created (with its folder) if missing.
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/db?...`, passed to sqlx as is.
    Postgres(String),
}

impl DatabaseTarget {
    /// The default target: `sqlite://data/market.db`, relative to the working directory.
    pub const DEFAULT_URL: &'static str = "sqlite://data/market.db";

    /// Parses a `DATABASE_URL` value.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("a sqlite URL needs a file path, e.g. sqlite://data/market.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let after_scheme = url.split_once("://").map(|x| x.1).unwrap_or_default();
            let Some((userinfo, _)) = after_scheme.split_once('@') else {
                return Err(
                    "put the user name in the URL, e.g. postgres://postgres:PASSWORD@HOST:5432/postgres"
                        .into(),
                );
            };
            if userinfo.split(':').next().unwrap_or_default().is_empty() {
                return Err("the user name before '@' is empty".into());
            }
            return Ok(Self::Postgres(url.to_string()));
        }
        Err("must start with sqlite:// or postgres://".into())
    }

    /// The URL with any password replaced by `***`, safe for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_url_password(url),
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password part of `scheme://user:password@host` with `***`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// What the writer does when its in-memory buffer holds `BUFFER_MAX_ROWS` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Live streaming: drop the oldest buffered row for each new one and count it
    /// (`rows_dropped`), so the Schwab socket is never stalled by a slow database.
    DropOldest,
    /// Replay and other finite sources: stop taking rows until there is room, which makes
    /// the producer wait. Nothing is lost.
    Backpressure,
}

/// The whole service configuration. Build it with [`Config::from_env`] or [`Config::from_lookup`].
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`: where rows go.
    pub database: DatabaseTarget,
    /// `BATCH_SIZE`: flush when this many rows are buffered.
    pub batch_size: usize,
    /// `BATCH_INTERVAL` (seconds, fractions allowed): flush when the oldest buffered row is this old.
    pub batch_interval: Duration,
    /// `BUFFER_MAX_ROWS`: cap of the writer's in-memory buffer.
    pub buffer_max_rows: usize,
    /// `MAX_ROWS_PER_WRITE`: cap of one database write (a bigger buffer goes out in several).
    pub max_rows_per_write: usize,
    /// `SYMBOLS`: equities to stream (LEVELONE_EQUITIES).
    pub symbols: Vec<String>,
    /// `OPTION_SYMBOLS`: option contracts (21-character form) to stream (LEVELONE_OPTIONS).
    pub option_symbols: Vec<String>,
    /// `CHART_SYMBOLS`: equities for one-minute bars (CHART_EQUITY); defaults to `SYMBOLS`.
    pub chart_symbols: Vec<String>,
    /// `STATUS_INTERVAL` (seconds): how often the one-line status is printed; 0 turns it off.
    pub status_interval: Duration,
    /// `SHUTDOWN_GRACE` (seconds): how long the writer may keep retrying after a stop signal.
    pub shutdown_grace: Duration,
    /// `SIM_UPDATES_PER_SEC`: mean LEVELONE updates per symbol per second of the simulated market.
    pub sim_updates_per_symbol_per_sec: f64,
    /// `SIM_SEED`: seed of the simulated market (same seed, same quotes).
    pub sim_seed: u64,
    /// `RUST_LOG`: the log filter (tracing-subscriber syntax).
    pub rust_log: String,
    /// The Schwab session: credentials, token store, field sets, reconnect timings.
    pub schwab: SchwabConfig,
}

impl Default for Config {
    fn default() -> Self {
        let symbols: Vec<String> = ["AAPL", "MSFT", "NVDA", "SPY", "TSLA"]
            .into_iter()
            .map(String::from)
            .collect();
        Self {
            database: DatabaseTarget::Sqlite(PathBuf::from("data/market.db")),
            batch_size: 1,
            batch_interval: Duration::from_secs(1),
            buffer_max_rows: 100_000,
            max_rows_per_write: 5_000,
            chart_symbols: symbols.clone(),
            symbols,
            option_symbols: vec![
                "AAPL  271217C00250000".to_string(),
                "SPY   271217P00600000".to_string(),
            ],
            status_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(8),
            sim_updates_per_symbol_per_sec: 1.0,
            sim_seed: 42,
            rust_log: "info".to_string(),
            schwab: SchwabConfig::default(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("batch_size", &self.batch_size)
            .field("batch_interval", &self.batch_interval)
            .field("buffer_max_rows", &self.buffer_max_rows)
            .field("max_rows_per_write", &self.max_rows_per_write)
            .field("symbols", &self.symbols)
            .field("option_symbols", &self.option_symbols)
            .field("chart_symbols", &self.chart_symbols)
            .field("status_interval", &self.status_interval)
            .field("shutdown_grace", &self.shutdown_grace)
            .field(
                "sim_updates_per_symbol_per_sec",
                &self.sim_updates_per_symbol_per_sec,
            )
            .field("sim_seed", &self.sim_seed)
            .field("rust_log", &self.rust_log)
            .field("schwab", &self.schwab)
            .finish()
    }
}

/// Every bad setting found, reported together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration ({} problem{}), fix these in the environment or .env and start again:\n{}",
    .problems.len(), if .problems.len() == 1 { "" } else { "s" },
    .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// One line per bad variable: its name, the value's problem and what is allowed.
    pub problems: Vec<String>,
}

/// Every variable the service reads, for docs and the `.env` template check.
pub const KNOWN_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "BATCH_SIZE",
    "BATCH_INTERVAL",
    "BUFFER_MAX_ROWS",
    "MAX_ROWS_PER_WRITE",
    "SYMBOLS",
    "OPTION_SYMBOLS",
    "CHART_SYMBOLS",
    "STATUS_INTERVAL",
    "SHUTDOWN_GRACE",
    "SIM_UPDATES_PER_SEC",
    "SIM_SEED",
    "RUST_LOG",
    "SCHWAB_MODE",
    "SCHWAB_CLIENT_ID",
    "SCHWAB_CLIENT_SECRET",
    "SCHWAB_CALLBACK_URL",
    "SCHWAB_API_BASE",
    "SCHWAB_AUTH_BASE",
    "TOKEN_STORE",
    "TOKEN_FILE",
    "EQUITY_FIELDS",
    "OPTION_FIELDS",
    "CHART_FIELDS",
    "STALL_TIMEOUT",
    "STREAM_RESPONSE_TIMEOUT",
    "SCHWAB_HTTP_TIMEOUT",
    "RECONNECT_BACKOFF_MIN",
    "RECONNECT_BACKOFF_MAX",
    "KICKED_BACKOFF",
    "NEEDS_LOGIN_RETRY",
    "TOKEN_STORE_POLL",
];

impl Config {
    /// Reads the process environment. Call [`load_dotenv`] first to merge a `.env` file.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds and validates the config from any variable source (tests pass a map).
    /// Unset and empty variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut cfg = Config::default();
        let mut problems = Vec::new();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        if let Some(v) = get("DATABASE_URL") {
            match DatabaseTarget::parse(&v) {
                Ok(t) => cfg.database = t,
                Err(e) => problems.push(format!(
                    "DATABASE_URL ({}): {e}; allowed: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
                    redact_url_password(&v)
                )),
            }
        }
        parse_into(
            &get,
            "BATCH_SIZE",
            &mut cfg.batch_size,
            &mut problems,
            "a whole number from 1 to 100000",
            |v: usize| (1..=100_000).contains(&v),
        );
        parse_seconds(
            &get,
            "BATCH_INTERVAL",
            &mut cfg.batch_interval,
            &mut problems,
            0.001,
            3600.0,
        );
        parse_into(
            &get,
            "BUFFER_MAX_ROWS",
            &mut cfg.buffer_max_rows,
            &mut problems,
            "a whole number from 100 to 10000000",
            |v: usize| (100..=10_000_000).contains(&v),
        );
        parse_into(
            &get,
            "MAX_ROWS_PER_WRITE",
            &mut cfg.max_rows_per_write,
            &mut problems,
            "a whole number from 1 to 100000",
            |v: usize| (1..=100_000).contains(&v),
        );
        if cfg.buffer_max_rows < cfg.batch_size {
            problems.push(format!(
                "BUFFER_MAX_ROWS ({}) is smaller than BATCH_SIZE ({}); allowed: at least BATCH_SIZE",
                cfg.buffer_max_rows, cfg.batch_size
            ));
        }
        if let Some(v) = get("SYMBOLS") {
            match parse_symbols(&v) {
                Ok(list) => {
                    cfg.symbols = list.clone();
                    cfg.chart_symbols = list;
                }
                Err(e) => problems.push(format!("SYMBOLS: {e}")),
            }
        }
        if let Some(v) = get("CHART_SYMBOLS") {
            match parse_symbols(&v) {
                Ok(list) => cfg.chart_symbols = list,
                Err(e) => problems.push(format!("CHART_SYMBOLS: {e}")),
            }
        }
        if let Some(v) = lookup("OPTION_SYMBOLS") {
            match parse_option_symbols(&v) {
                Ok(list) => cfg.option_symbols = list,
                Err(e) => problems.push(format!("OPTION_SYMBOLS: {e}")),
            }
        }
        parse_seconds(
            &get,
            "STATUS_INTERVAL",
            &mut cfg.status_interval,
            &mut problems,
            0.0,
            86_400.0,
        );
        parse_seconds(
            &get,
            "SHUTDOWN_GRACE",
            &mut cfg.shutdown_grace,
            &mut problems,
            0.0,
            600.0,
        );
        parse_into(
            &get,
            "SIM_UPDATES_PER_SEC",
            &mut cfg.sim_updates_per_symbol_per_sec,
            &mut problems,
            "a number above 0 and at most 1000",
            |v: f64| v > 0.0 && v <= 1000.0,
        );
        parse_into(
            &get,
            "SIM_SEED",
            &mut cfg.sim_seed,
            &mut problems,
            "a whole number from 0 to 18446744073709551615",
            |_: u64| true,
        );
        if let Some(v) = get("RUST_LOG") {
            match tracing_subscriber::EnvFilter::try_new(&v) {
                Ok(_) => cfg.rust_log = v,
                Err(e) => problems.push(format!(
                    "RUST_LOG ({v:?}): {e}; allowed: a level (error, warn, info, debug, trace) or target=level list"
                )),
            }
        }

        schwab_settings::parse(&get, &mut cfg.schwab, &mut problems);

        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// Merges `.env` from the working directory into the process environment; variables that are
/// already set win. A missing file is fine; a malformed one is an error naming the line.
pub fn load_dotenv() -> Result<Option<PathBuf>, String> {
    match dotenvy::dotenv() {
        Ok(path) => Ok(Some(path)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(format!("could not read .env: {e}; fix or remove the file")),
    }
}

fn parse_into<T: std::str::FromStr + Copy>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut T,
    problems: &mut Vec<String>,
    allowed: &str,
    valid: impl Fn(T) -> bool,
) {
    let Some(raw) = get(name) else { return };
    match raw.trim().parse::<T>() {
        Ok(v) if valid(v) => *slot = v,
        _ => problems.push(format!("{name} ({raw:?}) is not valid; allowed: {allowed}")),
    }
}

pub(crate) fn parse_seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut Duration,
    problems: &mut Vec<String>,
    min: f64,
    max: f64,
) {
    let Some(raw) = get(name) else { return };
    match raw.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min && v <= max => *slot = Duration::from_secs_f64(v),
        _ => problems.push(format!(
            "{name} ({raw:?}) is not valid; allowed: seconds from {min} to {max}, fractions allowed (e.g. 0.25)"
        )),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn no_variables_give_the_documented_defaults() {
        let cfg = from(&[]).expect("defaults are valid");
        assert_eq!(
            cfg.database,
            DatabaseTarget::Sqlite(PathBuf::from("data/market.db"))
        );
        assert_eq!(cfg.batch_size, 1);
        assert_eq!(cfg.batch_interval, Duration::from_secs(1));
        assert_eq!(cfg.chart_symbols, cfg.symbols);
        assert_eq!(cfg.rust_log, "info");
    }

    #[test]
    fn values_are_parsed_and_normalised() {
        let cfg = from(&[
            (
                "DATABASE_URL",
                "postgres://postgres:secret@localhost:5432/postgres",
            ),
            ("BATCH_SIZE", "500"),
            ("BATCH_INTERVAL", "0.25"),
            ("SYMBOLS", " aapl, MSFT ,aapl,$spx,brk.b "),
            (
                "OPTION_SYMBOLS",
                "MSFT  251219C00480000, SPY   250421P00512000",
            ),
        ])
        .expect("valid");
        assert_eq!(cfg.batch_size, 500);
        assert_eq!(cfg.batch_interval, Duration::from_millis(250));
        assert_eq!(cfg.symbols, ["AAPL", "MSFT", "$SPX", "BRK.B"]);
        assert_eq!(
            cfg.chart_symbols, cfg.symbols,
            "CHART_SYMBOLS defaults to SYMBOLS"
        );
        assert_eq!(
            cfg.option_symbols,
            ["MSFT  251219C00480000", "SPY   250421P00512000"]
        );
    }

    #[test]
    fn all_problems_are_reported_together_naming_variable_and_allowed_values() {
        let err = from(&[
            ("BATCH_SIZE", "0"),
            ("BATCH_INTERVAL", "-1"),
            ("DATABASE_URL", "postgres://localhost/db"),
            ("SYMBOLS", "AAPL,bad symbol!"),
            ("OPTION_SYMBOLS", "MSFT251219C480"),
            ("RUST_LOG", "info,[["),
        ])
        .expect_err("invalid");
        assert_eq!(err.problems.len(), 6, "{err}");
        let text = err.to_string();
        for name in [
            "BATCH_SIZE",
            "BATCH_INTERVAL",
            "DATABASE_URL",
            "SYMBOLS",
            "OPTION_SYMBOLS",
            "RUST_LOG",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.contains("a whole number from 1 to 100000"), "{text}");
        assert!(text.contains("put the user name in the URL"), "{text}");
        assert!(text.contains("21-character"), "{text}");
    }

    #[test]
    fn secrets_are_redacted_from_debug_and_errors() {
        let cfg = from(&[(
            "DATABASE_URL",
            "postgres://postgres.ref:s3cr3t@host:5432/postgres",
        )])
        .expect("valid");
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("postgres.ref:***@host"), "{debug}");
        let err = from(&[("DATABASE_URL", "mysql://u:s3cr3t@h/db")]).expect_err("bad scheme");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn every_variable_is_documented_in_the_readme() {
        let readme = include_str!("../README.md");
        for name in KNOWN_VARIABLES {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "{name} has no row in the README configuration table"
            );
        }
    }

    #[test]
    fn sqlite_urls_accept_both_spellings() {
        assert_eq!(
            DatabaseTarget::parse("sqlite://a/b.db"),
            Ok(DatabaseTarget::Sqlite("a/b.db".into()))
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:x.db?mode=rwc"),
            Ok(DatabaseTarget::Sqlite("x.db".into()))
        );
        assert!(DatabaseTarget::parse("sqlite://").is_err());
    }
}
