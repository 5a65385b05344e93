//! The TA-Lib streams behind [`super::IndicatorSet`], one uniform slot per indicator.
//!
//! TA-Lib's streaming handles (`ta-lib` crate, the official Rust port) give `update` (commit a
//! closed bar) and `peek` (value of a forming bar without committing), both O(1) and
//! allocation-free, bit-identical to the batch functions. What the crate does not do, and this
//! module adds:
//! - **Before the first value**, a handle cannot exist: `*_open` needs `lookback + 1` bars. So
//!   the closes are kept until then (in a buffer sized once), and the stream is opened over
//!   all of them on the bar that completes its warm-up, which is bit-identical to running the
//!   batch function from the first bar.
//! - **The provisional value on that first-value bar** (`lookback` closed bars plus the forming
//!   one) comes from the batch function over the buffered closes plus the tick's price, into
//!   stack outputs: allocation-free, O(lookback), and only for the one bar per symbol that
//!   precedes the stream's opening (never after a warm start).
//!
//! TA-Lib conventions (what the tests check against): EMA seeded with the SMA of its first `n`
//! bars; RSI with Wilder smoothing seeded with simple averages of the first `n` changes (50
//! when nothing moved); MACD's fast EMA seeded on the window that ends where the slow one's
//! does (both at bar `slow - 1`), signal seeded with the SMA of the first `signal` MACD values;
//! Bollinger Bands with an SMA middle and the population standard deviation.

use std::sync::LazyLock;

use ta_lib::{BbandsStream, Core, EmaStream, MAType, MacdStream, RetCode, RsiStream, SmaStream};

/// TA-Lib's default settings (no extra unstable period, so EMA-family values match the
/// classic TA-Lib output). Immutable and shared; streams hold no reference to it.
static CORE: LazyLock<Core> = LazyLock::new(Core::new);

/// The shared TA-Lib core.
pub(super) fn core() -> &'static Core {
    &CORE
}

/// One TA-Lib indicator driven bar by bar.
pub(super) trait TaStream: Sized {
    /// The periods.
    type Params: Copy + std::fmt::Debug;
    /// One value (a tuple for multi-output indicators).
    type Out: Copy;
    /// Bars consumed before the first value.
    fn lookback(core: &Core, p: Self::Params) -> Result<usize, RetCode>;
    /// A handle over `history` (at least `lookback + 1` closes) and the value at its last bar.
    fn open(core: &Core, history: &[f64], p: Self::Params) -> Result<(Self, Self::Out), RetCode>;
    /// Commits one closed bar.
    fn update(&mut self, close: f64) -> Result<Self::Out, RetCode>;
    /// The value if the next bar closed at `close`, committing nothing.
    fn peek(&self, close: f64) -> Result<Self::Out, RetCode>;
    /// The batch value at the last bar of `series`, without allocating.
    fn last_value(core: &Core, series: &[f64], p: Self::Params) -> Result<Self::Out, RetCode>;
}

/// Index of the last element, for the batch calls' `startIdx..=endIdx`.
fn last_index(series: &[f64]) -> Result<usize, RetCode> {
    series
        .len()
        .checked_sub(1)
        .ok_or(RetCode::OutOfRangeStartIndex)
}

impl TaStream for SmaStream {
    type Params = i32;
    type Out = f64;
    fn lookback(core: &Core, p: i32) -> Result<usize, RetCode> {
        core.sma_lookback(p)
    }
    fn open(core: &Core, history: &[f64], p: i32) -> Result<(Self, f64), RetCode> {
        core.sma_open(history, p)
    }
    fn update(&mut self, close: f64) -> Result<f64, RetCode> {
        SmaStream::update(self, close)
    }
    fn peek(&self, close: f64) -> Result<f64, RetCode> {
        SmaStream::peek(self, close)
    }
    fn last_value(core: &Core, series: &[f64], p: i32) -> Result<f64, RetCode> {
        let end = last_index(series)?;
        let mut out = [f64::NAN];
        let r = core.sma(end, end, series, p, &mut out)?;
        single(r.count, out[0])
    }
}

impl TaStream for EmaStream {
    type Params = i32;
    type Out = f64;
    fn lookback(core: &Core, p: i32) -> Result<usize, RetCode> {
        core.ema_lookback(p)
    }
    fn open(core: &Core, history: &[f64], p: i32) -> Result<(Self, f64), RetCode> {
        core.ema_open(history, p)
    }
    fn update(&mut self, close: f64) -> Result<f64, RetCode> {
        EmaStream::update(self, close)
    }
    fn peek(&self, close: f64) -> Result<f64, RetCode> {
        EmaStream::peek(self, close)
    }
    fn last_value(core: &Core, series: &[f64], p: i32) -> Result<f64, RetCode> {
        let end = last_index(series)?;
        let mut out = [f64::NAN];
        let r = core.ema(end, end, series, p, &mut out)?;
        single(r.count, out[0])
    }
}

impl TaStream for RsiStream {
    type Params = i32;
    type Out = f64;
    fn lookback(core: &Core, p: i32) -> Result<usize, RetCode> {
        core.rsi_lookback(p)
    }
    fn open(core: &Core, history: &[f64], p: i32) -> Result<(Self, f64), RetCode> {
        core.rsi_open(history, p)
    }
    fn update(&mut self, close: f64) -> Result<f64, RetCode> {
        RsiStream::update(self, close)
    }
    fn peek(&self, close: f64) -> Result<f64, RetCode> {
        RsiStream::peek(self, close)
    }
    fn last_value(core: &Core, series: &[f64], p: i32) -> Result<f64, RetCode> {
        let end = last_index(series)?;
        let mut out = [f64::NAN];
        let r = core.rsi(end, end, series, p, &mut out)?;
        single(r.count, out[0])
    }
}

