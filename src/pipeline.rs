//! The pipeline, downstream of the Schwab session: merged market state + indicators, owned
//! by the task that reads frames, turning each parsed frame into rows for the writer.
//!
//! [`Pipeline`] is the session's [`FrameConsumer`]: it takes frames the session has already
//! parsed (the session acts on their responses and notices itself; nothing flows back), merges
//! their updates, gives each equity row its symbol's indicator values (see
//! [`crate::indicators`]), keeps the counters, and sends the rows to the writer.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::mpsc;

use crate::counters::{PipelineStats, SERVICES};
use crate::health::live::LiveFeed;
use crate::indicators::IndicatorEngine;
use crate::market::MarketState;
use crate::market::books::BookSettings;
use crate::market::clock;
use crate::market::keys::SubscribedKeys;
use crate::market::sanity::{self, Refusal};
use crate::rows::Row;
use crate::schwab::downstream::{DownstreamStopped, FrameConsumer};
use crate::schwab::session::protocol::Subscription;
use crate::schwab::wire::{Frame, FrameError, Notice, Service, Update, parse_frame};

/// The session's consumer: a [`FrameProcessor`] plus the bounded channel to the writer.
#[derive(Debug)]
pub struct Pipeline {
    processor: FrameProcessor,
    tx: mpsc::Sender<Vec<Row>>,
}

impl Pipeline {
    /// Frames go through `processor`; their rows go to the writer through `tx`.
    pub fn new(processor: FrameProcessor, tx: mpsc::Sender<Vec<Row>>) -> Self {
        Self { processor, tx }
    }

    /// The processor (merged state and indicators).
    pub fn processor(&self) -> &FrameProcessor {
        &self.processor
    }

    /// The stream has ended: rows kept in memory for a later slot (book snapshots) are sent
    /// to the writer now, then the pipeline's sender is dropped. A writer already gone is
    /// not an error here (its own error is reported where it ended).
    pub async fn finish(mut self) {
        let mut rows = Vec::new();
        self.processor.finish(&mut rows);
        if !rows.is_empty() && self.tx.send(rows).await.is_err() {
            tracing::debug!("the writer had stopped; the last book snapshots were not written");
        }
    }
}

impl FrameConsumer for Pipeline {
    /// When the writer's channel is full this waits: a finite source slows down, a live
    /// source stops reading its socket for that moment (the writer empties the channel as
    /// fast as it can, so this is short unless the writer is in backpressure mode).
    async fn consume(
        &mut self,
        frame: Result<&Frame<'_>, &FrameError>,
        received_ms: i64,
    ) -> Result<(), DownstreamStopped> {
        let mut rows = Vec::new();
        match frame {
            Ok(frame) => self.processor.process(frame, received_ms, &mut rows),
            Err(e) => self.processor.malformed(e, received_ms),
        }
        if !rows.is_empty() && self.tx.send(rows).await.is_err() {
            return Err(DownstreamStopped);
        }
        Ok(())
    }

    /// The watchlist added or removed keys on the running connection: their items are
    /// expected (or no longer); the state of a removed key is dropped (its last book snapshot
    /// goes out with the next frame's rows).
    fn keys_changed(&mut self, service: Service, keys: &[String], added: bool) {
        if added {
            self.processor.add_keys(service, keys);
        } else {
            self.processor.remove_keys(service, keys);
        }
    }
}

/// Parser plus merged state plus indicators. One instance per stream, owned by one task.
#[derive(Debug)]
pub struct FrameProcessor {
    state: MarketState,
    indicators: IndicatorEngine,
    stats: Arc<PipelineStats>,
    /// The live page's feed (equity rows offered without waiting; see [`LiveFeed::offer`]).
    live: Option<LiveFeed>,
    /// Sanity refusals already logged, by kind (each kind is logged once).
    refusals_logged: [bool; 6],
    /// The keys each service subscribed; items for other keys are ignored (default: any).
    keys: SubscribedKeys,
    /// Services whose ignored (unsubscribed) items were logged (each service once).
    unsubscribed_logged: [bool; SERVICES],
    /// Rows made outside a frame (the last book snapshot of a removed key), handed out with
    /// the next frame's rows or at the end.
    leftover: Vec<Row>,
    /// `CLOCK_SKEW_TOLERANCE` in ms; times further ahead of the receive time are clamped.
    clock_tolerance_ms: i64,
    /// A clamp was logged (the first one is).
    clamp_logged: bool,
}

impl FrameProcessor {
    /// A processor that counts into `stats` and computes indicators with `indicators`
    /// (already warm-started if wanted, see [`crate::app::indicator_engine`]); books are
    /// stored with the default depth and interval unless [`Self::with_books`] says otherwise.
    pub fn new(stats: Arc<PipelineStats>, indicators: IndicatorEngine) -> Self {
        Self {
            state: MarketState::new(),
            indicators,
            stats,
            live: None,
            refusals_logged: [false; 6],
            keys: SubscribedKeys::any(),
            unsubscribed_logged: [false; SERVICES],
            leftover: Vec::new(),
            clock_tolerance_ms: clock::DEFAULT_TOLERANCE_MS,
            clamp_logged: false,
        }
    }

