//! The Broadcast payload: one aggregated message per flush with the newest merged quote of
//! every ticker that changed in it. Documented in SCHEMA.md ("Realtime contract").

use serde_json::{Map, Value, json};

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

/// One ticker's merged quote, with the same names as the `latest_quotes` columns.
pub fn quote_object(r: &EquityRow) -> Value {
    let q = &r.quote;
    let mut m = Map::new();
    m.insert("ticker".into(), Value::from(&*r.ticker));
    m.insert(
        "timestamp".into(),
        Value::from(
            r.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    );
    let num = |v: Option<f64>| finite(v).map_or(Value::Null, Value::from);
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::from);
    m.insert("price".into(), num(q.last));
    m.insert("volume".into(), int(q.total_volume));
    m.insert("bid".into(), num(q.bid));
    m.insert("ask".into(), num(q.ask));
    m.insert("bid_size".into(), int(q.bid_size));
    m.insert("ask_size".into(), int(q.ask_size));
    m.insert("mark".into(), num(q.mark));
    m.insert("high".into(), num(q.high));
    m.insert("low".into(), num(q.low));
    m.insert("open".into(), num(q.open));
    m.insert("close".into(), num(q.close));
    m.insert("net_change".into(), num(q.net_change));
    m.insert("net_percent_change".into(), num(q.net_percent_change));
    let indicators = crate::indicators::IndicatorValues::COLUMNS
        .iter()
        .zip(r.indicators.to_array());
    for (name, value) in indicators {
        m.insert((*name).into(), num(value));
    }
    Value::Object(m)
}
