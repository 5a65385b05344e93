//! Calendar arithmetic in exchange time (America/New_York): the CHART_EQUITY minute index and
//! day number, and option expiry instants.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::America::New_York;

/// Milliseconds in one minute.
pub(crate) const MINUTE_MS: i64 = 60_000;
/// Milliseconds in one day.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Minute of the day (ET) at which CHART_EQUITY's sequence field starts counting (07:00).
const CHART_FIRST_MINUTE: i64 = 7 * 60;
/// Minutes per day.
const MINUTES_PER_DAY: i64 = 24 * 60;

/// Start (ms) of the minute containing `ms`.
pub(crate) fn minute_start(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

fn eastern(ms: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(ms).map(|utc| utc.with_timezone(&New_York).naive_local())
}

/// Days from 1970-01-01 to `date`.
pub(crate) fn days_since_epoch(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 719_163
}

/// The ET calendar date at `ms` (UTC date if `ms` is out of chrono's range, which never happens
/// for real timestamps).
pub(crate) fn eastern_date(ms: i64) -> NaiveDate {
    eastern(ms).map(|dt| dt.date()).unwrap_or_else(|| {
        NaiveDate::default() + chrono::Days::new(ms.div_euclid(DAY_MS).max(0) as u64)
    })
}

/// CHART_EQUITY field 1: minutes since 07:00 ET of the candle's day (779 = 19:59 ET). Candles
/// outside 07:00–24:00 ET (the simulator trades around the clock) wrap modulo one day, so the
/// value is always in 0..1440.
pub(crate) fn chart_sequence(candle_start_ms: i64) -> i64 {
    let minute_of_day = eastern(candle_start_ms)
        .map(|dt| i64::from(dt.hour()) * 60 + i64::from(dt.minute()))
        .unwrap_or(0);
    (minute_of_day - CHART_FIRST_MINUTE).rem_euclid(MINUTES_PER_DAY)
}

/// CHART_EQUITY field 8: the candle's ET date as days since 1970-01-01 (19859 = 2024-05-16).
pub(crate) fn chart_day(candle_start_ms: i64) -> i64 {
    days_since_epoch(eastern_date(candle_start_ms))
}

/// Milliseconds since midnight New York time at `ms` (the book market makers' quote time).
pub(crate) fn ms_since_eastern_midnight(ms: i64) -> i64 {
    eastern(ms)
        .map(|dt| i64::from(dt.num_seconds_from_midnight()) * 1000 + ms.rem_euclid(1000))
        .unwrap_or_else(|| ms.rem_euclid(DAY_MS))
}

/// True during the regular US equity session: a weekday, 09:30–16:00 ET (holidays are not
/// modelled).
pub(crate) fn is_regular_hours(ms: i64) -> bool {
    eastern(ms).is_some_and(|dt| {
        let minute = dt.hour() * 60 + dt.minute();
        dt.weekday().num_days_from_monday() < 5 && (9 * 60 + 30..16 * 60).contains(&minute)
    })
}

/// Epoch ms of `time` ET on `date` (the earlier instant if the local time is ambiguous, UTC-5
/// if it does not exist).
pub(crate) fn eastern_instant_ms(date: NaiveDate, time: NaiveTime) -> i64 {
    let local = date.and_time(time);
    New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|dt| dt.timestamp_millis())
        .unwrap_or_else(|| local.and_utc().timestamp_millis() + 5 * 3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_opt(h, mi, 0))
            .map(|dt| dt.and_utc().timestamp_millis())
            .unwrap_or(i64::MIN)
    }

    #[test]
    fn sequence_counts_minutes_since_seven_eastern_in_edt_and_est() {
        // 2024-05-16 19:59 EDT = 23:59 UTC (the real MSFT capture: "1":779,"7":1715903940000)
        assert_eq!(utc_ms(2024, 5, 16, 23, 59), 1_715_903_940_000);
        assert_eq!(chart_sequence(1_715_903_940_000), 779);
        assert_eq!(chart_day(1_715_903_940_000), 19_859);
        // 2025-12-09 14:05 EST = 19:05 UTC
        let est = utc_ms(2025, 12, 9, 19, 5);
        assert_eq!(chart_sequence(est), 425);
        assert_eq!(chart_day(est), 20_431);
        // 07:00 ET is 0, 06:59 ET wraps
        assert_eq!(chart_sequence(utc_ms(2025, 12, 9, 12, 0)), 0);
        assert_eq!(chart_sequence(utc_ms(2025, 12, 9, 11, 59)), 1439);
    }

    #[test]
    fn day_number_uses_the_eastern_date() {
        // 2024-05-16 21:30 EDT is already 05-17 in UTC
        assert_eq!(chart_day(utc_ms(2024, 5, 17, 1, 30)), 19_859);
        assert_eq!(days_since_epoch(NaiveDate::default()), 0);
    }

    #[test]
    fn eastern_close_follows_daylight_saving() {
        let four_pm = NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default();
        let summer = NaiveDate::from_ymd_opt(2024, 5, 17).unwrap_or_default();
        let winter = NaiveDate::from_ymd_opt(2025, 12, 19).unwrap_or_default();
        assert_eq!(
            eastern_instant_ms(summer, four_pm),
            utc_ms(2024, 5, 17, 20, 0)
        );
        assert_eq!(
            eastern_instant_ms(winter, four_pm),
            utc_ms(2025, 12, 19, 21, 0)
        );
        assert_eq!(minute_start(1_715_903_999_999), 1_715_903_940_000);
    }

    #[test]
    fn new_york_midnight_and_the_regular_session() {
        // 2025-12-09 13:49:46.299 EST = 18:49:46.299 UTC: 49,786,299 ms since midnight
        let t = utc_ms(2025, 12, 9, 18, 49) + 46_299;
        assert_eq!(ms_since_eastern_midnight(t), 49_786_299);
        assert!(is_regular_hours(t));
        assert!(!is_regular_hours(utc_ms(2025, 12, 9, 22, 0)));
        assert!(!is_regular_hours(utc_ms(2025, 12, 13, 16, 0)), "a Saturday");
        assert!(!is_regular_hours(utc_ms(2025, 12, 9, 14, 29)), "09:29 EST");
    }
}
