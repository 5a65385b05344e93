//! market-streamer's configuration: one validated [`Config`], read from the environment (plus
//! an optional `.env`), grouped by section.
//!
//! A leaf crate: it imports none of the service's components. Each component owns its own
//! settings struct; the service maps `Config` onto them in one place (`src/settings.rs`).
//!
//! Every variable is one entry of the list in `settings.rs`, which generates the section
//! structs, the parser and the [`SERVICE_VARIABLES`] table (name, section, default, allowed
//! values, help). The table drives the unknown-variable warning ([`unknown_dotenv_variables`])
//! and the tests that README's configuration table and `env.template` list every variable with
//! its real default, so adding a setting is one edit (plus its README row and template line,
//! which the tests print for you).
//!
//! [`Config::from_lookup`] collects *every* bad setting before failing, so an operator fixes
//! them all in one go. Secrets (the database password, also as a `?password=` parameter, and
//! `SCHWAB_CLIENT_SECRET`) never show in `Debug` or in errors.

mod database;
mod dotenv;
pub mod futures_option_symbol;
pub mod futures_symbol;
pub mod option_symbol;
mod parse;
mod secret;
mod settings;
mod symbols;
pub mod table;

use std::net::SocketAddr;

pub use database::{DatabaseTarget, redact_url_password};
pub use dotenv::{DotenvError, UnknownVariable, load_dotenv, unknown_dotenv_variables};
pub use secret::{Secret, scrub};
pub use settings::{
    BookSettings, Config, DatabaseSettings, HealthSettings, IndicatorsSettings, LoggingSettings,
    MAX_PERIOD, RealtimeSettings, RetentionSettings, SERVICE_VARIABLES, SchwabSettings,
    SimulatorSettings, SpoolSettings, SymbolSettings, WriterSettings,
};
pub use symbols::{
    parse_forex_symbols, parse_futures_option_symbols, parse_futures_symbols, parse_option_symbols,
    parse_screener_equity_keys, parse_screener_option_keys, parse_symbols, parse_symbols_or_none,
};
pub use table::{DefaultValue, Section, Variable, variable};

/// The default `HEALTH_ADDR`: loopback only, never public by default.
pub const DEFAULT_HEALTH_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Variables read by the `health_check` binary only (its own parser reads them; they are
/// listed here so README, `env.template` and the unknown-variable warning know them).
pub static HEALTH_CHECK_VARIABLES: &[Variable] = &[
    hc(
        "HEALTH_URL",
        "none",
        "`health_check` only: the service's health endpoint checked when no check flag is given, e.g. `http://127.0.0.1:8080`",
    ),
    hc(
        "SUPABASE_URL",
        "none",
        "`health_check` only: the project URL `https://<ref>.supabase.co` for the REST check",
    ),
    hc(
        "SUPABASE_KEY",
        "none",
        "`health_check` only: the publishable (`sb_publishable_…`) or legacy anon key; `SUPABASE_ANON_KEY` or `SUPABASE_PUBLISHABLE_KEY` are read too",
    ),
    hc(
        "HEALTH_WARN_AFTER",
        "`120`",
        "`health_check` only: seconds of open market since a symbol's newest row before WARNING",
    ),
    hc(
        "HEALTH_CRITICAL_AFTER",
        "`600`",
        "`health_check` only: seconds of open market since a symbol's newest row before CRITICAL",
    ),
    hc(
        "HEALTH_TIMEOUT",
        "`10`",
        "`health_check` only: seconds each check may take",
    ),
];

/// Further variables `health_check` reads that have no row of their own in README's table:
/// older names of `SUPABASE_KEY` (explained in its row) and the `NO_COLOR` convention.
pub const HEALTH_CHECK_ALSO_READS: &[&str] =
    &["SUPABASE_ANON_KEY", "SUPABASE_PUBLISHABLE_KEY", "NO_COLOR"];

const fn hc(name: &'static str, shown: &'static str, help: &'static str) -> Variable {
    Variable {
        name,
        section: Section::HealthCheck,
        default: DefaultValue { value: None, shown },
        allowed: "see `health_check --help`",
        help,
    }
}

/// Every variable of the table: the service's, then `health_check`'s.
pub fn all_variables() -> impl Iterator<Item = &'static Variable> {
    SERVICE_VARIABLES.iter().chain(HEALTH_CHECK_VARIABLES)
}

