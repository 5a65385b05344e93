//! Exactly-once batches against a real PostgreSQL server: a batch committed whose answer was
//! lost is written once, a spool replayed after a crash writes nothing twice and never puts an
//! older candle over a newer one, large batches go by binary `COPY` and store exactly what
//! `INSERT ... UNNEST` stores, and the same recording replayed twice leaves the same rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use market_streamer::app;
use market_streamer::counters::PipelineStats;
use market_streamer::db::postgres::{PostgresSink, conn::ConnectSettings};
use market_streamer::db::{Database, Sink};
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings, IndicatorValues};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::{BarRow, Batch, BatchId, EquityRow, Row};
use market_streamer::schwab::wire::EquityFields;
use market_streamer::spool::Spool;
use market_streamer::writer::{OverflowPolicy, SpoolSettings, spawn_writer};
use testkit::{config_for, start_postgres};

/// 2025-08-13 14:58 UTC, a trading day.
const START_MS: i64 = 1_755_097_080_000;

/// Runs `sql` (one row, one bigint or text column) on a fresh connection.
async fn scalar<T>(url: &str, sql: &str) -> T
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(conn);
    let value = client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0);
    driver.abort();
    value
}

/// A digest of every stored row of the market tables (bookkeeping times left out).
async fn contents(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (table, columns, order) in [
        ("equity_data", "t.*", "ticker, \"timestamp\", seq"),
        ("option_data", "t.*", "symbol, \"timestamp\", seq"),
        (
            "equity_bars",
            "ticker, bar_start, open, high, low, close, volume, sequence, chart_day",
            "ticker, bar_start",
        ),
        ("latest_quotes", "t.*", "ticker"),
    ] {
        let columns = if columns == "t.*" {
            // Every column but the bookkeeping times.
            let names: String = scalar(
                url,
                &format!(
                    "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) \
                     FROM information_schema.columns WHERE table_name = '{table}' \
                     AND column_name NOT IN ('inserted_at', 'updated_at')"
                ),
            )
            .await;
            names
        } else {
            columns.to_string()
        };
        let digest: String = scalar(
            url,
            &format!(
                "SELECT count(*) || ':' || coalesce(md5(string_agg(r::text, '|' ORDER BY {order})), '') \
                 FROM (SELECT {columns} FROM {table} t) r"
            ),
        )
        .await;
        out.push(format!("{table} {digest}"));
    }
    out
}

/// `n` merged LEVELONE_EQUITIES rows over `symbols`, 10 ms apart.
fn equities(start_ms: i64, n: usize, symbols: &[&str]) -> Vec<Row> {
    let engine = IndicatorEngine::new(IndicatorSettings::default()).expect("default periods");
    let mut processor = FrameProcessor::new(Arc::new(PipelineStats::default()), engine);
    let mut rows = Vec::new();
    for i in 0..n {
        let frame = format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{},"content":[{{"key":"{}","1":{},"2":{},"3":{},"8":{}}}]}}]}}"#,
            start_ms + i as i64 * 10,
            symbols[i % symbols.len()],
            99.9 + i as f64 / 100.0,
            100.1 + i as f64 / 100.0,
            100.0 + i as f64 / 100.0,
            1000 + i
        );
        processor.process_text(&frame, 0, &mut rows);
    }
    rows
}

/// A candle of `ticker` at `minute` past [`START_MS`], closing at `close`.
fn candle(ticker: &str, minute: i64, close: f64, volume: i64) -> BarRow {
    BarRow {
        ticker: Arc::from(ticker),
        bar_start: Utc
            .timestamp_millis_opt(START_MS + minute * 60_000)
            .single()
            .expect("valid time"),
        open: 100.0,
        high: close.max(100.0),
        low: close.min(100.0),
        close,
        volume,
        sequence: Some(minute),
        chart_day: Some(20_313),
    }
}

