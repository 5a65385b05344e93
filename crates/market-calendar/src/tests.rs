//! Calendar tests against the exchange's published calendars (2020–2027), rule checks for
//! 2020–2035, phases across daylight-saving changes, and freshness judgements.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};

use super::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid time")
}

/// Weekdays of `year` on which the exchange is closed all day.
fn closures(year: i32) -> Vec<NaiveDate> {
    date(year, 1, 1)
        .iter_days()
        .take_while(|d| d.year() == year)
        .filter(|d| !is_weekend(*d) && holiday(*d).is_some())
        .collect()
}

fn early_closes(year: i32) -> Vec<NaiveDate> {
    date(year, 1, 1)
        .iter_days()
        .take_while(|d| d.year() == year)
        .filter(|d| early_close(*d).is_some())
        .collect()
}

fn dates(year: i32, md: &[(u32, u32)]) -> Vec<NaiveDate> {
    md.iter().map(|(m, d)| date(year, *m, *d)).collect()
}

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn easter_sundays_2020_to_2035() {
    let expected = [
        (2020, 4, 12),
        (2021, 4, 4),
        (2022, 4, 17),
        (2023, 4, 9),
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2027, 3, 28),
        (2028, 4, 16),
        (2029, 4, 1),
        (2030, 4, 21),
        (2031, 4, 13),
        (2032, 3, 28),
        (2033, 4, 17),
        (2034, 4, 9),
        (2035, 3, 25),
    ];
    for (y, m, d) in expected {
        assert_eq!(easter_sunday(y), Some(date(y, m, d)), "{y}");
    }
}

#[test]
fn holidays_2025_include_the_carter_day_of_mourning() {
    assert_eq!(
        closures(2025),
        dates(
            2025,
            &[
                (1, 1),
                (1, 9),
                (1, 20),
                (2, 17),
                (4, 18),
                (5, 26),
                (6, 19),
                (7, 4),
                (9, 1),
                (11, 27),
                (12, 25)
            ]
        )
    );
    assert_eq!(
        early_closes(2025),
        dates(2025, &[(7, 3), (11, 28), (12, 24)])
    );
    assert_eq!(
        holiday(date(2025, 1, 9)),
        Some("National Day of Mourning for President Carter")
    );
    assert_eq!(holiday(date(2025, 4, 18)), Some("Good Friday"));
    assert_eq!(
        early_close(date(2025, 11, 28)),
        Some("day after Thanksgiving")
    );
}

#[test]
fn holidays_2026_observe_a_saturday_independence_day_on_friday() {
    assert_eq!(
        closures(2026),
        dates(
            2026,
            &[
                (1, 1),
                (1, 19),
                (2, 16),
                (4, 3),
                (5, 25),
                (6, 19),
                (7, 3),
                (9, 7),
                (11, 26),
                (12, 25)
            ]
        )
    );
    // July 3 is the holiday itself, so no early close that week.
    assert_eq!(early_closes(2026), dates(2026, &[(11, 27), (12, 24)]));
}

#[test]
fn published_calendars_2020_to_2024_and_2027() {
    type MonthDays = &'static [(u32, u32)];
    let cases: [(i32, MonthDays, MonthDays); 6] = [
        (
            2020,
            &[
                (1, 1),
                (1, 20),
                (2, 17),
                (4, 10),
                (5, 25),
                (7, 3),
                (9, 7),
                (11, 26),
                (12, 25),
            ],
            &[(11, 27), (12, 24)],
        ),
        (
            // Christmas on Saturday: closed Friday Dec 24, so no Christmas Eve early close.
            2021,
            &[
                (1, 1),
                (1, 18),
                (2, 15),
                (4, 2),
                (5, 31),
                (7, 5),
                (9, 6),
                (11, 25),
                (12, 24),
            ],
            &[(11, 26)],
        ),
        (
            // New Year's Day on Saturday is not made up; Juneteenth starts (on Sunday: Monday).
            2022,
            &[
                (1, 17),
                (2, 21),
                (4, 15),
                (5, 30),
                (6, 20),
                (7, 4),
                (9, 5),
                (11, 24),
                (12, 26),
            ],
            &[(11, 25)],
        ),
        (
            2023,
            &[
                (1, 2),
                (1, 16),
                (2, 20),
                (4, 7),
                (5, 29),
                (6, 19),
                (7, 4),
                (9, 4),
                (11, 23),
                (12, 25),
            ],
            &[(7, 3), (11, 24)],
        ),
        (
            2024,
            &[
                (1, 1),
                (1, 15),
                (2, 19),
                (3, 29),
                (5, 27),
                (6, 19),
                (7, 4),
                (9, 2),
                (11, 28),
                (12, 25),
            ],
            &[(7, 3), (11, 29), (12, 24)],
        ),
        (
            2027,
            &[
                (1, 1),
                (1, 18),
                (2, 15),
                (3, 26),
                (5, 31),
                (6, 18),
                (7, 5),
                (9, 6),
                (11, 25),
                (12, 24),
            ],
            &[(11, 26)],
        ),
    ];
    for (year, full, early) in cases {
        assert_eq!(closures(year), dates(year, full), "closures {year}");
        assert_eq!(
            early_closes(year),
            dates(year, early),
            "early closes {year}"
        );
    }
}

