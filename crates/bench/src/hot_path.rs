//! Hot path: parse + merge + indicators per update ([`FrameProcessor::process_text`]) over a
//! pre-generated session, on one thread, against a generic JSON parse of the same frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use market_streamer::counters::PipelineStats;
use market_streamer::indicators::IndicatorEngine;
use market_streamer::pipeline::FrameProcessor;

use super::session::Session;

/// What the hot-path runs measured.
#[derive(Debug, Clone)]
pub struct HotPathResult {
    /// Symbols in the session.
    pub symbols: usize,
    /// Frames processed per pass.
    pub frames: usize,
    /// Updates (rows) per pass.
    pub updates: u64,
    /// Timed passes of each kind.
    pub passes: usize,
    /// Per pass, in run order.
    pub pipeline: Vec<Duration>,
    /// `serde_json::from_str::<Value>` of every frame, per pass (the same-run baseline).
    pub json_value: Vec<Duration>,
    /// Heap allocations per update in one extra, untimed pass (`None` when the counting
    /// allocator is not installed).
    pub allocations_per_update: Option<f64>,
}

impl HotPathResult {
    /// Median pass time of the pipeline.
    pub fn pipeline_median(&self) -> Duration {
        median(&self.pipeline)
    }

    /// Updates per second of the median pass.
    pub fn updates_per_sec(&self) -> f64 {
        self.updates as f64 / self.pipeline_median().as_secs_f64().max(1e-9)
    }

    /// Nanoseconds per update of the median pass.
    pub fn ns_per_update(&self) -> f64 {
        self.pipeline_median().as_nanos() as f64 / self.updates.max(1) as f64
    }

    /// Nanoseconds per update of the generic JSON parse (median pass).
    pub fn json_ns_per_update(&self) -> f64 {
        median(&self.json_value).as_nanos() as f64 / self.updates.max(1) as f64
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// One timed pass of the real processor (fresh state, warmed indicators); returns the time
/// and the updates it merged.
fn pipeline_pass(session: &Session, engine: IndicatorEngine) -> (Duration, u64) {
    let stats = Arc::new(PipelineStats::default());
    let mut processor = FrameProcessor::new(stats.clone(), engine);
    let mut rows = Vec::with_capacity(1024);
    let started = Instant::now();
    for frame in &session.frames {
        processor.process_text(&frame.text, frame.at_ms, &mut rows);
        // The writer would take the rows; dropping them is part of the cost.
        rows.clear();
    }
    let elapsed = started.elapsed();
    (elapsed, PipelineStats::get(&stats.updates))
}

/// Parses every frame into a `serde_json::Value` and drops it: what a generic consumer pays
/// before doing anything with the data.
fn json_value_pass(session: &Session) -> Duration {
    let started = Instant::now();
    for frame in &session.frames {
        let v = serde_json::from_str::<serde_json::Value>(&frame.text);
        std::hint::black_box(v.is_ok());
    }
    started.elapsed()
}

/// Alternates `passes` pipeline and baseline passes (so machine load hits both alike), then
/// one untimed pass counting allocations. Runs on the calling thread: call it off the
/// async runtime.
pub fn run(session: &Session, passes: usize) -> HotPathResult {
    let mut pipeline = Vec::with_capacity(passes);
    let mut json_value = Vec::with_capacity(passes);
    let mut updates = 0;
    for _ in 0..passes.max(1) {
        let (t, n) = pipeline_pass(session, session.warm_engine());
        pipeline.push(t);
        updates = n;
        json_value.push(json_value_pass(session));
    }
    let engine = session.warm_engine();
    let (_, allocations) = testkit::alloc::count_allocations(|| pipeline_pass(session, engine));
    HotPathResult {
        symbols: session.symbols.len(),
        frames: session.frames.len(),
        updates,
        passes: pipeline.len(),
        pipeline,
        json_value,
        allocations_per_update: allocations.map(|a| a as f64 / updates.max(1) as f64),
    }
}
