//! Command-line flags and their defaults from the environment (and `.env`, read like the
//! service reads it: the real environment wins).
//!
//! Checks: `--url`, `--database-url`, `--supabase-url` (+ key). When none of the three is
//! given on the command line, every one the environment provides runs (`HEALTH_URL`,
//! `DATABASE_URL`, `SUPABASE_URL` with `SUPABASE_KEY`); when one is given, only the given ones
//! run. The Supabase key is better kept in the environment than on a command line, where
//! other users of the machine can see it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use market_calendar::FreshnessThresholds;

/// Exit codes and examples, printed under `--help`.
const AFTER_HELP: &str = "\
Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the worst of all checks; a check that
cannot tell is UNKNOWN, one that sees data stop or cannot reach its target is CRITICAL).

Freshness counts regular-session time only (NYSE calendar, America/New_York): nights,
weekends, holidays and the hours after an early close never make data stale.

Environment (and .env) defaults: HEALTH_URL, DATABASE_URL, SUPABASE_URL, SUPABASE_KEY (or
SUPABASE_ANON_KEY / SUPABASE_PUBLISHABLE_KEY), SYMBOLS, HEALTH_WARN_AFTER,
HEALTH_CRITICAL_AFTER, HEALTH_TIMEOUT. NO_COLOR turns colour off.

Examples:
  health_check --url http://127.0.0.1:8080
  health_check --database-url postgres://postgres:PASSWORD@HOST:5432/postgres --symbols AAPL,MSFT
  SUPABASE_KEY=sb_publishable_... health_check --supabase-url https://REF.supabase.co --json";

/// When to colour the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColourChoice {
    /// When stdout is a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

/// Is market-streamer's data flowing? Checks the service's /health endpoint, the database
/// directly, or Supabase's REST API, and judges each symbol's newest row against market hours.
#[derive(Parser)]
#[command(name = "health_check", version, after_help = AFTER_HELP)]
pub struct Args {
    /// The service's health endpoint, e.g. http://127.0.0.1:8080 (`/health` is added when the
    /// URL has no path) [default: HEALTH_URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Check freshness directly in the database: postgres://USER:PASSWORD@HOST:PORT/DB or
    /// sqlite://PATH [default: DATABASE_URL]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Check freshness through Supabase's REST API: the project URL https://REF.supabase.co
    /// [default: SUPABASE_URL]
    #[arg(long, value_name = "URL")]
    pub supabase_url: Option<String>,

    /// The project's publishable (sb_publishable_...) or legacy anon key; read-only access is
    /// enough [default: SUPABASE_KEY, SUPABASE_ANON_KEY or SUPABASE_PUBLISHABLE_KEY]
    #[arg(long, value_name = "KEY")]
    pub supabase_key: Option<String>,

    /// Symbols whose freshness to check, comma-separated [default: SYMBOLS; without it, every
    /// ticker in latest_quotes]
    #[arg(long, value_name = "LIST")]
    pub symbols: Option<String>,

    /// WARNING when more than this many seconds of open market passed since a symbol's newest
    /// row [default: HEALTH_WARN_AFTER or 120]
    #[arg(long, value_name = "SECS")]
    pub warn_after: Option<String>,

    /// CRITICAL when more than this many seconds of open market passed since a symbol's newest
    /// row [default: HEALTH_CRITICAL_AFTER or 600]
    #[arg(long, value_name = "SECS")]
    pub critical_after: Option<String>,

    /// Give each check at most this many seconds [default: HEALTH_TIMEOUT or 10]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<String>,

    /// Print one JSON object (every check and symbol, status and ages) instead of text
    #[arg(long)]
    pub json: bool,

    /// Colour the text report
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColourChoice::Auto)]
    pub color: ColourChoice,

    /// Judge as if it were this instant (RFC 3339); for tests
    #[arg(long, hide = true, value_name = "RFC3339")]
    pub now: Option<String>,
}

/// Supabase's REST endpoint and key. The key never reaches output.
#[derive(Clone, PartialEq, Eq)]
pub struct SupabaseTarget {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for SupabaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupabaseTarget")
            .field("url", &self.url)
            .field("key", &"***")
            .finish()
    }
}

