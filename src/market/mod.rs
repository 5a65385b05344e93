//! Market state: one merged quote per symbol, and the rows each update produces.
//!
//! LEVELONE data (equities, options, futures, futures options, forex) are deltas: a missing
//! field means "unchanged", so each update is merged into the symbol's state and a *full* row
//! is emitted. CHART_EQUITY / CHART_FUTURES items are complete candles and become bar rows as
//! they are. Books are throttled ([`books`]); screeners and account activity become one row
//! per item ([`snapshots`]). The state is owned by a single task.

pub mod books;
pub mod clock;
pub mod keys;
pub mod sanity;
mod snapshots;

/// The OCC option symbol; its single home is the leaf `streamer-config` (see its docs).
pub use streamer_config::option_symbol;

use std::collections::HashMap;
use std::sync::Arc;

use crate::indicators::IndicatorValues;
use crate::rows::market::FuturesOptionKey;
use crate::rows::{
    BarRow, EquityRow, ForexRow, FuturesBarRow, FuturesOptionRow, FuturesRow, OptionRow, Row,
    time_from_ms,
};
use crate::schwab::wire::fields::Merge;
use crate::schwab::wire::{
    ChartFields, EquityFields, ForexFields, FuturesChartFields, FuturesFields, FuturesOptionFields,
    OptionFields, Service, Update, UpdateBody,
};
use books::{BookSettings, Books};
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
    #[error("futures option symbol {symbol:?} {reason}")]
    BadFuturesOptionSymbol { symbol: String, reason: String },
    #[error("{service} item for {symbol} lacks field {field} ({name})")]
    MissingField {
        service: &'static str,
        symbol: String,
        field: u32,
        name: &'static str,
    },
}

/// Per-symbol merged state plus what makes the row key unique; `C` is what its key says
/// (an option's contract), parsed once on first sight.
#[derive(Debug)]
struct SymbolState<F, C = ()> {
    /// The symbol, shared with every row (no allocation per update).
    symbol: Arc<str>,
    contract: C,
    merged: F,
    last_event_ms: i64,
    same_ms_count: i32,
}

