//! The Broadcast payload: one aggregated message per `REALTIME_INTERVAL` with the newest
//! merged quote of every ticker that changed since the last one, split into several messages
//! when it would pass the plan's payload limit. Documented in SCHEMA.md ("Realtime contract").

use serde_json::{Map, Value, json};

use super::columns::{BROADCAST_QUOTE, Value as Cell};
use crate::rows::{EquityRow, finite};

/// The event name of quote messages.
pub const QUOTES_EVENT: &str = "quotes";

/// Bytes a message needs besides its quote objects (`count`, `sent_at`, `part`, `parts`, the
/// brackets), rounded up generously.
const ENVELOPE_BYTES: usize = 160;

/// An upper estimate of one quote object's size in bytes: every field and indicator set, a
/// ticker of 12 characters (a test keeps it an over-estimate). For the message budget.
pub const QUOTE_BYTES_ESTIMATE: usize = 700;

/// The messages of one tick: `{"count": n, "sent_at": "...", "part": i, "parts": k,
/// "quotes": [...]}` with one object per ticker, in the order given, split so that each
/// message's JSON stays within `max_bytes` (a single quote larger than that, which no real
/// quote is, goes alone). Empty when `latest` is empty.
pub fn quotes_payloads(latest: &[&EquityRow], max_bytes: usize) -> Vec<Value> {
    let sent_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut parts: Vec<Vec<Value>> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = ENVELOPE_BYTES;
    for row in latest {
        let quote = quote_object(row);
        // `Value`'s Display is its compact JSON: its length is the bytes it adds (plus a comma).
        let bytes = quote.to_string().len() + 1;
        if !current.is_empty() && size + bytes > max_bytes {
            parts.push(std::mem::take(&mut current));
            size = ENVELOPE_BYTES;
        }
        size += bytes;
        current.push(quote);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, quotes)| {
            json!({
                "count": quotes.len(),
                "sent_at": sent_at,
                "part": i + 1,
                "parts": total,
                "quotes": quotes,
            })
        })
        .collect()
}

/// How many messages a tick with `symbols` changed tickers takes at most under `max_bytes`
/// (by [`QUOTE_BYTES_ESTIMATE`]); 0 for no symbol.
pub fn estimated_parts(symbols: usize, max_bytes: usize) -> usize {
    if symbols == 0 {
        return 0;
    }
    let per_part = (max_bytes.saturating_sub(ENVELOPE_BYTES) / (QUOTE_BYTES_ESTIMATE + 1)).max(1);
    symbols.div_ceil(per_part)
}

/// One ticker's merged quote, with the same names as the `latest_quotes` columns (the list
/// is [`BROADCAST_QUOTE`]: the `latest_quotes` columns but `security_status`).
pub fn quote_object(r: &EquityRow) -> Value {
    let mut m = Map::new();
    for column in BROADCAST_QUOTE.iter() {
        let value = match (column.get)(r) {
            Cell::Text(t) => t.map_or(Value::Null, Value::from),
            Cell::Time(t) => t.map_or(Value::Null, |t| {
                Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }),
            Cell::Date(d) => d.map_or(Value::Null, |d| Value::from(d.to_string())),
            Cell::Int4(n) => n.map_or(Value::Null, Value::from),
            Cell::Int8(n) => n.map_or(Value::Null, Value::from),
            Cell::Float8(x) => finite(x).map_or(Value::Null, Value::from),
            Cell::Bool(b) => b.map_or(Value::Null, Value::from),
            Cell::Json(j) => j
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(Value::Null),
        };
        m.insert(column.name.into(), value);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::IndicatorValues;
    use crate::schwab::wire::EquityFields;
    use std::sync::Arc;

    /// A quote with every field and indicator set to a long value.
    fn full(ticker: &str, n: usize) -> EquityRow {
        let x = 123_456.789_012_345 + n as f64;
        let i = 9_876_543_210_i64;
        let quote = EquityFields {
            bid: Some(x),
            ask: Some(x),
            last: Some(x),
            bid_size: Some(i),
            ask_size: Some(i),
            total_volume: Some(i),
            last_size: Some(i),
            high: Some(x),
            low: Some(x),
            close: Some(x),
            open: Some(x),
            net_change: Some(-x),
            security_status: Some(Arc::from("Normal")),
            mark: Some(x),
            quote_time_ms: Some(1_767_366_000_123),
            trade_time_ms: Some(1_767_366_000_123),
            net_percent_change: Some(-x),
        };
        let indicators = IndicatorValues {
            sma: Some(x),
            ema_fast: Some(x),
            ema_slow: Some(x),
            rsi: Some(x),
            macd: Some(-x),
            macd_signal: Some(-x),
            macd_hist: Some(-x),
            bb_upper: Some(x),
            bb_middle: Some(x),
            bb_lower: Some(x),
            vwap: Some(x),
        };
        EquityRow {
            ticker: Arc::from(ticker),
            timestamp: chrono::DateTime::from_timestamp_millis(1_767_366_000_123)
                .expect("a valid time"),
            seq: 0,
            quote,
            indicators,
        }
    }

    #[test]
    fn the_quote_size_estimate_is_an_over_estimate() {
        let row = full("ABCDEFGHIJKL", 0);
        let bytes = quote_object(&row).to_string().len();
        assert!(bytes < QUOTE_BYTES_ESTIMATE, "{bytes} bytes");
        assert!(
            bytes * 10 > QUOTE_BYTES_ESTIMATE * 7,
            "not wildly over: {bytes}"
        );
    }

    #[test]
    fn a_tick_over_the_limit_is_split_in_order_and_every_part_fits() {
        let rows: Vec<EquityRow> = (0..50).map(|n| full(&format!("T{n}"), n)).collect();
        let refs: Vec<&EquityRow> = rows.iter().collect();
        let one = quotes_payloads(&refs, 256_000);
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0]["part"].as_u64(), one[0]["parts"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(one[0]["count"], 50);

        let limit = 5_000;
        let parts = quotes_payloads(&refs, limit);
        assert!(parts.len() > 1);
        assert!(
            parts.len() <= estimated_parts(50, limit),
            "the estimate is an upper bound"
        );
        let mut seen = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.to_string().len() <= limit,
                "part {i}: {}",
                p.to_string().len()
            );
            assert_eq!(p["part"].as_u64(), Some(i as u64 + 1));
            assert_eq!(p["parts"].as_u64(), Some(parts.len() as u64));
            assert_eq!(p["sent_at"], parts[0]["sent_at"], "one tick, one time");
            let quotes = p["quotes"].as_array().expect("quotes");
            assert_eq!(p["count"].as_u64(), Some(quotes.len() as u64));
            seen.extend(
                quotes
                    .iter()
                    .map(|q| q["ticker"].as_str().unwrap_or("").to_owned()),
            );
        }
        let expected: Vec<String> = (0..50).map(|n| format!("T{n}")).collect();
        assert_eq!(seen, expected, "every ticker once, in order");
        assert!(quotes_payloads(&[], limit).is_empty());
        assert_eq!(estimated_parts(0, limit), 0);
        assert_eq!(estimated_parts(5, 256_000), 1);
        assert_eq!(estimated_parts(1000, 256_000), 3);
    }
}
