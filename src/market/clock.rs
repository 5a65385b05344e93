//! Time sanity between `CLOCK_SKEW_TOLERANCE` and a day: a stream time further ahead of the
//! receive time than the tolerance is clamped to the receive time before the item is merged,
//! so one frame stamped in the future can neither move `latest_quotes` (whose upsert never
//! goes back in time) nor an indicator bar into the future, nor freeze a book's throttle slot.
//! Times more than a day ahead are refused earlier ([`super::sanity`]).
//!
//! Clamped: the item's `timestamp` (the row's event time, which drives `latest_quotes`, the
//! indicators and the `seq`), LEVELONE quote and trade times (stored beside it), a candle's
//! start (to the start of the receive minute: the candle is the current one, mislabelled, and
//! the next candle of that minute upserts the same row), a book's snapshot time (its throttle
//! slot) and a screener's timestamp (its row time). Account activity carries no time.

use crate::schwab::wire::{Update, UpdateBody};

/// `CLOCK_SKEW_TOLERANCE`'s default, in ms.
pub const DEFAULT_TOLERANCE_MS: i64 = 60_000;
/// CHART_EQUITY and CHART_FUTURES candles are one minute.
const CANDLE_MS: i64 = 60_000;

/// An item whose times were clamped, and by how much its latest time was ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct Clamped<'a> {
    pub update: Update<'a>,
    /// How far the item's latest time lay ahead of the reference (ms, > tolerance).
    pub skew_ms: i64,
}

/// The times of `body` besides the event time: quote (or snapshot / screener time), trade,
/// candle start.
fn body_times(body: &UpdateBody) -> [Option<i64>; 3] {
    match body {
        UpdateBody::Equity(q) => [q.quote_time_ms, q.trade_time_ms, None],
        UpdateBody::Option(q) => [q.quote_time_ms, q.trade_time_ms, None],
        UpdateBody::Futures(q) => [q.quote_time_ms, q.trade_time_ms, None],
        UpdateBody::FuturesOption(q) => [q.quote_time_ms, q.trade_time_ms, None],
        UpdateBody::Forex(q) => [q.quote_time_ms, q.trade_time_ms, None],
        UpdateBody::Chart(c) => [None, None, c.bar_start_ms],
        UpdateBody::FuturesChart(c) => [None, None, c.bar_start_ms],
        UpdateBody::Book(_, b) => [b.snapshot_ms, None, None],
        UpdateBody::Screener(_, s) => [s.timestamp_ms, None, None],
        UpdateBody::Account(_) => [None, None, None],
    }
}

/// Sets `t` to `to` when it lies past `limit`.
fn clamp_one(t: &mut Option<i64>, limit: i64, to: i64) {
    if let Some(v) = t
        && *v > limit
    {
        *v = to;
    }
}

/// Clamps every time of `body` past `limit`: candle starts to `minute`, others to `to`.
fn clamp_body(body: &mut UpdateBody, limit: i64, to: i64, minute: i64) {
    match body {
        UpdateBody::Equity(q) => {
            clamp_one(&mut q.quote_time_ms, limit, to);
            clamp_one(&mut q.trade_time_ms, limit, to);
        }
        UpdateBody::Option(q) => {
            clamp_one(&mut q.quote_time_ms, limit, to);
            clamp_one(&mut q.trade_time_ms, limit, to);
        }
        UpdateBody::Futures(q) => {
            clamp_one(&mut q.quote_time_ms, limit, to);
            clamp_one(&mut q.trade_time_ms, limit, to);
        }
        UpdateBody::FuturesOption(q) => {
            clamp_one(&mut q.quote_time_ms, limit, to);
            clamp_one(&mut q.trade_time_ms, limit, to);
        }
        UpdateBody::Forex(q) => {
            clamp_one(&mut q.quote_time_ms, limit, to);
            clamp_one(&mut q.trade_time_ms, limit, to);
        }
        UpdateBody::Chart(c) => clamp_one(&mut c.bar_start_ms, limit, minute),
        UpdateBody::FuturesChart(c) => clamp_one(&mut c.bar_start_ms, limit, minute),
        UpdateBody::Book(_, b) => clamp_one(&mut b.snapshot_ms, limit, to),
        UpdateBody::Screener(_, s) => clamp_one(&mut s.timestamp_ms, limit, to),
        UpdateBody::Account(_) => {}
    }
}