/// Everything the checks need, resolved from flags and environment (`--json` and `--color`
/// are read from [`Args`] directly).
#[derive(Debug, Clone)]
pub struct Settings {
    pub service_url: Option<String>,
    pub database_url: Option<String>,
    pub supabase: Option<SupabaseTarget>,
    /// `None`: every ticker found in `latest_quotes`.
    pub symbols: Option<Vec<String>>,
    pub thresholds: FreshnessThresholds,
    pub timeout: Duration,
    pub now: DateTime<Utc>,
}

/// Bad flags or settings, all of them (exit 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct UsageError {
    pub problems: Vec<String>,
}

/// What to pass when there is nothing to check.
pub const NOTHING_TO_CHECK: &str = "nothing to check: pass --url URL (the service's HEALTH_ADDR), \
--database-url URL, or --supabase-url URL with --supabase-key KEY, or set HEALTH_URL, \
DATABASE_URL, SUPABASE_URL and SUPABASE_KEY in the environment or .env";

const DEFAULT_WARN_AFTER: f64 = 120.0;
const DEFAULT_CRITICAL_AFTER: f64 = 600.0;
const DEFAULT_TIMEOUT: f64 = 10.0;
/// Longest threshold or timeout accepted: a year.
const MAX_SECONDS: f64 = 366.0 * 86_400.0;

impl Settings {
    /// Resolves `args` with `env` (variable lookup; empty values count as unset) at `now`.
    pub fn resolve(
        args: Args,
        env: impl Fn(&str) -> Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self, UsageError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();

        let explicit =
            args.url.is_some() || args.database_url.is_some() || args.supabase_url.is_some();
        let pick = |flag: Option<String>, var: &str| {
            if explicit { flag } else { env(var) }
        };
        let service_url = pick(args.url, "HEALTH_URL");
        let database_url = pick(args.database_url, "DATABASE_URL");
        let supabase_url = pick(args.supabase_url, "SUPABASE_URL");
        let supabase_key = args.supabase_key.or_else(|| {
            [
                "SUPABASE_KEY",
                "SUPABASE_ANON_KEY",
                "SUPABASE_PUBLISHABLE_KEY",
            ]
            .into_iter()
            .find_map(&env)
        });
        let supabase = match (supabase_url, supabase_key) {
            (Some(url), Some(key)) => Some(SupabaseTarget { url, key }),
            (Some(_), None) => {
                problems.push(
                    "the Supabase check needs a key: pass --supabase-key KEY or set SUPABASE_KEY \
                     (the project's publishable or anon key, from Project Settings > API Keys)"
                        .into(),
                );
                None
            }
            (None, _) => None,
        };

        let symbols = match args.symbols.or_else(|| env("SYMBOLS")) {
            None => None,
            Some(raw) => match streamer_config::parse_symbols(&raw) {
                Ok(list) => Some(list),
                Err(e) => {
                    problems.push(format!("--symbols / SYMBOLS {e}"));
                    None
                }
            },
        };

        let mut seconds = |flag: Option<String>, var: &str, name: &str, default: f64| {
            let (raw, from) = match flag {
                Some(v) => (v, format!("--{name}")),
                None => match env(var) {
                    Some(v) => (v, var.to_string()),
                    None => return Duration::from_secs_f64(default),
                },
            };
            match raw.trim().trim_end_matches('s').parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_SECONDS => Duration::from_secs_f64(v),
                _ => {
                    problems.push(format!(
                        "{from} ({raw:?}) is not valid; allowed: seconds above 0, at most a year (e.g. 120 or 0.5)"
                    ));
                    Duration::from_secs_f64(default)
                }
            }
        };
        let warn_after = seconds(
            args.warn_after,
            "HEALTH_WARN_AFTER",
            "warn-after",
            DEFAULT_WARN_AFTER,
        );
        let critical_after = seconds(
            args.critical_after,
            "HEALTH_CRITICAL_AFTER",
            "critical-after",
            DEFAULT_CRITICAL_AFTER,
        );
        let timeout = seconds(args.timeout, "HEALTH_TIMEOUT", "timeout", DEFAULT_TIMEOUT);
        if warn_after > critical_after {
            problems.push(format!(
                "the warning threshold ({} s) is above the critical one ({} s); allowed: warn-after <= critical-after",
                warn_after.as_secs_f64(),
                critical_after.as_secs_f64()
            ));
        }