    /// Accepts only the keys of `subscriptions`, per service (items for other keys are
    /// ignored and counted); without this every key is accepted (`replay`, the benchmark).
    pub fn with_subscriptions(mut self, subscriptions: &[Subscription]) -> Self {
        self.keys = SubscribedKeys::of(subscriptions);
        self
    }

    /// Clamps stream times more than `tolerance` ahead of the receive time
    /// (`CLOCK_SKEW_TOLERANCE`; default 60 s).
    pub fn with_clock_tolerance(mut self, tolerance: std::time::Duration) -> Self {
        self.clock_tolerance_ms = i64::try_from(tolerance.as_millis()).unwrap_or(i64::MAX);
        self
    }

    /// The subscribed keys.
    pub fn subscribed_keys(&self) -> &SubscribedKeys {
        &self.keys
    }

    /// Expects items for `keys` of `service` from now on (an ADD while streaming).
    pub fn add_keys(&mut self, service: Service, keys: &[String]) {
        self.keys.add(service, keys);
    }

    /// Ignores items for `keys` of `service` from now on (an UNSUBS while streaming) and
    /// drops what was kept for them: merged quote, indicators (LEVELONE equities and futures:
    /// the indicator engine is keyed by their symbols), book slot, live-page row. Memory stays
    /// bounded
    /// however many symbols the watchlist adds and removes over time.
    pub fn remove_keys(&mut self, service: Service, keys: &[String]) {
        if self.keys.accepts_any() {
            return;
        }
        self.keys.remove(service, keys);
        for key in keys {
            self.state.forget(service, key, &mut self.leftover);
            if matches!(
                service,
                Service::LevelOneEquities | Service::LevelOneFutures
            ) {
                self.indicators.forget(key);
            }
            // The live page shows LEVELONE equities and options: the row leaves it.
            if let Some(live) = &self.live
                && matches!(
                    service,
                    Service::LevelOneEquities | Service::LevelOneOptions
                )
            {
                live.remove(key);
            }
        }
    }

