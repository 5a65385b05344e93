//! `equity_data` rows as PostgreSQL CSV, for the `COPY` ceiling and the COPY-into-staging
//! strategy. Values go through the same conversions as the sink's `UNNEST` insert
//! (non-finite numbers and out-of-range times become NULL), so both load identical rows.

use std::fmt::Write as _;

use chrono::SecondsFormat;

use market_streamer::rows::{EquityRow, finite, time_from_ms};

/// The `equity_data` columns the sink inserts, in its order.
pub use super::copy_binary::EQUITY_COPY_COLUMNS as EQUITY_COLUMNS;

/// Appends one row as a CSV line (NULL is an empty unquoted field).
pub fn push_equity_line(out: &mut String, r: &EquityRow) {
    let q = &r.quote;
    text(out, &r.ticker);
    out.push(',');
    out.push_str(&r.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true));
    let _ = write!(out, ",{}", r.seq);
    float(out, q.last);
    int(out, q.total_volume);
    float(out, q.bid);
    float(out, q.ask);
    int(out, q.bid_size);
    int(out, q.ask_size);
    float(out, q.mark);
    int(out, q.last_size);
    for v in [
        q.high,
        q.low,
        q.open,
        q.close,
        q.net_change,
        q.net_percent_change,
    ] {
        float(out, v);
    }
    for ms in [q.quote_time_ms, q.trade_time_ms] {
        out.push(',');
        if let Some(t) = ms.and_then(time_from_ms) {
            out.push_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
    }
    out.push(',');
    if let Some(s) = &q.security_status {
        text(out, s);
    }
    for v in r.indicators.to_array() {
        float(out, v);
    }
    out.push('\n');
}

/// The rows as one CSV document.
pub fn equity_csv(rows: &[EquityRow]) -> String {
    let mut out = String::with_capacity(rows.len() * 320);
    rows.iter().for_each(|r| push_equity_line(&mut out, r));
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

fn float(out: &mut String, v: Option<f64>) {
    out.push(',');
    if let Some(x) = finite(v) {
        let _ = write!(out, "{x}");
    }
}

fn int(out: &mut String, v: Option<i64>) {
    out.push(',');
    if let Some(x) = v {
        let _ = write!(out, "{x}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use market_streamer::indicators::IndicatorValues;
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
        push_equity_line(&mut line, &row);
        let columns = EQUITY_COLUMNS.split(',').count();
        assert_eq!(line.matches(',').count(), columns - 1);
        assert_eq!(
            line,
            "\"BRK.B\",2025-12-09T19:00:00.123Z,2,101.25,1234,,,,,,,,,,,,,2025-12-09T19:00:00.000Z,,\"say \"\"hi\"\"\",,,,,,,,,,,100.5\n"
        );
    }
}
