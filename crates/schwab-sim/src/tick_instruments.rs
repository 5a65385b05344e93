//! Futures, futures options and currency pairs inside the simulator: creating them, starting
//! and stopping their subscriptions, their LEVELONE updates (snapshot, then deltas) and the
//! CHART_FUTURES bars built from the futures trades.

use super::candles::CandleBook;
use super::commands::earliest;
use super::forex_fields::{ForexState, forex_field};
use super::frames::{ContentBuffer, SnapshotHeader};
use super::futures::{FutureOptionState, FutureState};
use super::futures_fields::futures_field;
use super::futures_option_fields::futures_option_field;
use super::futures_reference::{FutureKey, FutureOptionKey, parse_future_key};
use super::instruments::{
    ChartSub, ForexPair, FutureInstrument, FutureOptionContract, LevelOneSub,
};
use super::market_time::{MINUTE_MS, minute_start};
use super::schedule::EventKind;
use super::seeding::{mix, symbol_hash};
use super::simulator::MarketSimulator;
use super::subscription::Service;
use super::walk::Trade;

impl MarketSimulator {
    /// Adds an (inactive) futures key.
    pub(super) fn create_future(&mut self, symbol: &str, key: &FutureKey) -> usize {
        let state = FutureState::new(
            symbol,
            &key.root,
            key.contract,
            self.cfg.seed,
            self.cfg.updates_per_symbol_per_sec,
            self.now_ms,
        );
        let id = self.futures.len();
        let candles = previous_minute_bar(&state, self.cfg.seed, self.now_ms);
        self.futures.push(FutureInstrument {
            state,
            candles,
            level_one: None,
            chart: None,
            chart_seq: 0,
            option_refs: 0,
            slot: Default::default(),
        });
        self.future_ids.insert(symbol.to_string(), id);
        id
    }

    /// Adds an (inactive) futures option and, if needed, its underlying future.
    pub(super) fn create_future_option(&mut self, symbol: &str, key: FutureOptionKey) -> usize {
        let underlying = key.underlying();
        let future = match self.future_ids.get(&underlying) {
            Some(&id) => id,
            None => match parse_future_key(&underlying) {
                Ok(spec) => self.create_future(&underlying, &spec),
                // the option key's root and month were validated: this cannot happen
                Err(_) => self.create_future(
                    "/ES",
                    &FutureKey {
                        root: "ES".into(),
                        contract: None,
                    },
                ),
            },
        };
        let price = self.futures[future].state.walk.mid();
        let state = FutureOptionState::new(symbol, key, self.cfg.seed, price, self.now_ms);
        let id = self.future_options.len();
        self.future_options.push(FutureOptionContract {
            state,
            future,
            level_one: None,
            slot: Default::default(),
        });
        self.future_option_ids.insert(symbol.to_string(), id);
        id
    }

    /// Adds an (inactive) currency pair.
    pub(super) fn create_forex(&mut self, symbol: &str) -> usize {
        let state = ForexState::new(
            symbol,
            self.cfg.seed,
            self.cfg.updates_per_symbol_per_sec,
            self.now_ms,
        );
        let id = self.forex.len();
        self.forex.push(ForexPair {
            state,
            level_one: None,
            slot: Default::default(),
        });
        self.forex_ids.insert(symbol.to_string(), id);
        id
    }

    /// Starts (or restarts with a snapshot) `id` on a futures, futures-option or forex service.
    pub(super) fn start_tick_instrument(&mut self, service: Service, id: usize, snapshot_at: i64) {
        match service {
            Service::LevelOneFutures => {
                let f = &mut self.futures[id];
                restart_or_fresh(&mut f.level_one);
                self.schedule
                    .set(&mut f.slot, snapshot_at, EventKind::Future, id);
            }
            Service::ChartFutures => {
                self.futures[id].chart = Some(ChartSub { snapshot_due: true });
                self.future_chart_snapshots_at =
                    earliest(self.future_chart_snapshots_at, snapshot_at);
                self.keep_future_walking(id);
            }
            Service::LevelOneFuturesOptions => {
                let o = &mut self.future_options[id];
                if o.level_one.is_none() {
                    self.futures[o.future].option_refs += 1;
                }
                restart_or_fresh(&mut o.level_one);
                self.schedule
                    .set(&mut o.slot, snapshot_at, EventKind::FutureOption, id);
                let future = o.future;
                self.keep_future_walking(future);
            }
            _ => {
                let p = &mut self.forex[id];
                restart_or_fresh(&mut p.level_one);
                self.schedule
                    .set(&mut p.slot, snapshot_at, EventKind::Forex, id);
            }
        }
    }

