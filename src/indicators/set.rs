//! [`IndicatorSet`]: one symbol's indicators over its closed bars, plus provisional values for
//! the bar in progress. The only type that knows which library does the math.

use ta_lib::{BbandsStream, EmaStream, MacdStream, RetCode, RsiStream, SmaStream};

use super::IndicatorValues;
use super::bars::Bar;
use super::settings::IndicatorSettings;
use super::talib::Slot;
use super::vwap::SessionVwap;

/// One symbol's indicators. `commit` advances them by one closed bar; `values` answers for the
/// open bar without changing what was committed. Both are O(1) and allocation-free once every
/// indicator has warmed up (before that, see the `talib` module).
#[derive(Debug, Clone)]
pub struct IndicatorSet {
    sma: Slot<SmaStream>,
    ema_fast: Slot<EmaStream>,
    ema_slow: Slot<EmaStream>,
    rsi: Slot<RsiStream>,
    macd: Slot<MacdStream>,
    bbands: Slot<BbandsStream>,
    vwap: SessionVwap,
    /// Closes of every bar so far, kept only until the slowest indicator has warmed up
    /// (capacity fixed at creation: that warm-up plus the open bar).
    closes: Vec<f64>,
    longest_lookback: usize,
    closed: u64,
}

/// Why an indicator set could not be built (only with settings that bypassed validation).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "TA-Lib rejected the indicator periods ({0}); check the *_PERIOD, MACD_* and BB_* settings"
)]
pub struct BadPeriods(pub RetCode);

impl IndicatorSet {
    /// An empty set (no bar yet) for `settings`.
    pub fn new(settings: &IndicatorSettings) -> Result<Self, BadPeriods> {
        let p = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let make = || -> Result<Self, RetCode> {
            let sma = Slot::new(p(settings.sma_period))?;
            let ema_fast = Slot::new(p(settings.ema_fast_period))?;
            let ema_slow = Slot::new(p(settings.ema_slow_period))?;
            let rsi = Slot::new(p(settings.rsi_period))?;
            let macd = Slot::new((
                p(settings.macd_fast),
                p(settings.macd_slow),
                p(settings.macd_signal),
            ))?;
            let bbands = Slot::new((p(settings.bb_period), settings.bb_stddev))?;
            let longest_lookback = [
                sma.lookback(),
                ema_fast.lookback(),
                ema_slow.lookback(),
                rsi.lookback(),
                macd.lookback(),
                bbands.lookback(),
            ]
            .into_iter()
            .max()
            .unwrap_or(0);
            Ok(Self {
                sma,
                ema_fast,
                ema_slow,
                rsi,
                macd,
                bbands,
                vwap: SessionVwap::new(),
                closes: Vec::with_capacity(longest_lookback + 2),
                longest_lookback,
                closed: 0,
            })
        };
        make().map_err(BadPeriods)
    }

    /// The same indicators with no bar yet (no validation needed: the periods were accepted).
    pub fn fresh(&self) -> Self {
        Self {
            sma: self.sma.fresh(),
            ema_fast: self.ema_fast.fresh(),
            ema_slow: self.ema_slow.fresh(),
            rsi: self.rsi.fresh(),
            macd: self.macd.fresh(),
            bbands: self.bbands.fresh(),
            vwap: SessionVwap::new(),
            closes: Vec::with_capacity(self.longest_lookback + 2),
            longest_lookback: self.longest_lookback,
            closed: 0,
        }
    }

    /// TA-Lib's lookbacks (bars consumed before the first value) of SMA, fast EMA, slow EMA,
    /// RSI, MACD and Bollinger Bands, in that order.
    pub fn lookbacks(&self) -> [usize; 6] {
        [
            self.sma.lookback(),
            self.ema_fast.lookback(),
            self.ema_slow.lookback(),
            self.rsi.lookback(),
            self.macd.lookback(),
            self.bbands.lookback(),
        ]
    }

    /// Number of bars committed.
    pub fn closed_bars(&self) -> u64 {
        self.closed
    }

    /// True while some indicator has not seen enough bars to run on its stream.
    fn warming_up(&self) -> bool {
        self.closed <= self.longest_lookback as u64
    }

    /// Advances every indicator by one closed bar.
    pub fn commit(&mut self, bar: &Bar) {
        let warming = self.warming_up();
        if warming {
            self.closes.push(bar.close);
        }
        self.closed += 1;
        let (c, closes, n) = (bar.close, self.closes.as_slice(), self.closed);
        self.sma.commit(c, closes, n);
        self.ema_fast.commit(c, closes, n);
        self.ema_slow.commit(c, closes, n);
        self.rsi.commit(c, closes, n);
        self.macd.commit(c, closes, n);
        self.bbands.commit(c, closes, n);
        self.vwap.commit(bar);
        if warming && !self.warming_up() {
            // Every stream is open: the history is no longer needed.
            self.closes = Vec::new();
        }
    }

    /// The values if the open `bar` closed as it stands (its close is the latest price).
    pub fn values(&mut self, bar: &Bar) -> IndicatorValues {
        let warming = self.warming_up();
        if warming {
            // Within capacity (at most `longest_lookback + 1` closes): no allocation.
            self.closes.push(bar.close);
        }
        let (c, closes, n) = (bar.close, self.closes.as_slice(), self.closed);
        let macd = self.macd.provisional(c, closes, n);
        let bb = self.bbands.provisional(c, closes, n);
        let values = IndicatorValues {
            sma: self.sma.provisional(c, closes, n),
            ema_fast: self.ema_fast.provisional(c, closes, n),
            ema_slow: self.ema_slow.provisional(c, closes, n),
            rsi: self.rsi.provisional(c, closes, n),
            macd: macd.map(|m| m.0),
            macd_signal: macd.map(|m| m.1),
            macd_hist: macd.map(|m| m.2),
            bb_upper: bb.map(|b| b.0),
            bb_middle: bb.map(|b| b.1),
            bb_lower: bb.map(|b| b.2),
            vwap: self.vwap.provisional(bar),
        };
        if warming {
            self.closes.pop();
        }
        values.finite()
    }
}
