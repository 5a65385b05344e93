//! Trading sessions in New York time and the market phase at any UTC instant.
//!
//! On a trading day: pre-market 04:00–09:30, regular 09:30–16:00 (13:00 on early-close
//! days), post-market until 20:00 (17:00 on early-close days). Weekends, holidays and the
//! night are [`Phase::Closed`]. Every boundary is a New York wall-clock time, so daylight
//! saving is followed (none of them falls in the 02:00–03:00 transition hour).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use serde::Serialize;

use super::holidays::{early_close, holiday, is_weekend};

/// Longest run of days searched for the next or previous session. The longest closure in
/// the exchange's modern history (September 2001) spans 6 days with its weekend.
const SEARCH_DAYS: u64 = 30;

/// Where the US equity market is in its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Weekend, holiday, or outside 04:00–20:00 New York time.
    Closed,
    /// 04:00–09:30 on a trading day.
    PreMarket,
    /// 09:30–16:00 (13:00 on early-close days): the regular session.
    Regular,
    /// From the close until 20:00 (17:00 on early-close days).
    PostMarket,
}

impl Phase {
    /// The phase as written in reports and JSON (`closed`, `pre_market`, `regular`, `post_market`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::PreMarket => "pre_market",
            Self::Regular => "regular",
            Self::PostMarket => "post_market",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One trading day's session boundaries, as UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TradingSession {
    /// The New York calendar date of the session.
    pub date: NaiveDate,
    /// 04:00 New York: pre-market opens.
    pub pre_market_open: DateTime<Utc>,
    /// 09:30 New York: the regular session opens.
    pub open: DateTime<Utc>,
    /// 16:00 New York, or 13:00 on an early-close day: the regular session closes.
    pub close: DateTime<Utc>,
    /// 20:00 New York, or 17:00 on an early-close day: post-market ends.
    pub post_market_close: DateTime<Utc>,
    /// Why the session closes at 13:00, on early-close days.
    pub early_close: Option<&'static str>,
}

/// The UTC instant of `hour:minute` New York time on `date`.
fn new_york_instant(date: NaiveDate, hour: u32, minute: u32) -> Option<DateTime<Utc>> {
    let local = date.and_time(NaiveTime::from_hms_opt(hour, minute, 0)?);
    New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The New York calendar date at `now`.
pub fn new_york_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&New_York).date_naive()
}

/// The session on `date` (a New York date), or `None` on weekends and full closures.
pub fn session_on(date: NaiveDate) -> Option<TradingSession> {
    if is_weekend(date) || holiday(date).is_some() {
        return None;
    }
    let early = early_close(date);
    let (close_hour, post_hour) = if early.is_some() { (13, 17) } else { (16, 20) };
    Some(TradingSession {
        date,
        pre_market_open: new_york_instant(date, 4, 0)?,
        open: new_york_instant(date, 9, 30)?,
        close: new_york_instant(date, close_hour, 0)?,
        post_market_close: new_york_instant(date, post_hour, 0)?,
        early_close: early,
    })
}

/// The phase of the market at `now`.
pub fn phase_at(now: DateTime<Utc>) -> Phase {
    match session_on(new_york_date(now)) {
        None => Phase::Closed,
        Some(s) if now < s.pre_market_open => Phase::Closed,
        Some(s) if now < s.open => Phase::PreMarket,
        Some(s) if now < s.close => Phase::Regular,
        Some(s) if now < s.post_market_close => Phase::PostMarket,
        Some(_) => Phase::Closed,
    }
}

/// True during the regular session.
pub fn is_open(now: DateTime<Utc>) -> bool {
    phase_at(now) == Phase::Regular
}

/// Sessions on the New York dates from `now`'s date going forward (`forward`) or backward,
/// at most [`SEARCH_DAYS`] days.
fn sessions_around(now: DateTime<Utc>, forward: bool) -> impl Iterator<Item = TradingSession> {
    let today = new_york_date(now);
    (0..SEARCH_DAYS)
        .map_while(move |n| {
            if forward {
                today.checked_add_days(Days::new(n))
            } else {
                today.checked_sub_days(Days::new(n))
            }
        })
        .filter_map(session_on)
}

/// The next regular-session open strictly after `now` (`None` only at the edge of the
/// representable dates).
pub fn next_open(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    sessions_around(now, true)
        .map(|s| s.open)
        .find(|open| *open > now)
}

/// The most recent regular-session close at or before `now`.
pub fn last_close(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    sessions_around(now, false)
        .map(|s| s.close)
        .find(|close| *close <= now)
}

/// Today's session (New York date of `now`), if the exchange trades today.
pub fn session_today(now: DateTime<Utc>) -> Option<TradingSession> {
    session_on(new_york_date(now))
}

/// A snapshot of the market at one instant, for health reports (`/health`, `health_check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketStatus {
    /// The instant described.
    pub at: DateTime<Utc>,
    /// The phase at `at`.
    pub phase: Phase,
    /// True during the regular session.
    pub open: bool,
    /// The New York calendar date at `at`.
    pub new_york_date: NaiveDate,
    /// Why there is no session today: `weekend` or the holiday's name.
    pub closed_reason: Option<&'static str>,
    /// Why today's session closes at 13:00, on early-close days.
    pub early_close: Option<&'static str>,
    /// Today's regular close, on trading days.
    pub closes_at: Option<DateTime<Utc>>,
    /// The next regular open strictly after `at`.
    pub next_open: Option<DateTime<Utc>>,
    /// The most recent regular close at or before `at`.
    pub last_close: Option<DateTime<Utc>>,
}

impl MarketStatus {
    /// Describes the market at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        let date = new_york_date(now);
        let today = session_on(date);
        let closed_reason = if is_weekend(date) {
            Some("weekend")
        } else {
            holiday(date)
        };
        let phase = phase_at(now);
        Self {
            at: now,
            phase,
            open: phase == Phase::Regular,
            new_york_date: date,
            closed_reason,
            early_close: today.and_then(|s| s.early_close),
            closes_at: today.map(|s| s.close),
            next_open: next_open(now),
            last_close: last_close(now),
        }
    }

    /// One human line, e.g. `regular session, closes 13:00 ET (day after Thanksgiving)` or
    /// `closed (Good Friday), opens Mon 2025-04-21 09:30 ET`.
    pub fn summary(&self) -> String {
        let et = |t: DateTime<Utc>| t.with_timezone(&New_York);
        let opens = self
            .next_open
            .map(|t| format!(", opens {}", et(t).format("%a %Y-%m-%d %H:%M ET")))
            .unwrap_or_default();
        let early = self
            .early_close
            .map(|why| format!(" (early close: {why})"))
            .unwrap_or_default();
        match (self.phase, self.closed_reason) {
            (Phase::Regular, _) => format!(
                "market open, regular session until {} ET{early}",
                self.closes_at
                    .map(|t| et(t).format("%H:%M").to_string())
                    .unwrap_or_else(|| "the close".into())
            ),
            (Phase::PreMarket, _) => format!("market closed (pre-market){opens}{early}"),
            (Phase::PostMarket, _) => format!("market closed (post-market){opens}"),
            (Phase::Closed, Some(why)) => format!("market closed ({why}){opens}"),
            (Phase::Closed, None) => format!("market closed (overnight){opens}"),
        }
    }
}
