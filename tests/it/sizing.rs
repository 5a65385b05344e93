//! Measures the on-disk bytes per `equity_data` row in PostgreSQL (heap + primary key, the
//! figure SCHEMA.md's sizing table uses) and guards it against bloat.

use std::sync::Arc;

use market_streamer::counters::PipelineStats;
use market_streamer::db::{Database, Sink};
use market_streamer::indicators::IndicatorEngine;
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::Batch;
use testkit::{config_for, start_postgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equity_data_bytes_per_row() {
    let pg = start_postgres();
    let url = pg.create_database("sizing").expect("db");
    let cfg = config_for(&url, &[]);
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");

    // 100 symbols x 200 updates of realistic merged quotes (every field set, as after a snapshot).
    // A fixed hour inside one New York day (10:00–11:00 on 2025-01-08): the session VWAP
    // restarts at New York midnight, which a window ending "now" could straddle.
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-08T15:00:00Z")
        .expect("RFC 3339")
        .timestamp_millis();
    // Every indicator column set too: each symbol's indicators warmed up on 40 earlier bars.
    let mut engine =
        IndicatorEngine::new(market_streamer::settings::indicators(&cfg)).expect("default periods");
    for s in 0..100 {
        let sym: Arc<str> = Arc::from(format!("SYM{s:03}"));
        for bar in 0..40i64 {
            let ts = start - (41 - bar) * 60_000;
            engine.on_tick(
                &sym,
                (ts, 0),
                Some(100.0 + (bar % 7) as f64),
                Some(bar * 1000),
            );
        }
    }
    let mut processor = FrameProcessor::new(Arc::new(PipelineStats::default()), engine);
    let rows_total = 20_000i64;
    let mut batch = Batch::default();
    for i in 0..rows_total {
        let sym = format!("SYM{:03}", i % 100);
        let p = 100.0 + (i % 997) as f64 / 100.0;
        let frame = format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{},"content":[{{"key":"{sym}","1":{},"2":{},"3":{p},"4":3,"5":2,"8":{},"9":100,"10":{},"11":{},"12":99.5,"17":99.8,"18":{},"32":"Normal","33":{p},"34":{},"35":{},"42":0.51}}]}}]}}"#,
            start + i * 180,
            p - 0.01,
            p + 0.01,
            1_000_000 + i * 100,
            p + 1.0,
            p - 1.0,
            p - 99.5,
            start + i * 180,
            start + i * 180
        );
        let mut rows = Vec::new();
        processor.process_text(&frame, 0, &mut rows);
        for r in &rows {
            if let market_streamer::rows::Row::Equity(e) = r {
                assert!(
                    e.indicators.to_array().iter().all(Option::is_some),
                    "indicators set"
                );
            }
        }
        rows.into_iter().for_each(|r| batch.push(r));
        if batch.len() == 1000 {
            db.write(&batch).await.expect("write");
            batch = Batch::default();
        }
    }
    let client = testkit::pg_client(&url).await.expect("connect");
    client
        .batch_execute("VACUUM ANALYZE equity_data")
        .await
        .expect("vacuum");
    let bytes = testkit::pg_i64(
        &client,
        "SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits WHERE inhparent = 'equity_data'::regclass",
    )
    .await
    .expect("size");
    let per_row = bytes as f64 / rows_total as f64;
    println!("equity_data: {per_row:.0} bytes per row (heap + primary key, {rows_total} rows)");
    assert!(
        (100.0..400.0).contains(&per_row),
        "{per_row} bytes per row is out of the expected band"
    );
}
