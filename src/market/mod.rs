//! Market state: one merged quote per symbol, and the rows each update produces.
//!
//! LEVELONE data are deltas: a missing field means "unchanged", so each update is merged
//! into the symbol's state and a *full* row is emitted. CHART_EQUITY items are complete
//! candles and become bar rows as they are. The state is owned by a single task.

pub mod sanity;

/// The OCC option symbol; its single home is the leaf `streamer-config` (see its docs).
pub use streamer_config::option_symbol;

use std::collections::HashMap;
use std::sync::Arc;

use crate::indicators::IndicatorValues;
use crate::rows::{BarRow, EquityRow, OptionRow, Row, time_from_ms};
use crate::schwab::wire::{ChartFields, EquityFields, OptionFields, Update, UpdateBody};
use option_symbol::{OptionContract, OptionSymbolError};

/// Why an update produced no row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("option symbol {symbol:?} {reason}")]
    BadOptionSymbol {
        symbol: String,
        reason: OptionSymbolError,
    },
    #[error("CHART_EQUITY item for {symbol} lacks field {field} ({name})")]
    IncompleteBar {
        symbol: String,
        field: u32,
        name: &'static str,
    },
    #[error("timestamp {ms} ms is out of range")]
    BadTimestamp { ms: i64 },
}

/// Per-symbol merged state plus what makes the row key unique.
#[derive(Debug)]
struct SymbolState<F> {
    /// The symbol, shared with every row (no allocation per update).
    symbol: Arc<str>,
    merged: F,
    last_event_ms: i64,
    same_ms_count: i32,
}

impl<F: Default> SymbolState<F> {
    fn new(symbol: &str) -> Self {
        Self {
            symbol: Arc::from(symbol),
            merged: F::default(),
            last_event_ms: i64::MIN,
            same_ms_count: 0,
        }
    }

    /// The row's `seq`: 0 for the first update at an event time, then 1, 2, …
    fn next_seq(&mut self, event_ms: i64) -> i32 {
        if event_ms == self.last_event_ms {
            self.same_ms_count += 1;
        } else {
            self.last_event_ms = event_ms;
            self.same_ms_count = 0;
        }
        self.same_ms_count
    }
}

/// Merged state of every symbol seen.
#[derive(Debug, Default)]
pub struct MarketState {
    equities: HashMap<Arc<str>, SymbolState<EquityFields>>,
    options: HashMap<Arc<str>, (OptionContract, SymbolState<OptionFields>)>,
}

impl MarketState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges one update and returns the full row it produces.
    pub fn apply(&mut self, update: &Update<'_>) -> Result<Row, ApplyError> {
        match &update.body {
            UpdateBody::Equity(delta) => self.apply_equity(update, delta).map(Row::Equity),
            UpdateBody::Option(delta) => self.apply_option(update, delta).map(Row::Option),
            UpdateBody::Chart(bar) => chart_row(&update.symbol, bar).map(Row::Bar),
        }
    }

    /// The merged quote of an equity, if seen.
    pub fn equity(&self, symbol: &str) -> Option<&EquityFields> {
        self.equities.get(symbol).map(|s| &s.merged)
    }

    /// The merged quote of an option, if seen.
    pub fn option(&self, symbol: &str) -> Option<&OptionFields> {
        self.options.get(symbol).map(|(_, s)| &s.merged)
    }

    /// Number of symbols with state.
    pub fn symbol_count(&self) -> usize {
        self.equities.len() + self.options.len()
    }

    fn apply_equity(
        &mut self,
        update: &Update<'_>,
        delta: &EquityFields,
    ) -> Result<EquityRow, ApplyError> {
        let timestamp = time_from_ms(update.event_ms).ok_or(ApplyError::BadTimestamp {
            ms: update.event_ms,
        })?;
        let state = entry(&mut self.equities, &update.symbol, || {
            SymbolState::new(&update.symbol)
        });
        state.merged.merge_from(delta);
        Ok(EquityRow {
            ticker: state.symbol.clone(),
            timestamp,
            seq: state.next_seq(update.event_ms),
            quote: state.merged.clone(),
            indicators: IndicatorValues::default(),
        })
    }

    fn apply_option(
        &mut self,
        update: &Update<'_>,
        delta: &OptionFields,
    ) -> Result<OptionRow, ApplyError> {
        let timestamp = time_from_ms(update.event_ms).ok_or(ApplyError::BadTimestamp {
            ms: update.event_ms,
        })?;
        if !self.options.contains_key(update.symbol.as_ref()) {
            let contract = OptionContract::parse(&update.symbol).map_err(|reason| {
                ApplyError::BadOptionSymbol {
                    symbol: update.symbol.to_string(),
                    reason,
                }
            })?;
            let state = SymbolState::new(&update.symbol);
            self.options.insert(state.symbol.clone(), (contract, state));
        }
        let Some((contract, state)) = self.options.get_mut(update.symbol.as_ref()) else {
            unreachable!("inserted above")
        };
        state.merged.merge_from(delta);
        Ok(OptionRow {
            symbol: state.symbol.clone(),
            contract: contract.clone(),
            timestamp,
            seq: state.next_seq(update.event_ms),
            quote: state.merged.clone(),
        })
    }
}

/// Looks `symbol` up without allocating; inserts it on first sight.
fn entry<'m, F>(
    map: &'m mut HashMap<Arc<str>, SymbolState<F>>,
    symbol: &str,
    new: impl FnOnce() -> SymbolState<F>,
) -> &'m mut SymbolState<F> {
    if !map.contains_key(symbol) {
        let state = new();
        map.insert(state.symbol.clone(), state);
    }
    match map.get_mut(symbol) {
        Some(v) => v,
        None => unreachable!("inserted above"),
    }
}

/// A CHART_EQUITY item is a whole candle; open/high/low/close and the start time are required.
fn chart_row(symbol: &str, bar: &ChartFields) -> Result<BarRow, ApplyError> {
    let need = |v: Option<f64>, field: u32, name: &'static str| {
        v.filter(|x| x.is_finite())
            .ok_or_else(|| ApplyError::IncompleteBar {
                symbol: symbol.to_string(),
                field,
                name,
            })
    };
    let start_ms = bar.bar_start_ms.ok_or_else(|| ApplyError::IncompleteBar {
        symbol: symbol.to_string(),
        field: 7,
        name: "chart time",
    })?;
    Ok(BarRow {
        ticker: Arc::from(symbol),
        bar_start: time_from_ms(start_ms).ok_or(ApplyError::BadTimestamp { ms: start_ms })?,
        open: need(bar.open, 2, "open")?,
        high: need(bar.high, 3, "high")?,
        low: need(bar.low, 4, "low")?,
        close: need(bar.close, 5, "close")?,
        volume: bar.volume.unwrap_or(0),
        sequence: bar.sequence,
        chart_day: bar.chart_day,
    })
}

#[cfg(test)]
mod tests;
