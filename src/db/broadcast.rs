//! The Broadcast payload: one aggregated message per flush with the newest merged quote of
//! every ticker that changed in it. Documented in SCHEMA.md ("Realtime contract").

use serde_json::{Map, Value, json};

use super::columns::{BROADCAST_QUOTE, Value as Cell};
use crate::rows::{EquityRow, finite};

/// The event name of quote messages.
pub const QUOTES_EVENT: &str = "quotes";

/// `{"quotes": [...], "count": n, "sent_at": "..."}` with one object per ticker.
pub fn quotes_payload(latest: &[&EquityRow]) -> Value {
    let quotes: Vec<Value> = latest.iter().map(|r| quote_object(r)).collect();
    json!({
        "count": quotes.len(),
        "sent_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "quotes": quotes,
    })
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
        };
        m.insert(column.name.into(), value);
    }
    Value::Object(m)
}
