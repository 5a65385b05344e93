//! The equity price model: a per-symbol geometric random walk of a fair price, with a cent
//! quote around it (1–3 cent spread) and at most one trade per update.
//!
//! All prices are kept in integer cents so they print exactly (`233.31`, never `233.30999`).

use std::sync::Arc;

use fastrand::Rng;

use super::reference::{Reference, reference_for};
use super::seeding::{instrument_rng, mix, standard_normal, symbol_hash, unit};

/// Seconds in a trading year (252 days of 6.5 hours) to scale annual volatility to seconds.
const TRADING_SECONDS_PER_YEAR: f64 = 252.0 * 6.5 * 3600.0;
/// Lowest fair price in dollars (keeps the quote positive).
const MIN_FAIR_PRICE: f64 = 1.0;
/// Probability that an update moves the quote.
const QUOTE_PROBABILITY: f64 = 0.75;
/// Probability that an update carries a trade.
const TRADE_PROBABILITY: f64 = 0.55;
/// RNG salt of equity instruments.
const EQUITY_SALT: u64 = 0x4551;

/// Trading venues: (exchange code for fields 6/7/16, MIC for fields 39/40/41). The last one
/// (off-exchange) only prints trades.
pub(crate) const VENUES: [(&str, &str); 8] = [
    ("Q", "XNAS"),
    ("P", "ARCX"),
    ("Z", "BATS"),
    ("K", "EDGX"),
    ("N", "XNYS"),
    ("V", "IEXG"),
    ("U", "MEMX"),
    ("D", "TRFC"),
];
const QUOTING_VENUES: usize = VENUES.len() - 1;

/// Dollars from cents.
pub(crate) fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// `x` rounded to `places` decimals (for ratios and percentages).
pub(crate) fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// One executed trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trade {
    /// Price in cents.
    pub price_c: i64,
    /// Size in shares.
    pub size: i64,
}

/// Full LEVELONE state of one equity (or ETF / index).
#[derive(Debug, Clone)]
pub(crate) struct EquityState {
    /// The symbol (`key`).
    pub symbol: Arc<str>,
    /// Static reference data.
    pub reference: Reference,
    rng: Rng,
    fair: f64,
    sigma_per_update: f64,
    /// Previous close (field 12), static.
    pub close_c: i64,
    /// Session open (field 17), static.
    pub open_c: i64,
    /// Best bid (field 1).
    pub bid_c: i64,
    /// Best ask (field 2).
    pub ask_c: i64,
    /// Last trade price (field 3).
    pub last_c: i64,
    /// Session high (field 10).
    pub high_c: i64,
    /// Session low (field 11).
    pub low_c: i64,
    /// 52-week high (field 19).
    pub high52_c: i64,
    /// 52-week low (field 20).
    pub low52_c: i64,
    /// Bid size in lots (field 4).
    pub bid_size: i64,
    /// Ask size in lots (field 5).
    pub ask_size: i64,
    /// Last trade size in shares (field 9).
    pub last_size: i64,
    /// Total volume in shares (field 8), only ever increases.
    pub volume: i64,
    /// Index into [`VENUES`] of the bid (fields 7, 40).
    pub bid_venue: usize,
    /// Index into [`VENUES`] of the ask (fields 6, 39).
    pub ask_venue: usize,
    /// Index into [`VENUES`] of the last trade (fields 16, 41).
    pub last_venue: usize,
    /// Last quote change, ms (field 34).
    pub quote_time: i64,
    /// Last trade, ms (fields 35, 36).
    pub trade_time: i64,
    /// Last bid change, ms (field 37).
    pub bid_time: i64,
    /// Last ask change, ms (field 38).
    pub ask_time: i64,
    /// Dividend yield in percent (field 23), static.
    pub dividend_yield: f64,
    /// Field 26, e.g. "2025-11-14 00:00:00.0"; `None` when no dividend is paid.
    pub dividend_date: Option<Arc<str>>,
    /// Hard-to-borrow quantity (field 46).
    pub htb_quantity: i64,
}

