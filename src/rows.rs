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

/// Rows of one database write, split by table.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    pub equities: Vec<EquityRow>,
    pub options: Vec<OptionRow>,
    pub bars: Vec<BarRow>,
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

    /// Moves every row of `other` into this batch.
    pub fn append(&mut self, other: &mut Batch) {
        self.equities.append(&mut other.equities);
        self.options.append(&mut other.options);
        self.bars.append(&mut other.bars);
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
