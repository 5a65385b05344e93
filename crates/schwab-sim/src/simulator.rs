//! [`MarketSimulator`]: the simulator's state, its constructor, time advance and queries.
//! Commands are applied in `commands.rs`, instants are processed in `event_loop.rs`.

use std::collections::BTreeMap;

use super::config::{SimConfig, UpdateClock};
use super::frames::heartbeat;
use super::instruments::{OptionContract, Underlying};
use super::schedule::Schedule;
use super::subscription::{Service, Subscription};
use super::walk::dollars;

/// A deterministic generator of Schwab Streamer server frames for LEVELONE_EQUITIES,
/// LEVELONE_OPTIONS and CHART_EQUITY, plus heartbeats.
///
/// It does no I/O and has no clock: the caller applies subscription commands and advances
/// simulated time. The same seed, commands and `advance_to` calls give identical frames.
#[derive(Debug)]
pub struct MarketSimulator {
    pub(super) cfg: SimConfig,
    pub(super) clock: UpdateClock,
    pub(super) now_ms: i64,
    pub(super) next_heartbeat_ms: Option<i64>,
    pub(super) underlyings: Vec<Underlying>,
    pub(super) underlying_ids: BTreeMap<String, usize>,
    pub(super) options: Vec<OptionContract>,
    pub(super) option_ids: BTreeMap<String, usize>,
    pub(super) equity_sub: Subscription,
    pub(super) option_sub: Subscription,
    pub(super) chart_sub: Subscription,
    pub(super) chart_snapshots_at: Option<i64>,
    pub(super) schedule: Schedule,
    pub(super) equity_items: u64,
    pub(super) option_items: u64,
    pub(super) chart_items: u64,
}

impl MarketSimulator {
    /// A simulator with no subscriptions whose simulated clock starts at `start_ms` (epoch ms).
    pub fn new(cfg: SimConfig, start_ms: i64) -> Self {
        Self {
            clock: UpdateClock::new(cfg.updates_per_symbol_per_sec),
            now_ms: start_ms,
            next_heartbeat_ms: (cfg.heartbeat_interval_ms > 0)
                .then(|| start_ms.saturating_add(cfg.heartbeat_interval_ms)),
            cfg,
            underlyings: Vec::new(),
            underlying_ids: BTreeMap::new(),
            options: Vec::new(),
            option_ids: BTreeMap::new(),
            equity_sub: Subscription::default(),
            option_sub: Subscription::default(),
            chart_sub: Subscription::default(),
            chart_snapshots_at: None,
            schedule: Schedule::default(),
            equity_items: 0,
            option_items: 0,
            chart_items: 0,
        }
    }

    /// Advances simulated time to `now_ms` and returns the JSON text of every server frame due
    /// in (previous time, `now_ms`], in time order. At one instant the order is CHART_EQUITY,
    /// LEVELONE_EQUITIES, LEVELONE_OPTIONS, heartbeat. A time not after the current one
    /// returns nothing.
    pub fn advance_to(&mut self, now_ms: i64) -> Vec<String> {
        let mut frames = Vec::new();
        while let Some(t) = self.next_instant() {
            if t > now_ms {
                break;
            }
            self.now_ms = t;
            self.process_instant(t, &mut frames);
        }
        self.now_ms = self.now_ms.max(now_ms);
        frames
    }

    /// A heartbeat frame for `now_ms`: `{"notify":[{"heartbeat":"<ms as string>"}]}`.
    pub fn heartbeat_frame(now_ms: i64) -> String {
        heartbeat(now_ms)
    }

    /// The last trade price the simulator produced for an equity, ETF or index (also for the
    /// underlying walk of subscribed options), or `None` if the symbol was never used.
    pub fn last_price(&self, symbol: &str) -> Option<f64> {
        self.underlying_ids
            .get(symbol)
            .map(|&id| dollars(self.underlyings[id].state.last_c))
    }

    /// Number of content items emitted so far for `service` (`LEVELONE_EQUITIES`,
    /// `LEVELONE_OPTIONS` or `CHART_EQUITY`; 0 for any other name).
    pub fn items_emitted(&self, service: &str) -> u64 {
        match Service::parse(service) {
            Ok(Service::LevelOneEquities) => self.equity_items,
            Ok(Service::LevelOneOptions) => self.option_items,
            Ok(Service::ChartEquity) => self.chart_items,
            Err(_) => 0,
        }
    }

    /// The current simulated time (the latest `advance_to` target, or the start).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Earliest time at which a frame may be due (a caller driving real time can sleep until
    /// then); `None` when nothing is subscribed and heartbeats are off. It may be a little
    /// early (a cancelled update), never late.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.candidate_times().into_iter().flatten().min()
    }
}