impl EquityState {
    /// A symbol already trading mid-session at `now_ms`, with `updates_per_sec` updates per second.
    pub(crate) fn new(symbol: &str, seed: u64, updates_per_sec: f64, now_ms: i64) -> Self {
        let reference = reference_for(symbol);
        let mut rng = instrument_rng(seed, symbol, EQUITY_SALT);
        let jitter = 1.0 + 0.01 * standard_normal(&mut rng);
        let close = (reference.base_price * jitter).max(MIN_FAIR_PRICE);
        let open = (close * (1.0 + 0.008 * standard_normal(&mut rng))).max(MIN_FAIR_PRICE);
        let fair = (open * (1.0 + 0.008 * standard_normal(&mut rng))).max(MIN_FAIR_PRICE);
        let sigma_per_sec = reference.annual_volatility / TRADING_SECONDS_PER_YEAR.sqrt();
        let sigma_per_update = if updates_per_sec.is_finite() && updates_per_sec > 0.0 {
            sigma_per_sec / updates_per_sec.sqrt()
        } else {
            0.0
        };
        let close_c = to_cents(close);
        let open_c = to_cents(open);
        let h = symbol_hash(symbol);
        let dividend_yield = if reference.annual_dividend > 0.0 {
            round_to(reference.annual_dividend / close * 100.0, 5)
        } else {
            0.0
        };
        let dividend_date = (reference.annual_dividend > 0.0).then(|| {
            let day = super::market_time::eastern_date(now_ms)
                + chrono::Days::new(1 + symbol_hash(symbol) % 90);
            Arc::from(format!("{} 00:00:00.0", day.format("%Y-%m-%d")))
        });
        let volume = (reference.daily_volume * (0.15 + 0.45 * rng.f64())).round() as i64;
        let mut state = Self {
            symbol: Arc::from(symbol),
            htb_quantity: 1_000_000 + (mix(h, 46) % 99_000_000) as i64,
            reference,
            fair,
            sigma_per_update,
            close_c,
            open_c,
            bid_c: 0,
            ask_c: 0,
            last_c: 0,
            high_c: 0,
            low_c: 0,
            high52_c: to_cents(close * (1.2 + 0.2 * unit(mix(h, 19)))),
            low52_c: to_cents(close * (0.6 + 0.2 * unit(mix(h, 20)))),
            bid_size: 0,
            ask_size: 0,
            last_size: 0,
            volume,
            bid_venue: 0,
            ask_venue: 0,
            last_venue: 0,
            quote_time: now_ms,
            trade_time: now_ms,
            bid_time: now_ms,
            ask_time: now_ms,
            dividend_yield,
            dividend_date,
            rng,
        };
        let quote_time = now_ms - 1 - state.rng.i64(0..1000);
        state.requote(quote_time);
        let trade_time = state.quote_time - state.rng.i64(0..3000);
        state.trade(trade_time);
        let spread_of_day = 0.004 * close;
        state.high_c = state
            .high_c
            .max(to_cents(open.max(fair) + spread_of_day * state.rng.f64()));
        state.low_c = state
            .low_c
            .min(to_cents(open.min(fair) - spread_of_day * state.rng.f64()));
        state.high52_c = state.high52_c.max(state.high_c);
        state.low52_c = state.low52_c.min(state.low_c);
        state
    }

    /// The instrument's RNG (also drives its update schedule).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Mid of the quote in dollars (field 33, and the underlying price for options).
    pub(crate) fn mark(&self) -> f64 {
        (self.bid_c + self.ask_c) as f64 / 200.0
    }

    /// One update at `now_ms`: the fair price moves, then the quote and/or a trade follow.
    /// Returns the trade, if any.
    pub(crate) fn step(&mut self, now_ms: i64) -> Option<Trade> {
        let z = standard_normal(&mut self.rng);
        let s = self.sigma_per_update;
        self.fair = (self.fair * (s * z - 0.5 * s * s).exp()).max(MIN_FAIR_PRICE);
        let quote = self.rng.f64() < QUOTE_PROBABILITY;
        let trade = self.rng.f64() < TRADE_PROBABILITY || !quote;
        if quote {
            self.requote(now_ms);
        }
        trade.then(|| self.trade(now_ms))
    }

