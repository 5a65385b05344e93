//! [`IndicatorEngine`]: every symbol's bar builder and indicator set, owned by the task that
//! processes frames (the [`crate::pipeline::FrameProcessor`]); no locking, no channel.

use std::collections::HashMap;
use std::sync::Arc;

use super::bars::{BarAggregate, BarBuilder, TickKey};
use super::{BadPeriods, IndicatorSet, IndicatorSettings, IndicatorValues};

/// One symbol's state.
#[derive(Debug, Clone)]
struct SymbolIndicators {
    bars: BarBuilder,
    set: IndicatorSet,
}

/// Per-symbol indicators. A symbol's state is created the first time it is seen (the only
/// allocation); after that a row costs a hash lookup by `&str` plus O(1) per indicator.
#[derive(Debug)]
pub struct IndicatorEngine {
    settings: IndicatorSettings,
    /// An empty set, validated once, that new symbols start from.
    template: IndicatorSet,
    symbols: HashMap<Arc<str>, SymbolIndicators>,
}

impl IndicatorEngine {
    /// An engine with no symbol yet. Fails only on periods TA-Lib rejects, which
    /// configuration validation already refuses.
    pub fn new(settings: IndicatorSettings) -> Result<Self, BadPeriods> {
        let template = IndicatorSet::new(&settings)?;
        Ok(Self {
            settings,
            template,
            symbols: HashMap::new(),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &IndicatorSettings {
        &self.settings
    }

    /// Number of symbols with state.
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// Bars committed so far for `symbol` (0 if never seen).
    pub fn closed_bars(&self, symbol: &str) -> u64 {
        self.symbols.get(symbol).map_or(0, |s| s.set.closed_bars())
    }

    /// One row of `symbol` at `key` with its merged last price and cumulative day volume.
    /// A row without a price shows the open bar's values (NULL before the first bar).
    pub fn on_tick(
        &mut self,
        symbol: &Arc<str>,
        key: TickKey,
        price: Option<f64>,
        volume: Option<i64>,
    ) -> IndicatorValues {
        let state = self.state(symbol);
        if let Some(closed) = state.bars.on_tick(key, price, volume) {
            state.set.commit(&closed);
        }
        match state.bars.open_bar() {
            Some(open) => state.set.values(&open),
            None => IndicatorValues::default(),
        }
    }

    /// Drops `symbol`'s bars and indicators (its key was unsubscribed); seen again, it starts
    /// cold.
    pub fn forget(&mut self, symbol: &str) {
        self.symbols.remove(symbol);
    }

    /// Warm start: feeds `bars` (one symbol's, oldest first, as rebuilt from the database)
    /// through the live path. Every bar but the last is committed; the last stays open, as it
    /// was when the previous run stopped.
    pub fn restore(&mut self, symbol: &str, bars: &[BarAggregate]) {
        let symbol: Arc<str> = Arc::from(symbol);
        let state = self.state(&symbol);
        for bar in bars {
            if let Some(closed) = state.bars.roll(*bar) {
                state.set.commit(&closed);
            }
        }
    }

    /// The symbol's state, created on first sight (without allocating when it exists).
    fn state(&mut self, symbol: &Arc<str>) -> &mut SymbolIndicators {
        if !self.symbols.contains_key(&**symbol) {
            let fresh = SymbolIndicators {
                bars: BarBuilder::new(self.settings.bar_ms()),
                set: self.template.fresh(),
            };
            self.symbols.insert(symbol.clone(), fresh);
        }
        match self.symbols.get_mut(&**symbol) {
            Some(s) => s,
            None => unreachable!("inserted above"),
        }
    }
}
