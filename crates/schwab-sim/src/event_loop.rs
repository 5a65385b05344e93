//! The event loop: what happens at one instant of simulated time (completed candles, walk and
//! option updates grouped into one frame per service, heartbeats).

use super::equity_fields::equity_field;
use super::frames::{ContentBuffer, SnapshotHeader, heartbeat};
use super::market_time::MINUTE_MS;
use super::option_fields::option_field;
use super::schedule::{Event, EventKind};
use super::seeding::mix;
use super::simulator::MarketSimulator;
use super::subscription::Service;

/// One volume value in this many is printed as a float (`18235000.0`), as the real feed does.
const FLOAT_VOLUME_ONE_IN: u64 = 8;

impl MarketSimulator {
    /// True when `event` is still its instrument's pending update (not cancelled or replaced).
    fn is_current(&self, event: &Event) -> bool {
        match event.kind {
            EventKind::Underlying => self.underlyings[event.id].slot.is_current(event),
            EventKind::Option => self.options[event.id].slot.is_current(event),
            EventKind::Future => self.futures[event.id].slot.is_current(event),
            EventKind::FutureOption => self.future_options[event.id].slot.is_current(event),
            EventKind::Forex => self.forex[event.id].slot.is_current(event),
        }
    }

    /// Times at which something may be due: the next update, minute boundary (while charts
    /// are subscribed), pending chart snapshots, books, screeners, account activity and the
    /// next heartbeat.
    pub(super) fn candidate_times(&self) -> [Option<i64>; 11] {
        let next = |len: i64| (self.now_ms.div_euclid(len) + 1) * len;
        let equity_charts = (!self.subs[Service::ChartEquity.index()].keys.is_empty())
            .then(|| next(self.candle_ms()));
        let future_charts =
            (!self.subs[Service::ChartFutures.index()].keys.is_empty()).then(|| next(MINUTE_MS));
        let next_minute = equity_charts.into_iter().chain(future_charts).min();
        [
            self.schedule.peek().map(|e| e.at_ms),
            next_minute,
            self.chart_snapshots_at,
            self.future_chart_snapshots_at,
            self.book_next_at[0],
            self.book_next_at[1],
            self.book_next_at[2],
            self.screener_next_at[0],
            self.screener_next_at[1],
            self.account.next_due(),
            self.next_heartbeat_ms,
        ]
    }

    /// The next instant to process, after dropping cancelled updates from the queue.
    pub(super) fn next_instant(&mut self) -> Option<i64> {
        while let Some(event) = self.schedule.peek() {
            if self.is_current(&event) {
                break;
            }
            self.schedule.pop();
        }
        self.candidate_times().into_iter().flatten().min()
    }

    /// Emits the frames of instant `t`, in the order given by [`MarketSimulator::advance_to`].
    pub(super) fn process_instant(&mut self, t: i64, frames: &mut Vec<String>) {
        self.emit_charts(t, frames);
        self.emit_future_charts(t, frames);
        let mut equities = ContentBuffer::default();
        let mut options = ContentBuffer::default();
        let mut futures = ContentBuffer::default();
        let mut future_options = ContentBuffer::default();
        let mut forex = ContentBuffer::default();
        while let Some(event) = self.schedule.peek() {
            if event.at_ms > t {
                break;
            }
            self.schedule.pop();
            if !self.is_current(&event) {
                continue;
            }
            match event.kind {
                EventKind::Underlying => self.update_underlying(event.id, t, &mut equities),
                EventKind::Option => self.update_option(event.id, t, &mut options),
                EventKind::Future => self.update_future(event.id, t, &mut futures),
                EventKind::FutureOption => {
                    self.update_future_option(event.id, t, &mut future_options);
                }
                EventKind::Forex => self.update_forex(event.id, t, &mut forex),
            }
        }
        for (service, content) in [
            (Service::LevelOneEquities, equities),
            (Service::LevelOneOptions, options),
            (Service::LevelOneFutures, futures),
            (Service::LevelOneFuturesOptions, future_options),
            (Service::LevelOneForex, forex),
        ] {
            self.items[service.index()] += content.count();
            frames.extend(content.into_frame(service.name(), t));
        }
        self.emit_books(t, frames);
        self.emit_screeners(t, frames);
        self.emit_account_activity(t, frames);
        if self.next_heartbeat_ms == Some(t) {
            frames.push(heartbeat(t));
            self.next_heartbeat_ms = t.checked_add(self.cfg.heartbeat_interval_ms);
        }
    }

