//! What a run found, and how it is printed: a short text report (one line per check and per
//! symbol, the first line a monitoring-plugin style summary) or one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use market_calendar::{FreshnessThresholds, MarketStatus};
use serde::Serialize;

use crate::level::Level;

/// Which check produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// The service's `/health` endpoint (`--url`).
    Service,
    /// PostgreSQL or SQLite, read directly (`--database-url`).
    Database,
    /// Supabase's REST API (`--supabase-url`).
    Supabase,
}

impl CheckKind {
    /// The check's name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Database => "database",
            Self::Supabase => "supabase",
        }
    }
}

/// The freshness of one symbol's newest row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SymbolResult {
    pub symbol: String,
    pub status: Level,
    /// Event time of the newest row, if there is one.
    pub newest: Option<DateTime<Utc>>,
    /// Wall-clock age of the newest row (negative: it lies in the future).
    pub age_secs: Option<f64>,
    /// Regular-session time since the newest row: what the thresholds apply to.
    pub open_market_secs: Option<f64>,
    /// Where the newest row was found (`latest_quotes` or `equity_data`).
    pub source: Option<&'static str>,
    pub message: String,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub check: CheckKind,
    /// What was checked, with any password redacted.
    pub target: String,
    pub status: Level,
    pub message: String,
    pub elapsed_ms: u64,
    /// Per-symbol freshness (database and Supabase checks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<SymbolResult>,
    /// The service's `/health` body as received (service check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
}

impl CheckResult {
    /// A result without symbols or response body.
    pub fn new(check: CheckKind, target: String, status: Level, message: String) -> Self {
        Self {
            check,
            target,
            status,
            message,
            elapsed_ms: 0,
            symbols: Vec::new(),
            response: None,
        }
    }
}

/// The thresholds as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdsOut {
    pub warn_after_secs: f64,
    pub critical_after_secs: f64,
}

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub status: Level,
    pub exit_code: u8,
    pub summary: String,
    pub checked_at: DateTime<Utc>,
    pub market: MarketStatus,
    pub thresholds: ThresholdsOut,
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// Builds the report; the overall status is the worst of the checks'.
    pub fn new(
        checks: Vec<CheckResult>,
        now: DateTime<Utc>,
        thresholds: &FreshnessThresholds,
    ) -> Self {
        let market = MarketStatus::at(now);
        let status = Level::worst_of(checks.iter().map(|c| c.status));
        let parts: Vec<String> = checks
            .iter()
            .map(|c| format!("{} {}", c.check.name(), c.status.label().to_lowercase()))
            .collect();
        let summary = format!("{}; {}", parts.join(", "), market.summary());
        Self {
            status,
            exit_code: status.exit_code(),
            summary,
            checked_at: now,
            market,
            thresholds: ThresholdsOut {
                warn_after_secs: thresholds.warn_after.as_secs_f64(),
                critical_after_secs: thresholds.critical_after.as_secs_f64(),
            },
            checks,
        }
    }

    /// A report for a run that could not check anything (UNKNOWN).
    pub fn unknown(message: String, now: DateTime<Utc>, thresholds: &FreshnessThresholds) -> Self {
        let mut report = Self::new(Vec::new(), now, thresholds);
        report.status = Level::Unknown;
        report.exit_code = Level::Unknown.exit_code();
        report.summary = message;
        report
    }

    /// The JSON form (`--json`), one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"status":"unknown","exit_code":3,"summary":"cannot encode the report: {e}"}}"#
            )
        })
    }

    /// The text form: a summary line, then one line per check and per symbol.
    pub fn render_text(&self, colour: bool) -> String {
        let paint = |level: Level| paint(level, colour);
        let mut out = format!("{}: {}\n", paint(self.status), self.summary);
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{}  {:<9} {}: {}",
                pad(paint(c.status), c.status),
                c.check.name(),
                c.target,
                c.message
            );
            for s in &c.symbols {
                let _ = writeln!(
                    out,
                    "{}    {:<7} {}",
                    pad(paint(s.status), s.status),
                    s.symbol,
                    s.message
                );
            }
        }
        out
    }
}

/// The level's label, in colour when asked (OK green, WARNING yellow, CRITICAL bold red,
/// UNKNOWN magenta).
fn paint(level: Level, colour: bool) -> String {
    if !colour {
        return level.label().to_string();
    }
    let code = match level {
        Level::Ok => "32",
        Level::Warning => "33",
        Level::Critical => "1;31",
        Level::Unknown => "35",
    };
    format!("\x1b[{code}m{}\x1b[0m", level.label())
}

/// Pads a (possibly coloured) label to the width of the longest plain one.
fn pad(painted: String, level: Level) -> String {
    let fill = "CRITICAL".len().saturating_sub(level.label().len());
    format!("{painted}{}", " ".repeat(fill))
}

/// A short human duration: `42.0 s`, `3 min 5 s`, `2 min`, `2 h 10 min`, `3 d 4 h`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match s {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => pair(s / 60, "min", s % 60, "s"),
        3600..86_400 => pair(s / 3600, "h", s % 3600 / 60, "min"),
        _ => pair(s / 86_400, "d", s % 86_400 / 3600, "h"),
    }
}

/// An instant as `2025-01-08T14:59:30Z`.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(400)), "0.4 s");
        assert_eq!(human(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(human(Duration::from_secs(120)), "2 min");
        assert_eq!(human(Duration::from_secs(86_400)), "1 d");
        assert_eq!(human(Duration::from_secs(7800)), "2 h 10 min");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3 d 4 h");
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(paint(Level::Warning, false), "WARNING");
        assert_eq!(paint(Level::Ok, true), "\x1b[32mOK\x1b[0m");
        assert_eq!(
            pad(paint(Level::Ok, true), Level::Ok),
            "\x1b[32mOK\x1b[0m      "
        );
    }
}
