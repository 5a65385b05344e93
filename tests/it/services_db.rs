//! Issue 15, the database side: frames of every new service (tests/fixtures/services.jsonl,
//! in the shapes of `schwab-services.md`) replayed into SQLite and PostgreSQL with the
//! expected merged values, the Supabase grants of the new tables, and retention and the size
//! guard over the new tick tables.
//!
//! The value checks are written once ([`check_replayed`]) against a [`Db`] that reads rows of
//! either engine as normalized JSON (numbers as floats, times as RFC 3339 UTC with
//! milliseconds, JSON columns parsed), so both engines are held to the same expectations.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use market_streamer::app;
use market_streamer::counters::PipelineStats;
use market_streamer::db::{CANDLE_TABLES, Database, Sink, TICK_TABLES};
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::Batch;
use serde_json::{Value, json};
use testkit::supabase;
use testkit::{TestPostgres, config_for, start_postgres};

use crate::fixture;

const FIXTURE: &str = "services.jsonl";

/// The new tables holding one row per update or snapshot (daily partitions on PostgreSQL).
const NEW_TICK_TABLES: [&str; 5] = [
    "futures_data",
    "futures_option_data",
    "forex_data",
    "book_snapshots",
    "screener_snapshots",
];

/// The new market tables `anon` may read.
const NEW_MARKET_TABLES: [&str; 6] = [
    "futures_data",
    "futures_option_data",
    "forex_data",
    "futures_bars",
    "book_snapshots",
    "screener_snapshots",
];

/// Settings of every replay here: three levels per book side are stored (the fixture's
/// first NASDAQ book has four bid levels), small batches so the rows span several of them.
const REPLAY_VARS: [(&str, &str); 3] = [
    ("BOOK_DEPTH", "3"),
    ("BATCH_SIZE", "4"),
    ("BATCH_INTERVAL", "0.05"),
];

// ---------------------------------------------------------------------------------------
// Reading rows of either engine as normalized JSON.

/// A database to check, read through the engine's own client.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(tokio_postgres::Client),
}

impl Db {
    fn engine(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }

    /// The rows of `sql` (valid on both engines) as normalized JSON objects, in order.
    async fn rows(&self, sql: &str) -> Vec<Value> {
        match self {
            Self::Postgres(client) => client
                .query(&format!("SELECT to_jsonb(q) FROM ({sql}) q"), &[])
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}"))
                .iter()
                .map(|row| norm(row.get::<_, Value>(0)))
                .collect(),
            Self::Sqlite(pool) => {
                use sqlx::{Column, Row, TypeInfo, ValueRef};
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(pool)
                    .await
                    .unwrap_or_else(|e| panic!("SQLite: {sql}: {e}"));
                rows.iter()
                    .map(|row| {
                        let mut object = serde_json::Map::new();
                        for (i, column) in row.columns().iter().enumerate() {
                            let raw = row.try_get_raw(i).expect("a column value");
                            let value = if raw.is_null() {
                                Value::Null
                            } else {
                                match raw.type_info().name() {
                                    "INTEGER" => json!(row.get::<i64, _>(i)),
                                    "REAL" => json!(row.get::<f64, _>(i)),
                                    "TEXT" => Value::String(row.get::<String, _>(i)),
                                    other => panic!("{sql}: column {} is {other}", column.name()),
                                }
                            };
                            object.insert(column.name().to_string(), value);
                        }
                        norm(Value::Object(object))
                    })
                    .collect()
            }
        }
    }

    /// Asserts that `sql` returns exactly `expected` (normalized like the rows).
    async fn assert_rows(&self, sql: &str, expected: Value) {
        let got = self.rows(sql).await;
        let Value::Array(expected) = norm(expected) else {
            panic!("expected rows are an array")
        };
        for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "{}: row {i} of {sql}", self.engine());
        }
        assert_eq!(
            got.len(),
            expected.len(),
            "{}: rows of {sql}: {got:#?}",
            self.engine()
        );
    }
}

/// Every number as a float, every RFC 3339 time as UTC with milliseconds (`…T18:52:02.349Z`),
/// every string holding a JSON object or array parsed (SQLite keeps JSON as text).
fn norm(v: Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::String(s) => {
            if s.starts_with(['{', '['])
                && let Ok(parsed) = serde_json::from_str::<Value>(&s)
            {
                return norm(parsed);
            }
            match DateTime::parse_from_rfc3339(&s) {
                Ok(t) => Value::String(
                    t.with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                ),
                Err(_) => Value::String(s),
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(norm).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, norm(v))).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// What the fixture holds and what must be stored.

/// The replay's counts: 26 lines (3 response, 2 notify, 21 data frames); 23 items: 3
/// LEVELONE_FUTURES, 2 LEVELONE_FUTURES_OPTIONS, 2 LEVELONE_FOREX, 3 CHART_FUTURES, 3
/// NASDAQ_BOOK, 2 NYSE_BOOK, 1 OPTIONS_BOOK, 3 screeners, 4 ACCT_ACTIVITY (one a repeat).
fn check_summary(s: &app::ReplaySummary) {
    assert_eq!(s.counts.lines, 26);
    assert_eq!(
        (s.counts.blank_lines, s.counts.malformed_lines),
        (0, 0),
        "every line is a frame"
    );
    assert_eq!(
        (s.skipped_items, s.items_refused),
        (0, 0),
        "every item of every new service is usable"
    );
    assert_eq!(s.updates, 23);
    let rows = |table: &str| {
        s.rows_by_table
            .iter()
            .find(|(name, _)| *name == table)
            .map(|(_, n)| *n)
    };
    assert_eq!(
        [
            "futures_data",
            "futures_option_data",
            "forex_data",
            "futures_bars",
            "book_snapshots",
            "screener_snapshots",
            "account_activity",
        ]
        .map(rows),
        [3, 2, 2, 3, 5, 3, 4].map(Some),
        "rows sent per table (books: the NASDAQ snapshot 2 s after the first is superseded; \
         the NYSE one 1 s after is stored when its slot comes)"
    );
    assert_eq!(
        (s.equity_rows, s.option_rows, s.bar_rows),
        (0, 0, 0),
        "nothing lands in the equity tables"
    );
    assert_eq!(s.writer.rows_written, 22);
    assert_eq!(s.writer.rows_dropped, 0);
}

/// The makers of one book level as stored: `[id, size, quote time]`.
fn makers(list: &[(&str, i64, &str)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(id, size, t)| json!({"id": id, "size": size, "quote_time": t}))
            .collect(),
    )
}

