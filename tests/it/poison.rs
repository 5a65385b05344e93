//! Poison in the stream: items no real Schwab symbol or clock could produce are refused one by
//! one at the parser, counted, and never reach the database; their neighbours in the same frame
//! are stored. Through replay into PostgreSQL and SQLite. Rows PostgreSQL rejects are
//! quarantined, and its error texts reach logs without the row values some of them quote.

use market_streamer::app;
use testkit::{config_for, start_postgres};

/// 2025-08-13 15:00 UTC.
const T: i64 = 1_755_097_200_000;

/// A recording whose frames each mix good items with one kind of poison.
fn poisoned_recording() -> String {
    let quote = |key: &str, ts: i64, extra: &str| {
        format!(r#"{{"key":"{key}","1":99.9,"2":100.1,"3":100.0,"8":1000{extra}}}"#)
            .replace("TS", &ts.to_string())
    };
    let frame = |ts: i64, items: Vec<String>| {
        format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{ts},"command":"SUBS","content":[{}]}}]}}"#,
            items.join(",")
        )
    };
    let long_key = "X".repeat(10_000);
    let lines = [
        frame(
            T,
            vec![
                quote("AAPL", T, ""),
                quote("BAD\\u0000KEY", T, ""),
                quote("MSFT", T, ""),
            ],
        ),
        frame(
            T + 1_000,
            vec![quote(&long_key, T, ""), quote("AAPL", T, "")],
        ),
        frame(
            T + 2_000,
            vec![
                quote("MSFT", T, r#","34":-300000000000000"#),
                quote("SPY", T, ""),
            ],
        ),
        frame(
            T + 3_000,
            vec![
                quote("SPY", T, r#","35":4102444800000"#),
                quote("QQQ", T, ""),
            ],
        ),
        // An item whose own timestamp is in 2100 (it would freeze latest_quotes).
        format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":4102444800000,"command":"SUBS","content":[{}]}}]}}"#,
            quote("NVDA", T, "")
        ),
        format!(
            r#"{{"data":[{{"service":"CHART_EQUITY","timestamp":{},"command":"SUBS","content":[{{"seq":1,"key":"AAPL","1":600,"2":1.0,"3":1.0,"4":1.0,"5":1.0,"6":10,"7":-300000000000000,"8":20313}},{{"seq":2,"key":"MSFT","1":600,"2":1.0,"3":1.0,"4":1.0,"5":1.0,"6":10,"7":{},"8":20313}}]}}]}}"#,
            T + 5_000,
            T - 60_000
        ),
        frame(T + 6_000, vec![quote("NVDA", T + 6_000, "")]),
    ];
    lines.join("\n") + "\n"
}

async fn replay_poison(database_url: &str) -> app::ReplaySummary {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("poison.jsonl");
    std::fs::write(&path, poisoned_recording()).expect("write");
    let cfg = config_for(
        database_url,
        &[("BATCH_SIZE", "3"), ("BATCH_INTERVAL", "0.05")],
    );
    let summary = app::replay(&cfg, &path)
        .await
        .expect("replay never fails on poison");
    // Refused: control character, 10,000-char key, quote time, trade time, event time in
    // 2100, candle start. Stored: every neighbour.
    assert_eq!(summary.items_refused, 6, "{summary}");
    assert_eq!(summary.equity_rows, 6, "{summary}");
    assert_eq!(summary.bar_rows, 1, "{summary}");
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_items_are_refused_alone_into_postgres() {
    let pg = start_postgres();
    let url = pg.create_database("poison").expect("db");
    replay_poison(&url).await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(conn);
    let n: i64 = client
        .query_one("SELECT count(*) FROM equity_data", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 6);
    // latest_quotes follows real time: NVDA's newest quote is the real one of 15:00:06.
    let nvda: chrono::DateTime<chrono::Utc> = client
        .query_one(
            r#"SELECT "timestamp" FROM latest_quotes WHERE ticker = 'NVDA'"#,
            &[],
        )
        .await
        .expect("NVDA")
        .get(0);
    assert_eq!(nvda.timestamp_millis(), T + 6_000);
    driver.abort();
}

#[tokio::test]
async fn poison_items_are_refused_alone_into_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    replay_poison(&url).await;
}

