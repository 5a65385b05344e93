//! The frame processor: parser + market state + indicators, owned by the task that reads
//! frames.
//!
//! `process` turns one raw server frame into rows (sent on to the writer) and protocol
//! events (responses and notices, for the session logic), and keeps the counters. Each
//! equity row gets its symbol's indicator values (see [`crate::indicators`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::frame::{Notice, Response, UpdateBody, parse_frame};
use crate::health::live::LiveFeed;
use crate::indicators::IndicatorEngine;
use crate::market::MarketState;
use crate::rows::Row;
use crate::stats::PipelineStats;

/// What a frame said besides its data.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FrameEvents {
    pub responses: Vec<Response>,
    pub notices: Vec<Notice>,
    /// False when the frame was not JSON at all.
    pub parsed: bool,
    /// The latest event time of the frame's data items.
    pub latest_event_ms: Option<i64>,
}

/// Parser plus merged state plus indicators. One instance per stream, owned by one task.
#[derive(Debug)]
pub struct FrameProcessor {
    state: MarketState,
    indicators: IndicatorEngine,
    stats: Arc<PipelineStats>,
    /// The live page's feed (equity rows offered without waiting; see [`LiveFeed::offer`]).
    live: Option<LiveFeed>,
}

impl FrameProcessor {
    /// A processor that counts into `stats` and computes indicators with `indicators`
    /// (already warm-started if wanted, see [`crate::app::indicator_engine`]).
    pub fn new(stats: Arc<PipelineStats>, indicators: IndicatorEngine) -> Self {
        Self {
            state: MarketState::new(),
            indicators,
            stats,
            live: None,
        }
    }

    /// Also offers every equity row to the live page.
    pub fn with_live(mut self, feed: Option<LiveFeed>) -> Self {
        self.live = feed;
        self
    }

    /// The merged market state.
    pub fn state(&self) -> &MarketState {
        &self.state
    }

    /// The indicator engine.
    pub fn indicators(&self) -> &IndicatorEngine {
        &self.indicators
    }

    /// Parses `text` (received at `received_ms`), merges its updates and appends the
    /// resulting rows to `rows`. Malformed input is counted and skipped, never fatal.
    pub fn process(&mut self, text: &str, received_ms: i64, rows: &mut Vec<Row>) -> FrameEvents {
        let s = &self.stats;
        PipelineStats::add(&s.frames, 1);
        s.last_frame_unix_ms.store(received_ms, Relaxed);
        let frame = match parse_frame(text, received_ms) {
            Ok(f) => f,
            Err(e) => {
                PipelineStats::add(&s.malformed_frames, 1);
                tracing::debug!(error = %e, "skipped malformed frame");
                return FrameEvents::default();
            }
        };
        let mut skipped = u64::from(frame.skipped_items);
        // Counted locally and published once per frame: one atomic add per counter, not per
        // update. `services`: the frame carried the service; `merged`: updates that made rows.
        let mut services = [false; 3];
        let mut merged = [0u64; 3];
        for update in &frame.updates {
            let service = match update.body {
                UpdateBody::Equity(_) => 0,
                UpdateBody::Option(_) => 1,
                UpdateBody::Chart(_) => 2,
            };
            services[service] = true;
            match self.state.apply(update) {
                Ok(mut row) => {
                    if let Row::Equity(equity) = &mut row {
                        equity.indicators = self.indicators.on_equity(equity);
                        if let Some(live) = &self.live {
                            live.offer(equity);
                        }
                    }
                    rows.push(row);
                    merged[service] += 1;
                }
                Err(e) => {
                    skipped += 1;
                    tracing::debug!(error = %e, "skipped unusable update");
                }
            }
        }
        let [equities, options, charts] = merged;
        for (counter, n) in [
            (&s.updates, equities + options + charts),
            (&s.equity_updates, equities),
            (&s.option_updates, options),
            (&s.chart_updates, charts),
        ] {
            if n > 0 {
                PipelineStats::add(counter, n);
            }
        }
        if skipped > 0 {
            PipelineStats::add(&s.skipped_items, skipped);
        }
        let by_service = [&s.equity_frames, &s.option_frames, &s.chart_frames];
        for (carried, counter) in services.into_iter().zip(by_service) {
            if carried {
                PipelineStats::add(counter, 1);
            }
        }
        if services == [false; 3] {
            PipelineStats::add(&s.other_frames, 1);
        } else {
            s.last_update_unix_ms.store(received_ms, Relaxed);
        }
        let heartbeats = frame
            .notices
            .iter()
            .filter(|n| matches!(n, Notice::Heartbeat { .. }))
            .count();
        PipelineStats::add(&s.heartbeats, heartbeats as u64);
        FrameEvents {
            latest_event_ms: frame.updates.iter().map(|u| u.event_ms).max(),
            responses: frame.responses,
            notices: frame.notices,
            parsed: true,
        }
    }
}
