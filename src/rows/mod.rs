//! The rows the service writes: one per LEVELONE update (merged), one per candle, one per
//! stored book or screener snapshot, one per account activity message.
//!
//! Each row carries its natural key, identical whenever the same update is written again,
//! so inserts can be idempotent (`ON CONFLICT DO NOTHING`):
//! `equity_data (ticker, timestamp, seq)`, `option_data (symbol, timestamp, seq)`,
//! `futures_data`, `futures_option_data`, `forex_data (symbol, timestamp, seq)`,
//! `equity_bars (ticker, bar_start)` and `futures_bars (symbol, bar_start)` (upserted: a later
//! copy of a candle wins), `book_snapshots (book, symbol, snapshot_time)`,
//! `screener_snapshots (screener_key, timestamp)`, `account_activity (account, seq,
//! message_hash)`. The market rows of the newer services live in [`market`].

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub mod market;

use crate::indicators::IndicatorValues;
use crate::schwab::wire::{EquityFields, OptionFields};
pub use market::{
    AccountActivityRow, BookKind, BookRow, ForexRow, FuturesBarRow, FuturesOptionRow, FuturesRow,
    ScreenerKind, ScreenerRow,
};
use streamer_config::option_symbol::OptionContract;

/// A full, merged LEVELONE_EQUITIES quote at one event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EquityRow {
    pub ticker: Arc<str>,
    /// Event time: the data item's `timestamp`.
    pub timestamp: DateTime<Utc>,
    /// 0, or 1, 2, … for further updates of the same ticker with the same timestamp.
    pub seq: i32,
    /// Every field as merged so far (a field never seen is `None`).
    pub quote: EquityFields,
    /// The symbol's indicators at this row (provisional for the bar in progress).
    pub indicators: IndicatorValues,
}

/// A full, merged LEVELONE_OPTIONS quote at one event, with the contract parsed from its symbol.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptionRow {
    pub symbol: Arc<str>,
    pub contract: OptionContract,
    pub timestamp: DateTime<Utc>,
    pub seq: i32,
    pub quote: OptionFields,
}

/// One completed CHART_EQUITY candle.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BarRow {
    pub ticker: Arc<str>,
    pub bar_start: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: i64,
    /// Field 1: minute index since 07:00 New York time.
    pub sequence: Option<i64>,
    /// Field 8: days since 1970-01-01.
    pub chart_day: Option<i64>,
}

/// Any row the writer buffers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Row {
    Equity(EquityRow),
    Option(OptionRow),
    Bar(BarRow),
    Futures(FuturesRow),
    FuturesOption(FuturesOptionRow),
    Forex(ForexRow),
    FuturesBar(FuturesBarRow),
    Book(BookRow),
    Screener(ScreenerRow),
    Account(AccountActivityRow),
}

/// Which table a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    EquityData,
    OptionData,
    EquityBars,
    FuturesData,
    FuturesOptionData,
    ForexData,
    FuturesBars,
    BookSnapshots,
    ScreenerSnapshots,
    AccountActivity,
}

impl Table {
    /// Every table rows go to, in write order.
    pub const ALL: [Self; 10] = [
        Self::EquityData,
        Self::OptionData,
        Self::EquityBars,
        Self::FuturesData,
        Self::FuturesOptionData,
        Self::ForexData,
        Self::FuturesBars,
        Self::BookSnapshots,
        Self::ScreenerSnapshots,
        Self::AccountActivity,
    ];

