//! The benchmark's market: a deterministic simulated session of many symbols, as the frames
//! the real streamer would send, plus an indicator engine warmed up as a restart would leave it.

use std::sync::Arc;

use market_streamer::counters::PipelineStats;
use market_streamer::indicators::bars::BarAggregate;
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::Row;
use market_streamer::settings::Config;
use schwab_sim::{MarketSimulator, SimConfig};

use super::BenchError;

/// 2025-12-09 14:00:00 New York (a Tuesday, market open), a minute boundary: the start of
/// every fixed-date session, so two runs produce the same frames.
pub const SESSION_START_MS: i64 = 1_765_306_800_000;

/// Seed of the simulated market.
const SEED: u64 = 42;

/// Closed bars restored per symbol before the session (more than the longest warm-up, 34).
const WARM_BARS: i64 = 60;

/// One server frame and the (simulated) time it is due.
#[derive(Debug, Clone)]
pub struct SimFrame {
    /// Epoch ms at which the streamer sends it.
    pub at_ms: i64,
    pub text: String,
}

/// A generated session.
#[derive(Debug)]
pub struct Session {
    pub symbols: Vec<String>,
    pub frames: Vec<SimFrame>,
    /// First price of each symbol (for the warm-up bars), in `symbols` order.
    pub start_prices: Vec<f64>,
    pub start_ms: i64,
    /// LEVELONE_EQUITIES + CHART_EQUITY items in the frames.
    pub updates: u64,
}

/// When generation stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Once at least this many data items were generated.
    Updates(u64),
    /// Once this much simulated time has passed.
    Millis(i64),
}

/// `n` distinct, valid, made-up four-letter tickers (`BAAA`, `BAAB`, …), stable across runs.
pub fn tickers(n: usize) -> Vec<String> {
    const LETTERS: &[u8; 26] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..n)
        .map(|i| {
            // Three letters in base 26 after a leading letter from B on.
            let mut s = Vec::with_capacity(4);
            let mut v = i;
            for _ in 0..3 {
                s.push(LETTERS[v % 26]);
                v /= 26;
            }
            s.push(LETTERS[1 + v % 25]);
            s.reverse();
            String::from_utf8_lossy(&s).into_owned()
        })
        .collect()
}

/// Generates the frames of `symbols` on LEVELONE_EQUITIES and CHART_EQUITY (the service's
/// default field lists, as `market-streamer` subscribes) at `per_symbol_per_sec` updates per
/// symbol per second from `start_ms`, heartbeats included, until `until`.
pub fn generate(
    symbols: &[String],
    per_symbol_per_sec: f64,
    start_ms: i64,
    until: Until,
) -> Result<Session, BenchError> {
    let mut sim = MarketSimulator::new(
        SimConfig {
            seed: SEED,
            updates_per_symbol_per_sec: per_symbol_per_sec,
            ..SimConfig::default()
        },
        start_ms,
    );
    let fields = Config::default().schwab;
    sim.apply_command("LEVELONE_EQUITIES", "SUBS", symbols, &fields.equity_fields)?;
    sim.apply_command("CHART_EQUITY", "SUBS", symbols, &fields.chart_fields)?;
    let start_prices = symbols
        .iter()
        .map(|s| sim.last_price(s).unwrap_or(100.0))
        .collect();
    let items = |sim: &MarketSimulator| {
        sim.items_emitted("LEVELONE_EQUITIES") + sim.items_emitted("CHART_EQUITY")
    };
    let mut frames = Vec::new();
    while let Some(t) = sim.next_due_ms() {
        let done = match until {
            Until::Updates(n) => items(&sim) >= n,
            Until::Millis(ms) => t > start_ms + ms,
        };
        if done {
            break;
        }
        frames.extend(
            sim.advance_to(t)
                .into_iter()
                .map(|text| SimFrame { at_ms: t, text }),
        );
    }
    Ok(Session {
        symbols: symbols.to_vec(),
        frames,
        start_prices,
        start_ms,
        updates: items(&sim),
    })
}

impl Session {
    /// An indicator engine with [`WARM_BARS`] closed one-minute bars per symbol before the
    /// session (what a restart's warm start restores), so every indicator has a value from
    /// the first row on, as in steady state.
    pub fn warm_engine(&self) -> IndicatorEngine {
        let settings = IndicatorSettings::default();
        let bar_ms = settings.bar_ms();
        let Ok(mut engine) = IndicatorEngine::new(settings) else {
            unreachable!("the default periods are valid")
        };
        let first_bucket = self.start_ms.div_euclid(bar_ms) - WARM_BARS;
        for (i, (symbol, &price)) in self.symbols.iter().zip(&self.start_prices).enumerate() {
            let mut rng = fastrand::Rng::with_seed(SEED ^ i as u64);
            let mut close = price;
            let mut volume = 1_000_000i64;
            let bars: Vec<BarAggregate> = (0..WARM_BARS)
                .map(|k| {
                    let bucket = first_bucket + k;
                    let open_ms = bucket * bar_ms;
                    let open = close;
                    close = open * (1.0 + (rng.f64() - 0.5) * 0.004);
                    let first = ((open_ms, 0), volume);
                    volume += 1_000 + rng.i64(0..20_000);
                    BarAggregate {
                        bucket,
                        high: open.max(close) * 1.000_5,
                        low: open.min(close) * 0.999_5,
                        close,
                        close_key: (open_ms + bar_ms - 1, 0),
                        first_volume: Some(first),
                        last_volume: Some(((open_ms + bar_ms - 1, 0), volume)),
                    }
                })
                .collect();
            engine.restore(symbol, &bars);
        }
        engine
    }

    /// The rows the pipeline makes of the session, one `Vec` per frame (as the writer gets
    /// them), with warmed-up indicators.
    pub fn rows(&self) -> Vec<Vec<Row>> {
        let mut processor =
            FrameProcessor::new(Arc::new(PipelineStats::default()), self.warm_engine());
        self.frames
            .iter()
            .filter_map(|f| {
                let mut rows = Vec::new();
                processor.process_text(&f.text, f.at_ms, &mut rows);
                (!rows.is_empty()).then_some(rows)
            })
            .collect()
    }
}

/// Only the equity rows, in order (what `equity_data` receives).
pub fn equity_rows(frames: &[Vec<Row>]) -> Vec<market_streamer::rows::EquityRow> {
    frames
        .iter()
        .flatten()
        .filter_map(|r| match r {
            Row::Equity(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}