/// One stored book level.
fn level(price: f64, size: i64, list: &[(&str, i64, &str)]) -> Value {
    json!({"price": price, "size": size, "maker_count": list.len(), "makers": makers(list)})
}

/// One screener entry with Schwab's field names.
#[allow(clippy::too_many_arguments)]
fn entry(
    symbol: &str,
    description: &str,
    last_price: f64,
    net_change: f64,
    net_percent_change: f64,
    market_share: f64,
    total_volume: i64,
    volume: i64,
    trades: i64,
) -> Value {
    json!({
        "symbol": symbol, "description": description, "lastPrice": last_price,
        "netChange": net_change, "netPercentChange": net_percent_change,
        "marketShare": market_share, "totalVolume": total_volume, "volume": volume,
        "trades": trades,
    })
}

/// Every expectation on the replayed fixture, on either engine.
async fn check_replayed(db: &Db) {
    // LEVELONE_FUTURES: a full snapshot, then two deltas; a missing field is unchanged.
    db.assert_rows(
        r#"SELECT "timestamp", seq, price, volume, bid, ask, ask_size, mark, last_size,
                  quote_time, trade_time, active_symbol
           FROM futures_data WHERE symbol = '/ES' ORDER BY "timestamp", seq"#,
        json!([
            {"timestamp": "2025-12-09T18:52:00.100Z", "seq": 0, "price": 6858.5, "volume": 1183562,
             "bid": 6858.25, "ask": 6858.5, "ask_size": 22, "mark": 6858.5, "last_size": 2,
             "quote_time": "2025-12-09T18:52:00.050Z", "trade_time": "2025-12-09T18:52:00.010Z",
             "active_symbol": "/ESZ26"},
            {"timestamp": "2025-12-09T18:52:01.100Z", "seq": 0, "price": 6858.75, "volume": 1183570,
             "bid": 6858.25, "ask": 6858.5, "ask_size": 22, "mark": 6858.5, "last_size": 8,
             "quote_time": "2025-12-09T18:52:00.050Z", "trade_time": "2025-12-09T18:52:01.050Z",
             "active_symbol": "/ESZ26"},
            {"timestamp": "2025-12-09T18:52:02.600Z", "seq": 0, "price": 6858.75, "volume": 1183570,
             "bid": 6858.25, "ask": 6859.0, "ask_size": 5, "mark": 6858.75, "last_size": 8,
             "quote_time": "2025-12-09T18:52:02.580Z", "trade_time": "2025-12-09T18:52:01.050Z",
             "active_symbol": "/ESZ26"},
        ]),
    )
    .await;
    // The last row carries every field of the first snapshot the deltas did not change.
    db.assert_rows(
        r#"SELECT bid_size, high, low, open, close, net_change, net_percent_change, open_interest,
                  settlement_price, multiplier, expiration, security_status
           FROM futures_data WHERE symbol = '/ES' ORDER BY "timestamp" DESC LIMIT 1"#,
        json!([{"bid_size": 18, "high": 6878.75, "low": 6840.25, "open": 6850.0, "close": 6846.5,
                "net_change": 12.0, "net_percent_change": 0.1753, "open_interest": 2030445,
                "settlement_price": 6846.5, "multiplier": 50.0,
                "expiration": "2026-12-18T14:30:00.000Z", "security_status": "Normal"}]),
    )
    .await;

    // Futures rows carry indicators like equity rows: the session VWAP of the open 18:52 bar
    // (8 contracts traded between the first two updates; typical price (H + L + C) / 3).
    let vwap: Vec<Option<f64>> = db
        .rows(r#"SELECT vwap FROM futures_data WHERE symbol = '/ES' ORDER BY "timestamp""#)
        .await
        .iter()
        .map(|r| r["vwap"].as_f64())
        .collect();
    let typical = (6858.75 + 6858.5 + 6858.75) / 3.0;
    assert!(
        matches!(vwap.as_slice(), [None, Some(a), Some(b)]
            if (a - typical).abs() < 1e-9 && (b - typical).abs() < 1e-9),
        "{}: futures VWAP {vwap:?}, expected [None, {typical}, {typical}]",
        db.engine()
    );

    // LEVELONE_FUTURES_OPTIONS: the contract from the key, the quote merged.
    db.assert_rows(
        r#"SELECT symbol, root, contract_month, strike, contract_type, "timestamp", seq, underlying,
                  bid, ask, price, mark, volume, open_interest, bid_size, ask_size, last_size,
                  high, low, open, close, settlement_price, multiplier, expiration, quote_time,
                  trade_time, security_status
           FROM futures_option_data ORDER BY "timestamp""#,
        json!([
            {"symbol": "./OZCZ27C565", "root": "/OZC", "contract_month": "2027-12-01",
             "strike": 565.0, "contract_type": "C", "timestamp": "2025-12-09T18:52:00.200Z",
             "seq": 0, "underlying": "/ZCZ27", "bid": 12.375, "ask": 12.875, "price": 12.5,
             "mark": 12.625, "volume": 42, "open_interest": 1187, "bid_size": 15, "ask_size": 12,
             "last_size": 1, "high": 12.75, "low": 12.25, "open": 12.25, "close": 12.125,
             "settlement_price": 12.125, "multiplier": 50.0,
             "expiration": "2027-11-26T18:15:00.000Z", "quote_time": "2025-12-09T18:52:00.150Z",
             "trade_time": "2025-12-09T18:51:40.000Z", "security_status": "Normal"},
            {"symbol": "./OZCZ27C565", "root": "/OZC", "contract_month": "2027-12-01",
             "strike": 565.0, "contract_type": "C", "timestamp": "2025-12-09T18:52:03.200Z",
             "seq": 0, "underlying": "/ZCZ27", "bid": 12.375, "ask": 12.875, "price": 12.625,
             "mark": 12.75, "volume": 45, "open_interest": 1187, "bid_size": 15, "ask_size": 12,
             "last_size": 1, "high": 12.75, "low": 12.25, "open": 12.25, "close": 12.125,
             "settlement_price": 12.125, "multiplier": 50.0,
             "expiration": "2027-11-26T18:15:00.000Z", "quote_time": "2025-12-09T18:52:00.150Z",
             "trade_time": "2025-12-09T18:51:40.000Z", "security_status": "Normal"},
        ]),
    )
    .await;

    // LEVELONE_FOREX: volume is field 6, last size 7, quote/trade time 8/9, open 15, mark 29
    // (the 52-week high/low in 27/28 must not end up anywhere).
    db.assert_rows(
        r#"SELECT symbol, "timestamp", seq, price, volume, bid, ask, bid_size, ask_size, mark,
                  last_size, high, low, open, close, net_change, net_percent_change, quote_time,
                  trade_time, security_status
           FROM forex_data ORDER BY "timestamp""#,
        json!([
            {"symbol": "EUR/USD", "timestamp": "2025-12-09T18:52:00.300Z", "seq": 0,
             "price": 1.1643, "volume": 187654, "bid": 1.16412, "ask": 1.16428,
             "bid_size": 1000000, "ask_size": 2000000, "mark": 1.1642, "last_size": 10000,
             "high": 1.16701, "low": 1.16198, "open": 1.16362, "close": 1.16355,
             "net_change": 0.00065, "net_percent_change": 0.0559,
             "quote_time": "2025-12-09T18:52:00.280Z", "trade_time": "2025-12-09T18:52:00.270Z",
             "security_status": "Active"},
            {"symbol": "EUR/USD", "timestamp": "2025-12-09T18:52:04.500Z", "seq": 0,
             "price": 1.1643, "volume": 187702, "bid": 1.16418, "ask": 1.16428,
             "bid_size": 1000000, "ask_size": 2000000, "mark": 1.16425, "last_size": 10000,
             "high": 1.16701, "low": 1.16198, "open": 1.16362, "close": 1.16355,
             "net_change": 0.00065, "net_percent_change": 0.0559,
             "quote_time": "2025-12-09T18:52:04.490Z", "trade_time": "2025-12-09T18:52:00.270Z",
             "security_status": "Active"},
        ]),
    )
    .await;

    // CHART_FUTURES: upserted by symbol and bar start; the later copy of 18:52 wins.
    db.assert_rows(
        "SELECT symbol, bar_start, open, high, low, close, volume, sequence
         FROM futures_bars ORDER BY symbol, bar_start",
        json!([
            {"symbol": "/ES", "bar_start": "2025-12-09T18:51:00.000Z", "open": 6857.0,
             "high": 6858.5, "low": 6856.75, "close": 6858.25, "volume": 1204, "sequence": 2223},
            {"symbol": "/ES", "bar_start": "2025-12-09T18:52:00.000Z", "open": 6858.25,
             "high": 6859.25, "low": 6857.75, "close": 6859.0, "volume": 1342, "sequence": 2225},
        ]),
    )
    .await;

    // Books: best levels as columns, the top BOOK_DEPTH (3) levels as JSON with their market
    // makers, whose quote times (ms since New York midnight) are stored as UTC instants
    // (13:52 EST = 18:52Z). AAPL's snapshot 2 s after the first is never stored (the one 5.05
    // s after the first supersedes it); F's snapshot 1 s after the first is stored once its
    // slot has come, with its own time.
    db.assert_rows(
        r#"SELECT book, symbol, "timestamp", bid, bid_size, ask, ask_size, bid_levels, ask_levels,
                  bids, asks
           FROM book_snapshots ORDER BY book, symbol, "timestamp""#,
        json!([
            {"book": "NASDAQ_BOOK", "symbol": "AAPL", "timestamp": "2025-12-09T18:52:02.349Z",
             "bid": 277.91, "bid_size": 400, "ask": 277.93, "ask_size": 500,
             "bid_levels": 4, "ask_levels": 3,
             "bids": [
                level(277.91, 400, &[("NSDQ", 300, "2025-12-09T18:52:02.100Z"),
                                     ("MEMX", 100, "2025-12-09T18:52:01.950Z")]),
                level(277.9, 1200, &[("ARCX", 500, "2025-12-09T18:52:00.000Z"),
                                     ("EDGX", 400, "2025-12-09T18:51:59.000Z"),
                                     ("NSDQ", 300, "2025-12-09T18:51:58.500Z")]),
                level(277.89, 200, &[("BATX", 200, "2025-12-09T18:51:50.000Z")]),
             ],
             "asks": [
                level(277.93, 500, &[("NSDQ", 300, "2025-12-09T18:52:02.200Z"),
                                     ("ARCX", 200, "2025-12-09T18:52:02.000Z")]),
                level(277.95, 300, &[("EDGX", 300, "2025-12-09T18:51:55.000Z")]),
                level(277.97, 1000, &[("MEMX", 1000, "2025-12-09T18:51:20.000Z")]),
             ]},
            {"book": "NASDAQ_BOOK", "symbol": "AAPL", "timestamp": "2025-12-09T18:52:07.400Z",
             "bid": 277.94, "bid_size": 300, "ask": 277.96, "ask_size": 700,
             "bid_levels": 2, "ask_levels": 2,
             "bids": [
                level(277.94, 300, &[("NSDQ", 300, "2025-12-09T18:52:07.350Z")]),
                level(277.93, 800, &[("MEMX", 800, "2025-12-09T18:52:07.000Z")]),
             ],
             "asks": [
                level(277.96, 700, &[("ARCX", 700, "2025-12-09T18:52:07.300Z")]),
                level(277.98, 100, &[("EDGX", 100, "2025-12-09T18:52:06.000Z")]),
             ]},
            {"book": "NYSE_BOOK", "symbol": "F", "timestamp": "2025-12-09T18:52:02.500Z",
             "bid": 13.12, "bid_size": 31600, "ask": 13.13, "ask_size": 12000,
             "bid_levels": 2, "ask_levels": 2,
             "bids": [
                level(13.12, 31600, &[("NYSE", 8800, "2025-12-09T18:49:46.299Z"),
                                      ("ARCX", 22800, "2025-12-09T18:52:01.000Z")]),
                level(13.11, 45000, &[("NYSE", 45000, "2025-12-09T18:48:20.000Z")]),
             ],
             "asks": [
                level(13.13, 12000, &[("ARCX", 5000, "2025-12-09T18:49:50.001Z"),
                                      ("NYSE", 7000, "2025-12-09T18:52:02.400Z")]),
                level(13.14, 60000, &[("NYSE", 60000, "2025-12-09T18:46:40.000Z")]),
             ]},
            {"book": "NYSE_BOOK", "symbol": "F", "timestamp": "2025-12-09T18:52:03.500Z",
             "bid": 13.13, "bid_size": 9000, "ask": 13.14, "ask_size": 15000,
             "bid_levels": 1, "ask_levels": 1,
             "bids": [level(13.13, 9000, &[("NYSE", 9000, "2025-12-09T18:52:03.400Z")])],
             "asks": [level(13.14, 15000, &[("ARCX", 15000, "2025-12-09T18:52:03.300Z")])]},
            {"book": "OPTIONS_BOOK", "symbol": "AAPL  251219C00280000",
             "timestamp": "2025-12-09T18:52:02.650Z",
             "bid": 6.35, "bid_size": 40, "ask": 6.45, "ask_size": 55,
             "bid_levels": 1, "ask_levels": 1,
             "bids": [level(6.35, 40, &[("CBOE", 25, "2025-12-09T18:52:02.500Z"),
                                         ("PHLX", 15, "2025-12-09T18:52:02.400Z")])],
             "asks": [level(6.45, 55, &[("ISE", 55, "2025-12-09T18:52:02.600Z")])]},
        ]),
    )
    .await;

    // Screeners: one row per snapshot, the entries with Schwab's named fields.
    db.assert_rows(
        r#"SELECT service, screener_key, "timestamp", sort_field, frequency, item_count, items
           FROM screener_snapshots ORDER BY screener_key, "timestamp""#,
        json!([
            {"service": "SCREENER_EQUITY", "screener_key": "NASDAQ_VOLUME_30",
             "timestamp": "2025-12-09T18:52:05.000Z", "sort_field": "VOLUME", "frequency": 30,
             "item_count": 3, "items": [
                entry("NVDA", "NVIDIA CORP", 184.97, -0.58, -0.0031, 4.12, 98765432, 3456789, 41234),
                entry("TSLA", "TESLA INC", 445.17, 5.59, 0.0127, 2.87, 61234567, 2409876, 38120),
                entry("AAPL", "APPLE INC", 277.92, -0.86, -0.0031, 1.93, 31234567, 1620044, 21877),
             ]},
            {"service": "SCREENER_EQUITY", "screener_key": "NASDAQ_VOLUME_30",
             "timestamp": "2025-12-09T18:52:10.000Z", "sort_field": "VOLUME", "frequency": 30,
             "item_count": 1, "items": [
                entry("NVDA", "NVIDIA CORP", 184.99, -0.56, -0.003, 4.13, 98801234, 3460001, 41290),
             ]},
            {"service": "SCREENER_OPTION", "screener_key": "OPTION_CALL_VOLUME_5",
             "timestamp": "2025-12-09T18:52:05.100Z", "sort_field": "VOLUME", "frequency": 5,
             "item_count": 2, "items": [
                entry("NVDA  251212C00185000", "NVDA 12/12/2025 185.00 C", 2.41, -0.37, -0.1331,
                      6.5, 212345, 18765, 4211),
                entry("TSLA  251212C00450000", "TSLA 12/12/2025 450.00 C", 9.85, 1.6, 0.1939,
                      4.1, 134002, 11820, 3102),
             ]},
        ]),
    )
    .await;

    // Account activity: JSON messages as JSON, the nightly text frame as text; the order
    // message repeated after the reconnect is stored once (the first copy's time).
    db.assert_rows(
        r#"SELECT account, seq, subscription_key, message_type, received_at, message_text,
                  CASE WHEN message_json IS NULL THEN 'text' ELSE 'json' END AS stored_as
           FROM account_activity ORDER BY seq"#,
        json!([
            {"account": "87654321", "seq": 1, "subscription_key": "Account Activity",
             "message_type": "OrderCreated", "received_at": "2025-12-09T18:52:05.500Z",
             "message_text": null, "stored_as": "json"},
            {"account": "87654321", "seq": 2, "subscription_key": "Account Activity",
             "message_type": "OrderAccepted", "received_at": "2025-12-09T18:52:05.500Z",
             "message_text": null, "stored_as": "json"},
            {"account": "87654321", "seq": 11, "subscription_key": "Account Activity",
             "message_type": "", "received_at": "2025-12-10T01:00:00.000Z",
             "message_text": "Feature not supported", "stored_as": "text"},
        ]),
    )
    .await;
    let created = db
        .rows("SELECT message_json FROM account_activity WHERE seq = 1")
        .await;
    let order = &created.first().expect("the OrderCreated row")["message_json"];
    assert_eq!(order["SchwabOrderID"], json!("1004876543210"), "{order}");
    assert_eq!(
        order["BaseEvent"]["OrderCreatedEventEquityOrder"]["Order"]["LimitPrice"],
        norm(json!({"lo": "220470000", "signScale": 12})),
        "money stays Schwab's fixed-point object ({})",
        db.engine()
    );
    let accepted = db
        .rows("SELECT message_json FROM account_activity WHERE seq = 2")
        .await;
    assert_eq!(
        accepted.first().expect("the OrderAccepted row")["message_json"]["BaseEvent"]["EventType"],
        json!("OrderAcceptedEvent")
    );

    // Futures and forex reach the front end like equities: the newest merged quote of each.
    db.assert_rows(
        r#"SELECT ticker, "timestamp", price, volume, bid, ask, bid_size, ask_size, mark, high,
                  low, open, close, net_change, net_percent_change, security_status
           FROM latest_quotes ORDER BY ticker"#,
        json!([
            {"ticker": "/ES", "timestamp": "2025-12-09T18:52:02.600Z", "price": 6858.75,
             "volume": 1183570, "bid": 6858.25, "ask": 6859.0, "bid_size": 18, "ask_size": 5,
             "mark": 6858.75, "high": 6878.75, "low": 6840.25, "open": 6850.0, "close": 6846.5,
             "net_change": 12.0, "net_percent_change": 0.1753, "security_status": "Normal"},
            {"ticker": "EUR/USD", "timestamp": "2025-12-09T18:52:04.500Z", "price": 1.1643,
             "volume": 187702, "bid": 1.16418, "ask": 1.16428, "bid_size": 1000000,
             "ask_size": 2000000, "mark": 1.16425, "high": 1.16701, "low": 1.16198,
             "open": 1.16362, "close": 1.16355, "net_change": 0.00065,
             "net_percent_change": 0.0559, "security_status": "Active"},
        ]),
    )
    .await;
}

/// Row counts of every new table, for the idempotence check.
async fn counts(db: &Db) -> Vec<Value> {
    db.rows(
        "SELECT (SELECT count(*) FROM futures_data) AS futures,
                (SELECT count(*) FROM futures_option_data) AS futures_options,
                (SELECT count(*) FROM forex_data) AS forex,
                (SELECT count(*) FROM futures_bars) AS bars,
                (SELECT count(*) FROM book_snapshots) AS books,
                (SELECT count(*) FROM screener_snapshots) AS screeners,
                (SELECT count(*) FROM account_activity) AS activity",
    )
    .await
}

/// The fixture replayed into SQLite: every expected value, and a second replay of the same
/// file adds nothing (natural keys of every new table).
#[tokio::test]
async fn services_db_replay_into_sqlite_stores_every_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("services.db").display());
    let cfg = config_for(&url, &REPLAY_VARS);
    let summary = app::replay(&cfg, &fixture(FIXTURE))
        .await
        .expect("replay into SQLite");
    check_summary(&summary);

    let pool = sqlx::SqlitePool::connect(&url).await.expect("open SQLite");
    let db = Db::Sqlite(pool);
    check_replayed(&db).await;
    let before = counts(&db).await;
    assert_eq!(
        before,
        vec![norm(
            json!({"futures": 3, "futures_options": 2, "forex": 2, "bars": 2, "books": 5,
                   "screeners": 3, "activity": 3})
        )]
    );

    let again = app::replay(&cfg, &fixture(FIXTURE))
        .await
        .expect("replay twice");
    assert_eq!(again.writer.rows_written, 22);
    assert_eq!(counts(&db).await, before, "the second replay adds nothing");
    check_replayed(&db).await;
}

