//! NYSE full-day closures and 13:00 early closes, computed by the exchange's rules.
//!
//! Full holidays (NYSE Rule 7.2): New Year's Day, Martin Luther King Jr. Day (since 1998),
//! Washington's Birthday, Good Friday, Memorial Day, Juneteenth (since 2022), Independence
//! Day, Labor Day, Thanksgiving and Christmas. A holiday on a Sunday is observed the Monday
//! after, one on a Saturday the Friday before, except New Year's Day: the exchange does not
//! close on the last trading day of the year, so a Saturday New Year's Day is not made up.
//!
//! Early closes (13:00 New York, extended hours until 17:00): July 3 when it is a trading day,
//! the day after Thanksgiving, and December 24 when it is a trading day.
//!
//! Closures no rule predicts (national days of mourning, the 2001 and 2012 emergencies) are
//! listed in [`ONE_OFF_CLOSURES`]; a new one must be added there when the exchange announces it.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// Full-day closures that no rule predicts: `(year, month, day, reason)`.
pub const ONE_OFF_CLOSURES: &[(i32, u32, u32, &str)] = &[
    (2001, 9, 11, "September 11 attacks"),
    (2001, 9, 12, "September 11 attacks"),
    (2001, 9, 13, "September 11 attacks"),
    (2001, 9, 14, "September 11 attacks"),
    (2004, 6, 11, "National Day of Mourning for President Reagan"),
    (2007, 1, 2, "National Day of Mourning for President Ford"),
    (2012, 10, 29, "Hurricane Sandy"),
    (2012, 10, 30, "Hurricane Sandy"),
    (
        2018,
        12,
        5,
        "National Day of Mourning for President George H. W. Bush",
    ),
    (2025, 1, 9, "National Day of Mourning for President Carter"),
];

/// The date of Easter Sunday (Gregorian calendar, anonymous Gregorian algorithm).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The `n`th `weekday` of `month` (1-based).
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of `month`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// A fixed-date holiday moved off the weekend: Saturday → Friday, Sunday → Monday.
fn observed(date: NaiveDate) -> Option<NaiveDate> {
    match date.weekday() {
        Weekday::Sat => date.checked_sub_days(Days::new(1)),
        Weekday::Sun => date.checked_add_days(Days::new(1)),
        _ => Some(date),
    }
}

/// The rule-based full holidays of `year`, as observed dates, with their names.
fn rule_holidays(year: i32) -> impl Iterator<Item = (NaiveDate, &'static str)> {
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    let new_year = ymd(1, 1).and_then(|d| match d.weekday() {
        // Not made up on Friday December 31: that is the year's last trading day.
        Weekday::Sat => None,
        _ => observed(d),
    });
    let mlk = if year >= 1998 {
        nth_weekday(year, 1, Weekday::Mon, 3)
    } else {
        None
    };
    let juneteenth = if year >= 2022 {
        ymd(6, 19).and_then(observed)
    } else {
        None
    };
    let good_friday = easter_sunday(year).and_then(|e| e.checked_sub_days(Days::new(2)));
    [
        (new_year, "New Year's Day"),
        (mlk, "Martin Luther King Jr. Day"),
        (
            nth_weekday(year, 2, Weekday::Mon, 3),
            "Washington's Birthday",
        ),
        (good_friday, "Good Friday"),
        (last_weekday(year, 5, Weekday::Mon), "Memorial Day"),
        (juneteenth, "Juneteenth National Independence Day"),
        (ymd(7, 4).and_then(observed), "Independence Day"),
        (nth_weekday(year, 9, Weekday::Mon, 1), "Labor Day"),
        (nth_weekday(year, 11, Weekday::Thu, 4), "Thanksgiving Day"),
        (ymd(12, 25).and_then(observed), "Christmas Day"),
    ]
    .into_iter()
    .filter_map(|(date, name)| date.map(|d| (d, name)))
}

/// The reason the exchange is closed all day on `date` (a holiday or a one-off closure), or
/// `None` if it is not (weekends are not holidays: see [`is_weekend`]).
pub fn holiday(date: NaiveDate) -> Option<&'static str> {
    rule_holidays(date.year())
        .find(|(d, _)| *d == date)
        .map(|(_, name)| name)
        .or_else(|| {
            ONE_OFF_CLOSURES
                .iter()
                .find(|(y, m, d, _)| date.year() == *y && date.month() == *m && date.day() == *d)
                .map(|(_, _, _, why)| *why)
        })
}

/// True on Saturdays and Sundays.
pub fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// True when the regular session runs on `date` (a weekday that is not a closure).
pub fn is_trading_day(date: NaiveDate) -> bool {
    !is_weekend(date) && holiday(date).is_none()
}

/// The reason the regular session ends at 13:00 on `date`, or `None` on other days
/// (including days without a session).
pub fn early_close(date: NaiveDate) -> Option<&'static str> {
    if !is_trading_day(date) {
        return None;
    }
    let thanksgiving = nth_weekday(date.year(), 11, Weekday::Thu, 4);
    match (date.month(), date.day()) {
        (7, 3) => Some("day before Independence Day"),
        (12, 24) => Some("Christmas Eve"),
        _ if thanksgiving.and_then(|t| t.succ_opt()) == Some(date) => {
            Some("day after Thanksgiving")
        }
        _ => None,
    }
}
