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

    /// Splits the batch into two halves of (nearly) the same row count, rows kept in order
    /// (equities, then options, then candles), with the derived ids [`BatchId::child`] 0 and 1.
    pub fn split_in_two(&self) -> (Batch, Batch) {
        let half = self.len().div_ceil(2);
        let mut left = Batch {
            id: self.id.child(0),
            equities: Vec::new(),
            options: Vec::new(),
            bars: Vec::new(),
        };
        let mut right = Batch {
            id: self.id.child(1),
            ..left.clone()
        };
        let mut n = 0;
        let side = |n: &mut usize| {
            *n += 1;
            *n <= half
        };
        for r in &self.equities {
            if side(&mut n) { &mut left } else { &mut right }
                .equities
                .push(r.clone());
        }
        for r in &self.options {
            if side(&mut n) { &mut left } else { &mut right }
                .options
                .push(r.clone());
        }
        for r in &self.bars {
            if side(&mut n) { &mut left } else { &mut right }
                .bars
                .push(r.clone());
        }
        (left, right)
    }

    /// Every row of the batch, in order (equities, options, candles).
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.equities
            .iter()
            .cloned()
            .map(Row::Equity)
            .chain(self.options.iter().cloned().map(Row::Option))
            .chain(self.bars.iter().cloned().map(Row::Bar))
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