/// The fixture replayed into a plain PostgreSQL (`REALTIME_MODE` default: no `realtime.send`
/// here, so the flush keeps `latest_quotes` itself): the same expected values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_db_replay_into_postgres_stores_every_service() {
    let pg = start_postgres();
    let url = pg.create_database("services").expect("create db");
    let cfg = config_for(&url, &REPLAY_VARS);
    let summary = app::replay(&cfg, &fixture(FIXTURE))
        .await
        .expect("replay into PostgreSQL");
    check_summary(&summary);

    let client = testkit::pg_client(&url).await.expect("connect");
    // The JSON columns are real jsonb (queryable by the front end), not text.
    let types = client
        .query_one(
            "SELECT pg_typeof(bids)::text, pg_typeof(asks)::text,
                    (SELECT pg_typeof(items)::text FROM screener_snapshots LIMIT 1),
                    (SELECT pg_typeof(message_json)::text FROM account_activity LIMIT 1)
             FROM book_snapshots LIMIT 1",
            &[],
        )
        .await
        .expect("types");
    let types: [String; 4] = [types.get(0), types.get(1), types.get(2), types.get(3)];
    assert_eq!(
        types,
        ["jsonb", "jsonb", "jsonb", "jsonb"].map(String::from)
    );
    // The best bid of a book is one jsonb path away.
    let maker = client
        .query_one(
            r#"SELECT bids -> 0 -> 'makers' -> 0 ->> 'quote_time' FROM book_snapshots
               WHERE book = 'NYSE_BOOK' ORDER BY "timestamp" LIMIT 1"#,
            &[],
        )
        .await
        .expect("maker");
    assert_eq!(maker.get::<_, String>(0), "2025-12-09T18:49:46.299Z");

    check_replayed(&Db::Postgres(client)).await;
}

