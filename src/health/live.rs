//! The live page's data: one task owns the latest quote, indicators and a ring of one-minute
//! closes per symbol, fed by the frame processor through a bounded channel, and publishes a
//! view a few times a second on a watch channel that the page's event stream reads.
//!
//! The pipeline must never wait for the page: [`LiveFeed::offer`] uses `try_send`, and when
//! the channel is full (the page task is behind) the quote is dropped and counted in
//! [`LiveFeed::dropped`]; the next quote of the symbol carries the full merged state anyway.
//! Nothing secret reaches this module: only market data and the health verdict's public parts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::Health;
use crate::indicators::IndicatorValues;
use crate::indicators::warm_start::WarmStart;
use crate::rows::{EquityRow, OptionRow};

/// Capacity of the quote channel from the pipeline: a few seconds of a busy stream. When it is
/// full, quotes are dropped and counted (the page is a view; the pipeline never waits for it).
pub const LIVE_CHANNEL: usize = 4096;
/// One-minute closes kept per symbol (the small charts show the last 30 minutes).
pub const RING_MINUTES: usize = 30;
/// How often the view is republished when something changed (at most this often).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);
const MINUTE_MS: i64 = 60_000;

/// What the pipeline sends: one equity row's page-relevant fields.
#[derive(Debug, Clone)]
pub enum LiveMsg {
    Quote(Box<LiveQuote>),
    /// Warm-start closes per symbol: `(minute start ms, close)`, oldest first.
    Seed(Vec<(String, Vec<(i64, f64)>)>),
    /// The symbol was unsubscribed (the watchlist removed it): its row leaves the page.
    Remove(String),
}

/// One merged quote and its indicators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveQuote {
    pub symbol: Arc<str>,
    /// Event time, Unix ms.
    pub time_ms: i64,
    pub last: Option<f64>,
    pub net_change: Option<f64>,
    pub net_percent_change: Option<f64>,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
    pub volume: Option<i64>,
    #[serde(flatten)]
    pub indicators: IndicatorValues,
}

impl LiveQuote {
    /// The page's fields of `row`.
    pub fn from_row(row: &EquityRow) -> Self {
        let q = &row.quote;
        Self {
            symbol: row.ticker.clone(),
            time_ms: row.timestamp.timestamp_millis(),
            last: q.last,
            net_change: q.net_change,
            net_percent_change: q.net_percent_change,
            bid: q.bid,
            ask: q.ask,
            volume: q.total_volume,
            indicators: row.indicators,
        }
    }
}

impl LiveQuote {
    /// The page's fields of an option row (no indicators: they are computed for equities).
    /// Net percent change is derived from the net change and the last price.
    pub fn from_option(row: &OptionRow) -> Self {
        let q = &row.quote;
        let net_percent_change = match (q.net_change, q.last) {
            (Some(change), Some(last)) if last - change != 0.0 => {
                Some(change / (last - change) * 100.0)
            }
            _ => None,
        };
        Self {
            symbol: row.symbol.clone(),
            time_ms: row.timestamp.timestamp_millis(),
            last: q.last,
            net_change: q.net_change,
            net_percent_change,
            bid: q.bid,
            ask: q.ask,
            volume: q.total_volume,
            indicators: IndicatorValues::default(),
        }
    }
}

/// The pipeline's end of the page feed (cheap to clone).
#[derive(Debug, Clone)]
pub struct LiveFeed {
    tx: mpsc::Sender<LiveMsg>,
    dropped: Arc<AtomicU64>,
}

impl LiveFeed {
    /// Offers `row` to the page without ever waiting: a full channel drops it (counted).
    pub fn offer(&self, row: &EquityRow) {
        self.send(LiveQuote::from_row(row));
    }

    /// Offers an option row the same way.
    pub fn offer_option(&self, row: &OptionRow) {
        self.send(LiveQuote::from_option(row));
    }

