//! Per-symbol freshness: the newest row of each symbol judged with the market calendar
//! (regular-session time since the row against the thresholds; see
//! [`market_calendar::freshness`]). A newest row dated more than [`FUTURE_ALLOWANCE`] after
//! now is a WARNING saying how far ahead it is, never fresh: a clock is wrong (Schwab's, the
//! service's or this machine's), and such a row would hide a stalled stream.

use chrono::{DateTime, Utc};
use market_calendar::{FreshnessThresholds, judge_freshness};

use crate::level::Level;
use crate::report::{SymbolResult, human, instant};

/// How far in the future a newest row may lie before it is a WARNING: clocks of two
/// NTP-synchronised machines agree far better than this.
pub const FUTURE_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The newest row found for one symbol: its event time and the table it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Newest {
    pub at: DateTime<Utc>,
    pub source: &'static str,
}

/// Judges every symbol's newest row (`None`: the symbol has no row at all, CRITICAL).
pub fn judge_symbols(
    found: Vec<(String, Option<Newest>)>,
    now: DateTime<Utc>,
    thresholds: &FreshnessThresholds,
) -> Vec<SymbolResult> {
    found
        .into_iter()
        .map(|(symbol, newest)| judge_one(symbol, newest, now, thresholds))
        .collect()
}

fn judge_one(
    symbol: String,
    newest: Option<Newest>,
    now: DateTime<Utc>,
    thresholds: &FreshnessThresholds,
) -> SymbolResult {
    let Some(newest) = newest else {
        return SymbolResult {
            symbol,
            status: Level::Critical,
            newest: None,
            age_secs: None,
            open_market_secs: None,
            source: None,
            message:
                "no rows: the service has not written this symbol (is it in the service's SYMBOLS?)"
                    .into(),
        };
    };
    if let Ok(ahead) = (newest.at - now).to_std()
        && ahead > FUTURE_ALLOWANCE
    {
        return SymbolResult {
            symbol,
            status: Level::Warning,
            newest: Some(newest.at),
            age_secs: Some(-ahead.as_secs_f64()),
            open_market_secs: None,
            source: Some(newest.source),
            message: format!(
                "newest {} is {} in the future: a clock is wrong (Schwab's, the service's or this machine's), so freshness cannot be judged; check NTP on the service's box and here (timedatectl status)",
                instant(newest.at),
                human(ahead)
            ),
        };
    }
    let v = judge_freshness(now, newest.at, thresholds);
    let status = Level::from(v.level);
    let mut message = format!("newest {}, {} ago", instant(newest.at), human(v.age));
    if status != Level::Ok {
        message.push_str(&format!(
            "; {} of open market since (warning after {}, critical after {})",
            human(v.open_time_since),
            human(thresholds.warn_after),
            human(thresholds.critical_after)
        ));
    } else if !v.market_open && v.age > thresholds.warn_after {
        message.push_str(" (market closed since; not stale)");
    }
    SymbolResult {
        symbol,
        status,
        newest: Some(newest.at),
        age_secs: Some(v.age.as_secs_f64()),
        open_market_secs: Some(v.open_time_since.as_secs_f64()),
        source: Some(newest.source),
        message,
    }
}

/// The worst level of the symbols and a one-line count, e.g. `5 symbols: 4 ok, 1 warning`.
pub fn summarize(symbols: &[SymbolResult]) -> (Level, String) {
    let level = Level::worst_of(symbols.iter().map(|s| s.status));
    let count = |l: Level| symbols.iter().filter(|s| s.status == l).count();
    let parts: Vec<String> = [Level::Ok, Level::Warning, Level::Critical, Level::Unknown]
        .into_iter()
        .filter(|l| count(*l) > 0)
        .map(|l| format!("{} {}", count(l), l.label().to_lowercase()))
        .collect();
    let noun = if symbols.len() == 1 {
        "symbol"
    } else {
        "symbols"
    };
    (
        level,
        format!("{} {noun}: {}", symbols.len(), parts.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn symbols_are_judged_and_counted() {
        let th = FreshnessThresholds {
            warn_after: Duration::from_secs(120),
            critical_after: Duration::from_secs(600),
        };
        let now = at(2025, 1, 8, 15, 0); // 10:00 EST, market open
        let newest = |t| {
            Some(Newest {
                at: t,
                source: "latest_quotes",
            })
        };
        let out = judge_symbols(
            vec![
                ("AAPL".into(), newest(at(2025, 1, 8, 14, 59))),
                ("MSFT".into(), newest(at(2025, 1, 8, 14, 55))),
                ("NVDA".into(), None),
            ],
            now,
            &th,
        );
        assert_eq!(
            out.iter().map(|s| s.status).collect::<Vec<_>>(),
            [Level::Ok, Level::Warning, Level::Critical]
        );
        assert_eq!(out[0].message, "newest 2025-01-08T14:59:00Z, 1 min ago");
        assert!(
            out[1].message.contains(
                "5 min of open market since (warning after 2 min, critical after 10 min)"
            )
        );
        assert_eq!(
            summarize(&out),
            (
                Level::Critical,
                "3 symbols: 1 ok, 1 warning, 1 critical".into()
            )
        );
        // A row in the future is never fresh.
        let future = judge_symbols(
            vec![
                ("AAPL".into(), newest(at(2025, 1, 8, 15, 10))),
                ("MSFT".into(), newest(now + chrono::TimeDelta::seconds(3))),
            ],
            now,
            &th,
        );
        assert_eq!(future[0].status, Level::Warning);
        assert!(
            future[0]
                .message
                .starts_with("newest 2025-01-08T15:10:00Z is 10 min in the future"),
            "{}",
            future[0].message
        );
        assert_eq!(future[0].age_secs, Some(-600.0));
        assert_eq!(future[1].status, Level::Ok, "within the allowance");
        // Saturday: Friday's last minute is fine and says why.
        let weekend = judge_symbols(
            vec![("AAPL".into(), newest(at(2025, 1, 10, 20, 59)))],
            at(2025, 1, 11, 12, 0),
            &th,
        );
        assert_eq!(weekend[0].status, Level::Ok);
        assert!(
            weekend[0]
                .message
                .ends_with("(market closed since; not stale)")
        );
    }
}