#[test]
fn saturday_new_years_day_leaves_december_31_open() {
    assert!(is_trading_day(date(2021, 12, 31)));
    assert!(is_trading_day(date(2027, 12, 31)));
    assert_eq!(holiday(date(2028, 1, 1)), None);
    // Sunday New Year's Day: Monday January 2.
    assert_eq!(holiday(date(2023, 1, 2)), Some("New Year's Day"));
    assert_eq!(holiday(date(2034, 1, 2)), Some("New Year's Day"));
}

#[test]
fn rules_hold_for_every_year_2020_to_2035() {
    for year in 2020..=2035 {
        let full = closures(year);
        let expected = if year >= 2022 { 10 } else { 9 };
        // A Saturday New Year's Day is not made up (2022, 2028, 2033).
        let saturday_new_year = date(year, 1, 1).weekday() == Weekday::Sat;
        let one_offs = ONE_OFF_CLOSURES.iter().filter(|c| c.0 == year).count();
        assert_eq!(
            full.len(),
            expected - usize::from(saturday_new_year) + one_offs,
            "{year}: {full:?}"
        );
        let good_friday = easter_sunday(year).and_then(|e| e.pred_opt()?.pred_opt());
        assert!(good_friday.is_some_and(|g| full.contains(&g)), "{year}");
        let thanksgiving =
            NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4).expect("thanksgiving");
        assert!(full.contains(&thanksgiving));
        assert!(
            thanksgiving
                .succ_opt()
                .is_some_and(|f| early_close(f).is_some())
        );
        // Christmas is closed on its observed weekday, and nothing trades on Dec 25.
        assert!(!is_trading_day(date(year, 12, 25)));
        assert!(!is_trading_day(date(year, 7, 4)));
        if year >= 2022 {
            assert!(!is_trading_day(date(year, 6, 19)));
        }
        for d in early_closes(year) {
            assert!(
                is_trading_day(d),
                "{d} is an early close but not a trading day"
            );
            assert!(
                matches!((d.month(), d.day()), (7, 3) | (12, 24)) || d.month() == 11,
                "{d}"
            );
        }
        let trading_days = date(year, 1, 1)
            .iter_days()
            .take_while(|d| d.year() == year)
            .filter(|d| is_trading_day(*d))
            .count();
        assert!(
            (248..=254).contains(&trading_days),
            "{year}: {trading_days}"
        );
    }
}

#[test]
fn juneteenth_starts_in_2022_and_moves_off_weekends() {
    assert!(is_trading_day(date(2021, 6, 18)));
    assert_eq!(
        holiday(date(2022, 6, 20)),
        Some("Juneteenth National Independence Day")
    );
    assert_eq!(
        holiday(date(2027, 6, 18)),
        Some("Juneteenth National Independence Day")
    );
}

#[test]
fn winter_phases_in_eastern_standard_time() {
    // Wednesday 2025-01-08, EST = UTC-5.
    assert_eq!(phase_at(utc(2025, 1, 8, 8, 59)), Phase::Closed);
    assert_eq!(phase_at(utc(2025, 1, 8, 9, 0)), Phase::PreMarket);
    assert_eq!(phase_at(utc(2025, 1, 8, 14, 29)), Phase::PreMarket);
    assert_eq!(phase_at(utc(2025, 1, 8, 14, 30)), Phase::Regular);
    assert_eq!(phase_at(utc(2025, 1, 8, 20, 59)), Phase::Regular);
    assert_eq!(phase_at(utc(2025, 1, 8, 21, 0)), Phase::PostMarket);
    assert_eq!(phase_at(utc(2025, 1, 9, 0, 59)), Phase::PostMarket);
    assert_eq!(phase_at(utc(2025, 1, 9, 1, 0)), Phase::Closed);
    assert!(is_open(utc(2025, 1, 8, 15, 0)));
    assert!(!is_open(utc(2025, 1, 8, 13, 0)));
}