// ---------------------------------------------------------------------------------------
// Supabase roles.

/// Runs `sql` as `role` through the superuser connection; Err carries psql's message.
fn as_role(pg: &TestPostgres, db: &str, role: &str, sql: &str) -> Result<String, String> {
    pg.psql(db, &format!("SET ROLE {role};\n{sql}"))
        .map_err(|e| e.to_string())
}

/// On a Supabase-like database with legacy default grants, replayed as the non-superuser
/// owner with `REALTIME_MODE=both` (the live cadence keeps `latest_quotes` and broadcasts):
/// the same values as everywhere, `/ES` and `EUR/USD` broadcast like equities; `anon` and
/// `authenticated` read every new market table, never `account_activity` nor a partition
/// directly; RLS is on everywhere, and `account_activity` has no policy at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_db_anon_reads_the_market_tables_and_never_account_activity() {
    let pg = start_postgres();
    let sb = supabase::prepare(&pg, "services_grants", true).expect("supabase-like database");
    let mut vars = REPLAY_VARS.to_vec();
    vars.push(("REALTIME_MODE", "both"));
    let cfg = config_for(&sb.owner_url, &vars);
    let summary = app::replay(&cfg, &fixture(FIXTURE))
        .await
        .expect("migrations and replay as the owner");
    check_summary(&summary);
    let client = testkit::pg_client(&sb.superuser_url)
        .await
        .expect("connect");
    check_replayed(&Db::Postgres(client)).await;

    let db = &sb.database;

    // The Broadcast messages carry futures and forex quotes like equity ones: the newest
    // quote of each in the last message holding it.
    let payloads = pg
        .psql(
            db,
            "SELECT payload::text FROM realtime.send_calls ORDER BY id",
        )
        .expect("broadcasts");
    let mut newest = std::collections::BTreeMap::new();
    for line in payloads.lines().filter(|l| !l.is_empty()) {
        let payload: Value = serde_json::from_str(line).expect("payload JSON");
        for quote in payload["quotes"].as_array().expect("quotes") {
            let ticker = quote["ticker"].as_str().expect("ticker").to_string();
            newest.insert(ticker, quote.clone());
        }
    }
    assert_eq!(
        newest.keys().map(String::as_str).collect::<Vec<_>>(),
        ["/ES", "EUR/USD"],
        "{payloads}"
    );
    let pick = |ticker: &str, fields: &[&str]| {
        fields
            .iter()
            .map(|f| newest[ticker][*f].as_f64())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pick("/ES", &["price", "volume", "bid", "ask", "mark"]),
        [6858.75, 1183570.0, 6858.25, 6859.0, 6858.75].map(Some)
    );
    assert_eq!(
        pick("EUR/USD", &["price", "volume", "bid", "ask", "mark"]),
        [1.1643, 187702.0, 1.16418, 1.16428, 1.16425].map(Some)
    );

    let expected_counts = [3, 2, 2, 2, 5, 3];
    for role in ["anon", "authenticated"] {
        for (table, n) in NEW_MARKET_TABLES.iter().zip(expected_counts) {
            let got = as_role(&pg, db, role, &format!("SELECT count(*) FROM {table}"))
                .unwrap_or_else(|e| panic!("{role} may read {table}: {e}"));
            assert_eq!(got, n.to_string(), "{role} sees every row of {table}");
        }
        assert_eq!(
            as_role(
                &pg,
                db,
                role,
                "SELECT string_agg(ticker, ',' ORDER BY ticker) FROM latest_quotes"
            )
            .expect("latest_quotes is readable"),
            "/ES,EUR/USD"
        );
        for sql in [
            "SELECT count(*) FROM account_activity",
            "SELECT message_text FROM account_activity",
            "INSERT INTO account_activity (account, seq, message_hash, subscription_key, message_type, received_at) VALUES ('x', 1, 1, 'k', '', now())",
            "DELETE FROM account_activity",
            "INSERT INTO futures_data (symbol, \"timestamp\") VALUES ('/X', now())",
            "UPDATE forex_data SET price = 0",
            "DELETE FROM book_snapshots",
            "DELETE FROM screener_snapshots",
            "DELETE FROM futures_bars",
            "SELECT count(*) FROM futures_data_p20251209",
            "SELECT count(*) FROM book_snapshots_p20251209",
            "SELECT count(*) FROM screener_snapshots_default",
        ] {
            let err =
                as_role(&pg, db, role, sql).expect_err(&format!("{role} must not run: {sql}"));
            assert!(err.contains("permission denied"), "{role}: {sql}: {err}");
        }
    }
    let rls = pg
        .psql(
            db,
            "SELECT string_agg(relname || '=' || relrowsecurity, ',' ORDER BY relname) FROM pg_class \
             WHERE relname IN ('futures_data','futures_option_data','forex_data','futures_bars', \
                               'book_snapshots','screener_snapshots','account_activity') \
               AND relnamespace = 'public'::regnamespace",
        )
        .expect("rls");
    assert_eq!(
        rls,
        "account_activity=true,book_snapshots=true,forex_data=true,futures_bars=true,\
         futures_data=true,futures_option_data=true,screener_snapshots=true"
    );
    assert_eq!(
        pg.psql(
            db,
            "SELECT count(*) FROM pg_policies WHERE tablename = 'account_activity'"
        )
        .expect("policies"),
        "0",
        "no policy opens account_activity to anyone"
    );
    assert_eq!(
        pg.psql(
            db,
            "SELECT bool_or(has_table_privilege(r, 'public.account_activity', p)) \
             FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r, \
                  unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p"
        )
        .expect("grants"),
        "f",
        "no API role holds any privilege on account_activity, even with legacy default grants"
    );
}