    fn send(&self, quote: LiveQuote) {
        // Never waits: when the page task is behind, the quote is dropped and counted (the
        // next one of the symbol replaces it anyway).
        if self.tx.try_send(LiveMsg::Quote(Box::new(quote))).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Takes `symbol` off the page (the watchlist removed it). Never waits: when the page
    /// task is behind, the removal is dropped and counted like a quote (the row stays until
    /// a restart).
    pub fn remove(&self, symbol: &str) {
        if self
            .tx
            .try_send(LiveMsg::Remove(symbol.to_string()))
            .is_err()
        {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Seeds the rings with the warm start's closes (waits for room: called once, before
    /// streaming starts).
    pub async fn seed(&self, warm: &WarmStart, bar_ms: i64) {
        let seed = seed_closes(warm, bar_ms);
        if !seed.is_empty() && self.tx.send(LiveMsg::Seed(seed)).await.is_err() {
            tracing::debug!("live page task gone; warm-start closes not shown");
        }
    }

    /// Quotes dropped because the page task was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// The warm start's bars as one close per minute (the last bar ending in each minute), the
/// last [`RING_MINUTES`] per symbol.
pub fn seed_closes(warm: &WarmStart, bar_ms: i64) -> Vec<(String, Vec<(i64, f64)>)> {
    warm.symbols
        .iter()
        .map(|(symbol, bars)| {
            let mut closes: Vec<(i64, f64)> = Vec::new();
            for bar in bars {
                let minute = (bar.bucket * bar_ms).div_euclid(MINUTE_MS) * MINUTE_MS;
                match closes.last_mut() {
                    Some(last) if last.0 == minute => last.1 = bar.close,
                    _ => closes.push((minute, bar.close)),
                }
            }
            let skip = closes.len().saturating_sub(RING_MINUTES);
            (symbol.clone(), closes.split_off(skip))
        })
        .collect()
}

/// One point of a symbol's ring: the last quote of a minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RingPoint {
    /// Minute start, Unix ms.
    pub t: i64,
    pub close: f64,
    /// Indicators at that quote (absent for warm-start points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ind: Option<IndicatorValues>,
}

/// One symbol on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SymbolView {
    pub symbol: String,
    /// Bumped on every change; the event stream sends symbols newer than what a client saw.
    pub version: u64,
    pub quote: Option<LiveQuote>,
    pub ring: Vec<RingPoint>,
}

/// The page's status panel: the health verdict's public parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    pub status: &'static str,
    pub reasons: Vec<String>,
    pub stream_state: &'static str,
    pub stream_detail: String,
    pub market_phase: &'static str,
    pub market_summary: String,
    pub rows_written: u64,
    /// Rows committed per second over the last publish interval.
    pub rows_per_sec: f64,
    pub buffered_rows: u64,
    pub spooled_rows: u64,
    pub database_kind: &'static str,
    pub database_bytes: Option<u64>,
    pub database_limit_bytes: u64,
    pub database_used_percent: Option<f64>,
    /// Quotes the page task could not keep up with (dropped, never slowing the pipeline).
    pub page_dropped: u64,
    pub version: &'static str,
    pub uptime_secs: f64,
}

/// Everything the page shows, as published.
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    /// Increases with every publication.
    pub version: u64,
    pub symbols: Vec<Arc<SymbolView>>,
    pub status: Option<Arc<StatusView>>,
}

/// The running page task.
pub struct LivePage {
    pub feed: LiveFeed,
    pub view: watch::Receiver<Arc<LiveView>>,
    task: JoinHandle<()>,
}

impl Drop for LivePage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LivePage {
    /// Starts the task for `symbols` (shown in this order, also before their first quote).
    pub fn start(symbols: &[String], health: Health) -> Self {
        let (tx, rx) = mpsc::channel(LIVE_CHANNEL);
        let dropped = Arc::new(AtomicU64::new(0));
        let state = LiveState::new(symbols);
        let (view_tx, view) = watch::channel(Arc::new(LiveView::default()));
        let task = tokio::spawn(run(state, rx, view_tx, health, dropped.clone()));
        Self {
            feed: LiveFeed { tx, dropped },
            view,
            task,
        }
    }
}

/// The task's state: symbols in page order.
#[derive(Debug)]
struct LiveState {
    index: HashMap<String, usize>,
    symbols: Vec<SymbolState>,
    next_version: u64,
    /// A symbol left since the last publication.
    removed: bool,
}

#[derive(Debug)]
struct SymbolState {
    view: Arc<SymbolView>,
    ring: VecDeque<RingPoint>,
    dirty: bool,
}

