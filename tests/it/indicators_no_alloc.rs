//! The per-row indicator path allocates nothing once a symbol has warmed up: a counting
//! global allocator watches the engine over hundreds of bars of three symbols, bar closes and
//! a New York session change (VWAP restart) included.
//!
//! Own test binary, so the allocator hook sees only this test; it counts on this thread only.

use std::sync::Arc;

use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use testkit::alloc::{CountingAllocator, count_allocations};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn rows_after_warm_up_allocate_nothing() {
    let settings = IndicatorSettings::default();
    let mut engine = IndicatorEngine::new(settings).expect("default periods");
    let symbols: Vec<Arc<str>> = ["AAPL", "MSFT", "SPY"].into_iter().map(Arc::from).collect();
    // 2025-03-11 01:00 UTC = 2025-03-10 21:00 New York: 800 minutes cross New York midnight.
    let start_ms: i64 = 1_741_654_800_000;
    let mut rng = fastrand::Rng::with_seed(1);
    let mut rows = Vec::new();
    for minute in 0..800i64 {
        for (i, sym) in symbols.iter().enumerate() {
            for k in 0..3i64 {
                let ts = start_ms + minute * 60_000 + k * 15_000 + i as i64;
                let price = 100.0 + rng.f64() * 5.0;
                let volume = minute * 1_000 + k * 100;
                rows.push((sym.clone(), ts, price, volume));
            }
        }
    }
    let warm_up_rows = 100 * symbols.len() * 3; // 100 bars, well past the longest warm-up (34)
    let mut checksum = 0.0;
    for (sym, ts, price, volume) in &rows[..warm_up_rows] {
        checksum += engine
            .on_tick(sym, (*ts, 0), Some(*price), Some(*volume))
            .sma
            .unwrap_or(0.0);
    }
    let ((), allocations) = count_allocations(|| {
        for (sym, ts, price, volume) in &rows[warm_up_rows..] {
            let v = engine.on_tick(sym, (*ts, 0), Some(*price), Some(*volume));
            checksum += v.macd_hist.unwrap_or(0.0) + v.vwap.unwrap_or(0.0);
        }
    });
    assert!(checksum.is_finite());
    assert_eq!(engine.closed_bars("AAPL"), 799);
    assert_eq!(
        allocations,
        Some(0),
        "the per-row path allocated after warm-up (None: the counting allocator is not installed)"
    );
}