// ---------------------------------------------------------------------------------------
// Retention and the size guard over the new tables.

/// `day` at `h:m:s` UTC in ms since the epoch.
fn at(day: NaiveDate, h: u32, m: u32, s: u32) -> i64 {
    day.and_hms_opt(h, m, s)
        .expect("a time")
        .and_utc()
        .timestamp_millis()
}

fn days_before(today: NaiveDate, n: u64) -> NaiveDate {
    today.checked_sub_days(Days::new(n)).expect("a day")
}

/// One row for each new tick table at `ms`, and with `candle` a futures candle and an
/// account activity message at that time too.
fn service_frames(ms: i64, candle: bool) -> Vec<String> {
    let mut frames = vec![
        format!(
            r#"{{"data":[{{"service":"LEVELONE_FUTURES","timestamp":{ms},"content":[{{"key":"/ES","1":6858.25,"2":6858.5,"3":6858.5,"8":1000,"34":"/ESZ26"}}]}}]}}"#
        ),
        format!(
            r#"{{"data":[{{"service":"LEVELONE_FUTURES_OPTIONS","timestamp":{ms},"content":[{{"key":"./OZCZ27C565","3":12.5,"8":42}}]}}]}}"#
        ),
        format!(
            r#"{{"data":[{{"service":"LEVELONE_FOREX","timestamp":{ms},"content":[{{"key":"EUR/USD","3":1.1643,"6":187654,"29":1.1642}}]}}]}}"#
        ),
        format!(
            r#"{{"data":[{{"service":"NASDAQ_BOOK","timestamp":{ms},"content":[{{"key":"AAPL","1":{ms},"2":[{{"0":277.91,"1":400,"2":1,"3":[{{"0":"NSDQ","1":400,"2":49922100}}]}}],"3":[{{"0":277.93,"1":500,"2":1,"3":[{{"0":"ARCX","1":500,"2":49922000}}]}}]}}]}}]}}"#
        ),
        format!(
            r#"{{"data":[{{"service":"SCREENER_EQUITY","timestamp":{ms},"content":[{{"key":"NASDAQ_VOLUME_30","1":{ms},"2":"VOLUME","3":30,"4":[{{"symbol":"NVDA","lastPrice":184.97,"volume":3456789}}]}}]}}]}}"#
        ),
    ];
    if candle {
        frames.push(format!(
            r#"{{"data":[{{"service":"CHART_FUTURES","timestamp":{ms},"content":[{{"1":{ms},"2":6857.0,"3":6858.5,"4":6856.75,"5":6858.25,"6":1204,"seq":2223,"key":"/ES"}}]}}]}}"#
        ));
        frames.push(format!(
            r#"{{"data":[{{"service":"ACCT_ACTIVITY","timestamp":{ms},"content":[{{"seq":{ms},"key":"Account Activity","1":"87654321","2":"OrderCreated","3":"{{\"SchwabOrderID\":\"1\"}}"}}]}}]}}"#
        ));
    }
    frames
}