    /// The table's name in the database.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EquityData => "equity_data",
            Self::OptionData => "option_data",
            Self::EquityBars => "equity_bars",
            Self::FuturesData => "futures_data",
            Self::FuturesOptionData => "futures_option_data",
            Self::ForexData => "forex_data",
            Self::FuturesBars => "futures_bars",
            Self::BookSnapshots => "book_snapshots",
            Self::ScreenerSnapshots => "screener_snapshots",
            Self::AccountActivity => "account_activity",
        }
    }

    /// Position in [`Table::ALL`] (per-table counters).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl Row {
    /// The table this row belongs to.
    pub fn table(&self) -> Table {
        match self {
            Self::Equity(_) => Table::EquityData,
            Self::Option(_) => Table::OptionData,
            Self::Bar(_) => Table::EquityBars,
            Self::Futures(_) => Table::FuturesData,
            Self::FuturesOption(_) => Table::FuturesOptionData,
            Self::Forex(_) => Table::ForexData,
            Self::FuturesBar(_) => Table::FuturesBars,
            Self::Book(_) => Table::BookSnapshots,
            Self::Screener(_) => Table::ScreenerSnapshots,
            Self::Account(_) => Table::AccountActivity,
        }
    }
}

/// The identity of one batch, kept through retries and the disk spool: the flush that
/// commits the batch records it in the same transaction (`batch_ledger`), so a batch sent
/// again after an ambiguous failure, or replayed from the spool after a crash, is recognised
/// and skipped instead of written twice.
///
/// The value is the creation time in microseconds since the Unix epoch, shifted left by 10
/// bits, plus a random 10-bit tag drawn once per process: unique within a process (the time
/// part is made strictly increasing), ordered by creation, and two processes writing into
/// one database at the same time would have to create a batch in the same microsecond and
/// draw the same tag to collide.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct BatchId(i64);

impl BatchId {
    /// Bits below the time part.
    const TAG_BITS: u32 = 10;

    /// A new id, greater than every id this process made before.
    pub fn next() -> Self {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicI64, Ordering};
        static LAST_MICROS: AtomicI64 = AtomicI64::new(0);
        static TAG: OnceLock<i64> = OnceLock::new();
        let tag = *TAG.get_or_init(|| fastrand::i64(0..(1 << Self::TAG_BITS)));
        let now = Utc::now().timestamp_micros();
        // Strictly increasing even when the clock stands still or steps back.
        let mut last = LAST_MICROS.load(Ordering::Relaxed);
        let micros = loop {
            let candidate = now.max(last + 1);
            match LAST_MICROS.compare_exchange_weak(
                last,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break candidate,
                Err(seen) => last = seen,
            }
        };
        // Microseconds since 1970 stay below 2^53 until the year 2255: the shift fits i64.
        Self((micros << Self::TAG_BITS) | tag)
    }

    /// The id as stored in the ledger's `batch_id` column.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// An id read back from the ledger.
    pub const fn from_raw(raw: i64) -> Self {
        Self(raw)
    }

    /// The id of one half (`side` 0 or 1) of this batch when it is split to isolate rows the
    /// database rejects. Derived, not drawn: splitting the same batch again (a retry, a spool
    /// replayed after a crash) gives the same ids, so halves already committed are recognised
    /// by the ledger. Derived ids are negative, so they never meet a [`BatchId::next`] id.
    pub fn child(self, side: u8) -> Self {
        // splitmix64 of the parent and the side: well spread, deterministic.
        let mut z = (self.0 as u64) ^ (u64::from(side) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self((z | (1 << 63)) as i64)
    }
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Rows of one database write, split by table, under one [`BatchId`].
///
/// A batch's rows never change once it has been sent: a retry sends the same rows under the
/// same id, and rows that arrive meanwhile go into the next batch. The tables added after the
/// first three default to empty, so spool records written before them still read back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// Spool records written before batches had ids get a new one when read back.
    #[serde(default = "BatchId::next")]
    pub id: BatchId,
    pub equities: Vec<EquityRow>,
    pub options: Vec<OptionRow>,
    pub bars: Vec<BarRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub futures: Vec<FuturesRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub futures_options: Vec<FuturesOptionRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forex: Vec<ForexRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub futures_bars: Vec<FuturesBarRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub books: Vec<BookRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screeners: Vec<ScreenerRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_activity: Vec<AccountActivityRow>,
}

impl Default for Batch {
    /// An empty batch with a new id.
    fn default() -> Self {
        Self::empty(BatchId::next())
    }
}

