//! The benchmark's binary `COPY` data (its second ceiling and the binary-COPY sink candidate)
//! against a real PostgreSQL server: it fits the migrated schema's column types and stores
//! exactly what the sink's `INSERT ... UNNEST` stores.

use std::sync::Arc;

use bench::copy_binary::{EQUITY_COPY_TYPES, copy_equities};
use bench::session::{self, Until};
use bench::unnest_sqlx as insert;
use market_streamer::db::Database;
use market_streamer::indicators::IndicatorValues;
use market_streamer::rows::{Batch, EquityRow, Row, time_from_ms};
use market_streamer::schwab::wire::EquityFields;
use testkit::TestPostgres;
use testkit::{config_for, start_postgres};

const ROWS: u64 = 1200;

/// A batch of simulated quotes with warm indicators plus hand-made awkward rows.
fn big_batch() -> Batch {
    let symbols = session::tickers(60);
    let sim = session::generate(
        &symbols,
        5.0,
        session::SESSION_START_MS,
        Until::Updates(ROWS),
    )
    .expect("simulated session");
    let mut batch = Batch::default();
    for row in sim.rows().into_iter().flatten() {
        if let Row::Equity(_) = row {
            batch.push(row);
        }
    }
    let at = |ms: i64| time_from_ms(session::SESSION_START_MS + ms).expect("valid time");
    let odd =
        |ticker: &str, seq: i32, quote: EquityFields, indicators: IndicatorValues| EquityRow {
            ticker: Arc::from(ticker),
            timestamp: at(1),
            seq,
            quote,
            indicators,
        };
    batch.equities.push(odd(
        "ODD",
        0,
        EquityFields {
            last: Some(f64::NAN),
            bid: Some(f64::INFINITY),
            ask: Some(-0.000_001),
            total_volume: Some(i64::MAX),
            bid_size: Some(i64::MIN),
            security_status: Some(Arc::from("say \"hi\", then\nleave: ünïcødé \\")),
            quote_time_ms: Some(i64::MAX), // out of range: NULL
            trade_time_ms: Some(-86_400_000),
            ..EquityFields::default()
        },
        IndicatorValues {
            rsi: Some(f64::NEG_INFINITY),
            vwap: Some(1e-300),
            macd: Some(-1.234_567_890_123_456_7e15),
            ..IndicatorValues::default()
        },
    ));
    batch.equities.push(odd(
        "ODD",
        1,
        EquityFields {
            security_status: Some(Arc::from("")),
            ..EquityFields::default()
        },
        IndicatorValues::default(),
    ));
    batch
}

/// A migrated database (by the service's own migrations) and a sqlx pool on it.
async fn database(pg: &TestPostgres, name: &str) -> sqlx::PgPool {
    let url = pg.create_database(name).expect("create database");
    let db = Database::connect(&market_streamer::settings::database(&config_for(&url, &[])))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db.close().await;
    sqlx::PgPool::connect(&url).await.expect("connect")
}

/// Every stored quote, all columns but `inserted_at`, as text in key order.
async fn stored(db: &sqlx::PgPool) -> String {
    sqlx::query_scalar(
        r#"SELECT coalesce(string_agg(t::text, E'\n' ORDER BY t.ticker, t."timestamp", t.seq), '')
           FROM (SELECT ticker, "timestamp", seq, price, volume, bid, ask, bid_size, ask_size,
                        mark, last_size, high, low, open, close, net_change, net_percent_change,
                        quote_time, trade_time, security_status, sma, ema_fast, ema_slow, rsi,
                        macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, vwap
                 FROM equity_data) t"#,
    )
    .fetch_one(db)
    .await
    .expect("read equity_data")
}

async fn count(db: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_copy_stores_exactly_what_the_sink_stores() {
    let pg = start_postgres();
    let batch = big_batch();
    let n = batch.equities.len() as i64;

    let by_copy = database(&pg, "by_copy").await;
    // Binary data is not converted: every column must have the type it is written as.
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = 'equity_data'::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .fetch_all(&by_copy)
    .await
    .expect("column types");
    for (name, ty) in EQUITY_COPY_TYPES {
        assert!(
            types.iter().any(|(n, t)| n == name && t == ty),
            "equity_data.{name} is not {ty}: {types:?}"
        );
    }
    let mut tx = by_copy.begin().await.expect("begin");
    let copied = copy_equities(&mut tx, &batch).await.expect("binary COPY");
    tx.commit().await.expect("commit");
    assert_eq!(copied as i64, n);

    let by_insert = database(&pg, "by_insert").await;
    let mut tx = by_insert.begin().await.expect("begin");
    insert::insert_equities(&mut tx, &batch)
        .await
        .expect("insert by UNNEST");
    tx.commit().await.expect("commit");

    assert_eq!(count(&by_copy, "equity_data").await, n);
    let (a, b) = (stored(&by_copy).await, stored(&by_insert).await);
    assert_eq!(a, b, "COPY and UNNEST stored different values");
    // The awkward row: non-finite numbers and an out-of-range time are NULL, text kept as is.
    let odd: String = sqlx::query_scalar(
        "SELECT concat_ws('|', coalesce(price::text, 'NULL'), coalesce(bid::text, 'NULL'), \
         volume, bid_size, coalesce(quote_time::text, 'NULL'), security_status, \
         coalesce(rsi::text, 'NULL'), vwap) FROM equity_data WHERE ticker = 'ODD' AND seq = 0",
    )
    .fetch_one(&by_copy)
    .await
    .expect("odd row");
    assert_eq!(
        odd,
        format!(
            "NULL|NULL|{}|{}|NULL|say \"hi\", then\nleave: ünïcødé \\|NULL|1e-300",
            i64::MAX,
            i64::MIN
        )
    );
    let empty: Option<String> = sqlx::query_scalar(
        "SELECT security_status FROM equity_data WHERE ticker = 'ODD' AND seq = 1",
    )
    .fetch_one(&by_copy)
    .await
    .expect("empty status row");
    assert_eq!(
        empty.as_deref(),
        Some(""),
        "an empty text stays empty, not NULL"
    );
}