/// Three batches through the real parser and merge: ticks 10 days old, candles and account
/// activity 40 days old, and one of each from today.
fn retention_batches(today: NaiveDate) -> Vec<Batch> {
    let mut processor = FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    );
    let old_ticks = service_frames(at(days_before(today, 10), 12, 0, 0), false);
    let old_candles = service_frames(at(days_before(today, 40), 12, 0, 0), true).split_off(5);
    let todays = service_frames(at(today, 0, 0, 1), true);
    [old_ticks, old_candles, todays]
        .iter()
        .map(|frames| {
            let mut batch = Batch::default();
            for frame in frames {
                let mut rows = Vec::new();
                processor.process_text(frame, 0, &mut rows);
                assert_eq!(rows.len(), 1, "one row per frame: {frame}");
                rows.into_iter().for_each(|r| batch.push(r));
            }
            batch
        })
        .collect()
}

/// `TICK_RETENTION_DAYS=3`, `BAR_RETENTION_DAYS=30`.
fn retention_config(url: &str) -> market_streamer::settings::Config {
    config_for(
        url,
        &[("TICK_RETENTION_DAYS", "3"), ("BAR_RETENTION_DAYS", "30")],
    )
}

async fn filled(url: &str, today: NaiveDate) -> (market_streamer::settings::Config, Database) {
    let cfg = retention_config(url);
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    for batch in retention_batches(today) {
        db.write(&batch).await.expect("write");
    }
    (cfg, db)
}

