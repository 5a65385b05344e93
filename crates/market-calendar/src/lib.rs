//! The US equity market calendar (NYSE rules, America/New_York time) and freshness judged
//! against it.
//!
//! - [`holidays`]: full-day closures and 13:00 early closes computed by rule (Easter for Good
//!   Friday, weekend observance, Juneteenth from 2022) plus a table of one-off closures.
//!   The rules are those in force since 1998; tests pin 2020–2035.
//! - [`session`]: each trading day's session boundaries, the [`Phase`] at any UTC instant,
//!   the next open and the last close, and the [`MarketStatus`] snapshot for health reports.
//! - [`freshness`]: whether silence is an error now: data is judged by the regular-session
//!   time since the newest row, so nights, weekends and holidays never count as staleness.
//!
//! - [`around_the_clock`]: the near-24-hour weeks of futures and forex.
//! - [`MarketClock`]: which instant the calendar is asked about (the wall clock, or one pinned
//!   instant for tests).
//!
//! Everything here is a pure function of its arguments (no clock is read), so callers pass
//! `Utc::now()` and tests pass any instant.

pub mod around_the_clock;
pub mod freshness;
pub mod holidays;
pub mod session;

pub use around_the_clock::{forex_open, futures_open};
pub use freshness::{
    Freshness, FreshnessThresholds, FreshnessVerdict, expected_max_age, judge_freshness,
    open_time_between, silence_is_error, stale_before,
};
pub use holidays::{
    ONE_OFF_CLOSURES, early_close, easter_sunday, holiday, is_trading_day, is_weekend,
};
pub use session::{
    MarketStatus, Phase, TradingSession, is_open, last_close, new_york_date, next_open, phase_at,
    session_on, session_today,
};

/// Which instant the market calendar is judged at. Ages are always measured on the wall
/// clock; only the question "is the market open?" can be pinned (for tests that must not
/// depend on when they run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MarketClock {
    /// The real time (the service).
    #[default]
    Wall,
    /// The calendar always sees this instant.
    Fixed(chrono::DateTime<chrono::Utc>),
}

impl MarketClock {
    /// The instant the calendar is asked about when the wall clock says `now`.
    pub fn market_now(self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self {
            Self::Wall => now,
            Self::Fixed(at) => at,
        }
    }
}

#[cfg(test)]
mod tests;
