//! The sink's binary `COPY` path for large quote batches against a real PostgreSQL server:
//! it stores exactly what the `INSERT ... UNNEST` path stores, falls back to that path for
//! rows already stored, and is not used when a column type differs from the schema.

mod common;

use std::sync::Arc;

use common::{config_for, start_postgres};
use market_streamer::bench::session::{self, Until};
use market_streamer::frame::EquityFields;
use market_streamer::indicators::IndicatorValues;
use market_streamer::rows::{Batch, EquityRow, Row, time_from_ms};
use market_streamer::sink::postgres::{COPY_MIN_EQUITIES, insert};
use market_streamer::sink::{Database, Sink};
use market_streamer::testkit::TestPostgres;

/// A large batch: simulated quotes with warm indicators plus hand-made awkward rows.
fn big_batch() -> Batch {
    let symbols = session::tickers(60);
    let sim = session::generate(
        &symbols,
        5.0,
        session::SESSION_START_MS,
        Until::Updates(COPY_MIN_EQUITIES as u64 + 200),
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
    assert!(batch.equities.len() >= COPY_MIN_EQUITIES);
    batch
}

async fn database(pg: &TestPostgres, name: &str) -> Database {
    let url = pg.create_database(name).expect("create database");
    let db = Database::connect(&config_for(&url, &[]))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db
}

fn pool(db: &Database) -> &sqlx::PgPool {
    match db {
        Database::Postgres(pg) => pg.pool(),
        Database::Sqlite(_) => panic!("postgres expected"),
    }
}

/// Every stored quote, all columns but `inserted_at`, as text in key order.
async fn stored(db: &Database) -> String {
    sqlx::query_scalar(
        r#"SELECT coalesce(string_agg(t::text, E'\n' ORDER BY t.ticker, t."timestamp", t.seq), '')
           FROM (SELECT ticker, "timestamp", seq, price, volume, bid, ask, bid_size, ask_size,
                        mark, last_size, high, low, open, close, net_change, net_percent_change,
                        quote_time, trade_time, security_status, sma, ema_fast, ema_slow, rsi,
                        macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, vwap
                 FROM equity_data) t"#,
    )
    .fetch_one(pool(db))
    .await
    .expect("read equity_data")
}

async fn count(db: &Database, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool(db))
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_stores_exactly_what_insert_stores() {
    let pg = start_postgres();
    let batch = big_batch();
    let n = batch.equities.len() as i64;

    let by_copy = database(&pg, "by_copy").await;
    let report = by_copy.write(&batch).await.expect("write by COPY");
    assert_eq!(report.inserted as i64, n);

    let by_insert = database(&pg, "by_insert").await;
    let mut tx = pool(&by_insert).begin().await.expect("begin");
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
    .fetch_one(pool(&by_copy))
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
    .fetch_one(pool(&by_copy))
    .await
    .expect("empty status row");
    assert_eq!(
        empty.as_deref(),
        Some(""),
        "an empty text stays empty, not NULL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_written_again_skips_the_rows_already_stored() {
    let pg = start_postgres();
    let db = database(&pg, "again").await;
    let batch = big_batch();
    let n = batch.equities.len() as u64;
    let tickers = batch.latest_equities().len() as i64;

    let first = db.write(&batch).await.expect("first write");
    assert_eq!((first.rows, first.inserted), (n, n));
    let second = db.write(&batch).await.expect("the same batch again");
    assert_eq!(
        (second.rows, second.inserted),
        (n, 0),
        "stored rows skipped"
    );
    assert_eq!(count(&db, "equity_data").await, n as i64);

    // Stored rows mixed with new ones (a retry after a restart): only the new ones go in.
    let mut mixed = batch.clone();
    for row in mixed.equities.iter_mut().take(25) {
        row.seq += 1000;
    }
    mixed.equities.append(&mut batch.equities.clone());
    let third = db.write(&mixed).await.expect("mixed batch");
    assert_eq!(third.inserted, 25);
    assert_eq!(count(&db, "equity_data").await, n as i64 + 25);
    assert_eq!(count(&db, "latest_quotes").await, tickers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_is_not_used_when_a_column_type_differs() {
    let pg = start_postgres();
    let db = database(&pg, "altered").await;
    // Binary bigint data would be misread as numeric: the sink must notice and use INSERT.
    sqlx::query("ALTER TABLE equity_data ALTER COLUMN volume TYPE numeric")
        .execute(pool(&db))
        .await
        .expect("alter column");
    let mut batch = big_batch();
    // Small volumes: their bigint bytes are also a valid (wrong) numeric, so a COPY would not
    // even fail.
    for (i, row) in batch.equities.iter_mut().enumerate() {
        row.quote.total_volume = Some(i as i64 % 1000 + 1);
    }
    let report = db.write(&batch).await.expect("write");
    assert_eq!(report.inserted as usize, batch.equities.len());
    let right: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM equity_data d \
         JOIN unnest($1::text[], $2::int4[], $3::int8[], $4::timestamptz[]) \
              AS b(ticker, seq, volume, ts) \
           ON d.ticker = b.ticker AND d.seq = b.seq AND d.\"timestamp\" = b.ts \
         WHERE d.volume IS NOT DISTINCT FROM b.volume::numeric",
    )
    .bind(
        batch
            .equities
            .iter()
            .map(|r| r.ticker.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(batch.equities.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(
        batch
            .equities
            .iter()
            .map(|r| r.quote.total_volume)
            .collect::<Vec<_>>(),
    )
    .bind(
        batch
            .equities
            .iter()
            .map(|r| r.timestamp)
            .collect::<Vec<_>>(),
    )
    .fetch_one(pool(&db))
    .await
    .expect("compare volumes");
    assert_eq!(
        right as usize,
        batch.equities.len(),
        "volumes stored wrongly"
    );
}