/// The new tick tables are in the retention and size-guard lists.
#[test]
fn services_db_new_tables_are_covered_by_retention_lists() {
    for table in NEW_TICK_TABLES {
        assert!(TICK_TABLES.contains(&table), "{table} is a tick table");
    }
    assert!(CANDLE_TABLES.contains(&"futures_bars"));
}

/// PostgreSQL: rows of the new tick tables on an old day land in that day's partition; a
/// maintenance pass with `TICK_RETENTION_DAYS=3` drops the old partitions of all five (and
/// makes today's and the next days' ones), deletes candles and account activity older than
/// `BAR_RETENTION_DAYS`, and keeps today's rows. The size guard (on a second database, set
/// to act at once) drops the same old day first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_db_postgres_retention_drops_old_partitions_of_the_new_tables() {
    let pg = start_postgres();
    let today = Utc::now().date_naive();
    let old = days_before(today, 10);
    let part = |table: &str, day: NaiveDate| format!("{table}_p{}", day.format("%Y%m%d"));
    let exists = |db: &str, relation: &str| {
        pg.psql(
            db,
            &format!("SELECT to_regclass('public.{relation}') IS NOT NULL"),
        )
        .expect("to_regclass")
            == "t"
    };

    let url = pg.create_database("services_retention").expect("db");
    let (cfg, db) = filled(&url, today).await;
    for table in NEW_TICK_TABLES {
        assert_eq!(
            pg.psql(
                "services_retention",
                &format!(
                    "SELECT string_agg(tableoid::regclass::text, ',' ORDER BY \"timestamp\") FROM {table}"
                ),
            )
            .expect("partitions of the rows"),
            format!("{},{}", part(table, old), part(table, today)),
            "each row of {table} is in its day's partition"
        );
    }
    let Database::Postgres(sink) = &db else {
        panic!("postgres")
    };
    let report = sink
        .maintain(&market_streamer::settings::retention(&cfg).keep, today)
        .await
        .expect("maintenance");
    assert_eq!(
        report.partitions_dropped, 5,
        "the day -10 partition of each new tick table (the equity tables have none)"
    );
    assert_eq!(
        report.bars_deleted, 2,
        "the 40-day-old futures candle and account activity message"
    );
    for table in NEW_TICK_TABLES {
        assert!(
            !exists("services_retention", &part(table, old)),
            "{} is dropped",
            part(table, old)
        );
        for ahead in 0..=3 {
            let day = today.checked_add_days(Days::new(ahead)).expect("day");
            assert!(
                exists("services_retention", &part(table, day)),
                "{} exists",
                part(table, day)
            );
        }
        assert_eq!(
            pg.psql(
                "services_retention",
                &format!("SELECT count(*) || '|' || min(\"timestamp\")::date FROM {table}")
            )
            .expect("left"),
            format!("1|{today}"),
            "{table}: today's row is kept"
        );
    }
    for table in ["futures_bars", "account_activity"] {
        assert_eq!(
            pg.psql(
                "services_retention",
                &format!("SELECT count(*) FROM {table}")
            )
            .expect("left"),
            "1",
            "{table}: today's row is kept"
        );
    }
    db.close().await;

    // The size guard, acting at once (1 byte): the oldest tick day goes from every new
    // tick table, then (only today's ticks left) the oldest day of candles.
    let url = pg.create_database("services_guard").expect("db");
    let (_, db) = filled(&url, today).await;
    let Database::Postgres(sink) = &db else {
        panic!("postgres")
    };
    let guard = sink.guard_size(1, 1, today).await.expect("size guard");
    assert_eq!(guard.days_dropped, vec![old], "{guard:?}");
    assert_eq!(guard.partitions_dropped, 5, "{guard:?}");
    assert_eq!(
        guard.candles_deleted, 1,
        "the 40-day-old futures candle: {guard:?}"
    );
    for table in NEW_TICK_TABLES {
        assert!(!exists("services_guard", &part(table, old)));
        assert_eq!(
            pg.psql("services_guard", &format!("SELECT count(*) FROM {table}"))
                .expect("left"),
            "1",
            "{table}: today's row is never removed by the guard"
        );
    }
    db.close().await;
}