/// Variables whose empty value is a value rather than "use the default".
const EMPTY_IS_A_VALUE: &[&str] = &[
    "OPTION_SYMBOLS",
    "FUTURES_SYMBOLS",
    "FUTURES_OPTION_SYMBOLS",
    "FOREX_SYMBOLS",
    "NYSE_BOOK_SYMBOLS",
    "NASDAQ_BOOK_SYMBOLS",
    "OPTIONS_BOOK_SYMBOLS",
    "SCREENER_EQUITY_KEYS",
    "SCREENER_OPTION_KEYS",
];

/// Where the stream comes from (`SCHWAB_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchwabMode {
    /// The built-in Schwab simulator, started in process on loopback (zero-configuration demo).
    #[default]
    Simulated,
    /// The real Schwab API (or any server at `SCHWAB_API_BASE` / `SCHWAB_AUTH_BASE`).
    Live,
}

/// Where the OAuth tokens are kept (`TOKEN_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStoreKind {
    /// A JSON file (`TOKEN_FILE`), written atomically with mode 0600.
    File,
    /// The `schwab_tokens` table of `DATABASE_URL`.
    Database,
}

/// How the front end is fed live updates through Supabase Realtime (`REALTIME_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealtimeMode {
    /// `latest_quotes` is in the `supabase_realtime` publication (postgres_changes).
    PostgresChanges,
    /// At most one aggregated message per `REALTIME_INTERVAL` through `realtime.send` on a
    /// public topic.
    Broadcast,
    /// Both of the above.
    Both,
    /// Neither; `latest_quotes` is taken out of the publication.
    Off,
}

impl RealtimeMode {
    /// Parses `postgres_changes | broadcast | both | off`.
    pub fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "postgres_changes" => Some(Self::PostgresChanges),
            "broadcast" => Some(Self::Broadcast),
            "both" => Some(Self::Both),
            "off" | "none" => Some(Self::Off),
            _ => None,
        }
    }

    /// True when `latest_quotes` should be in the `supabase_realtime` publication.
    pub fn postgres_changes(self) -> bool {
        matches!(self, Self::PostgresChanges | Self::Both)
    }

    /// True when the newest quotes are broadcast (one aggregated message per
    /// `REALTIME_INTERVAL`).
    pub fn broadcast(self) -> bool {
        matches!(self, Self::Broadcast | Self::Both)
    }

    /// The mode as written in `REALTIME_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostgresChanges => "postgres_changes",
            Self::Broadcast => "broadcast",
            Self::Both => "both",
            Self::Off => "off",
        }
    }
}

/// The Supabase plan whose Realtime quotas the message budget is judged against
/// (`REALTIME_PLAN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealtimePlan {
    Free,
    /// Pro with the spend cap on (the default for Pro projects).
    Pro,
    /// Pro with the spend cap off (higher rate limits; messages past the quota are billed).
    ProNoSpendCap,
    Team,
    Enterprise,
}

impl RealtimePlan {
    /// Parses `free | pro | pro_no_spend_cap | team | enterprise`.
    pub fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "free" => Some(Self::Free),
            "pro" => Some(Self::Pro),
            "pro_no_spend_cap" => Some(Self::ProNoSpendCap),
            "team" => Some(Self::Team),
            "enterprise" => Some(Self::Enterprise),
            _ => None,
        }
    }

    /// The plan as written in `REALTIME_PLAN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::ProNoSpendCap => "pro_no_spend_cap",
            Self::Team => "team",
            Self::Enterprise => "enterprise",
        }
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