/// MACD periods: fast, slow, signal.
pub(super) type MacdParams = (i32, i32, i32);

impl TaStream for MacdStream {
    type Params = MacdParams;
    type Out = (f64, f64, f64);
    fn lookback(core: &Core, (f, s, g): MacdParams) -> Result<usize, RetCode> {
        core.macd_lookback(f, s, g)
    }
    fn open(
        core: &Core,
        history: &[f64],
        (f, s, g): MacdParams,
    ) -> Result<(Self, Self::Out), RetCode> {
        core.macd_open(history, f, s, g)
    }
    fn update(&mut self, close: f64) -> Result<Self::Out, RetCode> {
        MacdStream::update(self, close)
    }
    fn peek(&self, close: f64) -> Result<Self::Out, RetCode> {
        MacdStream::peek(self, close)
    }
    fn last_value(
        core: &Core,
        series: &[f64],
        (f, s, g): MacdParams,
    ) -> Result<Self::Out, RetCode> {
        let end = last_index(series)?;
        let (mut line, mut signal, mut hist) = ([f64::NAN], [f64::NAN], [f64::NAN]);
        let r = core.macd(end, end, series, f, s, g, &mut line, &mut signal, &mut hist)?;
        single(r.count, (line[0], signal[0], hist[0]))
    }
}

/// Bollinger Bands parameters: period and width in standard deviations.
pub(super) type BbandsParams = (i32, f64);

impl TaStream for BbandsStream {
    type Params = BbandsParams;
    type Out = (f64, f64, f64);
    fn lookback(core: &Core, (p, k): BbandsParams) -> Result<usize, RetCode> {
        core.bbands_lookback(p, k, k, MAType::SMA)
    }
    fn open(
        core: &Core,
        history: &[f64],
        (p, k): BbandsParams,
    ) -> Result<(Self, Self::Out), RetCode> {
        core.bbands_open(history, p, k, k, MAType::SMA)
    }
    fn update(&mut self, close: f64) -> Result<Self::Out, RetCode> {
        BbandsStream::update(self, close)
    }
    fn peek(&self, close: f64) -> Result<Self::Out, RetCode> {
        BbandsStream::peek(self, close)
    }
    fn last_value(core: &Core, series: &[f64], (p, k): BbandsParams) -> Result<Self::Out, RetCode> {
        let end = last_index(series)?;
        let (mut upper, mut middle, mut lower) = ([f64::NAN], [f64::NAN], [f64::NAN]);
        let r = core.bbands(
            end,
            end,
            series,
            p,
            k,
            k,
            MAType::SMA,
            &mut upper,
            &mut middle,
            &mut lower,
        )?;
        single(r.count, (upper[0], middle[0], lower[0]))
    }
}

/// The one value a single-bar batch call wrote.
fn single<T>(count: usize, value: T) -> Result<T, RetCode> {
    if count == 1 {
        Ok(value)
    } else {
        Err(RetCode::InsufficientHistory)
    }
}

/// One indicator's state: its warm-up length and, once warmed up, its stream.
#[derive(Debug, Clone)]
pub(super) struct Slot<S: TaStream> {
    params: S::Params,
    lookback: usize,
    stream: Option<S>,
    /// Set when the library refused a bar; the indicator is then NULL for good (logged once).
    failed: bool,
}

impl<S: TaStream + std::fmt::Debug> Slot<S> {
    /// A slot for `params`; `Err` when TA-Lib rejects them (config validation prevents it).
    pub(super) fn new(params: S::Params) -> Result<Self, RetCode> {
        Ok(Self {
            params,
            lookback: S::lookback(core(), params)?,
            stream: None,
            failed: false,
        })
    }

    /// The same indicator with no bar yet.
    pub(super) fn fresh(&self) -> Self {
        Self {
            params: self.params,
            lookback: self.lookback,
            stream: None,
            failed: false,
        }
    }

    /// Bars consumed before the first value.
    pub(super) fn lookback(&self) -> usize {
        self.lookback
    }

    /// Commits a closed bar. `closes` holds every close so far including this one, as long
    /// as some slot still warms up; `closed` is how many bars have closed, this one included.
    pub(super) fn commit(&mut self, close: f64, closes: &[f64], closed: u64) {
        if self.failed {
            return;
        }
        let result = match &mut self.stream {
            Some(stream) => stream.update(close).map(drop),
            None if closed == self.lookback as u64 + 1 => {
                S::open(core(), closes, self.params).map(|(stream, _)| self.stream = Some(stream))
            }
            None => Ok(()),
        };
        if let Err(code) = result {
            self.fail(code);
        }
    }

    /// The value if the open bar closed at `close`. `closes` ends with that price appended
    /// (only while some slot warms up); `closed` counts closed bars, the open one excluded.
    pub(super) fn provisional(
        &self,
        close: f64,
        closes_with_open: &[f64],
        closed: u64,
    ) -> Option<S::Out> {
        if self.failed {
            return None;
        }
        match &self.stream {
            Some(stream) => stream.peek(close).ok(),
            None if closed == self.lookback as u64 => {
                S::last_value(core(), closes_with_open, self.params).ok()
            }
            None => None,
        }
    }

    fn fail(&mut self, code: RetCode) {
        tracing::warn!(
            params = ?self.params,
            error = %code,
            "TA-Lib refused a bar; this indicator stays NULL for the symbol until restart (please report it)"
        );
        self.failed = true;
        self.stream = None;
    }
}
