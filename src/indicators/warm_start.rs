//! Warm start: at startup, each symbol's latest bars are rebuilt from `equity_data` (and each
//! futures key's from `futures_data`, by the database, see `crate::db::warm_start`, which
//! documents which rows and why) and fed
//! through the live bar path, so indicator values are valid on the first new row. This module
//! holds what the engine needs: the loaded bars and how they seed it.

use super::IndicatorEngine;
use super::bars::BarAggregate;

/// Which symbols to warm.
#[derive(Debug, Clone, Copy)]
pub enum WarmSymbols<'a> {
    /// These equity tickers and futures keys (the live run: the configured `SYMBOLS` and
    /// `FUTURES_SYMBOLS`).
    These {
        equities: &'a [String],
        futures: &'a [String],
    },
    /// Every ticker with rows in `equity_data` and every key with rows in `futures_data`
    /// (replay: its symbols are not known ahead).
    AllInDatabase,
}

impl<'a> WarmSymbols<'a> {
    /// These equity tickers and no futures.
    pub fn equities(equities: &'a [String]) -> Self {
        Self::These {
            equities,
            futures: &[],
        }
    }
}

/// Bars rebuilt from the database, per symbol, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmStart {
    /// Equity tickers (the live page's cards start from these).
    pub symbols: Vec<(String, Vec<BarAggregate>)>,
    /// Futures keys (`/ES`): the same engine, keyed by symbol.
    pub futures: Vec<(String, Vec<BarAggregate>)>,
}

impl WarmStart {
    /// Total bars loaded.
    pub fn bar_count(&self) -> usize {
        self.symbols
            .iter()
            .chain(&self.futures)
            .map(|(_, b)| b.len())
            .sum()
    }

    /// Seeds `engine` with the loaded bars.
    pub fn apply(&self, engine: &mut IndicatorEngine) {
        for (symbol, bars) in self.symbols.iter().chain(&self.futures) {
            engine.restore(symbol, bars);
        }
    }
}
