//! The option quote model: a Black–Scholes value on the underlying's current mark with a
//! slowly wandering implied volatility, a tick-aligned quote around it and occasional trades.

use std::sync::Arc;

use chrono::{Datelike, NaiveTime, Weekday};
use fastrand::Rng;

use super::black_scholes::{Greeks, Valuation, value};
use super::market_time::{DAY_MS, days_since_epoch, eastern_date, eastern_instant_ms};
use super::option_symbol::OptionSymbol;
use super::seeding::{instrument_rng, standard_normal};

/// Risk-free rate used for valuation.
const RISK_FREE_RATE: f64 = 0.04;
/// Milliseconds in a 365-day year.
const YEAR_MS: f64 = 365.0 * DAY_MS as f64;
/// Probability that an option update carries a trade.
const TRADE_PROBABILITY: f64 = 0.3;
/// Per-update log-volatility noise of the implied volatility.
const IV_NOISE: f64 = 0.002;
/// RNG salt of option instruments.
const OPTION_SALT: u64 = 0x4f50;

/// Full LEVELONE state of one option contract.
#[derive(Debug, Clone)]
pub(crate) struct OptionState {
    /// The 21-character symbol (`key`).
    pub symbol: Arc<str>,
    /// Parsed symbol.
    pub spec: OptionSymbol,
    /// Root without padding (field 49).
    pub root: Arc<str>,
    /// Underlying symbol (field 22).
    pub underlying: Arc<str>,
    /// Field 1, e.g. "AAPL 12/19/2025 230.00 C".
    pub description: Arc<str>,
    /// Field 24, e.g. "100 AAPL".
    pub deliverables: Arc<str>,
    rng: Rng,
    base_iv: f64,
    iv_factor: f64,
    /// Implied volatility as a fraction (field 10 is it in percent).
    pub iv: f64,
    /// Latest valuation (fields 28–32, 34).
    pub greeks: Greeks,
    /// Underlying price at the latest update (field 35).
    pub underlying_price: f64,
    /// Days to expiration (field 27).
    pub days_to_expiry: i64,
    /// Expiry at 16:00 ET, ms.
    expiry_ms: i64,
    /// Field 42: the day after expiry, 00:00 UTC (as in real captures).
    pub last_trading_day_ms: i64,
    /// Field 36: "S" for the standard third-Friday expiry, "W" otherwise.
    pub expiration_type: &'static str,
    /// Field 55: "E" for index options, "A" otherwise.
    pub exercise_type: &'static str,
    /// Field 43: "C" (cash) for index options, "P" otherwise.
    pub settlement_type: &'static str,
    /// Field 2.
    pub bid_c: i64,
    /// Field 3.
    pub ask_c: i64,
    /// Field 4.
    pub last_c: i64,
    /// Field 5.
    pub high_c: i64,
    /// Field 6.
    pub low_c: i64,
    /// Field 7 (previous close), static.
    pub close_c: i64,
    /// Field 15, static.
    pub open_c: i64,
    /// Field 50.
    pub high52_c: i64,
    /// Field 51.
    pub low52_c: i64,
    /// Field 8, contracts, only ever increases.
    pub volume: i64,
    /// Field 9, static.
    pub open_interest: i64,
    /// Field 16.
    pub bid_size: i64,
    /// Field 17.
    pub ask_size: i64,
    /// Field 18.
    pub last_size: i64,
    /// Field 38.
    pub quote_time: i64,
    /// Field 39.
    pub trade_time: i64,
}

/// What a new option needs to know about its underlying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnderlyingView {
    /// Current mark of the underlying.
    pub price: f64,
    /// Annualised volatility of the underlying (centre of the implied-volatility smile).
    pub annual_volatility: f64,
}

