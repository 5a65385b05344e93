//! Freshness judged against market hours: silence is only an error while the market is open.
//!
//! The measure is **regular-session time since the newest row**: data is stale when more than
//! a threshold of open market has passed since it, not merely more wall-clock time. So at
//! 10:00 a quote from 09:50 is ten minutes stale; on Monday at 08:00 a quote from Friday
//! 15:59 is one minute stale (the session's last minute), and the same on a holiday or
//! overnight; 30 seconds after the open a quote from last night is 30 seconds stale.
//! Outside the regular session data may therefore be as old as the last close plus the
//! threshold, which is what the service's `/health` and the `health_check` binary expect.
//!
//! Pre- and post-market trading is not required: thinly traded symbols are often silent then.

use std::time::Duration;

use chrono::{DateTime, Days, TimeDelta, Utc};
use serde::Serialize;

use super::session::{is_open, new_york_date, session_on};

/// How far back regular-session time is counted (about ten years of days).
const LOOKBACK_DAYS: u64 = 3700;

/// Regular-session time within `[from, to)`; zero when `to` is not after `from`. Counts at
/// most [`LOOKBACK_DAYS`] days back from `to`.
pub fn open_time_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    if to <= from {
        return Duration::ZERO;
    }
    let last = new_york_date(to);
    let earliest = last
        .checked_sub_days(Days::new(LOOKBACK_DAYS))
        .unwrap_or(last);
    let mut day = new_york_date(from).max(earliest);
    let mut total = TimeDelta::zero();
    while day <= last {
        if let Some(s) = session_on(day) {
            let start = s.open.max(from);
            let end = s.close.min(to);
            if end > start {
                total += end - start;
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    total.to_std().unwrap_or_default()
}

/// The instant before which data is stale at `now`: exactly `threshold` of regular-session
/// time lies between it and `now`. `None` when that much open time does not exist within
/// about ten years before `now` (then nothing counts as stale).
pub fn stale_before(now: DateTime<Utc>, threshold: Duration) -> Option<DateTime<Utc>> {
    let mut remaining = TimeDelta::from_std(threshold).ok()?;
    if remaining.is_zero() {
        return Some(now);
    }
    let today = new_york_date(now);
    for back in 0..=LOOKBACK_DAYS {
        let Some(day) = today.checked_sub_days(Days::new(back)) else {
            break;
        };
        let Some(s) = session_on(day) else { continue };
        let end = s.close.min(now);
        if end <= s.open {
            continue;
        }
        let length = end - s.open;
        if length >= remaining {
            return Some(end - remaining);
        }
        remaining -= length;
    }
    None
}

/// How old the newest data may be at `now` for a feed that must deliver at least every
/// `threshold` while the market is open: `threshold` during the regular session (more in
/// its first `threshold`, which reaches back before the open), and outside it the time
/// since the last close plus `threshold`. `None`: no age is too old (see [`stale_before`]).
pub fn expected_max_age(now: DateTime<Utc>, threshold: Duration) -> Option<Duration> {
    stale_before(now, threshold).map(|t| (now - t).to_std().unwrap_or_default())
}

/// True when silence is an error right now (the regular session is running).
pub fn silence_is_error(now: DateTime<Utc>) -> bool {
    is_open(now)
}

/// How fresh data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// At most `warn_after` of open market since the newest row.
    Fresh,
    /// More than `warn_after`, at most `critical_after`.
    Warning,
    /// More than `critical_after` of open market since the newest row.
    Critical,
}

/// The two staleness thresholds, in regular-session time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessThresholds {
    /// Warn when more open-market time than this passed since the newest row.
    pub warn_after: Duration,
    /// Critical when more open-market time than this passed since the newest row.
    pub critical_after: Duration,
}

/// The judgement of one newest-row time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessVerdict {
    /// Fresh, warning or critical.
    pub level: Freshness,
    /// Wall-clock age of the newest row (zero if it is in the future).
    pub age: Duration,
    /// Regular-session time since the newest row: what the thresholds are compared with.
    pub open_time_since: Duration,
    /// Whether the regular session is running at the judged instant.
    pub market_open: bool,
}

/// Judges the age of the newest row (`newest`) at `now`.
pub fn judge_freshness(
    now: DateTime<Utc>,
    newest: DateTime<Utc>,
    thresholds: &FreshnessThresholds,
) -> FreshnessVerdict {
    let open_time_since = open_time_between(newest, now);
    let level = if open_time_since > thresholds.critical_after {
        Freshness::Critical
    } else if open_time_since > thresholds.warn_after {
        Freshness::Warning
    } else {
        Freshness::Fresh
    };
    FreshnessVerdict {
        level,
        age: (now - newest).to_std().unwrap_or_default(),
        open_time_since,
        market_open: is_open(now),
    }
}
