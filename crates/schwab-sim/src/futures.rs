//! Futures and futures-option models: a [`FutureState`] is a tick walk with its contract
//! data (active symbol, expiration, open interest); a [`FutureOptionState`] is a Black–76 value
//! (Black–Scholes at a zero rate) on its underlying future's current mark, quoted in the
//! future's ticks.

use std::sync::Arc;

use fastrand::Rng;

use super::black_scholes::{Valuation, value};
use super::futures_reference::{
    ContractMonth, FutureOptionKey, FutureRoot, active_contract, contract_expiry_ms, future_root,
    futures_root_of_option_root, option_expiry_ms,
};
use super::market_time::DAY_MS;
use super::seeding::{instrument_rng, mix, standard_normal, symbol_hash};
use super::tick_walk::{TickWalk, WalkSpec, tick_decimals};
use super::walk::round_to;

/// RNG salt of futures.
const FUTURE_SALT: u64 = 0x4655;
/// RNG salt of futures options.
const FUTURE_OPTION_SALT: u64 = 0x464f;
/// Milliseconds in a 365-day year.
const YEAR_MS: f64 = 365.0 * DAY_MS as f64;
/// Probability that a futures-option update carries a trade.
const OPTION_TRADE_PROBABILITY: f64 = 0.3;

/// Full LEVELONE_FUTURES state of one key.
#[derive(Debug, Clone)]
pub(crate) struct FutureState {
    /// The key (`/ES` or `/ESZ26`).
    pub symbol: Arc<str>,
    /// Root data.
    pub root: FutureRoot,
    /// `/ES` (field 27).
    pub product: Arc<str>,
    /// Field 34: the contract the key trades (`/ESZ26` for `/ES`).
    pub active_symbol: Arc<str>,
    /// Field 16, e.g. "E-mini S&P 500 Index Futures,Dec-2026,ETH".
    pub description: Arc<str>,
    /// Field 35, ms.
    pub expiry_ms: i64,
    /// Field 23.
    pub open_interest: i64,
    /// Prices, sizes, times.
    pub walk: TickWalk,
}

impl FutureState {
    /// A futures key already trading at `now_ms`.
    pub(crate) fn new(
        symbol: &str,
        root_name: &str,
        contract: Option<ContractMonth>,
        seed: u64,
        updates_per_sec: f64,
        now_ms: i64,
    ) -> Self {
        let root = future_root(root_name);
        let month = contract.unwrap_or_else(|| active_contract(&root, now_ms));
        let h = symbol_hash(symbol);
        let spec = WalkSpec {
            base_price: root.price,
            tick: root.tick,
            annual_volatility: root.volatility,
            daily_volume: root.daily_volume,
            quote_size: (1, 60),
            trade_size: (1, 40),
            spread_ticks: (1, 2),
        };
        let rng = instrument_rng(seed, symbol, FUTURE_SALT);
        let stem = if root.root.is_empty() {
            format!("{root_name} Futures")
        } else {
            root.description.to_string()
        };
        Self {
            symbol: Arc::from(symbol),
            product: Arc::from(format!("/{root_name}")),
            active_symbol: Arc::from(format!("/{root_name}{}", month.code())),
            description: Arc::from(format!("{stem},{},ETH", month.label())),
            expiry_ms: contract_expiry_ms(&root, month),
            open_interest: (root.daily_volume * (0.5 + 1.5 * super::seeding::unit(mix(h, 23))))
                .round() as i64,
            walk: TickWalk::new(spec, rng, updates_per_sec, now_ms),
            root,
        }
    }
}

/// Full LEVELONE_FUTURES_OPTIONS state of one key.
#[derive(Debug, Clone)]
pub(crate) struct FutureOptionState {
    /// The key (`./OZCZ27C565`).
    pub symbol: Arc<str>,
    /// Parsed key.
    pub key: FutureOptionKey,
    /// Field 24: the underlying future (`/ZCZ27`).
    pub underlying: Arc<str>,
    /// Field 16, e.g. "Corn Futures Options,Dec-2027,Call 565".
    pub description: Arc<str>,
    /// Root data of the underlying future.
    pub root: FutureRoot,
    /// Field 26, ms.
    pub expiry_ms: i64,
    rng: Rng,
    iv: f64,
    decimals: i32,
    /// Theoretical value at the latest update.
    pub theo: f64,
    /// Prices in ticks of the underlying future.
    pub bid_t: i64,
    /// Ask in ticks.
    pub ask_t: i64,
    /// Last in ticks.
    pub last_t: i64,
    /// High in ticks.
    pub high_t: i64,
    /// Low in ticks.
    pub low_t: i64,
    /// Previous close in ticks, static.
    pub close_t: i64,
    /// Open in ticks, static.
    pub open_t: i64,
    /// Field 4.
    pub bid_size: i64,
    /// Field 5.
    pub ask_size: i64,
    /// Field 9.
    pub last_size: i64,
    /// Field 8, only ever increases.
    pub volume: i64,
    /// Field 18.
    pub open_interest: i64,
    /// Field 10.
    pub quote_time: i64,
    /// Field 11.
    pub trade_time: i64,
}