impl OptionState {
    /// A contract already trading at `now_ms`.
    pub(crate) fn new(
        symbol: &str,
        spec: OptionSymbol,
        underlying: &str,
        view: UnderlyingView,
        seed: u64,
        now_ms: i64,
    ) -> Self {
        let mut rng = instrument_rng(seed, symbol, OPTION_SALT);
        let expiry_ms = eastern_instant_ms(
            spec.expiry,
            NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default(),
        );
        let is_index = underlying.starts_with('$');
        let description = format!(
            "{} {} {:.2} {}",
            spec.root,
            spec.expiry.format("%m/%d/%Y"),
            spec.strike(),
            if spec.is_call { "C" } else { "P" }
        );
        let mut state = Self {
            symbol: Arc::from(symbol),
            root: Arc::from(spec.root.as_str()),
            underlying: Arc::from(underlying),
            description: Arc::from(description),
            deliverables: Arc::from(format!("100 {underlying}")),
            base_iv: view.annual_volatility.max(0.05) * (0.9 + 0.3 * rng.f64()),
            iv_factor: 1.0,
            iv: 0.0,
            greeks: value(Valuation {
                is_call: true,
                spot: 0.0,
                strike: 0.0,
                years: 0.0,
                rate: 0.0,
                volatility: 0.0,
            }),
            underlying_price: view.price,
            days_to_expiry: 0,
            expiry_ms,
            last_trading_day_ms: (days_since_epoch(spec.expiry) + 1) * DAY_MS,
            expiration_type: if is_third_friday(spec.expiry) {
                "S"
            } else {
                "W"
            },
            exercise_type: if is_index { "E" } else { "A" },
            settlement_type: if is_index { "C" } else { "P" },
            bid_c: 0,
            ask_c: 0,
            last_c: 0,
            high_c: 0,
            low_c: 0,
            close_c: 0,
            open_c: 0,
            high52_c: 0,
            low52_c: 0,
            volume: rng.i64(0..3000),
            open_interest: rng.i64(50..60_000),
            bid_size: 0,
            ask_size: 0,
            last_size: 0,
            quote_time: now_ms,
            trade_time: now_ms,
            spec,
            rng,
        };
        state.reprice(view.price, now_ms);
        state.requote(now_ms - 1);
        let theo = state.greeks.price;
        state.close_c = cents_at_least_one(theo * (1.0 + 0.08 * standard_normal(&mut state.rng)));
        state.open_c = cents_at_least_one(theo * (1.0 + 0.04 * standard_normal(&mut state.rng)));
        let trade_time = now_ms - state.rng.i64(1000..600_000);
        state.trade(trade_time);
        state.high_c = state.high_c.max(state.open_c);
        state.low_c = state.low_c.min(state.open_c);
        state.high52_c = cents_at_least_one(theo * 2.5).max(state.high_c);
        state.low52_c = cents_at_least_one(theo * 0.3).min(state.low_c);
        state
    }

    /// The instrument's RNG (also drives its update schedule).
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Mark (field 37): mid of the quote.
    pub(crate) fn mark(&self) -> f64 {
        (self.bid_c + self.ask_c) as f64 / 200.0
    }

    /// Strike minus spot for puts, spot minus strike for calls (field 11).
    pub(crate) fn intrinsic(&self) -> f64 {
        let diff = self.underlying_price - self.spec.strike();
        if self.spec.is_call { diff } else { -diff }
    }

    /// One update at `now_ms` with the underlying at `underlying_price`.
    pub(crate) fn step(&mut self, underlying_price: f64, now_ms: i64) {
        let z = standard_normal(&mut self.rng);
        self.iv_factor = (self.iv_factor * (IV_NOISE * z).exp()).clamp(0.7, 1.4);
        self.reprice(underlying_price, now_ms);
        self.requote(now_ms);
        if self.rng.f64() < TRADE_PROBABILITY {
            self.trade(now_ms);
        }
    }

    fn reprice(&mut self, underlying_price: f64, now_ms: i64) {
        let strike = self.spec.strike();
        let moneyness = if underlying_price > 0.0 {
            (strike / underlying_price).ln()
        } else {
            0.0
        };
        // a smile with a downward skew, like equity options
        let smile = 1.0 + 1.5 * moneyness * moneyness - 0.3 * moneyness;
        self.iv = (self.base_iv * smile * self.iv_factor).clamp(0.05, 3.0);
        self.underlying_price = underlying_price;
        self.days_to_expiry =
            (days_since_epoch(self.spec.expiry) - days_since_epoch(eastern_date(now_ms))).max(0);
        self.greeks = value(Valuation {
            is_call: self.spec.is_call,
            spot: underlying_price,
            strike,
            years: (self.expiry_ms - now_ms) as f64 / YEAR_MS,
            rate: RISK_FREE_RATE,
            volatility: self.iv,
        });
    }

