//! One-minute candles built from the trades the equity walk produces, so CHART_EQUITY agrees
//! with the LEVELONE_EQUITIES trades of the same minute. An equity's book also keeps the
//! completed candles (bounded: Schwab's 48 days of one-minute history) so REST `pricehistory`
//! answers exactly what CHART_EQUITY streamed, or would have streamed during a disconnect.

use std::collections::VecDeque;

use super::market_time::MINUTE_MS;
use super::walk::Trade;

/// Most completed candles kept per symbol: 48 days of one-minute candles (Schwab's window).
pub(crate) const HISTORY_CAP: usize = 48 * 24 * 60;

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

/// The candle being built and the latest completed one (and, for equities, the history).
#[derive(Debug, Clone)]
pub(crate) struct CandleBook {
    current: Option<Candle>,
    last_completed: Option<Candle>,
    /// Length of a candle, ms (one minute, or shorter in tests: [`SimConfig::candle_ms`]).
    ///
    /// [`SimConfig::candle_ms`]: super::SimConfig::candle_ms
    len_ms: i64,
    /// Completed candles, oldest first, at most [`HISTORY_CAP`]; `None`: not kept.
    history: Option<VecDeque<Candle>>,
}

impl Default for CandleBook {
    fn default() -> Self {
        Self {
            current: None,
            last_completed: None,
            len_ms: MINUTE_MS,
            history: None,
        }
    }
}

impl CandleBook {
    /// A book of `len_ms` candles that keeps the completed ones for `pricehistory`.
    pub(crate) fn with_history(len_ms: i64) -> Self {
        Self {
            len_ms: len_ms.max(1),
            history: Some(VecDeque::new()),
            ..Self::default()
        }
    }

    fn complete(&mut self, done: Candle) {
        self.last_completed = Some(done);
        if let Some(history) = &mut self.history {
            if history.len() >= HISTORY_CAP {
                history.pop_front();
            }
            history.push_back(done);
        }
    }

    /// Completed candles (and the current one if its minute ended by `now_ms`) whose start is
    /// in `[from_ms, to_ms]`, oldest first.
    pub(crate) fn history(&self, from_ms: i64, to_ms: i64, now_ms: i64) -> Vec<Candle> {
        let current = self.current.filter(|c| c.start_ms + self.len_ms <= now_ms);
        self.history
            .iter()
            .flatten()
            .copied()
            .chain(current)
            .filter(|c| (from_ms..=to_ms).contains(&c.start_ms))
            .collect()
    }
    /// Adds a trade made at `at_ms`; a trade in a later minute completes the current candle.
    pub(crate) fn record(&mut self, at_ms: i64, trade: Trade) {
        let start_ms = at_ms.div_euclid(self.len_ms) * self.len_ms;
        match &mut self.current {
            Some(c) if c.start_ms == start_ms => {
                c.high_c = c.high_c.max(trade.price_c);
                c.low_c = c.low_c.min(trade.price_c);
                c.close_c = trade.price_c;
                c.volume += trade.size;
            }
            _ => {
                if let Some(done) = self.current.take() {
                    self.complete(done);
                }
                self.current = Some(Candle {
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
        if let Some(done) = self.current.filter(|c| c.start_ms == start_ms) {
            self.current = None;
            self.complete(done);
            Some(done)
        } else {
            None
        }
    }

    /// The latest candle whose minute has ended by `now_ms`.
    pub(crate) fn latest_completed(&self, now_ms: i64) -> Option<Candle> {
        match self.current {
            Some(c) if c.start_ms + self.len_ms <= now_ms => Some(c),
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
    fn history_keeps_every_completed_candle_once() {
        let mut book = CandleBook::with_history(MINUTE_MS);
        book.record(60_000, t(100, 5));
        book.record(130_000, t(105, 1));
        assert_eq!(
            book.close_minute(120_000).map(|c| c.start_ms),
            Some(120_000)
        );
        book.record(250_000, t(101, 2));
        let all = book.history(0, i64::MAX, 300_000);
        let starts: Vec<i64> = all.iter().map(|c| c.start_ms).collect();
        assert_eq!(starts, [60_000, 120_000, 240_000]);
        assert_eq!(book.history(0, i64::MAX, 299_999).len(), 2);
        assert_eq!(book.history(100_000, 200_000, 300_000).len(), 1);
        let mut short = CandleBook::with_history(2_000);
        short.record(1_000, t(1, 1));
        short.record(2_500, t(2, 1));
        assert_eq!(short.history(0, i64::MAX, 4_000).len(), 2);
    }

    #[test]
    fn a_later_trade_rolls_an_unclosed_minute() {
        let mut book = CandleBook::default();
        book.record(0, t(100, 1));
        book.record(130_000, t(105, 1));
        assert_eq!(book.latest_completed(130_001).map(|c| c.start_ms), Some(0));
    }
}