/// `None` when no time of `update` lies more than `tolerance_ms` past `reference_ms` (the
/// usual case: nothing is copied); else a copy with those times clamped to `reference_ms`.
///
/// `reference_ms` is the receive time, or the wall clock when that is later (a frame handed in
/// without a receive time, or a replayed recording whose receive times are its own).
pub fn clamp<'a>(update: &Update<'a>, reference_ms: i64, tolerance_ms: i64) -> Option<Clamped<'a>> {
    let limit = reference_ms.saturating_add(tolerance_ms);
    let latest = body_times(&update.body)
        .into_iter()
        .flatten()
        .fold(update.event_ms, i64::max);
    if latest <= limit {
        return None;
    }
    let mut copy = update.clone();
    if copy.event_ms > limit {
        copy.event_ms = reference_ms;
    }
    let minute = reference_ms.div_euclid(CANDLE_MS) * CANDLE_MS;
    clamp_body(&mut copy.body, limit, reference_ms, minute);
    Some(Clamped {
        update: copy,
        skew_ms: latest.saturating_sub(reference_ms),
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::schwab::wire::{BookFields, ChartFields, EquityFields, Service};

    const NOW: i64 = 1_755_118_705_123;
    const AHEAD: i64 = 600_000;

    fn update(event_ms: i64, body: UpdateBody) -> Update<'static> {
        Update {
            symbol: Cow::Borrowed("AAPL"),
            event_ms,
            body,
        }
    }

    #[test]
    fn times_within_the_tolerance_are_left_alone() {
        let quote = EquityFields {
            quote_time_ms: Some(NOW + DEFAULT_TOLERANCE_MS),
            trade_time_ms: Some(NOW - 5_000),
            ..EquityFields::default()
        };
        let u = update(NOW + 59_000, UpdateBody::Equity(quote));
        assert_eq!(clamp(&u, NOW, DEFAULT_TOLERANCE_MS), None);
    }

    #[test]
    fn an_event_time_ten_minutes_ahead_is_clamped_with_its_quote_and_trade_times() {
        let quote = EquityFields {
            quote_time_ms: Some(NOW + AHEAD),
            trade_time_ms: Some(NOW - 1_000),
            last: Some(101.0),
            ..EquityFields::default()
        };
        let u = update(NOW + AHEAD, UpdateBody::Equity(quote));
        let c = clamp(&u, NOW, DEFAULT_TOLERANCE_MS).expect("clamped");
        assert_eq!(c.skew_ms, AHEAD);
        assert_eq!(c.update.event_ms, NOW);
        let UpdateBody::Equity(q) = &c.update.body else {
            panic!("equity")
        };
        assert_eq!(q.quote_time_ms, Some(NOW));
        assert_eq!(q.trade_time_ms, Some(NOW - 1_000), "a past time stays");
        assert_eq!(q.last, Some(101.0), "values are kept");
    }

    #[test]
    fn a_future_quote_time_alone_is_clamped_and_the_event_time_kept() {
        let quote = EquityFields {
            trade_time_ms: Some(NOW + AHEAD),
            ..EquityFields::default()
        };
        let u = update(NOW - 10, UpdateBody::Equity(quote));
        let c = clamp(&u, NOW, DEFAULT_TOLERANCE_MS).expect("clamped");
        assert_eq!(c.update.event_ms, NOW - 10);
        let UpdateBody::Equity(q) = &c.update.body else {
            panic!("equity")
        };
        assert_eq!(q.trade_time_ms, Some(NOW));
    }

    #[test]
    fn a_candle_start_ahead_becomes_the_receive_minute_and_a_book_time_the_receive_time() {
        let bar = ChartFields {
            bar_start_ms: Some(NOW + AHEAD),
            ..ChartFields::default()
        };
        let c = clamp(&update(NOW, UpdateBody::Chart(bar)), NOW, 1_000).expect("clamped");
        let UpdateBody::Chart(bar) = &c.update.body else {
            panic!("chart")
        };
        assert_eq!(bar.bar_start_ms, Some(NOW - NOW % 60_000));
        let book = BookFields {
            snapshot_ms: Some(NOW + AHEAD),
            ..BookFields::default()
        };
        let c = clamp(
            &update(NOW, UpdateBody::Book(Service::NyseBook, book)),
            NOW,
            1_000,
        )
        .expect("clamped");
        let UpdateBody::Book(_, book) = &c.update.body else {
            panic!("book")
        };
        assert_eq!(book.snapshot_ms, Some(NOW));
    }
}