impl Default for Config {
    /// The documented defaults (every variable unset).
    fn default() -> Self {
        Self::from_lookup(|_| None).expect("the defaults are valid")
    }
}

impl Config {
    /// Reads the process environment. Call [`load_dotenv`] first to merge a `.env` file.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds and validates the config from any variable source (tests pass a map).
    /// Unset and empty variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_with(lookup, |_, _| {})
    }

    /// [`from_lookup`](Self::from_lookup), plus `more_checks` (rules owned by a component,
    /// e.g. the indicators' warm-up bound), whose problems are reported with the others. It
    /// sees every valid value, and the default in place of each bad one.
    pub fn from_lookup_with(
        lookup: impl Fn(&str) -> Option<String>,
        more_checks: impl FnOnce(&Config, &mut Vec<String>),
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name).filter(|v| !v.trim().is_empty() || EMPTY_IS_A_VALUE.contains(&name))
        };
        let mut problems = Vec::new();
        let mut cfg = Self::parse_each(&get, &mut problems);
        cfg.resolve(&get, &mut problems);
        more_checks(&cfg, &mut problems);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Defaults that follow other settings, and rules between variables.
    fn resolve(&mut self, get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) {
        let w = &self.writer;
        if w.buffer_max_rows < w.batch_size {
            problems.push(format!(
                "BUFFER_MAX_ROWS ({}) is smaller than BATCH_SIZE ({}); allowed: at least BATCH_SIZE",
                w.buffer_max_rows, w.batch_size
            ));
        }
        if self.symbols.charts.is_empty() {
            self.symbols.charts = self.symbols.equities.clone();
        }
        // Unset or empty follows FUTURES_SYMBOLS; `none` (an empty list) is kept.
        if get("FUTURES_CHART_SYMBOLS").is_none() {
            self.symbols.futures_charts = self.symbols.futures.clone();
        }
        let s = &mut self.schwab;
        if get("SCHWAB_MODE").is_none() && s.client_id.is_some() {
            s.mode = SchwabMode::Live;
        }
        if s.mode == SchwabMode::Live {
            if s.client_id.is_none() {
                problems.push(
                    "SCHWAB_CLIENT_ID is missing; allowed: the App Key from your app's page on developer.schwab.com (or SCHWAB_MODE=simulated)"
                        .to_string(),
                );
            }
            if s.client_secret.is_none() {
                problems.push(
                    "SCHWAB_CLIENT_SECRET is missing; allowed: the Secret from your app's page on developer.schwab.com"
                        .to_string(),
                );
            }
        }
        if s.reconnect_backoff_max < s.reconnect_backoff_min {
            problems.push(format!(
                "RECONNECT_BACKOFF_MAX ({:?}) is below RECONNECT_BACKOFF_MIN ({:?}); allowed: at least RECONNECT_BACKOFF_MIN",
                s.reconnect_backoff_max, s.reconnect_backoff_min
            ));
        }
        let r = &self.retention;
        if r.db_size_guard_target_percent >= r.db_size_guard_percent {
            problems.push(format!(
                "DB_SIZE_GUARD_TARGET_PERCENT ({}) must be below DB_SIZE_GUARD_PERCENT ({}); allowed: target < guard, e.g. 75 and 90",
                r.db_size_guard_target_percent, r.db_size_guard_percent
            ));
        }
        let i = &self.indicators;
        if i.ema_fast_period >= i.ema_slow_period {
            problems.push(format!(
                "EMA_FAST_PERIOD ({}) must be shorter than EMA_SLOW_PERIOD ({}); allowed: fast < slow, e.g. 9 and 21",
                i.ema_fast_period, i.ema_slow_period
            ));
        }
        if i.macd_fast >= i.macd_slow {
            problems.push(format!(
                "MACD_FAST ({}) must be shorter than MACD_SLOW ({}); allowed: fast < slow, e.g. 12 and 26",
                i.macd_fast, i.macd_slow
            ));
        }
    }
}

#[cfg(test)]
mod tests;
