//! LEVELONE_OPTIONS field table (fields 1–55) read from an [`OptionState`].

use super::field_value::FieldValue::{self, Bool, Double, Int, IntAsFloat, Str, Text};
use super::option_model::OptionState;
use super::walk::{dollars, round_to};

/// Highest LEVELONE_OPTIONS field number.
pub(crate) const MAX_OPTION_FIELD: u32 = 55;

fn percent_of(change: f64, base_c: i64) -> f64 {
    if base_c == 0 {
        0.0
    } else {
        round_to(change / dollars(base_c) * 100.0, 8)
    }
}

/// Value of `field` for `o`; `None` for field 0 (sent as `key`) and unknown fields.
/// `volume_as_float` prints field 8 as `123.0`.
pub(crate) fn option_field(
    o: &OptionState,
    field: u32,
    volume_as_float: bool,
) -> Option<FieldValue> {
    let g = &o.greeks;
    let net_change = round_to(dollars(o.last_c - o.close_c), 2);
    let mark_change = round_to(o.mark() - dollars(o.close_c), 4);
    let value = match field {
        1 => Text(o.description.clone()),
        2 => Double(dollars(o.bid_c)),
        3 => Double(dollars(o.ask_c)),
        4 => Double(dollars(o.last_c)),
        5 => Double(dollars(o.high_c)),
        6 => Double(dollars(o.low_c)),
        7 => Double(dollars(o.close_c)),
        8 if volume_as_float => IntAsFloat(o.volume),
        8 => Int(o.volume),
        9 => Int(o.open_interest),
        10 => Double(round_to(o.iv * 100.0, 4)),
        11 => Double(round_to(o.intrinsic(), 4)),
        12 => Int(i64::from(chrono::Datelike::year(&o.spec.expiry))),
        13 => Double(100.0),
        14 => Int(2),
        15 => Double(dollars(o.open_c)),
        16 => Int(o.bid_size),
        17 => Int(o.ask_size),
        18 => Int(o.last_size),
        19 => Double(net_change),
        20 => Double(o.spec.strike()),
        21 => Str(if o.spec.is_call { "C" } else { "P" }),
        22 => Text(o.underlying.clone()),
        23 => Int(i64::from(chrono::Datelike::month(&o.spec.expiry))),
        24 => Text(o.deliverables.clone()),
        25 => Double(round_to(o.mark() - o.intrinsic().max(0.0), 4)),
        26 => Int(i64::from(chrono::Datelike::day(&o.spec.expiry))),
        27 => Int(o.days_to_expiry),
        28 => Double(round_to(g.delta, 8)),
        29 => Double(round_to(g.gamma, 8)),
        30 => Double(round_to(g.theta, 8)),
        31 => Double(round_to(g.vega, 8)),
        32 => Double(round_to(g.rho, 8)),
        33 => Str("Normal"),
        34 => Double(round_to(g.price, 8)),
        35 => Double(o.underlying_price),
        36 => Str(o.expiration_type),
        37 => Double(o.mark()),
        38 => Int(o.quote_time),
        39 => Int(o.trade_time),
        40 => Str("O"),
        41 => Str("OPR"),
        42 => Int(o.last_trading_day_ms),
        43 => Str(o.settlement_type),
        44 => Double(percent_of(net_change, o.close_c)),
        45 => Double(mark_change),
        46 => Double(percent_of(mark_change, o.close_c)),
        47 | 52 | 53 => Double(0.0),
        48 => Bool(true),
        49 => Text(o.root.clone()),
        50 => Double(dollars(o.high52_c)),
        51 => Double(dollars(o.low52_c)),
        54 => Int(0),
        55 => Str(o.exercise_type),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option_model::UnderlyingView;
    use crate::option_symbol::parse_option_symbol;

    #[test]
    fn every_field_has_a_value_except_symbol() {
        let symbol = "GOOG  240517C00070000";
        let Ok(spec) = parse_option_symbol(symbol) else {
            panic!("valid symbol rejected");
        };
        let view = UnderlyingView {
            price: 172.93,
            annual_volatility: 0.3,
        };
        // 2024-05-15 15:43 UTC, as in the real capture
        let o = OptionState::new(symbol, spec, "GOOG", view, 1, 1_715_787_814_441);
        assert!(option_field(&o, 0, false).is_none());
        assert!(option_field(&o, 56, false).is_none());
        for f in 1..=MAX_OPTION_FIELD {
            assert!(option_field(&o, f, false).is_some(), "field {f}");
        }
        assert_eq!(
            option_field(&o, 1, false),
            Some(Str("GOOG 05/17/2024 70.00 C"))
        );
        assert_eq!(option_field(&o, 27, false), Some(Int(2)));
        assert_eq!(option_field(&o, 42, false), Some(Int(1_715_990_400_000)));
        assert_eq!(option_field(&o, 13, false), Some(Double(100.0)));
        assert_eq!(option_field(&o, 12, false), Some(Int(2024)));
        assert_eq!(option_field(&o, 22, false), Some(Str("GOOG")));
        assert_eq!(option_field(&o, 24, false), Some(Str("100 GOOG")));
        assert_eq!(option_field(&o, 36, false), Some(Str("S")));
    }
}
