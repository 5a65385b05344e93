//! Warm start: at startup, each symbol's latest bars are rebuilt from `equity_data` (by the
//! database, see `crate::db::warm_start`, which documents which rows and why) and fed
//! through the live bar path, so indicator values are valid on the first new row. This module
//! holds what the engine needs: the loaded bars and how they seed it.

use super::IndicatorEngine;
use super::bars::BarAggregate;

/// Which symbols to warm.
#[derive(Debug, Clone, Copy)]
pub enum WarmSymbols<'a> {
    /// These tickers (the live run: the configured `SYMBOLS`).
    These(&'a [String]),
    /// Every ticker that has rows in `equity_data` (replay: its symbols are not known ahead).
    AllInDatabase,
}

/// Bars rebuilt from the database, per symbol, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmStart {
    pub symbols: Vec<(String, Vec<BarAggregate>)>,
}

impl WarmStart {
    /// Total bars loaded.
    pub fn bar_count(&self) -> usize {
        self.symbols.iter().map(|(_, b)| b.len()).sum()
    }

    /// Seeds `engine` with the loaded bars.
    pub fn apply(&self, engine: &mut IndicatorEngine) {
        for (symbol, bars) in &self.symbols {
            engine.restore(symbol, bars);
        }
    }
}
