//! The rows the service writes: one per LEVELONE update (merged), one per candle.
//!
//! Each row carries its natural key, identical whenever the same update is written again,
//! so inserts can be idempotent (`ON CONFLICT DO NOTHING`):
//! `equity_data (ticker, timestamp, seq)`, `option_data (symbol, timestamp, seq)`,
//! `equity_bars (ticker, bar_start)` (upserted: a later copy of a candle wins).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::indicators::IndicatorValues;
use crate::schwab::wire::{EquityFields, OptionFields};
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
}

/// Which table a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    EquityData,
    OptionData,
    EquityBars,
}

impl Table {
    /// The table's name in the database.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EquityData => "equity_data",
            Self::OptionData => "option_data",
            Self::EquityBars => "equity_bars",
        }
    }
}

impl Row {
    /// The table this row belongs to.
    pub fn table(&self) -> Table {
        match self {
            Self::Equity(_) => Table::EquityData,
            Self::Option(_) => Table::OptionData,
            Self::Bar(_) => Table::EquityBars,
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
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Rows of one database write, split by table, under one [`BatchId`].
///
/// A batch's rows never change once it has been sent: a retry sends the same rows under the
/// same id, and rows that arrive meanwhile go into the next batch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// Spool records written before batches had ids get a new one when read back.
    #[serde(default = "BatchId::next")]
    pub id: BatchId,
    pub equities: Vec<EquityRow>,
    pub options: Vec<OptionRow>,
    pub bars: Vec<BarRow>,
}

impl Default for Batch {
    /// An empty batch with a new id.
    fn default() -> Self {
        Self {
            id: BatchId::next(),
            equities: Vec::new(),
            options: Vec::new(),
            bars: Vec::new(),
        }
    }
}

impl Batch {
    /// Total rows in the batch.
    pub fn len(&self) -> usize {
        self.equities.len() + self.options.len() + self.bars.len()
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
        }
    }

    /// The last equity row of each ticker in the batch (rows are in arrival order), in the
    /// order of those last rows: what `latest_quotes` and the Broadcast message carry.
    pub fn latest_equities(&self) -> Vec<&EquityRow> {
        let mut seen = std::collections::HashSet::with_capacity(64);
        let mut latest: Vec<&EquityRow> = self
            .equities
            .iter()
            .rev()
            .filter(|r| seen.insert(&*r.ticker))
            .collect();
        latest.reverse();
        latest
    }

    /// The last copy of each candle `(ticker, bar_start)`, in batch order: an upsert
    /// statement may not touch the same row twice.
    pub fn latest_bars(&self) -> Vec<&BarRow> {
        let mut seen = std::collections::HashSet::with_capacity(self.bars.len());
        let mut latest: Vec<&BarRow> = self
            .bars
            .iter()
            .rev()
            .filter(|b| seen.insert((&*b.ticker, b.bar_start)))
            .collect();
        latest.reverse();
        latest
    }
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
