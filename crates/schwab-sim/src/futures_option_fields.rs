//! LEVELONE_FUTURES_OPTIONS field table (fields 1–31, services §2) read from a
//! [`FutureOptionState`].

use super::field_value::FieldValue::{self, Double, Int, IntAsFloat, Str, Text};
use super::futures::FutureOptionState;
use super::walk::round_to;

/// Highest LEVELONE_FUTURES_OPTIONS field number.
pub(crate) const MAX_FUTURES_OPTION_FIELD: u32 = 31;

/// Value of `field` for `o`; `None` for field 0 (sent as `key`) and unknown fields.
pub(crate) fn futures_option_field(
    o: &FutureOptionState,
    field: u32,
    volume_as_float: bool,
) -> Option<FieldValue> {
    let value = match field {
        1 => Double(o.price(o.bid_t)),
        2 => Double(o.price(o.ask_t)),
        3 => Double(o.price(o.last_t)),
        4 => Int(o.bid_size),
        5 => Int(o.ask_size),
        6 | 7 | 15 => Str("?"),
        8 if volume_as_float => IntAsFloat(o.volume),
        8 => Int(o.volume),
        9 => Int(o.last_size),
        10 => Int(o.quote_time),
        11 => Int(o.trade_time),
        12 => Double(o.price(o.high_t)),
        13 => Double(o.price(o.low_t)),
        14 | 23 => Double(o.price(o.close_t)),
        16 => Text(o.description.clone()),
        17 => Double(o.price(o.open_t)),
        18 => Int(o.open_interest),
        19 => Double(o.mark()),
        20 => Double(o.root.tick),
        21 => Double(round_to(o.root.tick * o.root.multiplier, 6)),
        22 => Double(o.root.multiplier),
        24 => Text(o.underlying.clone()),
        25 => Double(o.key.strike),
        26 => Int(o.expiry_ms),
        27 => Str("A"),
        28 => Str(if o.key.is_call { "C" } else { "P" }),
        29 => Str("Normal"),
        30 => Str("@"),
        31 => Str(o.root.exchange),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::futures_reference::parse_future_option_key;

    #[test]
    fn every_field_has_a_value_except_symbol() {
        let Ok(key) = parse_future_option_key("./OZCZ27P400") else {
            panic!("valid key refused");
        };
        let o = FutureOptionState::new("./OZCZ27P400", key, 1, 450.0, 1_796_223_600_000);
        assert!(futures_option_field(&o, 0, false).is_none());
        assert!(futures_option_field(&o, 32, false).is_none());
        for f in 1..=MAX_FUTURES_OPTION_FIELD {
            assert!(futures_option_field(&o, f, false).is_some(), "field {f}");
        }
        assert_eq!(futures_option_field(&o, 28, false), Some(Str("P")));
        assert_eq!(futures_option_field(&o, 24, false), Some(Str("/ZCZ27")));
        assert_eq!(futures_option_field(&o, 25, false), Some(Double(400.0)));
    }
}