#[test]
fn summer_phases_in_eastern_daylight_time() {
    // Tuesday 2025-07-08, EDT = UTC-4.
    assert_eq!(phase_at(utc(2025, 7, 8, 8, 0)), Phase::PreMarket);
    assert_eq!(phase_at(utc(2025, 7, 8, 13, 29)), Phase::PreMarket);
    assert_eq!(phase_at(utc(2025, 7, 8, 13, 30)), Phase::Regular);
    assert_eq!(phase_at(utc(2025, 7, 8, 20, 0)), Phase::PostMarket);
    assert_eq!(phase_at(utc(2025, 7, 9, 0, 0)), Phase::Closed);
}

#[test]
fn opens_follow_daylight_saving_changes() {
    // Spring forward on Sunday 2025-03-09: Friday opens 14:30 UTC, Monday 13:30 UTC.
    assert_eq!(
        session_on(date(2025, 3, 7)).map(|s| s.open),
        Some(utc(2025, 3, 7, 14, 30))
    );
    assert_eq!(
        next_open(utc(2025, 3, 7, 22, 0)),
        Some(utc(2025, 3, 10, 13, 30))
    );
    assert_eq!(
        last_close(utc(2025, 3, 10, 12, 0)),
        Some(utc(2025, 3, 7, 21, 0))
    );
    // Fall back on Sunday 2025-11-02: Friday closes 20:00 UTC, Monday opens 14:30 UTC.
    assert_eq!(
        last_close(utc(2025, 11, 3, 12, 0)),
        Some(utc(2025, 10, 31, 20, 0))
    );
    assert_eq!(
        next_open(utc(2025, 11, 1, 12, 0)),
        Some(utc(2025, 11, 3, 14, 30))
    );
    // The transition day itself is a Sunday: closed all day, even at 03:30 local.
    assert_eq!(phase_at(utc(2025, 3, 9, 7, 30)), Phase::Closed);
    assert_eq!(phase_at(utc(2025, 11, 2, 6, 30)), Phase::Closed);
}

#[test]
fn early_close_days_end_at_13_00_with_post_market_until_17_00() {
    // 2025-11-28 (EST): 13:00 = 18:00 UTC.
    assert_eq!(phase_at(utc(2025, 11, 28, 17, 59)), Phase::Regular);
    assert_eq!(phase_at(utc(2025, 11, 28, 18, 0)), Phase::PostMarket);
    assert_eq!(phase_at(utc(2025, 11, 28, 21, 59)), Phase::PostMarket);
    assert_eq!(phase_at(utc(2025, 11, 28, 22, 0)), Phase::Closed);
    // 2025-07-03 (EDT): 13:00 = 17:00 UTC.
    assert_eq!(phase_at(utc(2025, 7, 3, 16, 59)), Phase::Regular);
    assert_eq!(phase_at(utc(2025, 7, 3, 17, 0)), Phase::PostMarket);
    assert_eq!(phase_at(utc(2025, 12, 24, 18, 0)), Phase::PostMarket);
    assert_eq!(
        last_close(utc(2025, 11, 29, 12, 0)),
        Some(utc(2025, 11, 28, 18, 0))
    );
    let s = session_on(date(2025, 12, 24)).expect("trading day");
    assert_eq!(s.early_close, Some("Christmas Eve"));
    assert_eq!(s.post_market_close, utc(2025, 12, 24, 22, 0));
}

#[test]
fn holidays_and_weekends_are_closed_all_day() {
    for t in [
        utc(2025, 1, 9, 15, 0),   // day of mourning, mid-session time
        utc(2025, 4, 18, 14, 0),  // Good Friday
        utc(2025, 1, 11, 15, 0),  // Saturday
        utc(2025, 12, 25, 10, 0), // Christmas pre-market time
    ] {
        assert_eq!(phase_at(t), Phase::Closed, "{t}");
        assert!(!silence_is_error(t));
    }
    assert_eq!(
        MarketStatus::at(utc(2025, 1, 11, 15, 0)).closed_reason,
        Some("weekend")
    );
}