    /// Removes `id` from a futures, futures-option or forex service.
    pub(super) fn stop_tick_instrument(&mut self, service: Service, id: usize) {
        let future = match service {
            Service::LevelOneFutures => {
                self.futures[id].level_one = None;
                id
            }
            Service::ChartFutures => {
                self.futures[id].chart = None;
                id
            }
            Service::LevelOneFuturesOptions => {
                let o = &mut self.future_options[id];
                if o.level_one.take().is_some() {
                    let f = &mut self.futures[o.future];
                    f.option_refs = f.option_refs.saturating_sub(1);
                }
                o.slot.cancel();
                o.future
            }
            _ => {
                let p = &mut self.forex[id];
                p.level_one = None;
                p.slot.cancel();
                return;
            }
        };
        let f = &mut self.futures[future];
        if !f.is_active() {
            f.slot.cancel();
        }
    }

    /// Keeps an active future's walk scheduled.
    fn keep_future_walking(&mut self, id: usize) {
        let f = &mut self.futures[id];
        if f.is_active()
            && !f.slot.is_scheduled()
            && let Some(at) = self
                .clock
                .next_update_after(self.now_ms, f.state.walk.rng())
        {
            self.schedule.set(&mut f.slot, at, EventKind::Future, id);
        }
    }

    /// One walk update (or the pending snapshot) of a future, and its LEVELONE item.
    pub(super) fn update_future(&mut self, id: usize, t: i64, content: &mut ContentBuffer) {
        let seed = self.cfg.seed;
        let fields = self.subs[Service::LevelOneFutures.index()].fields;
        let f = &mut self.futures[id];
        f.slot.consume();
        let snapshot = f.level_one.as_ref().is_some_and(|sub| sub.snapshot_due);
        if !snapshot && let Some(trade) = f.state.walk.step(t) {
            f.candles.record(t, trade);
        }
        if let Some(sub) = &mut f.level_one {
            let header = sub.snapshot_due.then_some(SnapshotHeader {
                asset_main_type: "FUTURE",
                asset_sub_type: None,
                cusip: "",
            });
            sub.snapshot_due = false;
            let state = &f.state;
            let as_float = volume_as_float(seed, state.walk.volume);
            content.push_level_one(&state.symbol, header, fields, &mut sub.cache, |n| {
                futures_field(state, n, as_float)
            });
        }
        self.keep_future_walking(id);
    }

    /// One update (or the pending snapshot) of a futures option, and its LEVELONE item.
    pub(super) fn update_future_option(&mut self, id: usize, t: i64, content: &mut ContentBuffer) {
        let seed = self.cfg.seed;
        let fields = self.subs[Service::LevelOneFuturesOptions.index()].fields;
        let price = self.futures[self.future_options[id].future]
            .state
            .walk
            .mid();
        let o = &mut self.future_options[id];
        o.slot.consume();
        let Some(sub) = &mut o.level_one else {
            return;
        };
        if !sub.snapshot_due {
            o.state.step(price, t);
        }
        let header = sub.snapshot_due.then_some(SnapshotHeader {
            asset_main_type: "FUTURE_OPTION",
            asset_sub_type: None,
            cusip: "",
        });
        sub.snapshot_due = false;
        let state = &o.state;
        let as_float = volume_as_float(seed, state.volume);
        content.push_level_one(&state.symbol, header, fields, &mut sub.cache, |n| {
            futures_option_field(state, n, as_float)
        });
        if let Some(at) = self.clock.next_update_after(t, o.state.rng()) {
            self.schedule
                .set(&mut o.slot, at, EventKind::FutureOption, id);
        }
    }