impl FutureOptionState {
    /// A contract already trading at `now_ms` with the underlying future at `underlying_price`.
    pub(crate) fn new(
        symbol: &str,
        key: FutureOptionKey,
        seed: u64,
        underlying_price: f64,
        now_ms: i64,
    ) -> Self {
        let root = future_root(futures_root_of_option_root(&key.option_root));
        let mut rng = instrument_rng(seed, symbol, FUTURE_OPTION_SALT);
        let iv = (root.volatility * (1.0 + 0.1 * standard_normal(&mut rng))).clamp(0.05, 2.0);
        let stem = if root.root.is_empty() {
            format!("{} Futures Options", key.option_root)
        } else {
            format!("{} Options", root.description)
        };
        let description = format!(
            "{stem},{},{} {}",
            key.contract.label(),
            if key.is_call { "Call" } else { "Put" },
            key.strike_text
        );
        let mut state = Self {
            symbol: Arc::from(symbol),
            underlying: Arc::from(key.underlying()),
            description: Arc::from(description),
            expiry_ms: option_expiry_ms(&root, key.contract),
            decimals: tick_decimals(root.tick),
            iv,
            theo: 0.0,
            bid_t: 0,
            ask_t: 0,
            last_t: 0,
            high_t: 0,
            low_t: 0,
            close_t: 0,
            open_t: 0,
            bid_size: 0,
            ask_size: 0,
            last_size: 0,
            volume: rng.i64(0..2000),
            open_interest: rng.i64(100..40_000),
            quote_time: now_ms,
            trade_time: now_ms,
            key,
            root,
            rng,
        };
        state.requote(underlying_price, now_ms - 1);
        let ticks = |p: f64, t: f64| ((p / t).round() as i64).max(1);
        let tick = state.root.tick;
        state.close_t = ticks(
            state.theo * (1.0 + 0.06 * standard_normal(&mut state.rng)),
            tick,
        );
        state.open_t = ticks(
            state.theo * (1.0 + 0.03 * standard_normal(&mut state.rng)),
            tick,
        );
        let trade_time = now_ms - state.rng.i64(1000..600_000);
        state.trade(trade_time);
        state.high_t = state.high_t.max(state.open_t);
        state.low_t = state.low_t.min(state.open_t);
        state
    }

    /// The contract's RNG (also drives its update schedule).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// A price in ticks as a number.
    pub(crate) fn price(&self, ticks: i64) -> f64 {
        round_to(ticks as f64 * self.root.tick, self.decimals)
    }

    /// Mid of the quote.
    pub(crate) fn mark(&self) -> f64 {
        round_to(
            (self.bid_t + self.ask_t) as f64 * self.root.tick / 2.0,
            self.decimals + 1,
        )
    }

    /// One update at `now_ms` with the underlying future at `underlying_price`.
    pub(crate) fn step(&mut self, underlying_price: f64, now_ms: i64) {
        let z = standard_normal(&mut self.rng);
        self.iv = (self.iv * (0.002 * z).exp()).clamp(0.05, 2.0);
        self.requote(underlying_price, now_ms);
        if self.rng.f64() < OPTION_TRADE_PROBABILITY {
            self.trade(now_ms);
        }
    }

    fn requote(&mut self, underlying_price: f64, now_ms: i64) {
        self.theo = value(Valuation {
            is_call: self.key.is_call,
            spot: underlying_price,
            strike: self.key.strike,
            years: (self.expiry_ms - now_ms) as f64 / YEAR_MS,
            rate: 0.0,
            volatility: self.iv,
        })
        .price;
        let tick = self.root.tick;
        let mid = self.theo / tick;
        let width = 1 + (mid * 0.02).round() as i64 + self.rng.i64(0..=1);
        let bid_t = ((mid - width as f64 / 2.0).round() as i64).max(0);
        self.bid_t = bid_t;
        self.ask_t = bid_t + width;
        self.bid_size = self.rng.i64(1..=50);
        self.ask_size = self.rng.i64(1..=50);
        self.quote_time = now_ms;
    }

    fn trade(&mut self, now_ms: i64) {
        let price_t = match self.rng.u8(0..3) {
            0 if self.bid_t > 0 => self.bid_t,
            1 => self.ask_t,
            _ => (self.bid_t + self.ask_t + 1) / 2,
        }
        .max(1);
        let size = self.rng.i64(1..=20);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::futures_reference::parse_future_option_key;

    #[test]
    fn front_month_keys_name_their_contract() {
        // 2026-12-02 15:00 UTC
        let now = 1_796_223_600_000;
        let es = FutureState::new("/ES", "ES", None, 1, 1.0, now);
        assert_eq!(&*es.active_symbol, "/ESZ26");
        assert_eq!(&*es.product, "/ES");
        assert!(
            es.description
                .starts_with("E-mini S&P 500 Index Futures,Dec-2026")
        );
        assert!((5500.0..6500.0).contains(&es.walk.mark()));
        let Ok(key) = parse_future_option_key("./OZCZ27C565") else {
            panic!("valid key refused");
        };
        let o = FutureOptionState::new("./OZCZ27C565", key, 1, 450.0, now);
        assert_eq!(&*o.underlying, "/ZCZ27");
        assert!(o.theo > 0.5 && o.theo < 60.0, "{}", o.theo);
        assert!(o.bid_t < o.ask_t);
    }
}