#[test]
fn next_open_and_last_close_skip_closures() {
    // Thursday before Good Friday (EDT): close 20:00 UTC, next open Monday.
    assert_eq!(
        next_open(utc(2025, 4, 17, 20, 0)),
        Some(utc(2025, 4, 21, 13, 30))
    );
    assert_eq!(
        last_close(utc(2025, 4, 19, 12, 0)),
        Some(utc(2025, 4, 17, 20, 0))
    );
    // In pre-market the next open is today's; during the session it is the next day's.
    assert_eq!(
        next_open(utc(2025, 1, 8, 12, 0)),
        Some(utc(2025, 1, 8, 14, 30))
    );
    assert_eq!(
        next_open(utc(2025, 1, 8, 15, 0)),
        Some(utc(2025, 1, 10, 14, 30)) // Jan 9 closed
    );
    // At the close instant, that close is the last one.
    assert_eq!(
        last_close(utc(2025, 1, 8, 21, 0)),
        Some(utc(2025, 1, 8, 21, 0))
    );
    assert_eq!(
        last_close(utc(2025, 1, 8, 20, 59)),
        Some(utc(2025, 1, 7, 21, 0))
    );
    // Christmas Thursday: from the Christmas Eve close to Friday's open.
    assert_eq!(
        next_open(utc(2025, 12, 24, 18, 0)),
        Some(utc(2025, 12, 26, 14, 30))
    );
}

#[test]
fn market_status_summaries() {
    let open = MarketStatus::at(utc(2025, 11, 28, 15, 0));
    assert!(open.open);
    assert_eq!(open.phase, Phase::Regular);
    assert_eq!(open.closes_at, Some(utc(2025, 11, 28, 18, 0)));
    assert_eq!(
        open.summary(),
        "market open, regular session until 13:00 ET (early close: day after Thanksgiving)"
    );
    let holiday = MarketStatus::at(utc(2025, 4, 18, 15, 0));
    assert_eq!(
        holiday.summary(),
        "market closed (Good Friday), opens Mon 2025-04-21 09:30 ET"
    );
    assert_eq!(holiday.closes_at, None);
    let pre = MarketStatus::at(utc(2025, 1, 8, 12, 0));
    assert_eq!(
        pre.summary(),
        "market closed (pre-market), opens Wed 2025-01-08 09:30 ET"
    );
    let night = MarketStatus::at(utc(2025, 1, 8, 3, 0));
    assert_eq!(
        night.summary(),
        "market closed (overnight), opens Wed 2025-01-08 09:30 ET"
    );
    let json = serde_json::to_value(&pre).expect("serializes");
    assert_eq!(json["phase"], "pre_market");
    assert_eq!(json["open"], false);
    assert_eq!(json["next_open"], "2025-01-08T14:30:00Z");
}

#[test]
fn open_time_counts_only_regular_sessions() {
    // A whole regular day, an early-close day, a weekend, a week without holidays.
    assert_eq!(
        open_time_between(utc(2025, 1, 8, 0, 0), utc(2025, 1, 9, 0, 0)),
        SECS(6 * 3600 + 1800)
    );
    assert_eq!(
        open_time_between(utc(2025, 11, 28, 0, 0), utc(2025, 11, 29, 0, 0)),
        SECS(3 * 3600 + 1800)
    );
    assert_eq!(
        open_time_between(utc(2025, 1, 11, 0, 0), utc(2025, 1, 13, 0, 0)),
        Duration::ZERO
    );
    assert_eq!(
        open_time_between(utc(2025, 2, 3, 0, 0), utc(2025, 2, 8, 0, 0)),
        SECS(5 * (6 * 3600 + 1800))
    );
    assert_eq!(
        open_time_between(utc(2025, 1, 9, 0, 0), utc(2025, 1, 8, 0, 0)),
        Duration::ZERO
    );
}

fn thresholds() -> FreshnessThresholds {
    FreshnessThresholds {
        warn_after: SECS(120),
        critical_after: SECS(600),
    }
}

#[test]
fn during_the_session_silence_counts_in_full() {
    let now = utc(2025, 1, 8, 15, 0); // 10:00 EST
    let judge = |newest| judge_freshness(now, newest, &thresholds()).level;
    assert_eq!(judge(utc(2025, 1, 8, 14, 59)), Freshness::Fresh);
    assert_eq!(judge(utc(2025, 1, 8, 14, 58)), Freshness::Fresh); // exactly 120 s
    assert_eq!(judge(utc(2025, 1, 8, 14, 57)), Freshness::Warning);
    assert_eq!(judge(utc(2025, 1, 8, 14, 50)), Freshness::Warning); // exactly 600 s
    assert_eq!(judge(utc(2025, 1, 8, 14, 49)), Freshness::Critical);
    assert_eq!(expected_max_age(now, SECS(120)), Some(SECS(120)));
    assert!(silence_is_error(now));
    let v = judge_freshness(now, utc(2025, 1, 8, 14, 50), &thresholds());
    assert_eq!(v.age, SECS(600));
    assert_eq!(v.open_time_since, SECS(600));
    assert!(v.market_open);
}

