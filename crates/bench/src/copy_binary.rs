//! `equity_data` rows in PostgreSQL's binary `COPY` format: the ingest section's second
//! ceiling (`COPY ... FROM 'file' WITH (FORMAT binary)`) and the binary-COPY sink candidate.
//!
//! Format (PostgreSQL docs, "COPY", binary format): an 11-byte signature, flags and header
//! extension length (both 0); per row the field count (int16) and each field as its length
//! (int32, -1 for NULL) and its binary value (big-endian integers and IEEE doubles,
//! `timestamptz` as microseconds since 2000-01-01 UTC, `text` as UTF-8); a -1 trailer.
//! Values go through the same conversions as the sink's `UNNEST` insert (non-finite numbers
//! and out-of-range times become NULL), so both store identical rows
//! (`tests/bench_copy_format.rs`).
//!
//! Binary input is not converted by the server: data written for one column type and loaded
//! into another may be refused or, worse, read as something else. A sink using this would
//! first have to check the column types (see [`EQUITY_COPY_TYPES`]).
//!
//! Why the sink does not use it (yet): sqlx 0.9 does not set `TCP_NODELAY`, and its
//! `COPY FROM STDIN` sends the `CopyDone` message as a separate small write after the data.
//! Nagle's algorithm holds it until the server acknowledges the data, which the server's
//! delayed ACK postpones by up to 40 ms: a 100-row `COPY` takes about 44 ms. Large batches
//! mostly escape that on loopback, but not reliably, and not measurably here over a WAN.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use market_streamer::db::SinkError;
use market_streamer::rows::{Batch, EquityRow, finite, time_from_ms};

/// The `equity_data` columns the sink inserts and the binary data holds, in order (31).
pub const EQUITY_COPY_COLUMNS: &str = r#"ticker, "timestamp", seq, price, volume, bid, ask, bid_size, ask_size, mark, last_size, high, low, open, close, net_change, net_percent_change, quote_time, trade_time, security_status, sma, ema_fast, ema_slow, rsi, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, vwap"#;

const TEXT: &str = "text";
const TIME: &str = "timestamp with time zone";
const INT4: &str = "integer";
const INT8: &str = "bigint";
const FLOAT8: &str = "double precision";

/// Each column of [`EQUITY_COPY_COLUMNS`] with the type its binary value is written as.
pub const EQUITY_COPY_TYPES: [(&str, &str); 31] = [
    ("ticker", TEXT),
    ("timestamp", TIME),
    ("seq", INT4),
    ("price", FLOAT8),
    ("volume", INT8),
    ("bid", FLOAT8),
    ("ask", FLOAT8),
    ("bid_size", INT8),
    ("ask_size", INT8),
    ("mark", FLOAT8),
    ("last_size", INT8),
    ("high", FLOAT8),
    ("low", FLOAT8),
    ("open", FLOAT8),
    ("close", FLOAT8),
    ("net_change", FLOAT8),
    ("net_percent_change", FLOAT8),
    ("quote_time", TIME),
    ("trade_time", TIME),
    ("security_status", TEXT),
    ("sma", FLOAT8),
    ("ema_fast", FLOAT8),
    ("ema_slow", FLOAT8),
    ("rsi", FLOAT8),
    ("macd", FLOAT8),
    ("macd_signal", FLOAT8),
    ("macd_hist", FLOAT8),
    ("bb_upper", FLOAT8),
    ("bb_middle", FLOAT8),
    ("bb_lower", FLOAT8),
    ("vwap", FLOAT8),
];

/// Binary `COPY` of the batch's quotes into `equity_data` (one statement). No `ON CONFLICT`:
/// fails with `unique_violation` if any row is already stored. Returns the rows copied.
pub async fn copy_equities(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    if batch.equities.is_empty() {
        return Ok(0);
    }
    let data = equity_copy_data(&batch.equities);
    let mut copy = (**tx)
        .copy_in_raw(&format!(
            "COPY equity_data ({EQUITY_COPY_COLUMNS}) FROM STDIN WITH (FORMAT binary)"
        ))
        .await
        .map_err(|e| SinkError::new("start COPY into equity_data", e))?;
    copy.send(data.as_slice())
        .await
        .map_err(|e| SinkError::new("send COPY data for equity_data", e))?;
    copy.finish()
        .await
        .map_err(|e| SinkError::new("COPY into equity_data", e))
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
const FIELDS: i16 = 31;
/// 2000-01-01T00:00:00Z in microseconds since the Unix epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Binary `COPY` data of `rows`, columns as in [`EQUITY_COPY_COLUMNS`].
pub fn equity_copy_data(rows: &[EquityRow]) -> Vec<u8> {
    // Per row: 2 + 31 × 4 length words + at most ~26 × 8 value bytes + the strings.
    let mut out = Vec::with_capacity(19 + 2 + rows.len() * 360);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in rows {
        let q = &r.quote;
        out.extend_from_slice(&FIELDS.to_be_bytes());
        text(&mut out, Some(&r.ticker));
        time(&mut out, Some(r.timestamp));
        field(&mut out, Some(&r.seq.to_be_bytes()));
        float(&mut out, q.last);
        int(&mut out, q.total_volume);
        float(&mut out, q.bid);
        float(&mut out, q.ask);
        int(&mut out, q.bid_size);
        int(&mut out, q.ask_size);
        float(&mut out, q.mark);
        int(&mut out, q.last_size);
        for v in [
            q.high,
            q.low,
            q.open,
            q.close,
            q.net_change,
            q.net_percent_change,
        ] {
            float(&mut out, v);
        }
        time(&mut out, q.quote_time_ms.and_then(time_from_ms));
        time(&mut out, q.trade_time_ms.and_then(time_from_ms));
        text(&mut out, q.security_status.as_deref());
        for v in r.indicators.to_array() {
            float(&mut out, v);
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            // A field is at most a ticker or a status text: far below i32::MAX.
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

fn text(out: &mut Vec<u8>, v: Option<&str>) {
    field(out, v.map(str::as_bytes));
}

fn float(out: &mut Vec<u8>, v: Option<f64>) {
    field(
        out,
        finite(v).map(|x| x.to_be_bytes()).as_ref().map(|b| &b[..]),
    );
}

fn int(out: &mut Vec<u8>, v: Option<i64>) {
    field(out, v.map(|x| x.to_be_bytes()).as_ref().map(|b| &b[..]));
}

fn time(out: &mut Vec<u8>, v: Option<DateTime<Utc>>) {
    let micros = v.map(|t| (t.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    field(out, micros.as_ref().map(|b| &b[..]));
}