impl Batch {
    /// An empty batch with the id `id`.
    pub fn empty(id: BatchId) -> Self {
        Self {
            id,
            equities: Vec::new(),
            options: Vec::new(),
            bars: Vec::new(),
            futures: Vec::new(),
            futures_options: Vec::new(),
            forex: Vec::new(),
            futures_bars: Vec::new(),
            books: Vec::new(),
            screeners: Vec::new(),
            account_activity: Vec::new(),
        }
    }

    /// Rows per table, in [`Table::ALL`] order.
    pub fn counts(&self) -> [usize; Table::ALL.len()] {
        [
            self.equities.len(),
            self.options.len(),
            self.bars.len(),
            self.futures.len(),
            self.futures_options.len(),
            self.forex.len(),
            self.futures_bars.len(),
            self.books.len(),
            self.screeners.len(),
            self.account_activity.len(),
        ]
    }

    /// Total rows in the batch.
    pub fn len(&self) -> usize {
        self.counts().iter().sum()
    }

    /// True when the batch holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one row to its table's list.
    pub fn push(&mut self, row: Row) {
        match row {
            Row::Equity(r) => self.equities.push(r),
            Row::Option(r) => self.options.push(r),
            Row::Bar(r) => self.bars.push(r),
            Row::Futures(r) => self.futures.push(r),
            Row::FuturesOption(r) => self.futures_options.push(r),
            Row::Forex(r) => self.forex.push(r),
            Row::FuturesBar(r) => self.futures_bars.push(r),
            Row::Book(r) => self.books.push(r),
            Row::Screener(r) => self.screeners.push(r),
            Row::Account(r) => self.account_activity.push(r),
        }
    }

    /// Splits the batch into two halves of (nearly) the same row count, rows kept in
    /// [`Batch::rows`] order, with the derived ids [`BatchId::child`] 0 and 1.
    pub fn split_in_two(&self) -> (Batch, Batch) {
        let half = self.len().div_ceil(2);
        let mut left = Batch::empty(self.id.child(0));
        let mut right = Batch::empty(self.id.child(1));
        for (i, row) in self.rows().enumerate() {
            if i < half {
                left.push(row);
            } else {
                right.push(row);
            }
        }
        (left, right)
    }

    /// Every row of the batch, in order (equities, options, candles, then the other tables
    /// in [`Table::ALL`] order).
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        fn each<'a, R: Clone>(rows: &'a [R], wrap: fn(R) -> Row) -> impl Iterator<Item = Row> + 'a {
            rows.iter().cloned().map(wrap)
        }
        each(&self.equities, Row::Equity)
            .chain(each(&self.options, Row::Option))
            .chain(each(&self.bars, Row::Bar))
            .chain(each(&self.futures, Row::Futures))
            .chain(each(&self.futures_options, Row::FuturesOption))
            .chain(each(&self.forex, Row::Forex))
            .chain(each(&self.futures_bars, Row::FuturesBar))
            .chain(each(&self.books, Row::Book))
            .chain(each(&self.screeners, Row::Screener))
            .chain(each(&self.account_activity, Row::Account))
    }

    /// The last equity row of each ticker in the batch (rows are in arrival order), in the
    /// order of those last rows: what `latest_quotes` and the Broadcast message carry.
    pub fn latest_equities(&self) -> Vec<&EquityRow> {
        last_of_each(&self.equities, |r| &*r.ticker)
    }

    /// The newest quote of every equity, future and forex pair in the batch, as
    /// `latest_quotes` rows: equities borrowed, futures and forex mapped by
    /// [`FuturesRow::as_quote`] and [`ForexRow::as_quote`]. What `latest_quotes` and the
    /// Broadcast message carry.
    pub fn latest_quotes(&self) -> Vec<std::borrow::Cow<'_, EquityRow>> {
        use std::borrow::Cow;
        let mut out: Vec<Cow<'_, EquityRow>> = self
            .latest_equities()
            .into_iter()
            .map(Cow::Borrowed)
            .collect();
        out.extend(
            last_of_each(&self.futures, |r| &*r.symbol)
                .into_iter()
                .map(|r| Cow::Owned(r.as_quote())),
        );
        out.extend(
            last_of_each(&self.forex, |r| &*r.symbol)
                .into_iter()
                .map(|r| Cow::Owned(r.as_quote())),
        );
        out
    }

    /// The last copy of each candle `(ticker, bar_start)`, in batch order: an upsert
    /// statement may not touch the same row twice.
    pub fn latest_bars(&self) -> Vec<&BarRow> {
        last_of_each(&self.bars, |b| (&*b.ticker, b.bar_start))
    }

    /// The last copy of each futures candle `(symbol, bar_start)`, in batch order.
    pub fn latest_futures_bars(&self) -> Vec<&FuturesBarRow> {
        last_of_each(&self.futures_bars, |b| (&*b.symbol, b.bar_start))
    }
}