async fn migrated(url: &str) -> Database {
    let db = Database::connect(&market_streamer::settings::database(&config_for(url, &[])))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committed_whose_answer_was_lost_is_written_once() {
    let pg = start_postgres();
    let url = pg.create_database("lost_answer").expect("db");
    migrated(&url).await;
    let proxy = testkit::proxy::DelayProxy::start(pg.port(), Duration::ZERO)
        .await
        .expect("proxy");
    let proxied = proxy.url(&url, pg.port());
    let cfg = config_for(&proxied, &[("BATCH_SIZE", "1"), ("BATCH_INTERVAL", "0.02")]);
    let mut connect = ConnectSettings::from_url(&proxied).expect("url");
    connect.set_statement_timeout(Duration::from_millis(500));
    let sink = PostgresSink::connect_with(
        &proxied,
        &market_streamer::settings::database(&cfg),
        connect,
    )
    .await
    .expect("connect through the proxy");
    let db = Arc::new(Database::Postgres(sink));
    let stats = Arc::new(PipelineStats::default());
    let mut settings = market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest);
    settings.retry_min = Duration::from_millis(50);
    settings.retry_max = Duration::from_millis(200);
    settings.shutdown_grace = Duration::from_secs(30);
    let writer = spawn_writer(db.clone(), settings, stats.clone());

    let mut rows = equities(START_MS, 21, &["AAPL", "MSFT", "SPY"]).into_iter();
    for row in rows.by_ref().take(10) {
        writer.tx.send(vec![row]).await.expect("send");
    }
    wait_until(|| stats.rows_written() == 10).await;

    // The next batch reaches the server and commits, but its answer never comes back.
    proxy.set_drop_answers(true);
    let retries = PipelineStats::get(&stats.write_retries);
    writer
        .tx
        .send(rows.next().into_iter().collect())
        .await
        .expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while scalar::<i64>(&url, "SELECT count(*) FROM equity_data").await < 11 {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until(|| PipelineStats::get(&stats.write_retries) > retries).await;
    assert_eq!(
        stats.rows_written(),
        10,
        "the writer does not know it committed"
    );
    proxy.set_drop_answers(false);

    for row in rows {
        writer.tx.send(vec![row]).await.expect("send");
    }
    drop(writer.tx);
    let report = writer.task.await.expect("join").expect("writer drains");
    assert_eq!(report.rows_written, 21);
    assert_eq!(
        PipelineStats::get(&stats.batches_already_committed),
        1,
        "the retry found the batch in the ledger"
    );
    assert_eq!(
        scalar::<i64>(&url, "SELECT count(*) FROM equity_data").await,
        21
    );
    assert_eq!(
        scalar::<i64>(&url, "SELECT count(*) FROM batch_ledger").await as u64,
        report.writes,
        "one ledger entry per batch (the lost one counted once, by its retry), none twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_replayed_after_a_crash_writes_nothing_twice_and_keeps_the_newer_candle() {
    let pg = start_postgres();
    let url = pg.create_database("spool_crash").expect("db");
    let db = Arc::new(migrated(&url).await);
    let spool_dir = tempfile::tempdir().expect("tempdir");

    // Batch 1 (quotes and an early copy of the 14:58 candle) committed, but the service
    // parked it in the spool too: its answer was lost, or it crashed before noting the
    // commit.
    let mut first = Batch::default();
    equities(START_MS, 30, &["AAPL"])
        .into_iter()
        .for_each(|r| first.push(r));
    first.bars.push(candle("AAPL", 0, 101.0, 500));
    db.write(&first).await.expect("batch 1");
    {
        let (mut spool, _) = Spool::open(spool_dir.path(), 1 << 30).expect("spool");
        spool.append(&first).expect("park batch 1");
    } // the crash: the spool stays on disk

    // Batch 2 (after the lost answer) carries the finished candle.
    let mut second = Batch::default();
    second.bars.push(candle("AAPL", 0, 102.5, 900));
    db.write(&second).await.expect("batch 2");
    let before = contents(&url).await;

    // The restart replays the spool.
    let cfg = config_for(&url, &[]);
    let stats = Arc::new(PipelineStats::default());
    let mut settings = market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest);
    settings.spool = Some(SpoolSettings {
        dir: spool_dir.path().to_path_buf(),
        max_bytes: 1 << 30,
    });
    let writer = spawn_writer(db.clone(), settings, stats.clone());
    drop(writer.tx);
    let report = writer.task.await.expect("join").expect("writer");
    assert_eq!(report.rows_left_in_spool, 0, "the spool is drained");
    assert_eq!(PipelineStats::get(&stats.batches_already_committed), 1);
    let (close, volume): (f64, i64) = {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        let driver = tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT close, volume FROM equity_bars WHERE ticker = 'AAPL'",
                &[],
            )
            .await
            .expect("candle");
        driver.abort();
        (row.get(0), row.get(1))
    };
    assert_eq!((close, volume), (102.5, 900), "the newer candle stays");
    assert_eq!(
        contents(&url).await,
        before,
        "nothing written twice or changed"
    );
}