impl LiveState {
    fn new(symbols: &[String]) -> Self {
        let mut state = Self {
            index: HashMap::new(),
            symbols: Vec::new(),
            next_version: 1,
            removed: false,
        };
        for s in symbols {
            state.slot(s);
        }
        state
    }

    fn slot(&mut self, symbol: &str) -> usize {
        if let Some(&i) = self.index.get(symbol) {
            return i;
        }
        let i = self.symbols.len();
        self.index.insert(symbol.to_string(), i);
        self.symbols.push(SymbolState {
            view: Arc::new(SymbolView {
                symbol: symbol.to_string(),
                version: 0,
                quote: None,
                ring: Vec::new(),
            }),
            ring: VecDeque::with_capacity(RING_MINUTES + 1),
            dirty: true,
        });
        i
    }

    fn apply(&mut self, msg: LiveMsg) {
        match msg {
            LiveMsg::Quote(q) => {
                let i = self.slot(&q.symbol);
                let s = &mut self.symbols[i];
                if let Some(close) = q.last {
                    let point = RingPoint {
                        t: q.time_ms.div_euclid(MINUTE_MS) * MINUTE_MS,
                        close,
                        ind: Some(q.indicators),
                    };
                    push_point(&mut s.ring, point);
                }
                Arc::make_mut(&mut s.view).quote = Some(*q);
                s.dirty = true;
            }
            LiveMsg::Remove(symbol) => {
                if let Some(i) = self.index.remove(&symbol) {
                    self.symbols.remove(i);
                    for s in &self.symbols[i..] {
                        if let Some(j) = self.index.get_mut(&s.view.symbol) {
                            *j -= 1;
                        }
                    }
                    self.removed = true;
                }
            }
            LiveMsg::Seed(seed) => {
                for (symbol, closes) in seed {
                    let i = self.slot(&symbol);
                    let s = &mut self.symbols[i];
                    for (t, close) in closes {
                        push_point(
                            &mut s.ring,
                            RingPoint {
                                t,
                                close,
                                ind: None,
                            },
                        );
                    }
                    s.dirty = true;
                }
            }
        }
    }

    /// The symbols as of now, with fresh versions for the changed ones.
    fn publish(&mut self) -> Vec<Arc<SymbolView>> {
        self.removed = false;
        for s in &mut self.symbols {
            if s.dirty {
                s.dirty = false;
                let view = Arc::make_mut(&mut s.view);
                view.version = self.next_version;
                view.ring = s.ring.iter().cloned().collect();
            }
        }
        self.next_version += 1;
        self.symbols.iter().map(|s| s.view.clone()).collect()
    }

    fn any_dirty(&self) -> bool {
        self.removed || self.symbols.iter().any(|s| s.dirty)
    }
}

/// Adds `p` to the ring: replaces the point of the same minute, ignores older minutes, keeps
/// the last [`RING_MINUTES`].
fn push_point(ring: &mut VecDeque<RingPoint>, p: RingPoint) {
    match ring.back_mut() {
        Some(last) if last.t == p.t => *last = p,
        Some(last) if last.t > p.t => {}
        _ => {
            ring.push_back(p);
            while ring.len() > RING_MINUTES {
                ring.pop_front();
            }
        }
    }
}

fn status_view(
    health: &Health,
    dropped: u64,
    last: &mut Option<(std::time::Instant, u64)>,
) -> StatusView {
    let r = health.report();
    let now = std::time::Instant::now();
    let written = r.writer.rows_written;
    let rows_per_sec = match *last {
        Some((at, before)) => {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                written.saturating_sub(before) as f64 / secs
            } else {
                0.0
            }
        }
        None => 0.0,
    };
    *last = Some((now, written));
    StatusView {
        status: r.status.as_str(),
        reasons: r.reasons,
        stream_state: r.stream.state,
        stream_detail: r.stream.detail,
        market_phase: r.market.status.phase.as_str(),
        market_summary: r.market.summary,
        rows_written: written,
        rows_per_sec,
        buffered_rows: r.writer.buffered_rows,
        spooled_rows: r.spool.rows,
        database_kind: r.database.kind,
        database_bytes: r.database.size_bytes,
        database_limit_bytes: r.database.limit_bytes,
        database_used_percent: r.database.used_percent,
        page_dropped: dropped,
        version: r.service.version,
        uptime_secs: r.service.uptime_secs,
    }
}

