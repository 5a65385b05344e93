//! A tick-priced walk for futures and forex: the same geometric random walk as the equity
//! model (`walk.rs`), but prices are whole numbers of the instrument's tick (0.25 for /ES,
//! 0.00001 for EUR/USD) and the market trades nearly around the clock.

use fastrand::Rng;

use super::seeding::standard_normal;
use super::walk::{Trade, round_to};

/// Seconds in a year of nearly-24-hour trading (252 days of 23 hours).
const TRADING_SECONDS_PER_YEAR: f64 = 252.0 * 23.0 * 3600.0;
/// Probability that an update moves the quote.
const QUOTE_PROBABILITY: f64 = 0.75;
/// Probability that an update carries a trade.
const TRADE_PROBABILITY: f64 = 0.55;

/// Static parameters of one walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkSpec {
    /// Typical price.
    pub base_price: f64,
    /// Minimum price increment.
    pub tick: f64,
    /// Annualised volatility.
    pub annual_volatility: f64,
    /// Typical daily volume (contracts or units).
    pub daily_volume: f64,
    /// Quote size range.
    pub quote_size: (i64, i64),
    /// Trade size range.
    pub trade_size: (i64, i64),
    /// Spread range in ticks.
    pub spread_ticks: (i64, i64),
}

/// The state of one tick-priced instrument; prices in ticks.
#[derive(Debug, Clone)]
pub(crate) struct TickWalk {
    rng: Rng,
    spec: WalkSpec,
    fair: f64,
    sigma_per_update: f64,
    decimals: i32,
    /// Previous close / settlement, static.
    pub close_t: i64,
    /// Session open, static.
    pub open_t: i64,
    /// Best bid.
    pub bid_t: i64,
    /// Best ask.
    pub ask_t: i64,
    /// Last trade.
    pub last_t: i64,
    /// Session high.
    pub high_t: i64,
    /// Session low.
    pub low_t: i64,
    /// 52-week high.
    pub high52_t: i64,
    /// 52-week low.
    pub low52_t: i64,
    /// Bid size.
    pub bid_size: i64,
    /// Ask size.
    pub ask_size: i64,
    /// Last trade size.
    pub last_size: i64,
    /// Total volume, only ever increases.
    pub volume: i64,
    /// Last quote change, ms.
    pub quote_time: i64,
    /// Last trade, ms.
    pub trade_time: i64,
    /// Last bid change, ms.
    pub bid_time: i64,
    /// Last ask change, ms.
    pub ask_time: i64,
}

/// Decimal places needed to print multiples of `tick` exactly (at most 8).
pub(crate) fn tick_decimals(tick: f64) -> i32 {
    (0..8)
        .find(|&d| {
            let scaled = tick * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-9
        })
        .unwrap_or(8)
}

impl TickWalk {
    /// An instrument already trading at `now_ms`; `rng` is its own (seeded from its symbol).
    pub(crate) fn new(spec: WalkSpec, mut rng: Rng, updates_per_sec: f64, now_ms: i64) -> Self {
        let min = spec.tick * 4.0;
        let close = (spec.base_price * (1.0 + 0.01 * standard_normal(&mut rng))).max(min);
        let open = (close * (1.0 + 0.005 * standard_normal(&mut rng))).max(min);
        let fair = (open * (1.0 + 0.005 * standard_normal(&mut rng))).max(min);
        let sigma_per_sec = spec.annual_volatility / TRADING_SECONDS_PER_YEAR.sqrt();
        let sigma_per_update = if updates_per_sec.is_finite() && updates_per_sec > 0.0 {
            sigma_per_sec / updates_per_sec.sqrt()
        } else {
            0.0
        };
        let to_ticks = |p: f64| ((p / spec.tick).round() as i64).max(1);
        let volume = (spec.daily_volume * (0.15 + 0.45 * rng.f64())).round() as i64;
        let close_t = to_ticks(close);
        let mut walk = Self {
            decimals: tick_decimals(spec.tick),
            close_t,
            open_t: to_ticks(open),
            bid_t: 0,
            ask_t: 0,
            last_t: 0,
            high_t: 0,
            low_t: 0,
            high52_t: to_ticks(close * (1.15 + 0.2 * rng.f64())),
            low52_t: to_ticks(close * (0.65 + 0.2 * rng.f64())),
            bid_size: 0,
            ask_size: 0,
            last_size: 0,
            volume,
            quote_time: now_ms,
            trade_time: now_ms,
            bid_time: now_ms,
            ask_time: now_ms,
            rng,
            spec,
            fair,
            sigma_per_update,
        };
        let quote_time = now_ms - 1 - walk.rng.i64(0..1000);
        walk.requote(quote_time);
        let trade_time = walk.quote_time - walk.rng.i64(0..3000);
        walk.trade(trade_time);
        let range = 0.004 * close;
        walk.high_t = walk
            .high_t
            .max(to_ticks(open.max(fair) + range * walk.rng.f64()));
        walk.low_t = walk
            .low_t
            .min(to_ticks(open.min(fair) - range * walk.rng.f64()));
        walk.high52_t = walk.high52_t.max(walk.high_t);
        walk.low52_t = walk.low52_t.min(walk.low_t);
        walk
    }