    /// Stores books as `books` says (`BOOK_DEPTH`, `BOOK_SNAPSHOT_INTERVAL`); call before any
    /// frame (the merged state starts empty).
    pub fn with_books(mut self, books: BookSettings) -> Self {
        self.state = MarketState::with_books(books);
        self
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

    /// Parses `text` (received at `received_ms`) and processes it like [`Self::process`]
    /// (the benchmark's and tests' way in; the session parses frames itself).
    pub fn process_text(&mut self, text: &str, received_ms: i64, rows: &mut Vec<Row>) {
        match parse_frame(text, received_ms) {
            Ok(frame) => self.process(&frame, received_ms, rows),
            Err(e) => self.malformed(&e, received_ms),
        }
    }

    /// Appends what the state still holds for a later slot (book snapshots), whatever their
    /// slot: the stream has ended.
    pub fn finish(&mut self, rows: &mut Vec<Row>) {
        rows.append(&mut self.leftover);
        self.state.flush_books(rows);
    }

    /// Counts a frame that could not be parsed; it is skipped, never fatal.
    pub fn malformed(&mut self, error: &FrameError, received_ms: i64) {
        let s = &self.stats;
        PipelineStats::add(&s.frames, 1);
        s.last_frame_unix_ms.store(received_ms, Relaxed);
        PipelineStats::add(&s.malformed_frames, 1);
        tracing::debug!(%error, "skipped malformed frame");
    }

    /// Counts an item refused by the sanity limits; the first of each kind is logged.
    fn refuse(
        stats: &PipelineStats,
        refusals_logged: &mut [bool; 6],
        refusal: Refusal,
        update: &Update<'_>,
    ) {
        PipelineStats::add(&stats.items_refused[refusal.index()], 1);
        let logged = &mut refusals_logged[refusal.index()];
        if !*logged {
            *logged = true;
            // The key is shown escaped and cut short: it may be anything.
            let key: String = update
                .symbol
                .chars()
                .take(40)
                .flat_map(char::escape_debug)
                .collect();
            tracing::warn!(
                reason = refusal.label(),
                key = %key,
                event_ms = update.event_ms,
                "refused a stream item: {}; the rest of the frame is kept (further items refused for this reason are only counted: market_streamer_items_refused_total)",
                refusal.describe()
            );
        }
    }

    /// Counts (and logs the first of each service) an item whose key was not subscribed.
    fn unsubscribed(&mut self, service: Service, update: &Update<'_>) {
        PipelineStats::add(&self.stats.items_unsubscribed[service.index()], 1);
        let logged = &mut self.unsubscribed_logged[service.index()];
        if !*logged {
            *logged = true;
            let key: String = update.symbol.chars().take(40).collect();
            tracing::warn!(
                service = service.wire_name(),
                key = %key,
                "ignored a stream item for a key this service did not subscribe; nothing is stored for it (further ones are only counted: market_streamer_items_unsubscribed_total). If Schwab keeps sending it, check the symbol lists in .env"
            );
        }
    }

    /// Counts a clamped item and publishes its skew; the first clamp is logged.
    fn clamped(&mut self, skew_ms: i64, at_ms: i64, update: &Update<'_>) {
        let s = &self.stats;
        PipelineStats::add(&s.times_clamped, 1);
        s.clock_skew_last_ms.store(skew_ms, Relaxed);
        s.clock_skew_max_ms.fetch_max(skew_ms, Relaxed);
        s.last_clamp_unix_ms.store(at_ms, Relaxed);
        if !self.clamp_logged {
            self.clamp_logged = true;
            tracing::warn!(
                key = %update.symbol.chars().take(40).collect::<String>(),
                skew_secs = skew_ms as f64 / 1000.0,
                "a stream time lies ahead of the receive time by more than CLOCK_SKEW_TOLERANCE; it was clamped to the receive time (further clamps are only counted: market_streamer_times_clamped_total). Schwab's clock and ours disagree: check NTP on the box (timedatectl, chronyc tracking)"
            );
        }
    }

    /// Gives a merged row its indicators (equities and futures: from the merged row's event
    /// time, `seq`, last price and cumulative day volume), offers it to the live page, and
    /// appends it to `rows`.
    fn push_row(&mut self, mut row: Row, rows: &mut Vec<Row>) {
        match &mut row {
            Row::Equity(equity) => {
                equity.indicators = self.indicators.on_tick(
                    &equity.ticker,
                    (equity.timestamp.timestamp_millis(), equity.seq),
                    equity.quote.last,
                    equity.quote.total_volume,
                );
                if let Some(live) = &self.live {
                    live.offer(equity);
                }
            }
            Row::Futures(future) => {
                // Futures keys (`/ES`) never collide with equity tickers: one engine serves
                // both.
                future.indicators = self.indicators.on_tick(
                    &future.symbol,
                    (future.timestamp.timestamp_millis(), future.seq),
                    future.quote.last,
                    future.quote.total_volume,
                );
            }
            Row::Option(option) => {
                if let Some(live) = &self.live {
                    live.offer_option(option);
                }
            }
            _ => {}
        }
        rows.push(row);
    }

    /// Merges the updates of `frame` (received at `received_ms`) and appends the resulting
    /// rows to `rows`. Unusable items are counted and skipped, never fatal.
    pub fn process(&mut self, frame: &Frame<'_>, received_ms: i64, rows: &mut Vec<Row>) {
        let stats = self.stats.clone();
        let s = &*stats;
        PipelineStats::add(&s.frames, 1);
        s.last_frame_unix_ms.store(received_ms, Relaxed);
        rows.append(&mut self.leftover);
        let mut skipped = u64::from(frame.skipped_items);
        // Counted locally and published once per frame: one atomic add per counter, not per
        // update. `services`: the frame carried the service; `merged`: updates that made rows
        // (or a book snapshot kept for its next slot).
        let mut services = [false; SERVICES];
        let mut merged = [0u64; SERVICES];
        let now_ms = chrono::Utc::now().timestamp_millis();
        // Times are clamped against the receive time, or the wall clock when later (a frame
        // handed in without one, a replayed recording).
        let reference_ms = received_ms.max(now_ms);
        for update in &frame.updates {
            if let Err(refusal) = sanity::check(update, received_ms, now_ms) {
                Self::refuse(s, &mut self.refusals_logged, refusal, update);
                continue;
            }
            let service = update.body.service();
            if !self.keys.contains(service, &update.symbol) {
                self.unsubscribed(service, update);
                continue;
            }
            let clamped = clock::clamp(update, reference_ms, self.clock_tolerance_ms);
            let update = match &clamped {
                Some(c) => {
                    self.clamped(c.skew_ms, reference_ms, update);
                    &c.update
                }
                None => update,
            };
            let service = service.index();
            services[service] = true;
            match self.state.apply(update) {
                Ok(row) => {
                    merged[service] += 1;
                    if let Some(row) = row {
                        self.push_row(row, rows);
                    }
                }
                Err(e) => {
                    skipped += 1;
                    tracing::debug!(error = %e, "skipped unusable update");
                }
            }
        }
        // Book snapshots kept in memory whose slot has come (also when their book went quiet).
        self.state.due_books(received_ms, rows);
        let total: u64 = merged.iter().sum();
        if total > 0 {
            PipelineStats::add(&s.updates, total);
        }
        for (counter, n) in s.service_updates.iter().zip(merged) {
            if n > 0 {
                PipelineStats::add(counter, n);
            }
        }
        if skipped > 0 {
            PipelineStats::add(&s.skipped_items, skipped);
        }
        for (carried, counter) in services.into_iter().zip(&s.service_frames) {
            if carried {
                PipelineStats::add(counter, 1);
            }
        }
        if services == [false; SERVICES] {
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
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