impl<F: Default, C> SymbolState<F, C> {
    fn new(symbol: &str, contract: C) -> Self {
        Self {
            symbol: Arc::from(symbol),
            contract,
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

/// One delta merged into its symbol's state: what every quote row is made of.
struct Merged<F, C> {
    symbol: Arc<str>,
    contract: C,
    timestamp: chrono::DateTime<chrono::Utc>,
    seq: i32,
    quote: F,
}

/// Merges `delta` (LEVELONE data: a missing field means "unchanged") into the state of the
/// update's symbol in `map`, created on first sight with the contract `parse` reads from the
/// key (a key it refuses makes no state). Looks the symbol up without allocating.
fn merge<F: Merge, C: Clone>(
    map: &mut HashMap<Arc<str>, SymbolState<F, C>>,
    update: &Update<'_>,
    delta: &F,
    parse: impl FnOnce(&str) -> Result<C, ApplyError>,
) -> Result<Merged<F, C>, ApplyError> {
    let timestamp = event_time(update)?;
    let symbol = update.symbol.as_ref();
    if !map.contains_key(symbol) {
        let state = SymbolState::new(symbol, parse(symbol)?);
        map.insert(state.symbol.clone(), state);
    }
    let Some(state) = map.get_mut(symbol) else {
        unreachable!("inserted above")
    };
    state.merged.merge_from(delta);
    Ok(Merged {
        symbol: state.symbol.clone(),
        contract: state.contract.clone(),
        timestamp,
        seq: state.next_seq(update.event_ms),
        quote: state.merged.clone(),
    })
}

/// The contract of a key that has none to parse.
fn no_contract(_: &str) -> Result<(), ApplyError> {
    Ok(())
}

/// Merged state of every symbol seen.
#[derive(Debug, Default)]
pub struct MarketState {
    equities: HashMap<Arc<str>, SymbolState<EquityFields>>,
    options: HashMap<Arc<str>, SymbolState<OptionFields, OptionContract>>,
    futures: HashMap<Arc<str>, SymbolState<FuturesFields>>,
    futures_options: HashMap<Arc<str>, SymbolState<FuturesOptionFields, FuturesOptionKey>>,
    forex: HashMap<Arc<str>, SymbolState<ForexFields>>,
    books: Books,
}

impl MarketState {
    /// An empty state (books with the default depth and interval).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state storing books as `books` says.
    pub fn with_books(books: BookSettings) -> Self {
        Self {
            books: Books::new(books),
            ..Self::default()
        }
    }

    /// Merges one update and returns the full row it produces; `None` for a book snapshot
    /// kept in memory until its symbol's next slot ([`books`]).
    pub fn apply(&mut self, update: &Update<'_>) -> Result<Option<Row>, ApplyError> {
        Ok(Some(match &update.body {
            UpdateBody::Equity(delta) => {
                let m = merge(&mut self.equities, update, delta, no_contract)?;
                Row::Equity(EquityRow {
                    ticker: m.symbol,
                    timestamp: m.timestamp,
                    seq: m.seq,
                    quote: m.quote,
                    indicators: IndicatorValues::default(),
                })
            }
            UpdateBody::Option(delta) => {
                let m = merge(&mut self.options, update, delta, |symbol| {
                    OptionContract::parse(symbol).map_err(|reason| ApplyError::BadOptionSymbol {
                        symbol: symbol.to_string(),
                        reason,
                    })
                })?;
                Row::Option(OptionRow {
                    symbol: m.symbol,
                    contract: m.contract,
                    timestamp: m.timestamp,
                    seq: m.seq,
                    quote: m.quote,
                })
            }
            UpdateBody::Chart(bar) => Row::Bar(chart_row(&update.symbol, bar)?),
            UpdateBody::Futures(delta) => {
                let m = merge(&mut self.futures, update, delta, no_contract)?;
                Row::Futures(FuturesRow {
                    symbol: m.symbol,
                    timestamp: m.timestamp,
                    seq: m.seq,
                    quote: m.quote,
                    indicators: IndicatorValues::default(),
                })
            }
            UpdateBody::FuturesOption(delta) => {
                let m = merge(&mut self.futures_options, update, delta, |symbol| {
                    snapshots::futures_option_key(symbol).map_err(|reason| {
                        ApplyError::BadFuturesOptionSymbol {
                            symbol: symbol.to_string(),
                            reason,
                        }
                    })
                })?;
                Row::FuturesOption(FuturesOptionRow {
                    symbol: m.symbol,
                    contract: m.contract,
                    timestamp: m.timestamp,
                    seq: m.seq,
                    quote: m.quote,
                })
            }
            UpdateBody::Forex(delta) => {
                let m = merge(&mut self.forex, update, delta, no_contract)?;
                Row::Forex(ForexRow {
                    symbol: m.symbol,
                    timestamp: m.timestamp,
                    seq: m.seq,
                    quote: m.quote,
                })
            }
            UpdateBody::FuturesChart(bar) => {
                Row::FuturesBar(futures_chart_row(&update.symbol, bar)?)
            }
            UpdateBody::Book(service, book) => {
                return self
                    .books
                    .apply(*service, update, book)
                    .map(|r| r.map(Row::Book));
            }
            UpdateBody::Screener(service, screener) => {
                Row::Screener(snapshots::screener_row(*service, update, screener)?)
            }
            UpdateBody::Account(message) => Row::Account(snapshots::account_row(update, message)?),
        }))
    }

    /// Book snapshots kept in memory whose slot has come by `now_ms` (checked on every
    /// frame, so a book that went quiet still gets its newest snapshot stored).
    pub fn due_books(&mut self, now_ms: i64, rows: &mut Vec<Row>) {
        self.books.due(now_ms, rows);
    }

    /// Every book snapshot still kept in memory, whatever its slot (the stream has ended).
    pub fn flush_books(&mut self, rows: &mut Vec<Row>) {
        self.books.flush(rows);
    }

    /// Drops what is kept for `symbol` of `service` (its key was unsubscribed: the watchlist
    /// removed it), so removed keys cost no memory; a book snapshot waiting for its slot is
    /// appended to `rows` first. A later subscription starts again from Schwab's full
    /// snapshot.
    pub fn forget(&mut self, service: Service, symbol: &str, rows: &mut Vec<Row>) {
        match service {
            Service::LevelOneEquities => {
                self.equities.remove(symbol);
            }
            Service::LevelOneOptions => {
                self.options.remove(symbol);
            }
            Service::LevelOneFutures => {
                self.futures.remove(symbol);
            }
            Service::LevelOneFuturesOptions => {
                self.futures_options.remove(symbol);
            }
            Service::LevelOneForex => {
                self.forex.remove(symbol);
            }
            Service::NyseBook | Service::NasdaqBook | Service::OptionsBook => {
                self.books.forget(service, symbol, rows);
            }
            // Candles, screeners and account activity keep no per-key state.
            Service::ChartEquity
            | Service::ChartFutures
            | Service::ScreenerEquity
            | Service::ScreenerOption
            | Service::AcctActivity => {}
        }
    }

    /// The merged quote of an equity, if seen.
    pub fn equity(&self, symbol: &str) -> Option<&EquityFields> {
        self.equities.get(symbol).map(|s| &s.merged)
    }

    /// The merged quote of an option, if seen.
    pub fn option(&self, symbol: &str) -> Option<&OptionFields> {
        self.options.get(symbol).map(|s| &s.merged)
    }

    /// The merged quote of a future, if seen.
    pub fn futures(&self, symbol: &str) -> Option<&FuturesFields> {
        self.futures.get(symbol).map(|s| &s.merged)
    }

    /// The merged quote of a forex pair, if seen.
    pub fn forex(&self, symbol: &str) -> Option<&ForexFields> {
        self.forex.get(symbol).map(|s| &s.merged)
    }

    /// Number of symbols with merged quote state.
    pub fn symbol_count(&self) -> usize {
        self.equities.len()
            + self.options.len()
            + self.futures.len()
            + self.futures_options.len()
            + self.forex.len()
    }
}

/// The update's event time.
fn event_time(update: &Update<'_>) -> Result<chrono::DateTime<chrono::Utc>, ApplyError> {
    time_from_ms(update.event_ms).ok_or(ApplyError::BadTimestamp {
        ms: update.event_ms,
    })
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

/// A CHART_FUTURES item is a whole candle; start, open, high, low and close are required.
fn futures_chart_row(symbol: &str, bar: &FuturesChartFields) -> Result<FuturesBarRow, ApplyError> {
    let missing = |field: u32, name: &'static str| ApplyError::MissingField {
        service: "CHART_FUTURES",
        symbol: symbol.to_string(),
        field,
        name,
    };
    let need = |v: Option<f64>, field: u32, name: &'static str| {
        v.filter(|x| x.is_finite())
            .ok_or_else(|| missing(field, name))
    };
    let start_ms = bar.bar_start_ms.ok_or_else(|| missing(1, "chart time"))?;
    Ok(FuturesBarRow {
        symbol: Arc::from(symbol),
        bar_start: time_from_ms(start_ms).ok_or(ApplyError::BadTimestamp { ms: start_ms })?,
        open: need(bar.open, 2, "open")?,
        high: need(bar.high, 3, "high")?,
        low: need(bar.low, 4, "low")?,
        close: need(bar.close, 5, "close")?,
        volume: bar.volume.unwrap_or(0),
        sequence: bar.seq,
    })
}

#[cfg(test)]
mod tests;
