//! LEVELONE_EQUITIES field table (fields 1–51) read from an [`EquityState`].

use super::field_value::FieldValue::{self, Bool, Double, Int, IntAsFloat, Str, Text};
use super::walk::{EquityState, VENUES, dollars, round_to};

/// Highest LEVELONE_EQUITIES field number.
pub(crate) const MAX_EQUITY_FIELD: u32 = 51;

fn percent_of(change: f64, base_c: i64) -> f64 {
    if base_c == 0 {
        0.0
    } else {
        round_to(change / dollars(base_c) * 100.0, 8)
    }
}

/// Value of `field` for `s`; `None` for field 0 (sent as `key`), unknown fields and fields
/// without a value (the dividend date of a company that pays none).
/// `volume_as_float` prints field 8 as `12345.0`, as the real feed sometimes does.
pub(crate) fn equity_field(
    s: &EquityState,
    field: u32,
    volume_as_float: bool,
) -> Option<FieldValue> {
    let net_change = round_to(dollars(s.last_c - s.close_c), 2);
    let value = match field {
        1 => Double(dollars(s.bid_c)),
        2 => Double(dollars(s.ask_c)),
        3 | 29 => Double(dollars(s.last_c)),
        4 => Int(s.bid_size),
        5 => Int(s.ask_size),
        6 => Str(VENUES[s.ask_venue].0),
        7 => Str(VENUES[s.bid_venue].0),
        8 if volume_as_float => IntAsFloat(s.volume),
        8 => Int(s.volume),
        9 | 30 => Int(s.last_size),
        10 => Double(dollars(s.high_c)),
        11 => Double(dollars(s.low_c)),
        12 => Double(dollars(s.close_c)),
        13 => Str(s.reference.listing.id()),
        14 => Bool(true),
        15 => Text(s.reference.description.clone()),
        16 => Str(VENUES[s.last_venue].0),
        17 => Double(dollars(s.open_c)),
        18 | 31 => Double(net_change),
        19 => Double(dollars(s.high52_c)),
        20 => Double(dollars(s.low52_c)),
        21 => Double(s.reference.pe_ratio),
        22 => Double(s.reference.annual_dividend),
        23 => Double(s.dividend_yield),
        24 => Double(0.0),
        25 => Str(s.reference.listing.name()),
        26 => return s.dividend_date.clone().map(Text),
        27 | 28 => Bool(true),
        32 => Str("Normal"),
        33 => Double(s.mark()),
        34 => Int(s.quote_time),
        35 | 36 => Int(s.trade_time),
        37 => Int(s.bid_time),
        38 => Int(s.ask_time),
        39 => Str(VENUES[s.ask_venue].1),
        40 => Str(VENUES[s.bid_venue].1),
        41 => Str(VENUES[s.last_venue].1),
        42 | 43 => Double(percent_of(net_change, s.close_c)),
        44 => Double(round_to(s.mark() - dollars(s.close_c), 4)),
        45 => Double(percent_of(s.mark() - dollars(s.close_c), s.close_c)),
        46 => Int(s.htb_quantity),
        47 | 50 | 51 => Double(0.0),
        48 => Int(0),
        49 => Int(1),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_value_except_symbol() {
        let s = EquityState::new("AAPL", 1, 1.0, 1_765_000_000_000);
        assert!(equity_field(&s, 0, false).is_none());
        assert!(equity_field(&s, 52, false).is_none());
        for f in 1..=MAX_EQUITY_FIELD {
            assert!(equity_field(&s, f, false).is_some(), "field {f}");
        }
        assert_eq!(equity_field(&s, 8, true), equity_field(&s, 8, false));
        let mut text = String::new();
        if let Some(v) = equity_field(&s, 8, true) {
            v.write_json(&mut text);
        }
        assert!(text.ends_with(".0"), "{text}");
    }

    #[test]
    fn derived_fields_agree() {
        let s = EquityState::new("MSFT", 4, 1.0, 0);
        let num = |f| match equity_field(&s, f, false) {
            Some(Double(v)) => v,
            other => panic!("field {f} is {other:?}"),
        };
        assert!((num(18) - (num(3) - num(12))).abs() < 1e-9);
        assert!((num(33) - (num(1) + num(2)) / 2.0).abs() < 1e-9);
        assert!(num(1) < num(2));
        assert!((num(42) - num(18) / num(12) * 100.0).abs() < 1e-6);
    }
}
