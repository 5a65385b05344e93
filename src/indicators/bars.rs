//! Time bars built from merged quotes, one builder per symbol.
//!
//! Rules (the same whether bars are built tick by tick or rebuilt from `equity_data` at warm
//! start, see [`super::warm_start`]):
//! - A bar covers `[k × BAR_SECONDS, (k + 1) × BAR_SECONDS)` in UTC epoch time; `k` is its
//!   *bucket*. Only rows with a (finite) price count; an interval without one has no bar.
//! - Within a bar, rows are ordered by `(event time, seq)`: `close` is the price of the latest
//!   row, `high` / `low` the extremes of all its prices.
//! - A bar closes when a priced row of a later bucket arrives (event time, never wall time, so
//!   a replay builds the same bars as the live stream). A row of an earlier bucket than the
//!   open bar (late data) changes no bar.
//! - Volume: field 8 is the cumulative day volume. A bar's volume is its latest cumulative
//!   volume minus the latest one of the previous bar of the same session; the first bar of a
//!   session measures from its own first cumulative volume, because volume traded before the
//!   service saw the symbol that day has no known price. A drop counts as 0.
//! - Session: the America/New_York calendar day of the bar's start. `BAR_SECONDS` divides
//!   3600, so no bar straddles New York midnight.

use chrono::{DateTime, NaiveTime, TimeZone};
use chrono_tz::America::New_York;

/// Orders rows within a bar: event time (ms) then `seq`.
pub type TickKey = (i64, i32);

/// What the priced rows of one bucket say. Built tick by tick, or read back in one go from the
/// database; both give the same value for the same rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarAggregate {
    pub bucket: i64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Key of the row that gave `close`.
    pub close_key: TickKey,
    /// Earliest cumulative day volume in the bar and its row's key.
    pub first_volume: Option<(TickKey, i64)>,
    /// Latest cumulative day volume in the bar and its row's key.
    pub last_volume: Option<(TickKey, i64)>,
}

impl BarAggregate {
    /// A bar holding one priced row.
    pub fn from_tick(bucket: i64, key: TickKey, price: f64, volume: Option<i64>) -> Self {
        let volume = volume.map(|v| (key, v));
        Self {
            bucket,
            high: price,
            low: price,
            close: price,
            close_key: key,
            first_volume: volume,
            last_volume: volume,
        }
    }

    /// Adds one priced row of the same bucket.
    pub fn add_tick(&mut self, key: TickKey, price: f64, volume: Option<i64>) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        if key >= self.close_key {
            self.close = price;
            self.close_key = key;
        }
        if let Some(v) = volume {
            if self.first_volume.is_none_or(|(k, _)| key < k) {
                self.first_volume = Some((key, v));
            }
            if self.last_volume.is_none_or(|(k, _)| key >= k) {
                self.last_volume = Some((key, v));
            }
        }
    }
}

/// A bar as the indicators see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Start of the bar, epoch ms.
    pub start_ms: i64,
    /// New York trading day of the bar: days since 1970-01-01.
    pub session: i32,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Shares traded in the bar (from the change in cumulative day volume).
    pub volume: f64,
}

/// The New York calendar day of `ms` as days since 1970-01-01.
pub fn session_of(ms: i64) -> i32 {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let local = t.with_timezone(&New_York).date_naive();
            (local - chrono::NaiveDate::default()).num_days() as i32
        }
        None => ms.div_euclid(86_400_000) as i32,
    }
}

/// Epoch ms of New York midnight starting the session (day number) `session`.
pub fn session_start_ms(session: i32) -> i64 {
    let date = chrono::NaiveDate::default() + chrono::TimeDelta::days(i64::from(session));
    New_York
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        // Midnight always exists in New York (DST changes at 02:00); UTC as a last resort.
        .unwrap_or(i64::from(session) * 86_400_000)
}

/// One symbol's bar in progress plus what the next bar's volume is measured from.
#[derive(Debug, Clone)]
pub struct BarBuilder {
    bar_ms: i64,
    open: Option<BarAggregate>,
    open_start_ms: i64,
    open_session: i32,
    /// Latest cumulative volume of the last closed bar of the open bar's session.
    volume_ref: Option<i64>,
}

impl BarBuilder {
    /// A builder of `bar_ms`-long bars with no bar yet.
    pub fn new(bar_ms: i64) -> Self {
        Self {
            bar_ms: bar_ms.max(1),
            open: None,
            open_start_ms: 0,
            open_session: 0,
            volume_ref: None,
        }
    }

    /// The bucket of an event time.
    pub fn bucket_of(&self, ms: i64) -> i64 {
        ms.div_euclid(self.bar_ms)
    }

    /// Adds one row. Returns the bar it closed, if it opened a new one. A row without a
    /// finite price, or of an earlier bucket than the open bar, changes nothing.
    pub fn on_tick(
        &mut self,
        key: TickKey,
        price: Option<f64>,
        volume: Option<i64>,
    ) -> Option<Bar> {
        let price = price.filter(|p| p.is_finite())?;
        let bucket = self.bucket_of(key.0);
        match &mut self.open {
            Some(open) if bucket == open.bucket => {
                open.add_tick(key, price, volume);
                None
            }
            Some(open) if bucket < open.bucket => None,
            _ => self.roll(BarAggregate::from_tick(bucket, key, price, volume)),
        }
    }

    /// Makes `next` the open bar (a later bucket than the open one), closing the open one.
    /// Warm start feeds the database's bars through here, so they take the live path.
    pub fn roll(&mut self, next: BarAggregate) -> Option<Bar> {
        if self.open.is_some_and(|open| next.bucket <= open.bucket) {
            return None;
        }
        let closed = self.open_bar();
        if let Some(v) = self.open.and_then(|o| o.last_volume) {
            self.volume_ref = Some(v.1);
        }
        let start_ms = next.bucket * self.bar_ms;
        let session = session_of(start_ms);
        if closed.is_none() || session != self.open_session {
            self.volume_ref = None;
        }
        self.open = Some(next);
        self.open_start_ms = start_ms;
        self.open_session = session;
        closed
    }

    /// The open bar as it stands (volume measured as if it closed now).
    pub fn open_bar(&self) -> Option<Bar> {
        let open = self.open.as_ref()?;
        let reference = self.volume_ref.or(open.first_volume.map(|(_, v)| v));
        let volume = match (open.last_volume, reference) {
            (Some((_, last)), Some(from)) => last.saturating_sub(from).max(0) as f64,
            _ => 0.0,
        };
        Some(Bar {
            start_ms: self.open_start_ms,
            session: self.open_session,
            high: open.high,
            low: open.low,
            close: open.close,
            volume,
        })
    }

    /// The open bar's raw aggregate.
    pub fn open_aggregate(&self) -> Option<&BarAggregate> {
        self.open.as_ref()
    }
}