    /// One walk update (or the pending snapshot) of an underlying, and its LEVELONE item.
    fn update_underlying(&mut self, id: usize, t: i64, content: &mut ContentBuffer) {
        let seed = self.cfg.seed;
        let fields = self.subs[Service::LevelOneEquities.index()].fields;
        let und = &mut self.underlyings[id];
        und.slot.consume();
        let snapshot = und.level_one.as_ref().is_some_and(|sub| sub.snapshot_due);
        if !snapshot && let Some(trade) = und.state.step(t) {
            und.candles.record(t, trade);
        }
        if let Some(sub) = &mut und.level_one {
            let state = &und.state;
            let header = sub.snapshot_due.then(|| SnapshotHeader {
                asset_main_type: state.reference.kind.main_type(),
                asset_sub_type: state.reference.kind.sub_type(),
                cusip: &state.reference.cusip,
            });
            sub.snapshot_due = false;
            let as_float = volume_as_float(seed, state.volume);
            content.push_level_one(&state.symbol, header, fields, &mut sub.cache, |f| {
                equity_field(state, f, as_float)
            });
        }
        self.keep_walking(id);
    }

    /// One option update (or the pending snapshot) and its LEVELONE item.
    fn update_option(&mut self, id: usize, t: i64, content: &mut ContentBuffer) {
        let seed = self.cfg.seed;
        let fields = self.subs[Service::LevelOneOptions.index()].fields;
        let underlying_price = self.underlyings[self.options[id].underlying].state.mark();
        let contract = &mut self.options[id];
        contract.slot.consume();
        let Some(sub) = &mut contract.level_one else {
            return;
        };
        if !sub.snapshot_due {
            contract.state.step(underlying_price, t);
        }
        let state = &contract.state;
        let header = sub.snapshot_due.then_some(SnapshotHeader {
            asset_main_type: "OPTION",
            asset_sub_type: None,
            cusip: "",
        });
        sub.snapshot_due = false;
        let as_float = volume_as_float(seed, state.volume);
        content.push_level_one(&state.symbol, header, fields, &mut sub.cache, |f| {
            option_field(state, f, as_float)
        });
        if let Some(at) = self.clock.next_update_after(t, contract.state.rng()) {
            self.schedule
                .set(&mut contract.slot, at, EventKind::Option, id);
        }
    }

    /// At a minute boundary the just-completed candles; after a subscription the latest
    /// completed candle of each newly subscribed symbol.
    fn emit_charts(&mut self, t: i64, frames: &mut Vec<String>) {
        let len = self.candle_ms();
        let boundary = t.rem_euclid(len) == 0;
        let snapshots = self.chart_snapshots_at.is_some_and(|at| at <= t);
        if snapshots {
            self.chart_snapshots_at = None;
        }
        if !boundary && !snapshots {
            return;
        }
        let fields = self.subs[Service::ChartEquity.index()].fields;
        let mut content = ContentBuffer::default();
        for &id in &self.subs[Service::ChartEquity.index()].keys {
            let und = &mut self.underlyings[id];
            let completed = if boundary {
                und.candles.close_minute(t - len)
            } else {
                None
            };
            let Some(chart) = &mut und.chart else {
                continue;
            };
            let candle = if chart.snapshot_due {
                chart.snapshot_due = false;
                und.candles.latest_completed(t)
            } else {
                completed
            };
            if let Some(candle) = candle {
                let as_float =
                    mix(self.cfg.seed ^ id as u64, candle.start_ms as u64).is_multiple_of(2);
                content.push_chart(und.chart_seq, &und.state.symbol, fields, &candle, as_float);
                und.chart_seq += 1;
            }
        }
        self.items[Service::ChartEquity.index()] += content.count();
        frames.extend(content.into_frame(Service::ChartEquity.name(), t));
    }
}

/// Whether this volume value goes out as a float (`12345.0`): a stable function of the value.
fn volume_as_float(seed: u64, volume: i64) -> bool {
    mix(seed, volume as u64).is_multiple_of(FLOAT_VOLUME_ONE_IN)
}