/// A recording where one AAPL quote carries a NUL in its security status: PostgreSQL refuses
/// that text (SQLSTATE 22021), SQLite stores it. The status is merged into AAPL's later rows
/// too (a field stays until Schwab changes it), so AAPL's rows from then on (6 of them) are
/// refused; MSFT's are not.
fn nul_recording() -> String {
    (0..10)
        .map(|i| {
            let status = if i == 4 { r#","32":"Nor\u0000mal""# } else { "" };
            format!(
                r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{},"command":"SUBS","content":[{{"key":"AAPL","3":{}{status}}},{{"key":"MSFT","3":{}}}]}}]}}"#,
                T + i * 1_000,
                200.0 + i as f64,
                400.0 + i as f64
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_postgres_rejects_is_quarantined_and_its_neighbours_written() {
    let pg = start_postgres();
    let url = pg.create_database("rejected").expect("db");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nul.jsonl");
    std::fs::write(&path, nul_recording()).expect("write");
    // One batch for the whole recording: the 6 bad rows are isolated from 14 good ones.
    let cfg = config_for(&url, &[("BATCH_SIZE", "100"), ("BATCH_INTERVAL", "5")]);
    let summary = app::replay(&cfg, &path)
        .await
        .expect("a rejected row never stops the service");
    assert_eq!(summary.writer.rows_written, 14, "{summary}");
    assert_eq!(summary.writer.rows_quarantined, 6, "{summary}");
    let client = testkit::pg_client(&url).await.expect("connect");
    let stored = testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
        .await
        .expect("count");
    let quarantined = client
        .query_one(
            "SELECT table_name, row_json, sqlstate, error FROM rejected_rows ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .expect("a quarantined row");
    assert_eq!(stored, 14, "received (20) = stored + quarantined");
    assert_eq!(quarantined.get::<_, String>(0), "equity_data");
    assert!(quarantined.get::<_, String>(1).contains("Nor\\u0000mal"));
    assert_eq!(
        quarantined.get::<_, Option<String>>(2).as_deref(),
        Some("22021")
    );

    // The same recording again: nothing new stored, the bad rows quarantined again (they
    // are still refused), no failure.
    let again = app::replay(&cfg, &path).await.expect("replay again");
    assert_eq!(again.writer.rows_quarantined, 6);
    assert_eq!(
        testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
            .await
            .expect("count"),
        14
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_batch_with_a_rejected_row_is_replayed_without_a_crash_loop() {
    use market_streamer::counters::PipelineStats;
    use market_streamer::db::Database;
    use market_streamer::writer::{OverflowPolicy, SpoolSettings, spawn_writer};
    use std::sync::Arc;

    let pg = start_postgres();
    let url = pg.create_database("spooled_poison").expect("db");
    let cfg = config_for(&url, &[]);
    let db = Arc::new(
        Database::connect(&market_streamer::settings::database(&cfg))
            .await
            .expect("connect"),
    );
    db.migrate().await.expect("migrate");
    // A batch parked in the spool during an outage, one of its rows poison for PostgreSQL.
    let engine = market_streamer::indicators::IndicatorEngine::new(Default::default())
        .expect("default periods");
    let mut processor =
        market_streamer::pipeline::FrameProcessor::new(Arc::new(PipelineStats::default()), engine);
    let mut batch = market_streamer::rows::Batch::default();
    for line in nul_recording().lines() {
        let mut rows = Vec::new();
        processor.process_text(line, T, &mut rows);
        rows.into_iter().for_each(|r| batch.push(r));
    }
    assert_eq!(batch.len(), 20);
    let spool_dir = tempfile::tempdir().expect("spool");
    {
        let (mut spool, _) =
            market_streamer::spool::Spool::open(spool_dir.path(), 1 << 30).expect("spool");
        spool.append(&batch).expect("park");
    }
    // Two restarts: each replays the spool; neither stops on the bad row.
    for run in 0..2 {
        let stats = Arc::new(PipelineStats::default());
        let mut settings = market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest);
        settings.spool = Some(SpoolSettings {
            dir: spool_dir.path().to_path_buf(),
            max_bytes: 1 << 30,
        });
        let writer = spawn_writer(db.clone(), settings, stats.clone());
        drop(writer.tx);
        let report = writer.task.await.expect("join").expect("no crash loop");
        assert_eq!(report.rows_left_in_spool, 0, "run {run}: the spool drained");
    }
    let client = testkit::pg_client(&url).await.expect("connect");
    assert_eq!(
        testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
            .await
            .expect("count"),
        14
    );
    assert_eq!(
        testkit::pg_i64(&client, "SELECT count(*) FROM rejected_rows")
            .await
            .expect("count"),
        6
    );
}

/// A live frame from the stream mixing good items with each kind of poison.
fn live_poison_frame() -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let item =
        |key: &str, extra: &str| format!(r#"{{"key":"{key}","1":9.9,"2":10.1,"3":10.0{extra}}}"#);
    let long_key = "Y".repeat(10_000);
    let items = [
        item("ZZGOOD", ""),
        item("BAD\\u0000KEY", ""),
        item(&long_key, ""),
        item("ZZQUOTE", r#","34":-300000000000000"#),
        item("ZZTRADE", r#","35":4102444800000"#),
        item("ZZLATE", ""),
    ];
    format!(
        r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{now},"command":"SUBS","content":[{}]}}]}}"#,
        items.join(",")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_poison_is_refused_item_by_item_and_the_service_streams_on() {
    use testkit::service::{ServiceOptions, TestService, fast_sim};
    let pg = start_postgres();
    let pg_url = pg.create_database("live_poison").expect("db");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite_url = format!("sqlite://{}", dir.path().join("market.db").display());
    for url in [pg_url.as_str(), sqlite_url.as_str()] {
        // Only subscribed keys are stored: the good neighbours are subscribed.
        let symbols = [("SYMBOLS", "AAPL,MSFT,ZZGOOD,ZZLATE")];
        let mut run = TestService::start(fast_sim(), url, &symbols, ServiceOptions::default())
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        run.wait_streamed(1).await;
        run.sim().send_raw(&live_poison_frame());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let good = match url.starts_with("sqlite") {
                true => {
                    run.count("equity_data WHERE ticker IN ('ZZGOOD', 'ZZLATE') AND bid = 9.9 AND ask = 10.1")
                        .await
                }
                false => {
                    let client = testkit::pg_client(url).await.expect("connect");
                    testkit::pg_i64(
                        &client,
                        "SELECT count(*) FROM equity_data WHERE ticker IN ('ZZGOOD', 'ZZLATE') AND bid = 9.9 AND ask = 10.1",
                    )
                    .await
                    .unwrap_or(0)
                }
            };
            // Both neighbours stored (the simulator streams them too, and its later deltas
            // keep the merged bid and ask: more rows may match).
            if good >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{url}: the good neighbours were not stored"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let summary = run.stop().await;
        assert_eq!(
            summary.items_refused, 4,
            "{url}: control character, long key, quote time, trade time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_that_quotes_row_values_is_shown_without_them() {
    use market_streamer::db::SinkError;
    let pg = start_postgres();
    let url = pg.create_database("detail").expect("db");
    let client = testkit::pg_client(&url).await.expect("connect");
    client
        .batch_execute(
            "CREATE TABLE t (account text PRIMARY KEY, kind text NOT NULL CHECK (kind <> 'x'));
             INSERT INTO t VALUES ('ACCT-12345678', 'a');",
        )
        .await
        .expect("table");
    let cases = [
        ("INSERT INTO t VALUES ('ACCT-12345678', 'b')", "23505"),
        ("INSERT INTO t VALUES ('ACCT-87654321', NULL)", "23502"),
        ("INSERT INTO t VALUES ('ACCT-87654321', 'x')", "23514"),
    ];
    for (sql, code) in cases {
        let e = client.batch_execute(sql).await.expect_err("refused");
        let err = SinkError::new("insert into t", e);
        let text = err.to_string();
        assert_eq!(err.code().as_deref(), Some(code), "{text}");
        assert!(
            !text.contains("ACCT-") && text.contains("detail withheld"),
            "{sql}: {text}"
        );
    }
    // A detail without row values is kept.
    let e = client
        .batch_execute("SELECT 'x'::jsonb")
        .await
        .expect_err("invalid json");
    let text = SinkError::new("cast", e).to_string();
    assert!(text.contains("detail: Token \"x\" is invalid"), "{text}");
}
