//! Minimal JSON text writing for server frames: string escaping and number formatting.
//!
//! Frames are written by hand (not through `serde_json::Value`) because key order matters on
//! the wire (`"seq"` and `"key"` before the numbered CHART_EQUITY fields) and to keep the hot
//! path allocation-light.

use std::fmt::Write;

/// Appends `s` as a JSON string literal, escaping quotes, backslashes and control characters.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":` (the key must not need escaping: field numbers and fixed names).
pub(crate) fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Appends `"<n>":` for a numbered field.
pub(crate) fn push_field_key(out: &mut String, field: u32) {
    let _ = write!(out, "\"{field}\":");
}

/// Appends an integer.
pub(crate) fn push_i64(out: &mut String, v: i64) {
    let _ = write!(out, "{v}");
}

/// Appends an integer the way the feed sometimes sends counts: as a float with `.0`.
pub(crate) fn push_i64_as_float(out: &mut String, v: i64) {
    let _ = write!(out, "{v}.0");
}

/// Largest magnitude printed as a plain integer when a double holds a whole value.
const MAX_PLAIN_WHOLE: f64 = 1.0e15;

/// Appends a double like the Schwab feed does: whole values without a fraction (`0`, `100`),
/// others in shortest round-trip form (`233.31`, `2.799e-5`). Never NaN or infinity: a
/// non-finite value (a bug upstream) is written as `0`.
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if !v.is_finite() {
        debug_assert!(false, "non-finite value reached the JSON writer");
        out.push('0');
    } else if v == v.trunc() && v.abs() < MAX_PLAIN_WHOLE {
        push_i64(out, v as i64);
    } else {
        let _ = write!(out, "{v:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut s = String::new();
        push_f64(&mut s, v);
        s
    }

    #[test]
    fn doubles_print_as_json_numbers() {
        assert_eq!(f(233.31), "233.31");
        assert_eq!(f(233.3), "233.3");
        assert_eq!(f(100.0), "100");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(-1.03), "-1.03");
        assert_eq!(f(2.799e-5), "2.799e-5");
        for text in [f(2.799e-5), f(1.0e20), f(0.1 + 0.2)] {
            let parsed: f64 = serde_json::from_str(&text).unwrap_or(f64::NAN);
            assert!(parsed.is_finite(), "{text} is not a JSON number");
        }
    }

    #[test]
    fn counts_can_keep_a_point() {
        let mut s = String::new();
        push_i64_as_float(&mut s, 18_235_000);
        assert_eq!(s, "18235000.0");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let back: String = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
