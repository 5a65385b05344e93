//! The near-24-hour weeks of futures and forex (America/New_York): CME Globex equity-index
//! and most other futures trade Sunday 18:00 to Friday 17:00 with a daily pause from 17:00 to
//! 18:00; spot forex trades Sunday 17:00 to Friday 17:00 without a pause. Exchange holidays
//! are not modelled (a holiday counts as open).

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::America::New_York;

/// True while futures trade at `now` (Sunday 18:00 – Friday 17:00 New York, except
/// 17:00–18:00 on Monday to Thursday).
pub fn futures_open(now: DateTime<Utc>) -> bool {
    let ny = now.with_timezone(&New_York);
    let hour = ny.hour();
    match ny.weekday() {
        Weekday::Sat => false,
        Weekday::Sun => hour >= 18,
        Weekday::Fri => hour < 17,
        _ => hour != 17,
    }
}

/// True while spot forex trades at `now` (Sunday 17:00 – Friday 17:00 New York).
pub fn forex_open(now: DateTime<Utc>) -> bool {
    let ny = now.with_timezone(&New_York);
    let hour = ny.hour();
    match ny.weekday() {
        Weekday::Sat => false,
        Weekday::Sun => hour >= 17,
        Weekday::Fri => hour < 17,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn futures_and_forex_weeks() {
        // 2026-12-02 is a Wednesday; New York is UTC-5 in December.
        assert!(futures_open(at("2026-12-02T15:00:00Z")));
        assert!(!futures_open(at("2026-12-02T22:30:00Z")), "17:30 pause");
        assert!(futures_open(at("2026-12-02T23:30:00Z")), "18:30 again");
        assert!(forex_open(at("2026-12-02T22:30:00Z")), "forex has no pause");
        assert!(!futures_open(at("2026-12-05T15:00:00Z")), "Saturday");
        assert!(!futures_open(at("2026-12-06T22:30:00Z")), "Sunday 17:30");
        assert!(forex_open(at("2026-12-06T22:30:00Z")), "Sunday 17:30 forex");
        assert!(futures_open(at("2026-12-06T23:30:00Z")), "Sunday 18:30");
        assert!(!futures_open(at("2026-12-04T22:30:00Z")), "Friday 17:30");
        assert!(!forex_open(at("2026-12-04T22:30:00Z")), "Friday 17:30");
    }
}