/// Quotes with awkward values: NaN and infinities (stored as NULL), extreme integers, text
/// that needs quoting, times out of range (NULL) and before 1970.
fn awkward_rows() -> Vec<EquityRow> {
    let at = Utc
        .timestamp_millis_opt(START_MS + 1)
        .single()
        .expect("valid time");
    vec![
        EquityRow {
            ticker: Arc::from("ODD"),
            timestamp: at,
            seq: 0,
            quote: EquityFields {
                last: Some(f64::NAN),
                bid: Some(f64::INFINITY),
                ask: Some(-0.000_001),
                total_volume: Some(i64::MAX),
                bid_size: Some(i64::MIN),
                security_status: Some(Arc::from("say \"hi\", then\nleave: ünïcødé \\")),
                quote_time_ms: Some(i64::MAX),
                trade_time_ms: Some(-86_400_000),
                ..EquityFields::default()
            },
            indicators: IndicatorValues {
                rsi: Some(f64::NEG_INFINITY),
                vwap: Some(1e-300),
                ..IndicatorValues::default()
            },
        },
        EquityRow {
            ticker: Arc::from("ODD"),
            timestamp: at,
            seq: 1,
            quote: EquityFields {
                security_status: Some(Arc::from("")),
                ..EquityFields::default()
            },
            indicators: IndicatorValues::default(),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_go_by_copy_and_store_what_insert_stores() {
    let pg = start_postgres();
    let by_copy = pg.create_database("by_copy").expect("db");
    let by_insert = pg.create_database("by_insert").expect("db");
    migrated(&by_copy).await;
    let insert_db = migrated(&by_insert).await;
    let proxy = testkit::proxy::DelayProxy::start(pg.port(), Duration::from_millis(5))
        .await
        .expect("proxy");
    let copy_db = Database::connect(&market_streamer::settings::database(&config_for(
        &proxy.url(&by_copy, pg.port()),
        &[],
    )))
    .await
    .expect("connect through the proxy");
    // The first write prepares the statements and makes the day's partitions.
    let mut warm = Batch::default();
    equities(START_MS - 60_000, 3, &["WARM"])
        .into_iter()
        .for_each(|r| warm.push(r));
    copy_db.write(&warm).await.expect("warm up");
    insert_db.write(&warm).await.expect("warm up");

    let mut rows = equities(START_MS, 1_500, &["AAPL", "MSFT", "SPY", "QQQ", "NVDA"]);
    rows.extend(awkward_rows().into_iter().map(Row::Equity));
    let mut big = Batch::default();
    rows.iter().cloned().for_each(|r| big.push(r));
    let turns = proxy.turns();
    let report = copy_db.write(&big).await.expect("COPY");
    assert_eq!(
        (report.copied_rows, report.inserted),
        (1_502, 1_502),
        "a large batch goes by COPY"
    );
    assert_eq!(
        proxy.turns() - turns,
        2,
        "BEGIN, the ledger and the COPY start, then the data with every other statement and COMMIT"
    );
    // The same batch again (a retry after a lost answer): the ledger stops it before the
    // COPY, and the next write works on a new connection.
    let report = copy_db.write(&big).await.expect("retry");
    assert!(report.already_committed);
    for chunk in rows.chunks(400) {
        let mut small = Batch::default();
        chunk.iter().cloned().for_each(|r| small.push(r));
        let report = insert_db.write(&small).await.expect("INSERT");
        assert_eq!(report.copied_rows, 0, "small batches go by INSERT");
    }
    assert_eq!(contents(&by_copy).await, contents(&by_insert).await);
    // The awkward rows: non-finite numbers and an out-of-range time are NULL, text is kept
    // as is, an empty text stays empty (not NULL).
    let odd: String = scalar(
        &by_copy,
        "SELECT concat_ws('|', coalesce(price::text, 'NULL'), coalesce(bid::text, 'NULL'), \
         volume, bid_size, coalesce(quote_time::text, 'NULL'), security_status, \
         coalesce(rsi::text, 'NULL'), vwap) FROM equity_data WHERE ticker = 'ODD' AND seq = 0",
    )
    .await;
    assert_eq!(
        odd,
        format!(
            "NULL|NULL|{}|{}|NULL|say \"hi\", then\nleave: ünïcødé \\|NULL|1e-300",
            i64::MAX,
            i64::MIN
        )
    );
    let empty: String = scalar(
        &by_copy,
        "SELECT coalesce(security_status, 'NULL') FROM equity_data WHERE ticker = 'ODD' AND seq = 1",
    )
    .await;
    assert_eq!(empty, "", "an empty text stays empty");

    // The same rows again under a new batch id (a recording replayed): COPY meets stored
    // rows and the batch is written with the conflict-tolerant insert instead.
    let mut again = big.clone();
    again.id = BatchId::next();
    let before = contents(&by_copy).await;
    let report = copy_db
        .write(&again)
        .await
        .expect("no failure on stored rows");
    assert_eq!(
        (
            report.copied_rows,
            report.inserted,
            report.already_committed
        ),
        (0, 0, false)
    );
    assert_eq!(contents(&by_copy).await, before);
}

/// A recording of `steps` LEVELONE_EQUITIES and LEVELONE_OPTIONS frames (one of each per
/// step) and a CHART_EQUITY frame every 100 steps.
fn recording(steps: usize) -> String {
    let mut out = String::from(
        r#"{"response":[{"service":"ADMIN","command":"LOGIN","requestid":"0","SchwabClientCorrelId":"c","timestamp":1755097080000,"content":{"code":0,"msg":"server=s;status=NP"}}]}"#,
    );
    out.push('\n');
    let tickers = ["AAPL", "MSFT", "SPY", "QQQ"];
    for i in 0..steps {
        let t = START_MS + 1_000 + i as i64 * 20;
        let ticker = tickers[i % tickers.len()];
        out.push_str(&format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{t},"command":"SUBS","content":[{{"key":"{ticker}","1":{},"2":{},"3":{},"8":{}}}]}}]}}"#,
            199.9 + (i % 50) as f64 / 10.0,
            200.1 + (i % 50) as f64 / 10.0,
            200.0 + (i % 50) as f64 / 10.0,
            10_000 + i
        ));
        out.push('\n');
        out.push_str(&format!(
            r#"{{"data":[{{"service":"LEVELONE_OPTIONS","timestamp":{},"command":"SUBS","content":[{{"key":"AAPL  251219C00230000","2":{},"3":{},"4":{},"8":{},"28":0.58}}]}}]}}"#,
            t + 5,
            12.4 + (i % 10) as f64 / 100.0,
            12.6 + (i % 10) as f64 / 100.0,
            12.5 + (i % 10) as f64 / 100.0,
            1_000 + i
        ));
        out.push('\n');
        if i % 100 == 0 {
            let minute = i as i64 / 100;
            out.push_str(&format!(
                r#"{{"data":[{{"service":"CHART_EQUITY","timestamp":{},"command":"SUBS","content":[{{"seq":{i},"key":"AAPL","1":{},"2":200.0,"3":201.0,"4":199.0,"5":200.5,"6":{},"7":{},"8":20313}}]}}]}}"#,
                t + 7,
                598 + minute,
                1_000 + i,
                START_MS + minute * 60_000
            ));
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_recording_replayed_twice_leaves_the_same_rows() {
    let pg = start_postgres();
    let url = pg.create_database("replay_twice").expect("db");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("recording.jsonl");
    std::fs::write(&path, recording(2_400)).expect("write the recording");
    // Batches of about 1,200 quotes of each table: both go by COPY.
    let cfg = config_for(&url, &[("BATCH_SIZE", "2400"), ("BATCH_INTERVAL", "30")]);

    let first = app::replay(&cfg, &path).await.expect("replay");
    assert_eq!(first.equity_rows, 2_400);
    assert_eq!(first.option_rows, 2_400);
    let after_first = contents(&url).await;
    let second = app::replay(&cfg, &path).await.expect("replay again");
    assert_eq!(second.writer.rows_written, first.writer.rows_written);
    assert_eq!(contents(&url).await, after_first);
}

#[tokio::test]
async fn the_sqlite_default_keeps_the_same_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let db = migrated(&url).await;
    let mut batch = Batch::default();
    equities(START_MS, 20, &["AAPL", "MSFT"])
        .into_iter()
        .for_each(|r| batch.push(r));
    batch.bars.push(candle("AAPL", 0, 101.0, 500));
    let first = db.write(&batch).await.expect("write");
    assert_eq!((first.inserted, first.already_committed), (20, false));
    let again = db.write(&batch).await.expect("write again");
    assert_eq!((again.inserted, again.already_committed), (0, true));

    // A newer copy of the candle, then the old batch replayed: the candle stays newer.
    let mut newer = Batch::default();
    newer.bars.push(candle("AAPL", 0, 102.5, 900));
    db.write(&newer).await.expect("newer candle");
    assert!(db.write(&batch).await.expect("replay").already_committed);
    let Database::Sqlite(sqlite) = &db else {
        panic!("sqlite expected")
    };
    let close: f64 = sqlx::query_scalar("SELECT close FROM equity_bars WHERE ticker = 'AAPL'")
        .fetch_one(sqlite.pool())
        .await
        .expect("candle");
    assert_eq!(close, 102.5);
}
