//! One-minute candles built from the trades the equity walk produces, so CHART_EQUITY agrees
//! with the LEVELONE_EQUITIES trades of the same minute.

use super::market_time::{MINUTE_MS, minute_start};
use super::walk::Trade;

/// A one-minute OHLCV candle; prices in cents, volume in shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candle {
    /// Start of the minute, ms (field 7).
    pub start_ms: i64,
    /// First trade price of the minute.
    pub open_c: i64,
    /// Highest trade price.
    pub high_c: i64,
    /// Lowest trade price.
    pub low_c: i64,
    /// Last trade price.
    pub close_c: i64,
    /// Sum of trade sizes (the rise of LEVELONE field 8 within the minute).
    pub volume: i64,
}

/// The candle being built and the latest completed one.
#[derive(Debug, Clone, Default)]
pub(crate) struct CandleBook {
    current: Option<Candle>,
    last_completed: Option<Candle>,
}

impl CandleBook {
    /// Adds a trade made at `at_ms`; a trade in a later minute completes the current candle.
    pub(crate) fn record(&mut self, at_ms: i64, trade: Trade) {
        let start_ms = minute_start(at_ms);
        match &mut self.current {
            Some(c) if c.start_ms == start_ms => {
                c.high_c = c.high_c.max(trade.price_c);
                c.low_c = c.low_c.min(trade.price_c);
                c.close_c = trade.price_c;
                c.volume += trade.size;
            }
            current => {
                if let Some(done) = current.take() {
                    self.last_completed = Some(done);
                }
                *current = Some(Candle {
                    start_ms,
                    open_c: trade.price_c,
                    high_c: trade.price_c,
                    low_c: trade.price_c,
                    close_c: trade.price_c,
                    volume: trade.size,
                });
            }
        }
    }

    /// Completes and returns the candle of the minute starting at `start_ms`, if it had trades
    /// (called at the minute boundary, before trades of the new minute are recorded).
    pub(crate) fn close_minute(&mut self, start_ms: i64) -> Option<Candle> {
        if self.current.is_some_and(|c| c.start_ms == start_ms) {
            self.last_completed = self.current.take();
            self.last_completed
        } else {
            None
        }
    }

    /// The latest candle whose minute has ended by `now_ms`.
    pub(crate) fn latest_completed(&self, now_ms: i64) -> Option<Candle> {
        match self.current {
            Some(c) if c.start_ms + MINUTE_MS <= now_ms => Some(c),
            _ => self.last_completed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(price_c: i64, size: i64) -> Trade {
        Trade { price_c, size }
    }

    #[test]
    fn candles_aggregate_trades_per_minute() {
        let mut book = CandleBook::default();
        book.record(60_000, t(100, 5));
        book.record(60_500, t(103, 1));
        book.record(119_999, t(99, 2));
        assert_eq!(book.latest_completed(119_999), None);
        let first = Candle {
            start_ms: 60_000,
            open_c: 100,
            high_c: 103,
            low_c: 99,
            close_c: 99,
            volume: 8,
        };
        assert_eq!(book.latest_completed(120_000), Some(first));
        assert_eq!(book.close_minute(120_000), None);
        assert_eq!(book.close_minute(60_000), Some(first));
        assert_eq!(book.close_minute(60_000), None);
        book.record(200_000, t(101, 1));
        assert_eq!(book.latest_completed(200_001), Some(first));
        book.record(230_000, t(102, 1));
        assert_eq!(
            book.latest_completed(300_000)
                .map(|c| (c.open_c, c.close_c, c.volume)),
            Some((101, 102, 2))
        );
    }

    #[test]
    fn a_later_trade_rolls_an_unclosed_minute() {
        let mut book = CandleBook::default();
        book.record(0, t(100, 1));
        book.record(130_000, t(105, 1));
        assert_eq!(book.latest_completed(130_001).map(|c| c.start_ms), Some(0));
    }
}