    /// The instrument's RNG (also drives its update schedule).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The tick size.
    pub(crate) fn tick(&self) -> f64 {
        self.spec.tick
    }

    /// A price in ticks as a printable number (`6000.25`, `1.08345`).
    pub(crate) fn price(&self, ticks: i64) -> f64 {
        round_to(ticks as f64 * self.spec.tick, self.decimals)
    }

    /// Mid of the quote, rounded to a tenth of a tick.
    pub(crate) fn mid(&self) -> f64 {
        round_to(
            (self.bid_t + self.ask_t) as f64 * self.spec.tick / 2.0,
            self.decimals + 1,
        )
    }

    /// Mark: the last trade if inside the spread, else the mid (LEVELONE_FUTURES field 24).
    pub(crate) fn mark(&self) -> f64 {
        if (self.bid_t..=self.ask_t).contains(&self.last_t) {
            self.price(self.last_t)
        } else {
            self.mid()
        }
    }

    /// One update at `now_ms`: the fair price moves, then the quote and/or a trade follow.
    pub(crate) fn step(&mut self, now_ms: i64) -> Option<Trade> {
        let z = standard_normal(&mut self.rng);
        let s = self.sigma_per_update;
        self.fair = (self.fair * (s * z - 0.5 * s * s).exp()).max(self.spec.tick * 4.0);
        let quote = self.rng.f64() < QUOTE_PROBABILITY;
        let trade = self.rng.f64() < TRADE_PROBABILITY || !quote;
        if quote {
            self.requote(now_ms);
        }
        trade.then(|| self.trade(now_ms))
    }

    fn requote(&mut self, now_ms: i64) {
        let (lo, hi) = self.spec.spread_ticks;
        let spread = if self.rng.u8(0..10) < 7 {
            lo
        } else {
            self.rng.i64(lo..=hi)
        };
        let bid_t = ((self.fair / self.spec.tick - spread as f64 / 2.0).round() as i64).max(1);
        let ask_t = bid_t + spread;
        let (lo, hi) = self.spec.quote_size;
        let bid_size = self.rng.i64(lo..=hi);
        let ask_size = self.rng.i64(lo..=hi);
        if (bid_t, bid_size) != (self.bid_t, self.bid_size) {
            self.bid_time = now_ms;
        }
        if (ask_t, ask_size) != (self.ask_t, self.ask_size) {
            self.ask_time = now_ms;
        }
        (self.bid_t, self.ask_t, self.bid_size, self.ask_size) = (bid_t, ask_t, bid_size, ask_size);
        self.quote_time = now_ms;
    }

    fn trade(&mut self, now_ms: i64) -> Trade {
        let price_t = match self.rng.u8(0..10) {
            0..=4 => self.bid_t,
            _ => self.ask_t,
        };
        let (lo, hi) = self.spec.trade_size;
        let size = if self.rng.u8(0..10) < 8 {
            self.rng.i64(lo..=lo.max(hi / 4))
        } else {
            self.rng.i64(lo..=hi)
        };
        self.last_t = price_t;
        self.last_size = size;
        self.volume += size;
        self.trade_time = now_ms;
        if self.high_t == 0 || price_t > self.high_t {
            self.high_t = price_t;
        }
        if self.low_t == 0 || price_t < self.low_t {
            self.low_t = price_t;
        }
        self.high52_t = self.high52_t.max(price_t);
        self.low52_t = self.low52_t.min(price_t);
        Trade {
            price_c: price_t,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es() -> WalkSpec {
        WalkSpec {
            base_price: 6000.0,
            tick: 0.25,
            annual_volatility: 0.16,
            daily_volume: 1.5e6,
            quote_size: (1, 40),
            trade_size: (1, 20),
            spread_ticks: (1, 2),
        }
    }

    #[test]
    fn prices_are_whole_ticks_and_the_quote_holds() {
        assert_eq!(tick_decimals(0.25), 2);
        assert_eq!(tick_decimals(0.00001), 5);
        assert_eq!(tick_decimals(1.0), 0);
        assert_eq!(tick_decimals(0.015625), 6);
        let mut w = TickWalk::new(es(), Rng::with_seed(3), 1.0, 0);
        let mut volume = w.volume;
        for i in 1..5000 {
            w.step(i * 1000);
            assert!(w.bid_t < w.ask_t);
            assert!(w.low_t <= w.last_t && w.last_t <= w.high_t);
            assert!(w.volume >= volume);
            volume = w.volume;
            let p = w.price(w.bid_t);
            assert_eq!((p * 4.0).fract(), 0.0, "{p}");
        }
        assert!((5000.0..7000.0).contains(&w.mark()), "{}", w.mark());
    }
}
