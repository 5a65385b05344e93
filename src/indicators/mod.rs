//! Technical indicators on every `equity_data` row, the way a live chart shows them.
//!
//! Semantics (also in SCHEMA.md): indicators run on **time bars** of `BAR_SECONDS` built from
//! the merged quotes ([`bars`]), not on quote updates: "RSI(14)" is over 14 bars, never over 14
//! updates. Every row gets *provisional* values for the bar in progress, as if that bar closed
//! at the row's price; they change no committed state. The state advances only when a bar
//! closes, i.e. when the first row of a later bar arrives (event time, so replay = live).
//!
//! - [`IndicatorSet`] (one symbol's indicators) wraps the `ta-lib` crate (TA-Lib's own Rust
//!   port) behind our types, so the library can be swapped: [`talib`](self) holds the glue.
//! - [`vwap`]: session VWAP (America/New_York trading day).
//! - [`engine`]: [`IndicatorEngine`], the per-symbol map owned by the frame processor's task.
//! - [`warm_start`]: rebuilds each symbol's latest bars from `equity_data` (futures: `futures_data`) at startup.
//!
//! Cost: O(1) per row per indicator and no allocation per row once a symbol has warmed up.

pub mod bars;
pub mod engine;
mod set;
pub mod settings;
mod talib;
pub mod vwap;
pub mod warm_start;

pub use engine::IndicatorEngine;
pub use set::{BadPeriods, IndicatorSet};
pub use settings::{IndicatorSettings, WarmUpBars};

/// The indicator columns of one `equity_data` row; `None` (NULL) until the indicator has
/// enough bars. Prices are in the quote's currency (dollars), RSI in 0–100.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IndicatorValues {
    /// Simple moving average of closes, `SMA_PERIOD` bars.
    pub sma: Option<f64>,
    /// Exponential moving average, `EMA_FAST_PERIOD` bars (SMA-seeded).
    pub ema_fast: Option<f64>,
    /// Exponential moving average, `EMA_SLOW_PERIOD` bars (SMA-seeded).
    pub ema_slow: Option<f64>,
    /// Wilder's RSI, `RSI_PERIOD` bars, 0–100.
    pub rsi: Option<f64>,
    /// MACD line: EMA(`MACD_FAST`) − EMA(`MACD_SLOW`).
    pub macd: Option<f64>,
    /// EMA(`MACD_SIGNAL`) of the MACD line.
    pub macd_signal: Option<f64>,
    /// MACD line − signal.
    pub macd_hist: Option<f64>,
    /// SMA(`BB_PERIOD`) + `BB_STDDEV` × population standard deviation.
    pub bb_upper: Option<f64>,
    /// SMA(`BB_PERIOD`).
    pub bb_middle: Option<f64>,
    /// SMA(`BB_PERIOD`) − `BB_STDDEV` × population standard deviation.
    pub bb_lower: Option<f64>,
    /// Session VWAP (typical price weighted by bar volume, New York trading day).
    pub vwap: Option<f64>,
}

impl IndicatorValues {
    /// Column names, in the order of [`IndicatorValues::to_array`].
    pub const COLUMNS: [&'static str; 11] = [
        "sma",
        "ema_fast",
        "ema_slow",
        "rsi",
        "macd",
        "macd_signal",
        "macd_hist",
        "bb_upper",
        "bb_middle",
        "bb_lower",
        "vwap",
    ];

    /// The values in [`IndicatorValues::COLUMNS`] order.
    pub fn to_array(&self) -> [Option<f64>; 11] {
        [
            self.sma,
            self.ema_fast,
            self.ema_slow,
            self.rsi,
            self.macd,
            self.macd_signal,
            self.macd_hist,
            self.bb_upper,
            self.bb_middle,
            self.bb_lower,
            self.vwap,
        ]
    }

    /// Non-finite values become `None` (a database column takes no NaN).
    pub fn finite(self) -> Self {
        let f = |v: Option<f64>| v.filter(|x| x.is_finite());
        Self {
            sma: f(self.sma),
            ema_fast: f(self.ema_fast),
            ema_slow: f(self.ema_slow),
            rsi: f(self.rsi),
            macd: f(self.macd),
            macd_signal: f(self.macd_signal),
            macd_hist: f(self.macd_hist),
            bb_upper: f(self.bb_upper),
            bb_middle: f(self.bb_middle),
            bb_lower: f(self.bb_lower),
            vwap: f(self.vwap),
        }
    }
}

#[cfg(test)]
mod tests;
