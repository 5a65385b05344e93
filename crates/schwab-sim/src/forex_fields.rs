//! LEVELONE_FOREX: currency pairs (`EUR/USD`), their model (a tick walk in pips: 5 decimals,
//! 3 for JPY-quoted pairs, as field 19 says) and the field table (fields 1–29, services §3;
//! volume is 6, quote time 8, trade time 9, mark 29).

use std::sync::Arc;

use super::field_value::FieldValue::{self, Bool, Double, Int, IntAsFloat, Str, Text};
use super::seeding::{instrument_rng, mix, symbol_hash, unit};
use super::tick_walk::{TickWalk, WalkSpec, tick_decimals};
use super::walk::round_to;

/// Highest LEVELONE_FOREX field number.
pub(crate) const MAX_FOREX_FIELD: u32 = 29;
/// RNG salt of currency pairs.
const FOREX_SALT: u64 = 0x4658;
/// Expected key format (for error messages).
pub(crate) const FOREX_KEY_FORMAT: &str =
    "two 3-letter upper-case currency codes separated by \"/\", e.g. \"EUR/USD\"";

const PAIRS: &[(&str, f64, &str)] = &[
    ("EUR/USD", 1.08, "Euro/USDollar Spot"),
    ("USD/JPY", 150.2, "USDollar/Japanese Yen Spot"),
    ("GBP/USD", 1.27, "British Pound/USDollar Spot"),
    ("USD/CHF", 0.88, "USDollar/Swiss Franc Spot"),
    ("AUD/USD", 0.66, "Australian Dollar/USDollar Spot"),
    ("USD/CAD", 1.36, "USDollar/Canadian Dollar Spot"),
    ("NZD/USD", 0.60, "New Zealand Dollar/USDollar Spot"),
    ("EUR/JPY", 162.5, "Euro/Japanese Yen Spot"),
    ("EUR/GBP", 0.85, "Euro/British Pound Spot"),
    ("GBP/JPY", 190.4, "British Pound/Japanese Yen Spot"),
];

/// Checks `AAA/BBB`.
pub(crate) fn validate_forex_key(key: &str) -> Result<(), String> {
    let Some((base, quote)) = key.split_once('/') else {
        return Err("it has no \"/\"".into());
    };
    let code = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
    if !code(base) || !code(quote) {
        return Err("each side must be a 3-letter upper-case currency code".into());
    }
    if base == quote {
        return Err("both sides are the same currency".into());
    }
    Ok(())
}

/// Full LEVELONE_FOREX state of one pair.
#[derive(Debug, Clone)]
pub(crate) struct ForexState {
    /// The key.
    pub symbol: Arc<str>,
    /// Field 14.
    pub description: Arc<str>,
    /// Field 19.
    pub digits: i64,
    /// Prices, sizes, times.
    pub walk: TickWalk,
}

impl ForexState {
    /// A pair already trading at `now_ms`.
    pub(crate) fn new(symbol: &str, seed: u64, updates_per_sec: f64, now_ms: i64) -> Self {
        let jpy = symbol.ends_with("/JPY");
        let (price, description) = match PAIRS.iter().find(|p| p.0 == symbol) {
            Some(&(_, price, description)) => (price, description.to_string()),
            None => {
                let u = unit(mix(symbol_hash(symbol), 1));
                let price = if jpy { 80.0 + 120.0 * u } else { 0.5 + 1.5 * u };
                (price, format!("{symbol} Spot"))
            }
        };
        let tick = if jpy { 0.001 } else { 0.00001 };
        let spec = WalkSpec {
            base_price: price,
            tick,
            annual_volatility: 0.08,
            daily_volume: 5.0e5,
            quote_size: (1, 50),
            trade_size: (1, 20),
            spread_ticks: (8, 20),
        };
        let rng = instrument_rng(seed, symbol, FOREX_SALT);
        Self {
            symbol: Arc::from(symbol),
            description: Arc::from(description),
            digits: i64::from(tick_decimals(tick)),
            walk: TickWalk::new(spec, rng, updates_per_sec, now_ms),
        }
    }
}

/// Value of `field` for `s`; `None` for field 0 (sent as `key`) and unknown fields.
pub(crate) fn forex_field(s: &ForexState, field: u32, volume_as_float: bool) -> Option<FieldValue> {
    let w = &s.walk;
    let close = w.price(w.close_t);
    let net_change = round_to(w.price(w.last_t) - close, 6);
    let value = match field {
        1 => Double(w.price(w.bid_t)),
        2 => Double(w.price(w.ask_t)),
        3 => Double(w.price(w.last_t)),
        4 => Int(w.bid_size),
        5 => Int(w.ask_size),
        6 if volume_as_float => IntAsFloat(w.volume),
        6 => Int(w.volume),
        7 => Int(w.last_size),
        8 => Int(w.quote_time),
        9 => Int(w.trade_time),
        10 => Double(w.price(w.high_t)),
        11 => Double(w.price(w.low_t)),
        12 => Double(close),
        13 => Str("T"),
        14 => Text(s.description.clone()),
        15 => Double(w.price(w.open_t)),
        16 => Double(net_change),
        17 => Double(if close > 0.0 {
            round_to(net_change / close * 100.0, 8)
        } else {
            0.0
        }),
        18 => Str("GFT"),
        19 => Int(s.digits),
        20 => Str("Normal"),
        21 => Double(w.tick()),
        22 => Double(round_to(w.tick() * 10_000.0, 6)),
        23 => Text(s.symbol.clone()),
        24 => Str(""),
        25 => Bool(true),
        26 => Str(""),
        27 => Double(w.price(w.high52_t)),
        28 => Double(w.price(w.low52_t)),
        29 => Double(w.mid()),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_have_plausible_prices_and_every_field() {
        for good in ["EUR/USD", "USD/JPY", "ABC/XYZ"] {
            assert!(validate_forex_key(good).is_ok(), "{good}");
        }
        for bad in ["EURUSD", "EUR/US", "eur/usd", "EUR/EUR", "EUR/USD/"] {
            assert!(validate_forex_key(bad).is_err(), "{bad}");
        }
        let eur = ForexState::new("EUR/USD", 1, 1.0, 0);
        let jpy = ForexState::new("USD/JPY", 1, 1.0, 0);
        assert!((1.0..1.2).contains(&eur.walk.mid()), "{}", eur.walk.mid());
        assert!(
            (140.0..160.0).contains(&jpy.walk.mid()),
            "{}",
            jpy.walk.mid()
        );
        assert_eq!((eur.digits, jpy.digits), (5, 3));
        for f in 1..=MAX_FOREX_FIELD {
            assert!(forex_field(&eur, f, false).is_some(), "field {f}");
        }
        assert!(forex_field(&eur, 0, false).is_none());
        assert!(forex_field(&eur, 30, false).is_none());
    }
}
