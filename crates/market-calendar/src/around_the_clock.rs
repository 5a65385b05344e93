//! The near-24-hour weeks of futures and forex (America/New_York): CME Globex equity-index
//! and most other futures trade Sunday 18:00 to Friday 17:00 with a daily pause from 17:00 to
//! 18:00; spot forex trades Sunday 17:00 to Friday 17:00 without a pause.
//!
//! Holidays: on an NYSE holiday CME halts US futures early (about 13:00) or stays closed, and
//! on a day NYSE closes at 13:00 it halts at about 13:15; either way trading resumes at 18:00
//! for the next trade date. Futures count as closed for the whole trade date of an NYSE
//! holiday (weekdays: from 18:00 the evening before until 18:00 on the day), and on an
//! early-close day from 13:00 to 18:00: never open when CME may be halted (so a silent futures
//! feed then is no alarm), at the cost of not judging a holiday's overnight session. Spot
//! forex trades through US holidays and is not changed.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::America::New_York;

use crate::holidays::{early_close, holiday, is_weekend};

/// True while futures trade at `now` (Sunday 18:00 – Friday 17:00 New York, except
/// 17:00–18:00 on Monday to Thursday, and the holiday halts of the module doc).
pub fn futures_open(now: DateTime<Utc>) -> bool {
    let ny = now.with_timezone(&New_York);
    let hour = ny.hour();
    let week = match ny.weekday() {
        Weekday::Sat => false,
        Weekday::Sun => hour >= 18,
        Weekday::Fri => hour < 17,
        _ => hour != 17,
    };
    let date = ny.date_naive();
    let closed_all_day = |d: chrono::NaiveDate| holiday(d).is_some() && !is_weekend(d);
    let halted = if hour >= 18 {
        // The evening opens the next trade date.
        date.succ_opt().is_some_and(closed_all_day)
    } else {
        closed_all_day(date) || (early_close(date).is_some() && hour >= 13)
    };
    week && !halted
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

    #[test]
    fn futures_halt_on_holidays_and_early_closes_and_forex_does_not() {
        // Thanksgiving, Thursday 2026-11-26: its trade date (from Wednesday 18:00) counts as
        // halted; 18:00 opens the next one.
        assert!(futures_open(at("2026-11-25T21:00:00Z")), "16:00 Wednesday");
        assert!(
            !futures_open(at("2026-11-25T23:30:00Z")),
            "18:30 the evening before"
        );
        assert!(
            !futures_open(at("2026-11-26T15:00:00Z")),
            "10:00 Thanksgiving"
        );
        assert!(
            !futures_open(at("2026-11-26T19:00:00Z")),
            "14:00 Thanksgiving"
        );
        assert!(
            futures_open(at("2026-11-26T23:30:00Z")),
            "18:30 Thanksgiving"
        );
        assert!(forex_open(at("2026-11-26T19:00:00Z")), "forex trades");
        // The day after (NYSE closes at 13:00): open in the morning, halted from 13:00.
        assert!(futures_open(at("2026-11-27T16:00:00Z")), "11:00 Friday");
        assert!(!futures_open(at("2026-11-27T18:30:00Z")), "13:30 Friday");
        // Christmas Eve 2026 (Thursday, early close), Christmas (Friday): halted from Thursday
        // 13:00 to Sunday 18:00.
        assert!(
            futures_open(at("2026-12-24T17:00:00Z")),
            "12:00 Christmas Eve"
        );
        assert!(
            !futures_open(at("2026-12-24T19:00:00Z")),
            "14:00 Christmas Eve"
        );
        assert!(
            !futures_open(at("2026-12-24T23:30:00Z")),
            "18:30 Christmas Eve"
        );
        assert!(
            !futures_open(at("2026-12-25T15:00:00Z")),
            "Christmas morning"
        );
        assert!(
            futures_open(at("2026-12-27T23:30:00Z")),
            "Sunday 18:30 after"
        );
        // An ordinary weekday is unchanged.
        assert!(futures_open(at("2026-12-03T19:00:00Z")), "14:00 Thursday");
    }
}