    fn requote(&mut self, now_ms: i64) {
        let theo_c = self.greeks.price * 100.0;
        let tick = if theo_c < 300.0 { 1 } else { 5 };
        let width_ticks = 1 + (theo_c * 0.01 / tick as f64).round() as i64 + self.rng.i64(0..=2);
        let mid_ticks = theo_c / tick as f64;
        let bid_c = (((mid_ticks - width_ticks as f64 / 2.0).round() as i64) * tick).max(0);
        let ask_c = bid_c + width_ticks * tick;
        let bid_size = self.rng.i64(1..=80);
        let ask_size = self.rng.i64(1..=80);
        (self.bid_c, self.ask_c, self.bid_size, self.ask_size) = (bid_c, ask_c, bid_size, ask_size);
        self.quote_time = now_ms;
    }

    fn trade(&mut self, now_ms: i64) {
        let price_c = match self.rng.u8(0..3) {
            0 if self.bid_c > 0 => self.bid_c,
            1 => self.ask_c,
            _ => (self.bid_c + self.ask_c + 1) / 2,
        }
        .max(1);
        let size = if self.rng.u8(0..10) < 8 {
            self.rng.i64(1..=10)
        } else {
            self.rng.i64(10..=200)
        };
        self.last_c = price_c;
        self.last_size = size;
        self.volume += size;
        self.trade_time = now_ms;
        if self.high_c == 0 || price_c > self.high_c {
            self.high_c = price_c;
        }
        if self.low_c == 0 || price_c < self.low_c {
            self.low_c = price_c;
        }
        self.high52_c = self.high52_c.max(price_c);
        self.low52_c = if self.low52_c == 0 {
            price_c
        } else {
            self.low52_c.min(price_c)
        };
    }
}

fn cents_at_least_one(dollars: f64) -> i64 {
    ((dollars * 100.0).round() as i64).max(1)
}

fn is_third_friday(date: chrono::NaiveDate) -> bool {
    date.weekday() == Weekday::Fri && (15..=21).contains(&date.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option_symbol::parse_option_symbol;

    fn contract(symbol: &str, spot: f64, now_ms: i64) -> Option<OptionState> {
        let spec = parse_option_symbol(symbol).ok()?;
        let view = UnderlyingView {
            price: spot,
            annual_volatility: 0.3,
        };
        Some(OptionState::new(symbol, spec, "AAPL", view, 11, now_ms))
    }

    #[test]
    fn a_near_the_money_call_is_plausible() {
        // 2025-11-19 15:00 UTC, one month before expiry
        let now = 1_763_564_400_000;
        let Some(mut o) = contract("AAPL  251219C00230000", 230.0, now) else {
            panic!("valid symbol rejected");
        };
        assert_eq!(&*o.description, "AAPL 12/19/2025 230.00 C");
        assert_eq!(o.days_to_expiry, 30);
        assert_eq!(o.expiration_type, "S");
        assert!((0.4..0.65).contains(&o.greeks.delta), "{:?}", o.greeks);
        assert!((4.0..15.0).contains(&o.greeks.price), "{:?}", o.greeks);
        for i in 1..2000 {
            let before = o.volume;
            o.step(230.0 + (i % 7) as f64 * 0.1, now + i * 1000);
            assert!(o.bid_c < o.ask_c && o.bid_c >= 0);
            assert!(o.volume >= before);
            assert!(o.low_c <= o.last_c && o.last_c <= o.high_c);
            assert!((0.05..=3.0).contains(&o.iv));
        }
    }

    #[test]
    fn far_out_of_the_money_puts_have_tiny_but_valid_quotes() {
        let Some(o) = contract("AAPL  251219P00050000", 230.0, 1_763_564_400_000) else {
            panic!("valid symbol rejected");
        };
        assert_eq!(o.bid_c, 0);
        assert!(o.ask_c >= 1);
        assert!(o.greeks.delta <= 0.0 && o.greeks.delta > -0.01);
        assert_eq!(o.intrinsic(), -180.0);
    }
}