/// SQLite: `SqliteSink::maintain` deletes the old rows of the new tick tables (and the old
/// futures candle and account activity message) and keeps today's; the size guard deletes
/// the oldest tick day of the new tables first.
#[tokio::test]
async fn services_db_sqlite_retention_deletes_old_rows_of_the_new_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let today = Utc::now().date_naive();
    let midnight = |day: NaiveDate| day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let count = |pool: sqlx::SqlitePool, table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&pool)
            .await
            .expect("count")
    };

    let url = format!("sqlite://{}", dir.path().join("retention.db").display());
    let (_, db) = filled(&url, today).await;
    let Database::Sqlite(lite) = &db else {
        panic!("sqlite")
    };
    for table in NEW_TICK_TABLES {
        assert_eq!(count(lite.pool().clone(), table).await, 2, "{table} filled");
    }
    let (deleted, bytes) = lite
        .maintain(
            midnight(days_before(today, 3)),
            midnight(days_before(today, 30)),
        )
        .await
        .expect("maintain");
    assert_eq!(
        deleted, 7,
        "one old row of each of the 5 new tick tables, the old candle and the old message"
    );
    assert!(bytes > 0);
    for table in NEW_TICK_TABLES
        .into_iter()
        .chain(["futures_bars", "account_activity"])
    {
        assert_eq!(
            count(lite.pool().clone(), table).await,
            1,
            "{table}: today's row is kept"
        );
    }
    let kept: Vec<String> = sqlx::query_scalar(
        r#"SELECT "timestamp" FROM futures_data UNION ALL SELECT "timestamp" FROM book_snapshots"#,
    )
    .fetch_all(lite.pool())
    .await
    .expect("kept");
    assert!(
        kept.iter().all(|t| t.starts_with(&today.to_string())),
        "{kept:?}"
    );

    let url = format!("sqlite://{}", dir.path().join("guard.db").display());
    let (_, db) = filled(&url, today).await;
    let Database::Sqlite(lite) = &db else {
        panic!("sqlite")
    };
    let guard = lite.guard_size(1, 1, today).await.expect("size guard");
    assert_eq!(
        guard.days_dropped,
        vec![days_before(today, 10)],
        "{guard:?}"
    );
    assert_eq!(
        guard.candles_deleted, 1,
        "the 40-day-old futures candle: {guard:?}"
    );
    for table in NEW_TICK_TABLES {
        assert_eq!(
            count(lite.pool().clone(), table).await,
            1,
            "{table}: the oldest day is gone, today's row is kept"
        );
    }
}
