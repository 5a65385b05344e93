//! Sanity limits on what the stream sends, checked on each item before it is merged: a key
//! no real Schwab symbol could have (control characters, absurd length) or a time far outside
//! the plausible window would be refused by PostgreSQL (taking its whole batch down), or
//! would freeze `latest_quotes` in the future. Such an item is refused alone and counted by
//! [`Refusal`]; the rest of the frame is kept.

use crate::schwab::wire::{Update, UpdateBody};

/// Longer than any real key: equities are at most a dozen characters, OCC option symbols 21,
/// futures and futures options under 30.
pub const MAX_KEY_CHARS: usize = 64;
/// 2000-01-01T00:00:00Z: nothing the stream sends is older.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// How far past the receive time (or the wall clock, whichever is later: replayed recordings
/// are old) a time may lie.
pub const MAX_AHEAD_MS: i64 = 86_400_000;

/// Why an item was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The key holds a control character (`\u0000`, newline, ...).
    KeyControlChar,
    /// The key is longer than [`MAX_KEY_CHARS`] characters (or empty).
    KeyLength,
    /// The item's `timestamp` is outside the window.
    EventTime,
    /// Quote time (field 34 / 38 / 10 / 8, a book's snapshot time, a screener's timestamp)
    /// outside the window.
    QuoteTime,
    /// Trade time (field 35 / 39 / 11 / 9) outside the window.
    TradeTime,
    /// A candle's start (CHART_EQUITY field 7, CHART_FUTURES field 1) outside the window.
    BarTime,
}

impl Refusal {
    /// Every reason, in [`Refusal::index`] order.
    pub const ALL: [Self; 6] = [
        Self::KeyControlChar,
        Self::KeyLength,
        Self::EventTime,
        Self::QuoteTime,
        Self::TradeTime,
        Self::BarTime,
    ];

    /// Position in [`Refusal::ALL`] (and in the counters).
    pub const fn index(self) -> usize {
        match self {
            Self::KeyControlChar => 0,
            Self::KeyLength => 1,
            Self::EventTime => 2,
            Self::QuoteTime => 3,
            Self::TradeTime => 4,
            Self::BarTime => 5,
        }
    }

    /// The `reason` label of `market_streamer_items_refused_total`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::KeyControlChar => "key_control_char",
            Self::KeyLength => "key_length",
            Self::EventTime => "event_time",
            Self::QuoteTime => "quote_time",
            Self::TradeTime => "trade_time",
            Self::BarTime => "bar_time",
        }
    }

    /// What was wrong, for the log line.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::KeyControlChar => "its key contains a control character",
            Self::KeyLength => "its key is empty or longer than 64 characters",
            Self::EventTime => "its timestamp is before 2000 or more than a day in the future",
            Self::QuoteTime => "its quote time is before 2000 or more than a day in the future",
            Self::TradeTime => "its trade time is before 2000 or more than a day in the future",
            Self::BarTime => "its candle start is before 2000 or more than a day in the future",
        }
    }
}

/// Checks one item received at `received_ms` (`now_ms`: the wall clock).
pub fn check(update: &Update<'_>, received_ms: i64, now_ms: i64) -> Result<(), Refusal> {
    let key = update.symbol.as_ref();
    if key.chars().any(char::is_control) {
        return Err(Refusal::KeyControlChar);
    }
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(Refusal::KeyLength);
    }
    let latest = received_ms.max(now_ms).saturating_add(MAX_AHEAD_MS);
    let plausible = |ms: Option<i64>| ms.is_none_or(|t| (EARLIEST_MS..=latest).contains(&t));
    if !plausible(Some(update.event_ms)) {
        return Err(Refusal::EventTime);
    }
    let (quote, trade, bar) = match &update.body {
        UpdateBody::Equity(q) => (q.quote_time_ms, q.trade_time_ms, None),
        UpdateBody::Option(q) => (q.quote_time_ms, q.trade_time_ms, None),
        UpdateBody::Chart(c) => (None, None, c.bar_start_ms),
        UpdateBody::Futures(q) => (q.quote_time_ms, q.trade_time_ms, None),
        UpdateBody::FuturesOption(q) => (q.quote_time_ms, q.trade_time_ms, None),
        UpdateBody::Forex(q) => (q.quote_time_ms, q.trade_time_ms, None),
        UpdateBody::FuturesChart(c) => (None, None, c.bar_start_ms),
        // A book's snapshot time and a screener's timestamp are their quote times.
        UpdateBody::Book(_, b) => (b.snapshot_ms, None, None),
        UpdateBody::Screener(_, s) => (s.timestamp_ms, None, None),
        UpdateBody::Account(_) => (None, None, None),
    };
    if !plausible(quote) {
        return Err(Refusal::QuoteTime);
    }
    if !plausible(trade) {
        return Err(Refusal::TradeTime);
    }
    if !plausible(bar) {
        return Err(Refusal::BarTime);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::schwab::wire::{ChartFields, EquityFields};

    const NOW: i64 = 1_755_118_705_000;

    fn equity(key: &str, event_ms: i64, quote: EquityFields) -> Update<'static> {
        Update {
            symbol: Cow::Owned(key.to_string()),
            event_ms,
            body: UpdateBody::Equity(quote),
        }
    }

    #[test]
    fn plausible_items_pass() {
        assert_eq!(
            check(&equity("AAPL", NOW, EquityFields::default()), NOW, NOW),
            Ok(())
        );
        let occ = equity(
            "AAPL  251219C00230000",
            NOW + MAX_AHEAD_MS,
            EquityFields::default(),
        );
        assert_eq!(check(&occ, NOW, NOW), Ok(()));
        // A replayed recording: old times against today's clock.
        assert_eq!(
            check(
                &equity("MSFT", EARLIEST_MS, EquityFields::default()),
                EARLIEST_MS,
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn each_kind_of_poison_is_named() {
        let ok = EquityFields::default();
        let cases = [
            (
                equity("AA\u{0}PL", NOW, ok.clone()),
                Refusal::KeyControlChar,
            ),
            (equity("A\nB", NOW, ok.clone()), Refusal::KeyControlChar),
            (
                equity(&"X".repeat(10_000), NOW, ok.clone()),
                Refusal::KeyLength,
            ),
            (equity("", NOW, ok.clone()), Refusal::KeyLength),
            (
                equity("AAPL", -300_000_000_000_000, ok.clone()),
                Refusal::EventTime,
            ),
            (
                equity("AAPL", 4_102_444_800_000, ok.clone()),
                Refusal::EventTime,
            ),
            (
                equity(
                    "AAPL",
                    NOW,
                    EquityFields {
                        quote_time_ms: Some(-300_000_000_000_000),
                        ..EquityFields::default()
                    },
                ),
                Refusal::QuoteTime,
            ),
            (
                equity(
                    "AAPL",
                    NOW,
                    EquityFields {
                        trade_time_ms: Some(NOW + 2 * MAX_AHEAD_MS),
                        ..EquityFields::default()
                    },
                ),
                Refusal::TradeTime,
            ),
            (
                Update {
                    symbol: Cow::Borrowed("AAPL"),
                    event_ms: NOW,
                    body: UpdateBody::Chart(ChartFields {
                        bar_start_ms: Some(-300_000_000_000_000),
                        ..ChartFields::default()
                    }),
                },
                Refusal::BarTime,
            ),
        ];
        for (update, expected) in cases {
            assert_eq!(check(&update, NOW, NOW), Err(expected), "{update:?}");
        }
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
