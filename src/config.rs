//! One validated configuration struct, read from the environment (plus an optional `.env`).
//!
//! Every default lives in [`Config::default`]; [`Config::from_lookup`] collects *every* bad
//! setting before failing, so an operator fixes them all in one go. Secrets (the database
//! password, `SCHWAB_CLIENT_SECRET`) are redacted from `Debug`. The Schwab session settings
//! live in [`SchwabConfig`] (`crate::schwab::settings`), parsed from here.
//!
//! Being replaced by the leaf crate `streamer-config` (one table of variables, sections):
//! `DatabaseTarget`, symbol lists, `.env` loading and redaction already come from there.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use streamer_config::{
    DEFAULT_HEALTH_ADDR, DatabaseTarget, RealtimeMode, load_dotenv, parse_option_symbols,
    parse_symbols, redact_url_password,
};

use crate::indicators::IndicatorSettings;
use crate::schwab::settings::{self as schwab_settings, SchwabConfig};

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
    /// `SPOOL_DIR`: the disk spool's folder (`off` disables it).
    pub spool_dir: Option<PathBuf>,
    /// `SPOOL_MAX_BYTES`: the spool's size cap (bytes; `K`, `M`, `G` suffixes allowed).
    pub spool_max_bytes: u64,
    /// `SIM_UPDATES_PER_SEC`: mean LEVELONE updates per symbol per second of the simulated market.
    pub sim_updates_per_symbol_per_sec: f64,
    /// `SIM_SEED`: seed of the simulated market (same seed, same quotes).
    pub sim_seed: u64,
    /// `RUST_LOG`: the log filter (tracing-subscriber syntax).
    pub rust_log: String,
    /// `BAR_SECONDS`, the indicator periods and `WARM_START_BARS`.
    pub indicators: IndicatorSettings,
    /// `REALTIME_MODE`: postgres_changes | broadcast | both | off.
    pub realtime_mode: RealtimeMode,
    /// `REALTIME_TOPIC`: the public Broadcast topic.
    pub realtime_topic: String,
    /// `TICK_RETENTION_DAYS`: days of equity_data / option_data kept (whole UTC days).
    pub tick_retention_days: u32,
    /// `BAR_RETENTION_DAYS`: days of equity_bars kept.
    pub bar_retention_days: u32,
    /// `PARTITION_PREMAKE_DAYS`: daily partitions created ahead of today.
    pub partition_premake_days: u32,
    /// `MAINTENANCE_INTERVAL` (seconds): how often retention and size checks run.
    pub maintenance_interval: Duration,
    /// `DB_SIZE_LIMIT_MB`: the database size to stay under (Supabase Free turns read-only past 500 MB).
    pub db_size_limit_mb: u64,
    /// `DB_SIZE_WARN_PERCENT`: warn when the database reaches this share of `DB_SIZE_LIMIT_MB`.
    pub db_size_warn_percent: u8,
    /// `HEALTH_ADDR`: where `GET /health` and `GET /metrics` listen (`off`: nowhere).
    pub health_addr: Option<SocketAddr>,
    /// `HEALTH_DB_DOWN_AFTER` (seconds): failing database writes turn `/health` from
    /// `degraded` into `down` after this long while rows wait.
    pub health_db_down_after: Duration,
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
            spool_dir: Some(PathBuf::from("data/spool")),
            spool_max_bytes: 512 * 1024 * 1024,
            sim_updates_per_symbol_per_sec: 1.0,
            sim_seed: 42,
            rust_log: "info".to_string(),
            indicators: IndicatorSettings::default(),
            realtime_mode: RealtimeMode::Broadcast,
            realtime_topic: "market:quotes".to_string(),
            tick_retention_days: 7,
            bar_retention_days: 365,
            partition_premake_days: 3,
            maintenance_interval: Duration::from_secs(3600),
            db_size_limit_mb: 500,
            db_size_warn_percent: 80,
            health_addr: Some(DEFAULT_HEALTH_ADDR),
            health_db_down_after: Duration::from_secs(120),
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
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .field(
                "sim_updates_per_symbol_per_sec",
                &self.sim_updates_per_symbol_per_sec,
            )
            .field("sim_seed", &self.sim_seed)
            .field("rust_log", &self.rust_log)
            .field("indicators", &self.indicators)
            .field("realtime_mode", &self.realtime_mode)
            .field("realtime_topic", &self.realtime_topic)
            .field("tick_retention_days", &self.tick_retention_days)
            .field("bar_retention_days", &self.bar_retention_days)
            .field("partition_premake_days", &self.partition_premake_days)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("db_size_limit_mb", &self.db_size_limit_mb)
            .field("db_size_warn_percent", &self.db_size_warn_percent)
            .field("health_addr", &self.health_addr)
            .field("health_db_down_after", &self.health_db_down_after)
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
    "SPOOL_DIR",
    "SPOOL_MAX_BYTES",
    "SIM_UPDATES_PER_SEC",
    "SIM_SEED",
    "RUST_LOG",
    "BAR_SECONDS",
    "SMA_PERIOD",
    "EMA_FAST_PERIOD",
    "EMA_SLOW_PERIOD",
    "RSI_PERIOD",
    "MACD_FAST",
    "MACD_SLOW",
    "MACD_SIGNAL",
    "BB_PERIOD",
    "BB_STDDEV",
    "WARM_START_BARS",
    "REALTIME_MODE",
    "REALTIME_TOPIC",
    "TICK_RETENTION_DAYS",
    "BAR_RETENTION_DAYS",
    "PARTITION_PREMAKE_DAYS",
    "MAINTENANCE_INTERVAL",
    "DB_SIZE_LIMIT_MB",
    "DB_SIZE_WARN_PERCENT",
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
    "HEALTH_ADDR",
    "HEALTH_DB_DOWN_AFTER",
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
        parse_indicator_settings(&get, &mut cfg.indicators, &mut problems);

        if let Some(v) = get("SPOOL_DIR") {
            let v = v.trim();
            cfg.spool_dir = if v.eq_ignore_ascii_case("off") {
                None
            } else {
                Some(PathBuf::from(v))
            };
        }
        if let Some(v) = get("SPOOL_MAX_BYTES") {
            match parse_bytes(&v) {
                Some(b) if (1024 * 1024..=1024 * 1024 * 1024 * 1024).contains(&b) => cfg.spool_max_bytes = b,
                _ => problems.push(format!(
                    "SPOOL_MAX_BYTES ({v:?}) is not valid; allowed: a size from 1M to 1024G, in bytes or with a K, M or G suffix (e.g. 512M)"
                )),
            }
        }
        if let Some(v) = get("REALTIME_MODE") {
            match RealtimeMode::parse(&v) {
                Some(m) => cfg.realtime_mode = m,
                None => problems.push(format!(
                    "REALTIME_MODE ({v:?}) is not valid; allowed: postgres_changes, broadcast, both, off"
                )),
            }
        }
        if let Some(v) = get("REALTIME_TOPIC") {
            let t = v.trim();
            if t.len() > 200
                || t.eq_ignore_ascii_case("realtime")
                || t.chars().any(char::is_whitespace)
            {
                problems.push(format!(
                    "REALTIME_TOPIC ({v:?}) is not valid; allowed: up to 200 characters without spaces, not \"realtime\" (e.g. market:quotes)"
                ));
            } else {
                cfg.realtime_topic = t.to_string();
            }
        }
        parse_into(
            &get,
            "TICK_RETENTION_DAYS",
            &mut cfg.tick_retention_days,
            &mut problems,
            "whole days from 1 to 3650",
            |v: u32| (1..=3650).contains(&v),
        );
        parse_into(
            &get,
            "BAR_RETENTION_DAYS",
            &mut cfg.bar_retention_days,
            &mut problems,
            "whole days from 1 to 36500",
            |v: u32| (1..=36_500).contains(&v),
        );
        parse_into(
            &get,
            "PARTITION_PREMAKE_DAYS",
            &mut cfg.partition_premake_days,
            &mut problems,
            "whole days from 1 to 60",
            |v: u32| (1..=60).contains(&v),
        );
        parse_seconds(
            &get,
            "MAINTENANCE_INTERVAL",
            &mut cfg.maintenance_interval,
            &mut problems,
            10.0,
            86_400.0,
        );
        parse_into(
            &get,
            "DB_SIZE_LIMIT_MB",
            &mut cfg.db_size_limit_mb,
            &mut problems,
            "megabytes from 50 to 100000000",
            |v: u64| (50..=100_000_000).contains(&v),
        );
        parse_into(
            &get,
            "DB_SIZE_WARN_PERCENT",
            &mut cfg.db_size_warn_percent,
            &mut problems,
            "a whole percentage from 1 to 100",
            |v: u8| (1..=100).contains(&v),
        );

        if let Some(v) = get("HEALTH_ADDR") {
            match parse_health_addr(&v) {
                Ok(addr) => cfg.health_addr = addr,
                Err(e) => problems.push(format!("HEALTH_ADDR ({v:?}): {e}")),
            }
        }
        parse_seconds(
            &get,
            "HEALTH_DB_DOWN_AFTER",
            &mut cfg.health_db_down_after,
            &mut problems,
            0.0,
            86_400.0,
        );

        schwab_settings::parse(&get, &mut cfg.schwab, &mut problems);

        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// Parses `HEALTH_ADDR`: `IP:PORT` (port 0 picks a free port) or `off`.