#[test]
fn pre_market_accepts_data_from_the_last_close() {
    // Monday 2025-02-03 08:00 EST; Friday 2025-01-31 closed at 21:00 UTC.
    let now = utc(2025, 2, 3, 13, 0);
    let judge = |newest| judge_freshness(now, newest, &thresholds()).level;
    assert_eq!(judge(utc(2025, 1, 31, 20, 59)), Freshness::Fresh);
    assert_eq!(judge(utc(2025, 1, 31, 20, 55)), Freshness::Warning);
    assert_eq!(judge(utc(2025, 1, 31, 20, 49)), Freshness::Critical);
    // Post-market rows after the close are fresh too.
    assert_eq!(judge(utc(2025, 2, 1, 0, 30)), Freshness::Fresh);
    assert!(!silence_is_error(now));
    // Data may be as old as the last close plus the threshold.
    assert_eq!(stale_before(now, SECS(120)), Some(utc(2025, 1, 31, 20, 58)));
    let max_age = expected_max_age(now, SECS(120)).expect("bounded");
    assert_eq!(
        max_age,
        (now - utc(2025, 1, 31, 20, 58)).to_std().expect("positive")
    );
}

#[test]
fn right_after_the_open_only_the_minutes_since_count() {
    let newest = utc(2025, 2, 4, 0, 30); // Monday 19:30 EST post-market
    let at = |h, m| judge_freshness(utc(2025, 2, 4, h, m), newest, &thresholds()).level;
    assert_eq!(at(14, 31), Freshness::Fresh); // 1 minute after the open
    assert_eq!(at(14, 33), Freshness::Warning);
    assert_eq!(at(14, 41), Freshness::Critical);
}

#[test]
fn holidays_weekends_and_early_closes_do_not_count() {
    let th = thresholds();
    // Day of mourning (Thursday 2025-01-09) at noon: Wednesday's last minute is fine.
    let v = judge_freshness(utc(2025, 1, 9, 17, 0), utc(2025, 1, 8, 20, 59), &th);
    assert_eq!(v.level, Freshness::Fresh);
    assert_eq!(v.open_time_since, SECS(60));
    assert!(!v.market_open);
    // Saturday: Friday's close minus 2 minutes is the edge.
    let saturday = utc(2025, 1, 11, 17, 0);
    assert_eq!(
        judge_freshness(saturday, utc(2025, 1, 10, 20, 58), &th).level,
        Freshness::Fresh
    );
    assert_eq!(
        judge_freshness(saturday, utc(2025, 1, 10, 20, 0), &th).level,
        Freshness::Critical
    );
    // Day after Thanksgiving, 15:00 EST: the session ended at 13:00.
    let post = utc(2025, 11, 28, 20, 0);
    assert_eq!(
        judge_freshness(post, utc(2025, 11, 28, 17, 58), &th).level,
        Freshness::Fresh
    );
    assert_eq!(
        judge_freshness(post, utc(2025, 11, 28, 17, 50), &th).level,
        Freshness::Warning
    );
}

#[test]
fn thresholds_longer_than_a_session_reach_into_earlier_days() {
    // Wednesday 2025-01-08 10:00 EST, threshold 7 h: 30 min today + 6.5 h on Tuesday
    // (so the whole of Tuesday's session), landing on Tuesday's open.
    let now = utc(2025, 1, 8, 15, 0);
    assert_eq!(
        stale_before(now, SECS(7 * 3600)),
        Some(utc(2025, 1, 7, 14, 30))
    );
    assert_eq!(stale_before(now, Duration::ZERO), Some(now));
    // More open time than ten years hold: nothing is ever stale.
    assert_eq!(stale_before(now, SECS(100 * 365 * 86_400)), None);
    assert_eq!(expected_max_age(now, SECS(100 * 365 * 86_400)), None);
}

#[test]
fn rows_from_the_future_are_fresh() {
    let now = utc(2025, 1, 8, 15, 0);
    let v = judge_freshness(now, utc(2025, 1, 8, 15, 5), &thresholds());
    assert_eq!(v.level, Freshness::Fresh);
    assert_eq!(v.age, Duration::ZERO);
}

#[test]
fn very_old_rows_are_critical_without_scanning_forever() {
    let now = utc(2025, 1, 8, 15, 0);
    let v = judge_freshness(now, utc(1970, 1, 1, 0, 0), &thresholds());
    assert_eq!(v.level, Freshness::Critical);
}
