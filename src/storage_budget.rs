//! The storage budget: from what the tick tables hold now, how many days of ticks fit under
//! the size guard's threshold (`DB_SIZE_GUARD_PERCENT` of `DB_SIZE_LIMIT_MB`), against
//! `TICK_RETENTION_DAYS`. Shown at startup (the first maintenance pass) and in `/health`, with
//! a warning when the retention does not fit, so an operator learns it before the size guard
//! has to act.

use serde::Serialize;

pub use crate::db::usage::TickUsage;

/// The budget, as `/health` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StorageBudget {
    /// Bytes one tick row takes, indexes included (measured).
    pub bytes_per_row: u64,
    /// Tick rows of the last complete day.
    pub rows_per_day: u64,
    /// Days of ticks that fit under the size guard's threshold next to everything else in
    /// the database; `null` until a day of ticks has been measured.
    pub days_that_fit: Option<f64>,
    /// `TICK_RETENTION_DAYS`.
    pub retention_days: u32,
    /// The retention fits (or nothing is known yet).
    pub fits: bool,
}

/// The budget for `usage`, a size guard threshold of `guard_bytes` and `retention_days`.
pub fn budget(usage: &TickUsage, guard_bytes: u64, retention_days: u32) -> StorageBudget {
    let bytes_per_row = usage.tick_bytes.checked_div(usage.tick_rows).unwrap_or(0);
    let per_day = bytes_per_row.saturating_mul(usage.rows_last_day);
    let other = usage.database_bytes.saturating_sub(usage.tick_bytes);
    let room = guard_bytes.saturating_sub(other);
    let days_that_fit = (per_day > 0).then(|| (room as f64 / per_day as f64 * 10.0).floor() / 10.0);
    StorageBudget {
        bytes_per_row,
        rows_per_day: usage.rows_last_day,
        days_that_fit,
        retention_days,
        fits: days_that_fit.is_none_or(|d| d >= f64::from(retention_days)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn days_that_fit_follow_the_measured_rows() {
        // 100 MB of ticks in 500,000 rows (≈ 210 bytes a row), 200,000 rows a day, 40 MB of
        // other tables; a 450 MB threshold (90 % of 500 MB).
        let usage = TickUsage {
            database_bytes: 140 * MB,
            tick_bytes: 100 * MB,
            tick_rows: 500_000,
            rows_last_day: 200_000,
        };
        let b = budget(&usage, 450 * MB, 7);
        assert_eq!(b.bytes_per_row, 209);
        // (450 - 40) MB / (209 B × 200,000) = 10.28 days.
        assert_eq!(b.days_that_fit, Some(10.2));
        assert!(b.fits);
        assert!(!budget(&usage, 450 * MB, 14).fits);
    }

    #[test]
    fn nothing_measured_yet_is_not_a_warning() {
        let b = budget(&TickUsage::default(), 450 * MB, 7);
        assert_eq!((b.days_that_fit, b.fits, b.bytes_per_row), (None, true, 0));
    }
}