    /// One update (or the pending snapshot) of a currency pair, and its LEVELONE item.
    pub(super) fn update_forex(&mut self, id: usize, t: i64, content: &mut ContentBuffer) {
        let fields = self.subs[Service::LevelOneForex.index()].fields;
        let p = &mut self.forex[id];
        p.slot.consume();
        let Some(sub) = &mut p.level_one else {
            return;
        };
        if !sub.snapshot_due {
            p.state.walk.step(t);
        }
        let header = sub.snapshot_due.then_some(SnapshotHeader {
            asset_main_type: "FOREX",
            asset_sub_type: None,
            cusip: "",
        });
        sub.snapshot_due = false;
        let state = &p.state;
        content.push_level_one(&state.symbol, header, fields, &mut sub.cache, |n| {
            forex_field(state, n, false)
        });
        if let Some(at) = self.clock.next_update_after(t, p.state.walk.rng()) {
            self.schedule.set(&mut p.slot, at, EventKind::Forex, id);
        }
    }

    /// CHART_FUTURES: at a minute boundary the just-completed bars; after a subscription the
    /// latest completed bar of each newly subscribed key.
    pub(super) fn emit_future_charts(&mut self, t: i64, frames: &mut Vec<String>) {
        let boundary = t.rem_euclid(MINUTE_MS) == 0;
        let snapshots = self.future_chart_snapshots_at.is_some_and(|at| at <= t);
        if snapshots {
            self.future_chart_snapshots_at = None;
        }
        if !boundary && !snapshots {
            return;
        }
        let service = Service::ChartFutures;
        let fields = self.subs[service.index()].fields;
        let mut content = ContentBuffer::default();
        for &id in &self.subs[service.index()].keys {
            let f = &mut self.futures[id];
            let completed = if boundary {
                f.candles.close_minute(t - MINUTE_MS)
            } else {
                None
            };
            let Some(chart) = &mut f.chart else {
                continue;
            };
            let candle = if chart.snapshot_due {
                chart.snapshot_due = false;
                f.candles.latest_completed(t)
            } else {
                completed
            };
            if let Some(candle) = candle {
                let w = &f.state.walk;
                let prices = [candle.open_c, candle.high_c, candle.low_c, candle.close_c]
                    .map(|ticks| w.price(ticks));
                content.push_future_chart(f.chart_seq, &f.state.symbol, fields, &candle, prices);
                f.chart_seq += 1;
            }
        }
        self.items[service.index()] += content.count();
        frames.extend(content.into_frame(service.name(), t));
    }
}

/// The market traded before the key was first used: a bar for the minute before `now_ms`
/// (a few trades around the current price, from an RNG of their own), so a CHART_FUTURES
/// subscription gets a completed bar at once, as on Schwab.
fn previous_minute_bar(state: &FutureState, seed: u64, now_ms: i64) -> CandleBook {
    let mut book = CandleBook::default();
    let mut rng = fastrand::Rng::with_seed(mix(seed ^ 0x5052, symbol_hash(&state.symbol)));
    let start = minute_start(now_ms) - MINUTE_MS;
    let last = state.walk.last_t;
    let trades = rng.i64(3..=8);
    for i in 0..trades {
        let price_c = if i == trades - 1 {
            last
        } else {
            last + rng.i64(-3..=3)
        };
        let trade = Trade {
            price_c: price_c.max(1),
            size: rng.i64(1..=20),
        };
        book.record(start + i * (MINUTE_MS / trades), trade);
    }
    book
}

fn restart_or_fresh(sub: &mut Option<LevelOneSub>) {
    match sub {
        Some(s) => s.restart(),
        None => *sub = Some(LevelOneSub::fresh()),
    }
}

/// Whether this volume value goes out as a float (`12345.0`): a stable function of the value.
fn volume_as_float(seed: u64, volume: i64) -> bool {
    mix(seed ^ 0x46, volume as u64).is_multiple_of(8)
}
