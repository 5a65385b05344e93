//! The writer against a real PostgreSQL server: idempotent rewrites, a database outage in
//! the middle of streaming, and a permanent error that must not loop.

use std::sync::Arc;
use std::time::Duration;

use market_streamer::counters::PipelineStats;
use market_streamer::db::{Database, ErrorKind, Sink};
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::{Batch, Row};
use market_streamer::writer::{OverflowPolicy, WriterError, WriterSettings, spawn_writer};
use testkit::{config_for, start_postgres};

/// `n` LEVELONE_EQUITIES updates for `symbols`, one frame each, as merged rows.
fn equity_rows(start_ms: i64, n: usize, symbols: &[&str]) -> Vec<Vec<Row>> {
    let engine = IndicatorEngine::new(IndicatorSettings::default()).expect("default periods");
    let mut processor = FrameProcessor::new(Arc::new(PipelineStats::default()), engine);
    (0..n)
        .map(|i| {
            let sym = symbols[i % symbols.len()];
            let frame = format!(
                r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{},"content":[{{"key":"{sym}","3":{},"8":{}}}]}}]}}"#,
                start_ms + i as i64 * 10,
                100.0 + i as f64 / 100.0,
                1000 + i
            );
            let mut rows = Vec::new();
            processor.process_text(&frame, 0, &mut rows);
            rows
        })
        .collect()
}