    fn requote(&mut self, now_ms: i64) {
        let spread = match self.rng.u8(0..10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let bid_c = ((self.fair * 100.0 - spread as f64 / 2.0).round() as i64).max(1);
        let ask_c = bid_c + spread;
        let bid_size = lot_size(&mut self.rng);
        let ask_size = lot_size(&mut self.rng);
        if self.rng.u8(0..10) < 4 {
            self.bid_venue = self.rng.usize(0..QUOTING_VENUES);
        }
        if self.rng.u8(0..10) < 4 {
            self.ask_venue = self.rng.usize(0..QUOTING_VENUES);
        }
        if (bid_c, bid_size) != (self.bid_c, self.bid_size) {
            self.bid_time = now_ms;
        }
        if (ask_c, ask_size) != (self.ask_c, self.ask_size) {
            self.ask_time = now_ms;
        }
        (self.bid_c, self.ask_c, self.bid_size, self.ask_size) = (bid_c, ask_c, bid_size, ask_size);
        self.quote_time = now_ms;
    }

    fn trade(&mut self, now_ms: i64) -> Trade {
        let price_c = match self.rng.u8(0..10) {
            0..=3 => self.bid_c,
            4..=7 => self.ask_c,
            _ => self.rng.i64(self.bid_c..=self.ask_c),
        };
        let size = trade_size(&mut self.rng);
        self.last_c = price_c;
        self.last_size = size;
        self.volume += size;
        self.trade_time = now_ms;
        self.last_venue = self.rng.usize(0..VENUES.len());
        if self.high_c == 0 || price_c > self.high_c {
            self.high_c = price_c;
        }
        if self.low_c == 0 || price_c < self.low_c {
            self.low_c = price_c;
        }
        self.high52_c = self.high52_c.max(price_c);
        self.low52_c = self.low52_c.min(price_c);
        Trade { price_c, size }
    }
}

fn to_cents(dollars: f64) -> i64 {
    ((dollars * 100.0).round() as i64).max(1)
}

/// Quote size in lots of 100 shares.
fn lot_size(rng: &mut Rng) -> i64 {
    match rng.u8(0..10) {
        0..=6 => rng.i64(1..=5),
        7..=8 => rng.i64(5..=15),
        _ => rng.i64(15..=40),
    }
}

/// Trade size in shares: mostly round lots, sometimes odd lots or blocks.
fn trade_size(rng: &mut Rng) -> i64 {
    match rng.u8(0..20) {
        0..=5 => rng.i64(1..=99),
        6..=16 => 100 * rng.i64(1..=5),
        17..=18 => 100 * rng.i64(5..=20),
        _ => 100 * rng.i64(20..=100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_prices_are_plausible() {
        let start = 1_765_000_000_000;
        for (symbol, price) in [
            ("AAPL", 230.0),
            ("MSFT", 420.0),
            ("NVDA", 180.0),
            ("SPY", 650.0),
        ] {
            let s = EquityState::new(symbol, 7, 1.0, start);
            let mark = s.mark();
            assert!(
                (mark / price - 1.0).abs() < 0.06,
                "{symbol} starts at {mark}"
            );
        }
        let unknown = EquityState::new("QWERT", 7, 1.0, start).mark();
        assert!((45.0..=220.0).contains(&unknown), "{unknown}");
    }

    #[test]
    fn quote_and_trade_invariants_hold_along_the_walk() {
        let mut s = EquityState::new("TSLA", 3, 20.0, 0);
        let mut volume = s.volume;
        for i in 1..20_000 {
            let trade = s.step(i * 50);
            assert!(s.bid_c < s.ask_c && s.ask_c - s.bid_c <= 3);
            assert!(s.low_c <= s.last_c && s.last_c <= s.high_c);
            assert!(s.volume >= volume);
            if let Some(t) = trade {
                assert!(t.price_c >= s.bid_c && t.price_c <= s.ask_c);
                assert_eq!(s.volume, volume + t.size);
            }
            volume = s.volume;
        }
        let drift = s.mark() / 330.0;
        assert!((0.8..1.25).contains(&drift), "walk drifted to {}", s.mark());
    }

    #[test]
    fn same_seed_same_path_different_seed_different_path() {
        let run = |seed| {
            let mut s = EquityState::new("AAPL", seed, 1.0, 0);
            (1..500)
                .map(|i| {
                    s.step(i * 1000);
                    s.last_c
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