/// The last row of each key (rows are in arrival order), in the order of those last rows.
fn last_of_each<'a, R, K: std::hash::Hash + Eq>(
    rows: &'a [R],
    key: impl Fn(&'a R) -> K,
) -> Vec<&'a R> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len().min(1024));
    let mut latest: Vec<&R> = rows.iter().rev().filter(|r| seen.insert(key(r))).collect();
    latest.reverse();
    latest
}

/// Converts milliseconds since the epoch to a UTC time; out-of-range values give `None`.
pub fn time_from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

/// Database columns take no NaN or infinity: those become NULL.
pub fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(ticker: &str, minute: i64, close: f64) -> BarRow {
        BarRow {
            ticker: Arc::from(ticker),
            bar_start: time_from_ms(minute * 60_000).expect("a valid time"),
            open: close,
            high: close,
            low: close,
            close,
            volume: 1,
            sequence: None,
            chart_day: None,
        }
    }

    #[test]
    fn batch_ids_increase_and_survive_the_spool_encoding() {
        let ids: Vec<BatchId> = (0..1000).map(|_| BatchId::next()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids strictly increase");
        let first_micros = ids[0].get() >> BatchId::TAG_BITS;
        let now = Utc::now().timestamp_micros();
        assert!(
            (now - first_micros).abs() < 60_000_000,
            "the time part is the creation time"
        );
        let batch = Batch::default();
        let json = serde_json::to_string(&batch).expect("encode");
        let back: Batch = serde_json::from_str(&json).expect("decode");
        assert_eq!(back.id, batch.id);
        let old: Batch =
            serde_json::from_str(r#"{"equities":[],"options":[],"bars":[]}"#).expect("decode");
        assert!(old.id > batch.id, "a record without an id gets a new one");
    }

    #[test]
    fn a_split_keeps_every_row_once_under_derived_ids() {
        let mut batch = Batch::default();
        for i in 0..5 {
            batch.bars.push(bar("A", i, 1.0));
        }
        let (l, r) = batch.split_in_two();
        assert_eq!((l.len(), r.len()), (3, 2));
        assert_eq!(
            l.bars
                .iter()
                .chain(&r.bars)
                .map(|b| b.bar_start)
                .collect::<Vec<_>>(),
            batch.bars.iter().map(|b| b.bar_start).collect::<Vec<_>>()
        );
        assert!(l.id.get() < 0 && r.id.get() < 0 && l.id != r.id);
        let (l2, r2) = batch.split_in_two();
        assert_eq!(
            (l2.id, r2.id),
            (l.id, r.id),
            "the same split gives the same ids"
        );
        assert_ne!(l.split_in_two().0.id, l.id);
    }

    #[test]
    fn latest_bars_keeps_the_last_copy_of_each_candle_in_batch_order() {
        let batch = Batch {
            bars: vec![
                bar("A", 1, 1.0),
                bar("B", 1, 2.0),
                bar("A", 1, 3.0),
                bar("A", 2, 4.0),
            ],
            ..Batch::default()
        };
        let closes: Vec<(&str, f64)> = batch
            .latest_bars()
            .iter()
            .map(|b| (&*b.ticker, b.close))
            .collect();
        assert_eq!(closes, [("B", 2.0), ("A", 3.0), ("A", 4.0)]);
    }
}