async fn run(
    mut state: LiveState,
    mut rx: mpsc::Receiver<LiveMsg>,
    view_tx: watch::Sender<Arc<LiveView>>,
    health: Health,
    dropped: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rate = None;
    let mut version = 0u64;
    let mut open = true;
    loop {
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(m) => state.apply(m),
                // The pipeline ended; the page keeps showing the last state and the status.
                None => open = false,
            },
            _ = tick.tick() => {
                // Status every tick (the verdict and rates move without quotes too).
                let status = status_view(&health, dropped.load(Relaxed), &mut rate);
                let symbols = if state.any_dirty() || version == 0 {
                    state.publish()
                } else {
                    view_tx.borrow().symbols.clone()
                };
                version += 1;
                view_tx.send_replace(Arc::new(LiveView {
                    version,
                    symbols,
                    status: Some(Arc::new(status)),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::bars::{BarAggregate, TickKey};

    fn point(t: i64, close: f64) -> RingPoint {
        RingPoint {
            t,
            close,
            ind: None,
        }
    }

    #[test]
    fn ring_keeps_last_minutes_and_replaces_same_minute() {
        let mut ring = VecDeque::new();
        for m in 0..40 {
            push_point(&mut ring, point(m * MINUTE_MS, m as f64));
        }
        push_point(&mut ring, point(39 * MINUTE_MS, 99.0));
        push_point(&mut ring, point(5 * MINUTE_MS, 1.0));
        assert_eq!(ring.len(), RING_MINUTES);
        assert_eq!(ring.front().map(|p| p.t), Some(10 * MINUTE_MS));
        assert_eq!(ring.back().map(|p| p.close), Some(99.0));
    }

    #[test]
    fn a_removed_symbol_leaves_the_published_view_and_the_others_keep_their_order() {
        let mut state = LiveState::new(&["AAPL".into(), "MSFT".into(), "NVDA".into()]);
        state.publish();
        assert!(!state.any_dirty());
        state.apply(LiveMsg::Remove("MSFT".into()));
        state.apply(LiveMsg::Remove("TSLA".into()));
        assert!(state.any_dirty(), "a removal is published");
        let names = |v: &[Arc<SymbolView>]| v.iter().map(|s| s.symbol.clone()).collect::<Vec<_>>();
        assert_eq!(names(&state.publish()), ["AAPL", "NVDA"]);
        // The index still finds the symbols after the removed one.
        let mut quote = LiveQuote::from_row(&crate::rows::EquityRow {
            ticker: Arc::from("NVDA"),
            timestamp: chrono::DateTime::from_timestamp_millis(1_000).expect("time"),
            seq: 0,
            quote: Default::default(),
            indicators: Default::default(),
        });
        quote.last = Some(1.0);
        state.apply(LiveMsg::Quote(Box::new(quote)));
        let view = state.publish();
        assert_eq!(names(&view), ["AAPL", "NVDA"]);
        assert!(view[1].quote.is_some() && view[0].quote.is_none());
    }

    #[test]
    fn seed_takes_one_close_per_minute() {
        let key: TickKey = (0, 0);
        let bars = (0..100)
            .map(|b| BarAggregate::from_tick(b, key, b as f64, None))
            .collect();
        let warm = WarmStart {
            symbols: vec![("AAPL".into(), bars)],
            futures: vec![(
                "/ES".into(),
                vec![BarAggregate::from_tick(0, key, 1.0, None)],
            )],
        };
        // 15-second bars: four per minute, the last of each minute wins.
        let seed = seed_closes(&warm, 15_000);
        assert_eq!(seed.len(), 1, "futures are not on the page");
        let closes = &seed[0].1;
        assert_eq!(closes.len(), 25);
        assert_eq!(closes[0], (0, 3.0));
        assert_eq!(closes[24], (24 * MINUTE_MS, 99.0));
        // One-minute bars: 100 minutes, the last 30 kept.
        let seed = seed_closes(&warm, MINUTE_MS);
        assert_eq!(seed[0].1.len(), RING_MINUTES);
        assert_eq!(seed[0].1[RING_MINUTES - 1], (99 * MINUTE_MS, 99.0));
    }
}
