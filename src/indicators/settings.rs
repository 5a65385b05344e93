//! Indicator settings: bar length, periods and warm start depth (parsed by `streamer-config`,
//! mapped here by the app wiring, `crate::settings`, which also applies [`IndicatorSettings::warm_start_bars_allowed`]).
//!
//! The warm-up lengths here are TA-Lib's lookbacks: an indicator with lookback `L` has its
//! first value on bar number `L + 1` (counting from 1), provisionally while that bar forms.

/// How indicators are computed: `BAR_SECONDS`, the periods and `WARM_START_BARS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndicatorSettings {
    /// `BAR_SECONDS`: length of a time bar; bars start at multiples of it (UTC epoch).
    pub bar_seconds: u32,
    /// `SMA_PERIOD`.
    pub sma_period: u32,
    /// `EMA_FAST_PERIOD`.
    pub ema_fast_period: u32,
    /// `EMA_SLOW_PERIOD`.
    pub ema_slow_period: u32,
    /// `RSI_PERIOD` (Wilder smoothing).
    pub rsi_period: u32,
    /// `MACD_FAST`: fast EMA of the MACD line.
    pub macd_fast: u32,
    /// `MACD_SLOW`: slow EMA of the MACD line.
    pub macd_slow: u32,
    /// `MACD_SIGNAL`: EMA of the MACD line that gives the signal line.
    pub macd_signal: u32,
    /// `BB_PERIOD`: Bollinger Bands window (SMA middle band, population standard deviation).
    pub bb_period: u32,
    /// `BB_STDDEV`: band width in standard deviations (both bands).
    pub bb_stddev: f64,
    /// `WARM_START_BARS`: closed bars loaded per symbol at startup; 0 turns warm start off.
    pub warm_start_bars: usize,
}

impl Default for IndicatorSettings {
    fn default() -> Self {
        let mut s = Self {
            bar_seconds: 60,
            sma_period: 20,
            ema_fast_period: 9,
            ema_slow_period: 21,
            rsi_period: 14,
            macd_fast: 12,
            macd_slow: 26,
            macd_signal: 9,
            bb_period: 20,
            bb_stddev: 2.0,
            warm_start_bars: 0,
        };
        s.warm_start_bars = s.default_warm_start_bars();
        s
    }
}

/// Bars each indicator needs before its first value (TA-Lib lookback + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmUpBars {
    pub sma: usize,
    pub ema_fast: usize,
    pub ema_slow: usize,
    pub rsi: usize,
    pub macd: usize,
    pub bbands: usize,
    /// VWAP has a value on the first bar of a session that traded.
    pub vwap: usize,
}

impl WarmUpBars {
    /// The longest of them.
    pub fn longest(&self) -> usize {
        [
            self.sma,
            self.ema_fast,
            self.ema_slow,
            self.rsi,
            self.macd,
            self.bbands,
            self.vwap,
        ]
        .into_iter()
        .max()
        .unwrap_or(1)
    }
}

impl IndicatorSettings {
    /// Multiplier of the longest smoothing period that gives the default `WARM_START_BARS`.
    pub const WARM_START_FACTOR: usize = 40;

    /// Bar length in milliseconds.
    pub fn bar_ms(&self) -> i64 {
        i64::from(self.bar_seconds) * 1000
    }

    /// Bars needed before each indicator has a value, from TA-Lib's lookback rules:
    /// SMA, EMA and Bollinger Bands `n - 1`, RSI `n`, MACD `(slow - 1) + (signal - 1)`.
    pub fn warm_up_bars(&self) -> WarmUpBars {
        let n = |p: u32| p as usize;
        WarmUpBars {
            sma: n(self.sma_period),
            ema_fast: n(self.ema_fast_period),
            ema_slow: n(self.ema_slow_period),
            rsi: n(self.rsi_period) + 1,
            macd: n(self.macd_slow) + n(self.macd_signal) - 1,
            bbands: n(self.bb_period),
            vwap: 1,
        }
    }

    /// Whether `bars` is an allowed `WARM_START_BARS` with these periods: 0 (no warm start),
    /// or at least the longest warm-up (fewer bars could not give every indicator a value).
    pub fn warm_start_bars_allowed(&self, bars: usize) -> bool {
        bars == 0 || bars >= self.warm_up_bars().longest()
    }

    /// The default `WARM_START_BARS`: 40 × the longest exponential memory (RSI period, EMA
    /// periods, MACD slow + signal). EMA, RSI and MACD depend on every past bar with weights
    /// that shrink geometrically (by `(n-1)/(n+1)` per bar for an EMA, `(n-1)/n` for Wilder's
    /// RSI); after 40 periods what is left of older history is below 1e-16, so values after a
    /// restart equal an uninterrupted run's to double precision. Never below the longest warm-up.
    pub fn default_warm_start_bars(&self) -> usize {
        let memory = [
            self.rsi_period,
            self.ema_fast_period,
            self.ema_slow_period,
            self.macd_slow + self.macd_signal,
        ]
        .into_iter()
        .max()
        .unwrap_or(1) as usize;
        (Self::WARM_START_FACTOR * memory).max(self.warm_up_bars().longest())
    }
}
