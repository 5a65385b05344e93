//! [`MarketSimulator`]: the simulator's state, its constructor, time advance and queries.
//! Commands are applied in `commands.rs`, instants are processed in `event_loop.rs`.

use std::collections::BTreeMap;

use super::account_activity::AccountActivity;
use super::config::{SimConfig, UpdateClock};
use super::frames::heartbeat;
use super::instruments::{
    ForexPair, FutureInstrument, FutureOptionContract, OptionContract, Underlying,
};
use super::schedule::Schedule;
use super::screeners::Screener;
use super::subscription::{Service, Subscription};
use super::walk::dollars;

/// One candle of [`MarketSimulator::candle_history`]: `(start_ms, open, high, low, close,
/// volume)`, prices in dollars.
pub type HistoryCandle = (i64, f64, f64, f64, f64, i64);

/// A deterministic generator of Schwab Streamer server frames for every streamer service
/// (LEVELONE_EQUITIES / _OPTIONS / _FUTURES / _FUTURES_OPTIONS / _FOREX, CHART_EQUITY /
/// _FUTURES, NYSE_BOOK, NASDAQ_BOOK, OPTIONS_BOOK, SCREENER_EQUITY / _OPTION, ACCT_ACTIVITY),
/// plus heartbeats.
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
    pub(super) futures: Vec<FutureInstrument>,
    pub(super) future_ids: BTreeMap<String, usize>,
    pub(super) future_options: Vec<FutureOptionContract>,
    pub(super) future_option_ids: BTreeMap<String, usize>,
    pub(super) forex: Vec<ForexPair>,
    pub(super) forex_ids: BTreeMap<String, usize>,
    pub(super) screeners: Vec<Screener>,
    pub(super) screener_ids: BTreeMap<String, usize>,
    pub(super) account: AccountActivity,
    /// Key lists and field lists, indexed by [`Service::index`].
    pub(super) subs: [Subscription; Service::COUNT],
    /// Content items emitted, indexed by [`Service::index`].
    pub(super) items: [u64; Service::COUNT],
    pub(super) chart_snapshots_at: Option<i64>,
    pub(super) future_chart_snapshots_at: Option<i64>,
    /// Next emission of each book service (NYSE, NASDAQ, OPTIONS).
    pub(super) book_next_at: [Option<i64>; 3],
    /// Next emission of each screener service (EQUITY, OPTION).
    pub(super) screener_next_at: [Option<i64>; 2],
    pub(super) schedule: Schedule,
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
            futures: Vec::new(),
            future_ids: BTreeMap::new(),
            future_options: Vec::new(),
            future_option_ids: BTreeMap::new(),
            forex: Vec::new(),
            forex_ids: BTreeMap::new(),
            screeners: Vec::new(),
            screener_ids: BTreeMap::new(),
            account: AccountActivity::new(cfg.seed),
            subs: Default::default(),
            items: [0; Service::COUNT],
            chart_snapshots_at: None,
            future_chart_snapshots_at: None,
            book_next_at: [None; 3],
            screener_next_at: [None; 2],
            schedule: Schedule::default(),
        }
    }

    /// Advances simulated time to `now_ms` and returns the JSON text of every server frame due
    /// in (previous time, `now_ms`], in time order. At one instant the order is CHART_EQUITY,
    /// CHART_FUTURES, LEVELONE_EQUITIES, LEVELONE_OPTIONS, LEVELONE_FUTURES,
    /// LEVELONE_FUTURES_OPTIONS, LEVELONE_FOREX, NYSE_BOOK, NASDAQ_BOOK, OPTIONS_BOOK,
    /// SCREENER_EQUITY, SCREENER_OPTION, ACCT_ACTIVITY, heartbeat. A time not after the
    /// current one returns nothing.
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
    /// underlying walk of subscribed options), a futures key (`/ES`) or a currency pair
    /// (`EUR/USD`), or `None` if the symbol was never used.
    pub fn last_price(&self, symbol: &str) -> Option<f64> {
        if let Some(&id) = self.underlying_ids.get(symbol) {
            return Some(dollars(self.underlyings[id].state.last_c));
        }
        if let Some(&id) = self.future_ids.get(symbol) {
            let w = &self.futures[id].state.walk;
            return Some(w.price(w.last_t));
        }
        self.forex_ids.get(symbol).map(|&id| {
            let w = &self.forex[id].state.walk;
            w.price(w.last_t)
        })
    }

    /// Number of content items emitted so far for `service` (any streamed service name; 0 for
    /// an unknown one).
    pub fn items_emitted(&self, service: &str) -> u64 {
        Service::parse(service).map_or(0, |s| self.items[s.index()])
    }

    /// Number of keys subscribed now, summed over all services.
    pub fn subscribed_keys(&self) -> usize {
        self.subs.iter().map(|s| s.keys.len()).sum()
    }

    /// Changes the symbol limit ([`SimConfig::symbol_limit`]); keys already subscribed stay.
    pub fn set_symbol_limit(&mut self, limit: Option<usize>) {
        self.cfg.symbol_limit = limit;
    }

    /// Queues ACCT_ACTIVITY's "Feature not supported" text item (empty message type, plain
    /// text in field 3, as Schwab sends after the close) for the next frame slot. Returns
    /// false, queueing nothing, when no ACCT_ACTIVITY key is subscribed.
    pub fn queue_account_text_frame(&mut self) -> bool {
        if self.subs[Service::AcctActivity.index()].keys.is_empty() {
            return false;
        }
        self.account.trap_at = Some(self.clock.next_slot_after(self.now_ms));
        true
    }

    /// Length of an equity candle, ms ([`SimConfig::candle_ms`], at least 1).
    pub fn candle_ms(&self) -> i64 {
        self.cfg.candle_ms.max(1)
    }

    /// The completed one-minute (`candle_ms`) candles of an equity or ETF whose start is in
    /// `[from_ms, to_ms]`, oldest first, as `(start_ms, open, high, low, close, volume)` in
    /// dollars and shares: the same values CHART_EQUITY streams for those minutes. `None`
    /// for a symbol the simulator never traded (never subscribed, or not an equity).
    pub fn candle_history(
        &self,
        symbol: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Option<Vec<HistoryCandle>> {
        let &id = self.underlying_ids.get(symbol)?;
        Some(
            self.underlyings[id]
                .candles
                .history(from_ms, to_ms, self.now_ms)
                .into_iter()
                .map(|c| {
                    (
                        c.start_ms,
                        dollars(c.open_c),
                        dollars(c.high_c),
                        dollars(c.low_c),
                        dollars(c.close_c),
                        c.volume,
                    )
                })
                .collect(),
        )
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
