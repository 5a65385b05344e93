//! Rows as PostgreSQL CSV, for the `COPY ... FROM 'file'` ceiling. Generated from the
//! service's column lists (`market_streamer::db::columns`), like its `UNNEST` and binary
//! `COPY` statements, so every path loads identical rows.

use std::fmt::Write as _;

use chrono::SecondsFormat;

use market_streamer::db::columns::{TableSpec, Value};

/// Appends one row as a CSV line (NULL is an empty unquoted field, text is always quoted).
pub fn push_line<R>(out: &mut String, spec: &TableSpec<R>, row: &R) {
    for (i, column) in spec.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (column.get)(row) {
            Value::Text(Some(t)) | Value::Json(Some(t)) => text(out, t),
            Value::Time(Some(t)) => out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Value::Date(Some(d)) => {
                let _ = write!(out, "{d}");
            }
            Value::Int4(Some(n)) => {
                let _ = write!(out, "{n}");
            }
            Value::Int8(Some(n)) => {
                let _ = write!(out, "{n}");
            }
            Value::Float8(Some(x)) => {
                let _ = write!(out, "{x}");
            }
            Value::Bool(Some(b)) => out.push_str(if b { "true" } else { "false" }),
            Value::Bool(None)
            | Value::Text(None)
            | Value::Time(None)
            | Value::Date(None)
            | Value::Int4(None)
            | Value::Int8(None)
            | Value::Float8(None)
            | Value::Json(None) => {}
        }
    }
    out.push('\n');
}

/// The rows as one CSV document.
pub fn to_csv<R: 'static>(spec: &TableSpec<R>, rows: &[R]) -> String {
    let mut out = String::with_capacity(rows.len() * 320);
    rows.iter().for_each(|r| push_line(&mut out, spec, r));
    out
}

fn text(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use market_streamer::db::columns::EQUITY_DATA;
    use market_streamer::indicators::IndicatorValues;
    use market_streamer::rows::{EquityRow, time_from_ms};
    use market_streamer::schwab::wire::EquityFields;

    #[test]
    fn a_row_has_every_column_with_nulls_empty_and_text_quoted() {
        let row = EquityRow {
            ticker: Arc::from("BRK.B"),
            timestamp: time_from_ms(1_765_306_800_123).expect("valid time"),
            seq: 2,
            quote: EquityFields {
                last: Some(101.25),
                bid: Some(f64::NAN),
                total_volume: Some(1_234),
                security_status: Some(Arc::from("say \"hi\"")),
                quote_time_ms: Some(1_765_306_800_000),
                ..EquityFields::default()
            },
            indicators: IndicatorValues {
                vwap: Some(100.5),
                ..IndicatorValues::default()
            },
        };
        let mut line = String::new();
        push_line(&mut line, &EQUITY_DATA, &row);
        assert_eq!(line.matches(',').count(), EQUITY_DATA.columns.len() - 1);
        assert!(
            line.starts_with("\"BRK.B\",2025-12-09T19:00:00.123Z,101.25,1234,,"),
            "{line}"
        );
        assert!(line.contains(",\"say \"\"hi\"\"\","), "{line}");
        assert!(line.ends_with(",100.5\n"), "{line}");
    }
}