fn parse_health_addr(raw: &str) -> Result<Option<SocketAddr>, String> {
    let v = raw.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if let Some(port) = v.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{port:?} is not a port; allowed: IP:PORT or off"))?;
        return Ok(Some(SocketAddr::new(DEFAULT_HEALTH_ADDR.ip(), port)));
    }
    v.parse::<SocketAddr>().map(Some).map_err(|_| {
        "not an address; allowed: IP:PORT such as 127.0.0.1:8080 (loopback, the default), \
         0.0.0.0:8080 (every interface, e.g. inside a container), [::1]:8080, or off"
            .to_string()
    })
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

/// Longest indicator period accepted (bars).
const MAX_PERIOD: u32 = 1000;

/// `BAR_SECONDS`, the periods, `BB_STDDEV` and `WARM_START_BARS` (whose default follows the
/// periods, see [`IndicatorSettings::default_warm_start_bars`]).
fn parse_indicator_settings(
    get: &impl Fn(&str) -> Option<String>,
    s: &mut IndicatorSettings,
    problems: &mut Vec<String>,
) {
    parse_into(
        get,
        "BAR_SECONDS",
        &mut s.bar_seconds,
        problems,
        "a whole number of seconds that divides 3600 (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, ...), so bars never straddle New York midnight",
        |v: u32| (1..=3600).contains(&v) && 3600 % v == 0,
    );
    let period = |name: &str, slot: &mut u32, problems: &mut Vec<String>, min: u32| {
        parse_into(
            get,
            name,
            slot,
            problems,
            &format!("a whole number of bars from {min} to {MAX_PERIOD}"),
            |v: u32| (min..=MAX_PERIOD).contains(&v),
        );
    };
    period("SMA_PERIOD", &mut s.sma_period, problems, 2);
    period("EMA_FAST_PERIOD", &mut s.ema_fast_period, problems, 2);
    period("EMA_SLOW_PERIOD", &mut s.ema_slow_period, problems, 2);
    period("RSI_PERIOD", &mut s.rsi_period, problems, 2);
    period("MACD_FAST", &mut s.macd_fast, problems, 2);
    period("MACD_SLOW", &mut s.macd_slow, problems, 2);
    period("MACD_SIGNAL", &mut s.macd_signal, problems, 1);
    period("BB_PERIOD", &mut s.bb_period, problems, 2);
    parse_into(
        get,
        "BB_STDDEV",
        &mut s.bb_stddev,
        problems,
        "a number of standard deviations above 0 and at most 10, e.g. 2 or 2.5",
        |v: f64| v.is_finite() && v > 0.0 && v <= 10.0,
    );
    if s.ema_fast_period >= s.ema_slow_period {
        problems.push(format!(
            "EMA_FAST_PERIOD ({}) must be shorter than EMA_SLOW_PERIOD ({}); allowed: fast < slow, e.g. 9 and 21",
            s.ema_fast_period, s.ema_slow_period
        ));
    }
    if s.macd_fast >= s.macd_slow {
        problems.push(format!(
            "MACD_FAST ({}) must be shorter than MACD_SLOW ({}); allowed: fast < slow, e.g. 12 and 26",
            s.macd_fast, s.macd_slow
        ));
    }
    let default_bars = s.default_warm_start_bars();
    s.warm_start_bars = default_bars;
    let longest = s.warm_up_bars().longest();
    parse_into(
        get,
        "WARM_START_BARS",
        &mut s.warm_start_bars,
        problems,
        &format!(
            "0 (no warm start) or a whole number of bars from {longest} (the longest warm-up with these periods) to 1000000; the default is {default_bars}"
        ),
        |v: usize| v == 0 || (longest..=1_000_000).contains(&v),
    );
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

/// Parses `123`, `64K`, `512M`, `2G` (binary units) into bytes.
fn parse_bytes(raw: &str) -> Option<u64> {
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
    fn indicator_settings_have_documented_defaults_and_parse() {
        let cfg = from(&[]).expect("defaults");
        let s = cfg.indicators;
        assert_eq!(s.bar_seconds, 60);
        assert_eq!(
            (
                s.sma_period,
                s.ema_fast_period,
                s.ema_slow_period,
                s.rsi_period
            ),
            (20, 9, 21, 14)
        );
        assert_eq!((s.macd_fast, s.macd_slow, s.macd_signal), (12, 26, 9));
        assert_eq!((s.bb_period, s.bb_stddev), (20, 2.0));
        assert_eq!(s.warm_start_bars, 1400, "40 x (MACD_SLOW + MACD_SIGNAL)");

        let cfg = from(&[
            ("BAR_SECONDS", "300"),
            ("RSI_PERIOD", "7"),
            ("MACD_SLOW", "30"),
            ("BB_STDDEV", "2.5"),
        ])
        .expect("valid");
        assert_eq!(cfg.indicators.bar_seconds, 300);
        assert_eq!(cfg.indicators.rsi_period, 7);
        assert_eq!(cfg.indicators.bb_stddev, 2.5);
        assert_eq!(
            cfg.indicators.warm_start_bars,
            40 * 39,
            "the default follows the periods"
        );
        let off = from(&[("WARM_START_BARS", "0")]).expect("0 turns warm start off");
        assert_eq!(off.indicators.warm_start_bars, 0);
    }

    #[test]
    fn bad_indicator_settings_are_reported_together() {
        let err = from(&[
            ("BAR_SECONDS", "7"),
            ("SMA_PERIOD", "1"),
            ("EMA_FAST_PERIOD", "30"),
            ("MACD_FAST", "26"),
            ("MACD_SLOW", "12"),
            ("BB_STDDEV", "-1"),
            ("WARM_START_BARS", "10"),
            ("RSI_PERIOD", "x"),
        ])
        .expect_err("invalid");
        let text = err.to_string();
        assert_eq!(err.problems.len(), 7, "{text}");
        assert!(
            text.contains("BAR_SECONDS (\"7\")") && text.contains("divides 3600"),
            "{text}"
        );
        assert!(
            text.contains("SMA_PERIOD") && text.contains("from 2 to 1000"),
            "{text}"
        );
        assert!(
            text.contains("EMA_FAST_PERIOD (30) must be shorter than EMA_SLOW_PERIOD (21)"),
            "{text}"
        );
        assert!(
            text.contains("MACD_FAST (26) must be shorter than MACD_SLOW (12)"),
            "{text}"
        );
        assert!(text.contains("BB_STDDEV"), "{text}");
        assert!(
            text.contains("WARM_START_BARS") && text.contains("from 30 (the longest warm-up"),
            "{text}"
        );
        assert!(text.contains("RSI_PERIOD"), "{text}");
    }

    #[test]
    fn every_indicator_variable_is_known() {
        for name in [
            "BAR_SECONDS",
            "SMA_PERIOD",
            "EMA_FAST_PERIOD",
            "EMA_SLOW_PERIOD",
            "RSI_PERIOD",
            "MACD_FAST",
            "MACD_SLOW",
            "MACD_SIGNAL",
            "BB_PERIOD",
            "BB_STDDEV",
            "WARM_START_BARS",
        ] {
            assert!(KNOWN_VARIABLES.contains(&name), "{name}");
        }
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
    fn the_transaction_pooler_is_refused_with_what_to_use_instead() {
        let err = from(&[(
            "DATABASE_URL",
            "postgres://postgres.abcd:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres",
        )])
        .expect_err("port 6543");
        let text = err.to_string();
        assert!(
            text.contains("transaction pooler") && text.contains("port 5432"),
            "{text}"
        );
        assert!(!text.contains(":pw@"), "{text}");
        assert!(from(&[("DATABASE_URL", "postgres://postgres.abcd:pw@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require")]).is_ok());
        assert!(
            from(&[("DATABASE_URL", "postgres://u@[::1]:6543/db")]).is_err(),
            "IPv6 host"
        );
        assert!(from(&[("DATABASE_URL", "postgres://u@db.example:65430/db")]).is_ok());
    }

    #[test]
    fn realtime_and_retention_settings_are_validated() {
        let cfg = from(&[
            ("REALTIME_MODE", "Both"),
            ("REALTIME_TOPIC", "prices:live"),
            ("TICK_RETENTION_DAYS", "3"),
        ])
        .expect("valid");
        assert_eq!(cfg.realtime_mode, RealtimeMode::Both);
        assert_eq!(cfg.realtime_topic, "prices:live");
        assert_eq!(cfg.tick_retention_days, 3);
        let err = from(&[
            ("REALTIME_MODE", "sometimes"),
            ("REALTIME_TOPIC", "realtime"),
            ("TICK_RETENTION_DAYS", "0"),
        ])
        .expect_err("invalid");
        assert_eq!(err.problems.len(), 3, "{err}");
    }

    #[test]
    fn health_addr_defaults_to_loopback_and_can_be_turned_off() {
        let cfg = from(&[]).expect("defaults");
        assert_eq!(
            cfg.health_addr,
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(cfg.health_db_down_after, Duration::from_secs(120));
        let cfg = from(&[("HEALTH_ADDR", "OFF")]).expect("off");
        assert_eq!(cfg.health_addr, None);
        let cfg = from(&[
            ("HEALTH_ADDR", "0.0.0.0:9100"),
            ("HEALTH_DB_DOWN_AFTER", "30"),
        ])
        .expect("valid");
        assert_eq!(cfg.health_addr, Some("0.0.0.0:9100".parse().expect("addr")));
        assert_eq!(cfg.health_db_down_after, Duration::from_secs(30));
        let cfg = from(&[("HEALTH_ADDR", "localhost:0")]).expect("localhost");
        assert_eq!(cfg.health_addr, Some("127.0.0.1:0".parse().expect("addr")));
        assert_eq!(
            from(&[("HEALTH_ADDR", "[::1]:8080")])
                .expect("v6")
                .health_addr,
            Some("[::1]:8080".parse().expect("addr"))
        );
        let err =
            from(&[("HEALTH_ADDR", "8080"), ("HEALTH_DB_DOWN_AFTER", "-1")]).expect_err("invalid");
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(
            err.to_string().contains("IP:PORT such as 127.0.0.1:8080"),
            "{err}"
        );
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