        let now = match args.now {
            None => now,
            Some(raw) => match DateTime::parse_from_rfc3339(raw.trim()) {
                Ok(t) => t.with_timezone(&Utc),
                Err(e) => {
                    problems.push(format!(
                        "--now ({raw:?}) is not an RFC 3339 instant ({e}), e.g. 2025-01-08T15:00:00Z"
                    ));
                    now
                }
            },
        };

        if !problems.is_empty() {
            return Err(UsageError { problems });
        }
        Ok(Self {
            service_url,
            database_url,
            supabase,
            symbols,
            thresholds: FreshnessThresholds {
                warn_after,
                critical_after,
            },
            timeout,
            now,
        })
    }

    /// True when at least one check is selected.
    pub fn has_checks(&self) -> bool {
        self.service_url.is_some() || self.database_url.is_some() || self.supabase.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(argv: &[&str], vars: &[(&str, &str)]) -> Result<Settings, UsageError> {
        let mut full = vec!["health_check"];
        full.extend_from_slice(argv);
        let args = Args::try_parse_from(full).expect("flags parse");
        Settings::resolve(
            args,
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            },
            DateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn environment_provides_every_check_when_no_flag_selects_one() {
        let vars = [
            ("HEALTH_URL", "http://127.0.0.1:8080"),
            ("DATABASE_URL", "sqlite://data/market.db"),
            ("SUPABASE_URL", "https://abc.supabase.co"),
            ("SUPABASE_ANON_KEY", "eyJhbGciOi.legacy.jwt"),
            ("SYMBOLS", "aapl, msft"),
            ("HEALTH_WARN_AFTER", "30"),
        ];
        let s = resolve(&[], &vars).expect("valid");
        assert_eq!(s.service_url.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(s.database_url.as_deref(), Some("sqlite://data/market.db"));
        let supabase = s.supabase.expect("supabase");
        assert_eq!(supabase.key, "eyJhbGciOi.legacy.jwt");
        assert!(!format!("{supabase:?}").contains("eyJ"), "key redacted");
        assert_eq!(s.symbols, Some(vec!["AAPL".into(), "MSFT".into()]));
        assert_eq!(s.thresholds.warn_after, Duration::from_secs(30));
        assert_eq!(s.thresholds.critical_after, Duration::from_secs(600));
        assert_eq!(s.timeout, Duration::from_secs(10));

        // One explicit check: only that one, but the key still comes from the environment.
        let s = resolve(&["--supabase-url", "https://x.supabase.co"], &vars).expect("valid");
        assert!(s.service_url.is_none() && s.database_url.is_none());
        assert_eq!(
            s.supabase.map(|t| t.url),
            Some("https://x.supabase.co".into())
        );
    }

    #[test]
    fn nothing_selected_means_no_checks() {
        let s = resolve(&["--symbols", "AAPL"], &[("HEALTH_URL", " ")]).expect("valid");
        assert!(!s.has_checks());
        assert_eq!(s.now, DateTime::UNIX_EPOCH);
    }

    #[test]
    fn every_bad_value_is_reported_together() {
        let e = resolve(
            &[
                "--supabase-url",
                "https://x.supabase.co",
                "--warn-after=-1",
                "--timeout",
                "soon",
                "--symbols",
                "bad symbol!",
                "--now",
                "yesterday",
            ],
            &[],
        )
        .expect_err("invalid");
        assert_eq!(e.problems.len(), 5, "{e}");
        assert!(e.to_string().contains("--supabase-key"));
        let e = resolve(&["--warn-after", "700"], &[]).expect_err("warn above critical");
        assert!(e.to_string().contains("warn-after <= critical-after"));
    }

    #[test]
    fn hidden_now_flag_sets_the_judged_instant() {
        let s = resolve(&["--now", "2025-01-08T10:00:00-05:00"], &[]).expect("valid");
        assert_eq!(s.now.to_rfc3339(), "2025-01-08T15:00:00+00:00");
    }
}
