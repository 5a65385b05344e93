//! LEVELONE_FUTURES field table (fields 1–40, protocol §4.5) read from a [`FutureState`].

use super::field_value::FieldValue::{self, Bool, Double, Int, IntAsFloat, Str, Text};
use super::futures::FutureState;
use super::walk::round_to;

/// Highest LEVELONE_FUTURES field number.
pub(crate) const MAX_FUTURES_FIELD: u32 = 40;

/// Field 29: CME Globex hours in the encoding Schwab sends.
const TRADING_HOURS: &str = "GLBX(de=1640;0=-1700;1=r-1700d-1515;7=d-1515)";

/// Value of `field` for `s`; `None` for field 0 (sent as `key`) and unknown fields.
pub(crate) fn futures_field(
    s: &FutureState,
    field: u32,
    volume_as_float: bool,
) -> Option<FieldValue> {
    let w = &s.walk;
    let close = w.price(w.close_t);
    let net_change = round_to(w.price(w.last_t) - close, 6);
    let value = match field {
        1 => Double(w.price(w.bid_t)),
        2 => Double(w.price(w.ask_t)),
        3 => Double(w.price(w.last_t)),
        4 => Int(w.bid_size),
        5 => Int(w.ask_size),
        6 | 7 | 17 => Str("?"),
        8 if volume_as_float => IntAsFloat(w.volume),
        8 => Int(w.volume),
        9 => Int(w.last_size),
        10 => Int(w.quote_time),
        11 => Int(w.trade_time),
        12 => Double(w.price(w.high_t)),
        13 => Double(w.price(w.low_t)),
        14 | 33 => Double(close),
        15 => Str("@"),
        16 => Text(s.description.clone()),
        18 => Double(w.price(w.open_t)),
        19 => Double(net_change),
        20 => Double(if close > 0.0 {
            round_to(net_change / close * 100.0, 8)
        } else {
            0.0
        }),
        21 => Str(s.root.exchange),
        22 => Str("Normal"),
        23 => Int(s.open_interest),
        24 => Double(w.mark()),
        25 => Double(w.tick()),
        26 => Double(round_to(w.tick() * s.root.multiplier, 6)),
        27 => Text(s.product.clone()),
        28 => Str("D,D"),
        29 => Str(TRADING_HOURS),
        30 | 32 | 39 => Bool(true),
        31 => Double(s.root.multiplier),
        34 => Text(s.active_symbol.clone()),
        35 | 40 => Int(s.expiry_ms),
        36 => Str("Regular"),
        37 => Int(w.ask_time),
        38 => Int(w.bid_time),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_value_except_symbol() {
        let s = FutureState::new("/CL", "CL", None, 1, 1.0, 1_796_223_600_000);
        assert!(futures_field(&s, 0, false).is_none());
        assert!(futures_field(&s, 41, false).is_none());
        for f in 1..=MAX_FUTURES_FIELD {
            assert!(futures_field(&s, f, false).is_some(), "field {f}");
        }
        assert_eq!(futures_field(&s, 31, false), Some(Double(1000.0)));
        assert_eq!(futures_field(&s, 27, false), Some(Str("/CL")));
        assert_eq!(futures_field(&s, 34, false), Some(Str("/CLF27")));
        assert_eq!(futures_field(&s, 21, false), Some(Str("XNYM")));
    }
}