async fn count(db: &Database, sql: &str) -> i64 {
    let Database::Postgres(pg) = db else {
        panic!("postgres expected")
    };
    let conn = pg.shared_conn().await.expect("connect");
    testkit::pg_i64(&conn, sql).await.expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_the_same_batch_twice_is_idempotent() {
    let pg = start_postgres();
    let url = pg.create_database("idem").expect("db");
    let db = Database::connect(&market_streamer::settings::database(&config_for(&url, &[])))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");

    let mut batch = Batch::default();
    for rows in equity_rows(1_700_000_000_000, 50, &["AAPL", "MSFT"]) {
        rows.into_iter().for_each(|r| batch.push(r));
    }
    let first = db.write(&batch).await.expect("first write");
    assert_eq!((first.rows, first.inserted), (50, 50));
    assert!(!first.already_committed);
    let second = db
        .write(&batch)
        .await
        .expect("same batch again does not fail");
    assert_eq!(
        (second.rows, second.inserted, second.already_committed),
        (50, 0, true),
        "the ledger knows the batch: nothing written again"
    );

    // The same rows under another batch id (the same recording replayed twice), with new
    // rows mixed in: the stored rows are kept, the new ones go in.
    let mut mixed = batch.clone();
    mixed.id = market_streamer::rows::BatchId::next();
    for rows in equity_rows(1_750_000_000_000, 5, &["NVDA"]) {
        rows.into_iter().for_each(|r| mixed.push(r));
    }
    let third = db.write(&mixed).await.expect("mixed");
    assert_eq!((third.inserted, third.already_committed), (5, false));
    assert_eq!(count(&db, "SELECT count(*) FROM equity_data").await, 55);
    assert_eq!(count(&db, "SELECT count(*) FROM batch_ledger").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_survive_a_postgres_stop_and_restart() {
    let mut pg = start_postgres();
    let url = pg.create_database("outage").expect("db");
    let cfg = config_for(&url, &[("BATCH_SIZE", "1"), ("BATCH_INTERVAL", "0.05")]);
    let db = Arc::new(
        Database::connect(&market_streamer::settings::database(&cfg))
            .await
            .expect("connect"),
    );
    db.migrate().await.expect("migrate");

    let stats = Arc::new(PipelineStats::default());
    let mut settings = market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest);
    settings.retry_max = Duration::from_millis(500);
    settings.shutdown_grace = Duration::from_secs(30);
    let writer = spawn_writer(db.clone(), settings, stats.clone());
    let frames = equity_rows(1_700_000_000_000, 300, &["AAPL", "MSFT", "SPY"]);
    let mut frames = frames.into_iter();

    for rows in frames.by_ref().take(100) {
        writer.tx.send(rows).await.expect("send");
    }
    wait_until(|| stats.rows_written() == 100).await;

    pg.stop().expect("stop postgres");
    for rows in frames.by_ref().take(100) {
        writer.tx.send(rows).await.expect("send");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_until(|| PipelineStats::get(&stats.write_retries) >= 2).await;
    assert_eq!(
        stats.rows_written(),
        100,
        "nothing committed while the database is down"
    );
    assert!(
        PipelineStats::get(&stats.rows_buffered) >= 100,
        "rows stay buffered"
    );

    pg.start_again().expect("restart postgres");
    for rows in frames {
        writer.tx.send(rows).await.expect("send");
    }
    drop(writer.tx);
    let report = writer
        .task
        .await
        .expect("join")
        .expect("writer drains after the outage");
    assert_eq!(report.rows_written, 300);
    assert_eq!(report.rows_dropped, 0);
    assert!(report.retries >= 2);
    assert_eq!(
        count(&db, "SELECT count(*) FROM equity_data").await,
        300,
        "zero rows lost"
    );
    assert_eq!(
        count(
            &db,
            r#"SELECT count(*) FROM (SELECT DISTINCT ticker, "timestamp", seq FROM equity_data) k"#
        )
        .await,
        300,
        "zero duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_permanent_and_says_to_migrate() {
    let pg = start_postgres();
    let url = pg.create_database("broken").expect("db");
    let cfg = config_for(&url, &[]);
    let db = Arc::new(
        Database::connect(&market_streamer::settings::database(&cfg))
            .await
            .expect("connect"),
    );
    db.migrate().await.expect("migrate");
    pg.psql("broken", "DROP TABLE equity_data")
        .expect("drop table");

    let mut batch = Batch::default();
    equity_rows(1_700_000_000_000, 1, &["AAPL"])
        .into_iter()
        .flatten()
        .for_each(|r| batch.push(r));
    let err = db.write(&batch).await.expect_err("no table");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.to_string().contains("market-streamer migrate"), "{err}");

    let stats = Arc::new(PipelineStats::default());
    let writer = spawn_writer(
        db,
        market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest),
        stats.clone(),
    );
    writer
        .tx
        .send(equity_rows(1_700_000_000_000, 1, &["AAPL"]).remove(0))
        .await
        .expect("send");
    let result = tokio::time::timeout(Duration::from_secs(10), writer.task)
        .await
        .expect("stops at once");
    assert!(matches!(
        result.expect("join"),
        Err(WriterError::Permanent { .. })
    ));
    assert_eq!(PipelineStats::get(&stats.write_retries), 0, "never retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_reports_a_wrong_database_name_clearly() {
    let pg = start_postgres();
    let cfg = config_for(&pg.url_for("no_such_db"), &[]);
    let err = Database::connect_with_retry(
        &market_streamer::settings::database(&cfg),
        Duration::from_secs(5),
    )
    .await
    .err()
    .expect("fails");
    assert_eq!(err.kind, ErrorKind::Permanent, "not retried: {err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spool_settings(cfg: &market_streamer::settings::Config) -> WriterSettings {
    let mut settings = market_streamer::settings::writer(cfg, OverflowPolicy::DropOldest);
    settings.retry_max = Duration::from_millis(300);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_goes_through_the_disk_spool_and_a_crash_loses_nothing() {
    let mut pg = start_postgres();
    let url = pg.create_database("spool").expect("db");
    let spool_dir = tempfile::tempdir().expect("tempdir");
    let spool_path = spool_dir.path().display().to_string();
    let cfg = config_for(
        &url,
        &[
            ("BATCH_SIZE", "1"),
            ("BATCH_INTERVAL", "0.05"),
            ("SPOOL_DIR", &spool_path),
        ],
    );
    let db = Arc::new(
        Database::connect(&market_streamer::settings::database(&cfg))
            .await
            .expect("connect"),
    );
    db.migrate().await.expect("migrate");
    let mut frames =
        equity_rows(1_700_000_000_000, 400, &["AAPL", "MSFT", "SPY", "NVDA"]).into_iter();

    // Steady load, then the database goes away.
    let stats = Arc::new(PipelineStats::default());
    let writer = spawn_writer(db.clone(), spool_settings(&cfg), stats.clone());
    for rows in frames.by_ref().take(100) {
        writer.tx.send(rows).await.expect("send");
    }
    wait_until(|| stats.rows_written() == 100).await;
    pg.stop().expect("stop postgres");
    for rows in frames.by_ref().take(150) {
        writer.tx.send(rows).await.expect("send");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    wait_until(|| {
        PipelineStats::get(&stats.spool_rows) + PipelineStats::get(&stats.rows_buffered) == 150
    })
    .await;
    assert!(
        PipelineStats::get(&stats.spool_rows) > 0,
        "failed batches are parked on disk"
    );

    // kill -9: the writer dies without any shutdown step. Every spooled batch was fsynced.
    writer.task.abort();
    let _ = writer.task.await;
    drop(writer.tx);
    let in_memory_only = PipelineStats::get(&stats.rows_buffered);

    // Restart with the database back: the spool is replayed, new rows flow too.
    pg.start_again().expect("restart postgres");
    let stats2 = Arc::new(PipelineStats::default());
    let writer2 = spawn_writer(db.clone(), spool_settings(&cfg), stats2.clone());
    for rows in frames.by_ref() {
        writer2.tx.send(rows).await.expect("send");
    }
    drop(writer2.tx);
    let report = writer2.task.await.expect("join").expect("writer");
    assert_eq!(report.rows_left_in_spool, 0, "{report:?}");
    // At most the rows only in memory at the kill are lost. The gauge is read after the
    // abort and can lag one step (a row spooled just before the abort may still count as
    // buffered), so a row more may arrive, never one less.
    let lost_at_most = in_memory_only as i64;
    let stored = count(&db, "SELECT count(*) FROM equity_data").await;
    assert!(
        (400 - lost_at_most..=400).contains(&stored),
        "every spooled row arrived: {stored} of 400 stored, {lost_at_most} only in memory at the kill"
    );
    assert_eq!(
        count(
            &db,
            r#"SELECT count(*) FROM (SELECT DISTINCT ticker, "timestamp", seq FROM equity_data) k"#
        )
        .await,
        stored,
        "zero duplicates"
    );
    assert!(
        std::fs::read_dir(spool_dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .all(|e| !e.path().to_string_lossy().ends_with(".spool")),
        "replayed segments deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_while_the_database_is_down_spools_the_buffer_within_the_grace() {
    let mut pg = start_postgres();
    let url = pg.create_database("stopdown").expect("db");
    let spool_dir = tempfile::tempdir().expect("tempdir");
    let spool_path = spool_dir.path().display().to_string();
    let cfg = config_for(
        &url,
        &[
            ("BATCH_SIZE", "50"),
            ("BATCH_INTERVAL", "0.05"),
            ("SPOOL_DIR", &spool_path),
            ("SHUTDOWN_GRACE", "8"),
        ],
    );
    let db = Arc::new(
        Database::connect(&market_streamer::settings::database(&cfg))
            .await
            .expect("connect"),
    );
    db.migrate().await.expect("migrate");
    pg.stop().expect("stop postgres");

    let stats = Arc::new(PipelineStats::default());
    let writer = spawn_writer(db.clone(), spool_settings(&cfg), stats.clone());
    for rows in equity_rows(1_700_000_000_000, 120, &["AAPL"]) {
        writer.tx.send(rows).await.expect("send");
    }
    wait_until(|| PipelineStats::get(&stats.write_retries) >= 1).await;
    let stopping = tokio::time::Instant::now();
    drop(writer.tx);
    let report = writer
        .task
        .await
        .expect("join")
        .expect("spooled, not failed");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "exits within SHUTDOWN_GRACE: {:?}",
        stopping.elapsed()
    );
    assert_eq!(report.rows_left_in_spool, 120);

    pg.start_again().expect("restart");
    let writer2 = spawn_writer(
        db.clone(),
        spool_settings(&cfg),
        Arc::new(PipelineStats::default()),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_until_async(|| async { count(&db, "SELECT count(*) FROM equity_data").await == 120 })
        .await;
    drop(writer2.tx);
    writer2.task.await.expect("join").expect("writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_spool_folder_keeps_streaming_in_memory() {
    let pg = start_postgres();
    let url = pg.create_database("nospool").expect("db");
    let file = tempfile::NamedTempFile::new().expect("file");
    let bad = file.path().join("spool").display().to_string();
    let cfg = config_for(&url, &[("SPOOL_DIR", &bad)]);
    let db = Arc::new(
        Database::connect(&market_streamer::settings::database(&cfg))
            .await
            .expect("connect"),
    );
    db.migrate().await.expect("migrate");
    let writer = spawn_writer(
        db.clone(),
        spool_settings(&cfg),
        Arc::new(PipelineStats::default()),
    );
    for rows in equity_rows(1_700_000_000_000, 10, &["AAPL"]) {
        writer.tx.send(rows).await.expect("send");
    }
    drop(writer.tx);
    let report = writer
        .task
        .await
        .expect("join")
        .expect("writer runs without a spool");
    assert_eq!(report.rows_written, 10);
}

async fn wait_until_async<F: std::future::Future<Output = bool>>(mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One batch with rows for every table: equities (and so `latest_quotes`), an option and a
/// candle, all on the day of `start_ms`.
fn batch_for_every_table(start_ms: i64) -> Batch {
    use market_streamer::market::option_symbol::OptionContract;
    use market_streamer::rows::{BarRow, OptionRow};
    let mut batch = Batch::default();
    equity_rows(start_ms, 20, &["AAPL", "MSFT"])
        .into_iter()
        .flatten()
        .for_each(|r| batch.push(r));
    let at = batch.equities[0].timestamp;
    let symbol = "AAPL  271217C00250000";
    batch.options.push(OptionRow {
        symbol: Arc::from(symbol),
        contract: OptionContract::parse(symbol).expect("a valid symbol"),
        timestamp: at,
        seq: 0,
        quote: Default::default(),
    });
    batch.bars.push(BarRow {
        ticker: Arc::from("AAPL"),
        bar_start: at,
        open: 1.0,
        high: 2.0,
        low: 0.5,
        close: 1.5,
        volume: 10,
        sequence: None,
        chart_day: None,
    });
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_costs_one_round_trip_through_a_delaying_proxy() {
    let pg = start_postgres();
    let url = pg.create_database("rtt").expect("db");
    let direct = Database::connect(&market_streamer::settings::database(&config_for(&url, &[])))
        .await
        .expect("connect");
    direct.migrate().await.expect("migrate");
    let delay = Duration::from_millis(20);
    let proxy = testkit::proxy::DelayProxy::start(pg.port(), delay)
        .await
        .expect("proxy");
    let db = Database::connect(&market_streamer::settings::database(&config_for(
        &proxy.url(&url, pg.port()),
        &[],
    )))
    .await
    .expect("connect through the proxy");

    // The first flush prepares the statements and creates the day's partitions.
    let first = batch_for_every_table(1_700_000_000_000);
    db.write(&first).await.expect("first write");
    for n in 1..=3 {
        let batch = batch_for_every_table(1_700_000_000_000 + n * 1_000);
        let turns = proxy.turns();
        let started = std::time::Instant::now();
        let report = db.write(&batch).await.expect("write");
        let elapsed = started.elapsed();
        assert_eq!((report.equities, report.options, report.bars), (20, 1, 1));
        assert_eq!(
            proxy.turns() - turns,
            1,
            "BEGIN, four statements and COMMIT in one round trip (took {elapsed:?})"
        );
        assert!(
            elapsed >= 2 * delay,
            "the proxy is in the path: {elapsed:?}"
        );
    }
    // One candle per batch (each starts at its batch's first quote).
    assert_eq!(count(&direct, "SELECT count(*) FROM equity_bars").await, 4);
    assert_eq!(
        count(&direct, "SELECT count(*) FROM latest_quotes").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_or_silent_connection_is_noticed_and_the_batch_retried() {
    use market_streamer::db::postgres::{PostgresSink, conn::ConnectSettings};
    let pg = start_postgres();
    let url = pg.create_database("cut").expect("db");
    let direct = Database::connect(&market_streamer::settings::database(&config_for(&url, &[])))
        .await
        .expect("connect");
    direct.migrate().await.expect("migrate");
    let proxy = testkit::proxy::DelayProxy::start(pg.port(), Duration::ZERO)
        .await
        .expect("proxy");
    let proxied = proxy.url(&url, pg.port());
    let cfg = config_for(&proxied, &[("BATCH_SIZE", "1"), ("BATCH_INTERVAL", "0.02")]);
    let mut settings = ConnectSettings::from_url(&proxied).expect("url");
    settings.set_statement_timeout(Duration::from_millis(500));
    let sink = PostgresSink::connect_with(
        &proxied,
        &market_streamer::settings::database(&cfg),
        settings,
    )
    .await
    .expect("connect through the proxy");
    let db = Arc::new(Database::Postgres(sink));

    let stats = Arc::new(PipelineStats::default());
    let mut writer_settings = market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest);
    writer_settings.retry_max = Duration::from_millis(200);
    writer_settings.shutdown_grace = Duration::from_secs(30);
    let writer = spawn_writer(db.clone(), writer_settings, stats.clone());
    let mut frames = equity_rows(1_700_000_000_000, 300, &["AAPL", "MSFT", "SPY"]).into_iter();

    // Connections cut while batches stream.
    for (i, rows) in frames.by_ref().take(150).enumerate() {
        writer.tx.send(rows).await.expect("send");
        if i % 50 == 25 {
            proxy.cut_all();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    wait_until(|| stats.rows_written() == 150).await;

    // A peer that stops answering: the flush deadline (statement timeout + as much again)
    // gives the connection up in about a second; the batch is retried on a new one.
    proxy.set_blackhole(true);
    let retries = PipelineStats::get(&stats.write_retries);
    for rows in frames.by_ref().take(10) {
        writer.tx.send(rows).await.expect("send");
    }
    let silent = std::time::Instant::now();
    wait_until(|| PipelineStats::get(&stats.write_retries) > retries).await;
    assert!(
        silent.elapsed() < Duration::from_secs(8),
        "a silent peer is noticed in seconds: {:?}",
        silent.elapsed()
    );
    proxy.set_blackhole(false);
    for rows in frames {
        writer.tx.send(rows).await.expect("send");
    }
    drop(writer.tx);
    let report = writer.task.await.expect("join").expect("writer drains");
    assert_eq!(report.rows_written, 300);
    assert!(
        proxy.connections() >= 3,
        "reconnected: {}",
        proxy.connections()
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM equity_data").await,
        300
    );
    assert_eq!(
        count(
            &direct,
            r#"SELECT count(*) FROM (SELECT DISTINCT ticker, "timestamp", seq FROM equity_data) k"#
        )
        .await,
        300,
        "zero duplicates"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_speaks_tls_with_sslmode_require() {
    let pg = testkit::TestPostgres::start_with(testkit::PgOptions {
        tls: true,
        ..testkit::PgOptions::default()
    })
    .expect("a test server with ssl=on");
    let url = pg.create_database("tls").expect("db");
    let db = Database::connect(&market_streamer::settings::database(&config_for(
        &format!("{url}?sslmode=require"),
        &[],
    )))
    .await
    .expect("connect with sslmode=require");
    db.migrate().await.expect("migrate");
    let report = db
        .write(&batch_for_every_table(1_700_000_000_000))
        .await
        .expect("write over TLS");
    assert_eq!(report.rows, 22);
    // Every connection of the service (the writer's and the shared one) is encrypted.
    let plain = pg
        .psql(
            "tls",
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = 'market-streamer' AND NOT s.ssl",
        )
        .expect("psql");
    let encrypted = pg
        .psql(
            "tls",
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = 'market-streamer' AND s.ssl",
        )
        .expect("psql");
    assert_eq!(plain.trim(), "0");
    assert!(
        encrypted.trim().parse::<u32>().expect("a count") >= 2,
        "{encrypted}"
    );

    // Against a server without TLS, sslmode=require refuses to go on in the clear.
    let plain_pg = start_postgres();
    let plain_url = plain_pg.create_database("plain").expect("db");
    let attempt = market_streamer::db::postgres::conn::ConnectSettings::from_url(&format!(
        "{plain_url}?sslmode=require"
    ))
    .expect("url")
    .connect()
    .await;
    let Err(err) = attempt else {
        panic!("sslmode=require connected without TLS")
    };
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
}
