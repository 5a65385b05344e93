//! Retention on SQLite: old rows are deleted in bounded chunks; recent rows and
//! `latest_quotes` stay; the file size is reported.

use std::sync::Arc;

use chrono::Utc;
use market_streamer::counters::PipelineStats;
use market_streamer::db::{Database, Sink};
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::Batch;
use testkit::config_for;

#[tokio::test]
async fn old_rows_are_deleted_in_chunks_and_recent_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/r.db", dir.path().display());
    let cfg = config_for(
        &url,
        &[("TICK_RETENTION_DAYS", "7"), ("BAR_RETENTION_DAYS", "30")],
    );
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("open");
    db.migrate().await.expect("migrate");

    let mut processor = FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    );
    let now = Utc::now().timestamp_millis();
    let day = 86_400_000;
    // 12,000 rows 20 days old (more than two delete chunks), 10 rows from today.
    let mut batch = Batch::default();
    for i in 0..12_010i64 {
        let ts = if i < 12_000 {
            now - 20 * day + i
        } else {
            now - 1000 + i - 12_000
        };
        let frame = format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{ts},"content":[{{"key":"T{}","3":1.5}}]}}]}}"#,
            i % 7
        );
        let mut rows = Vec::new();
        processor.process_text(&frame, 0, &mut rows);
        rows.into_iter().for_each(|r| batch.push(r));
    }
    db.write(&batch).await.expect("write");
    let Database::Sqlite(lite) = &db else {
        panic!("sqlite")
    };
    // A ledger entry from 20 days ago goes with the old ticks; today's (the batch above) stays.
    sqlx::query("INSERT INTO batch_ledger (batch_id, row_count, committed_at) VALUES (1, 5, ?)")
        .bind(market_streamer::db::sqlite::sqlite_time(
            Utc::now() - chrono::Duration::days(20),
        ))
        .execute(lite.pool())
        .await
        .expect("old ledger entry");

    let stats = PipelineStats::default();
    let report = market_streamer::retention::run_once(
        &db,
        &market_streamer::settings::retention(&cfg),
        &stats,
    )
    .await
    .expect("retention");
    assert_eq!(
        report.rows_deleted, 12_001,
        "12,000 ticks and one ledger entry"
    );
    assert!(report.database_bytes > 0);
    assert_eq!(
        stats
            .database_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
        report.database_bytes
    );

    let ledger: Vec<i64> = sqlx::query_scalar("SELECT batch_id FROM batch_ledger")
        .fetch_all(lite.pool())
        .await
        .expect("ledger");
    assert_eq!(ledger, vec![batch.id.get()]);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM equity_data")
        .fetch_one(lite.pool())
        .await
        .expect("count");
    assert_eq!(left, 10);
    let latest: i64 = sqlx::query_scalar("SELECT count(*) FROM latest_quotes")
        .fetch_one(lite.pool())
        .await
        .expect("count");
    assert_eq!(latest, 7, "latest_quotes keeps one row per ticker");
}

#[tokio::test]
async fn the_size_warning_trips_near_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/s.db", dir.path().display());
    // 50 MB limit, warn at 1 %: a fresh database (~100 kB) is below; 0.01 % would not exist.
    let cfg = config_for(
        &url,
        &[("DB_SIZE_LIMIT_MB", "50"), ("DB_SIZE_WARN_PERCENT", "1")],
    );
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("open");
    db.migrate().await.expect("migrate");
    let stats = PipelineStats::default();
    market_streamer::retention::run_once(&db, &market_streamer::settings::retention(&cfg), &stats)
        .await
        .expect("retention");
    assert!(
        !stats
            .database_near_limit
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let Database::Sqlite(lite) = &db else {
        panic!("sqlite")
    };
    // Grow the file past 1 % of 50 MB (524 kB).
    sqlx::query("CREATE TABLE filler AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i, randomblob(1000) AS b FROM n")
        .execute(lite.pool())
        .await
        .expect("filler");
    market_streamer::retention::run_once(&db, &market_streamer::settings::retention(&cfg), &stats)
        .await
        .expect("retention");
    assert!(
        stats
            .database_near_limit
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}
