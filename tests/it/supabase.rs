//! The Supabase contract on a database set up like Supabase: grants and RLS for the API roles,
//! postgres_changes through a wal2json slot read as Realtime reads it, Broadcast through a
//! stub `realtime.send`, daily partitions and retention, and the dashboard query.

use std::sync::Arc;

use crate::fixture;
use chrono::{Days, Utc};
use market_streamer::app;
use market_streamer::counters::PipelineStats;
use market_streamer::db::{Database, Sink};
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::Batch;
use testkit::TestPostgres;
use testkit::supabase::{self, SupabaseLike};
use testkit::{config_for, start_postgres};

fn setup(name: &str, legacy_grants: bool) -> (TestPostgres, SupabaseLike) {
    let pg = start_postgres();
    let sb = supabase::prepare(&pg, name, legacy_grants).expect("supabase-like database");
    (pg, sb)
}

/// Runs `sql` as `role` through the superuser connection; Err carries psql's message.
fn as_role(pg: &TestPostgres, db: &str, role: &str, sql: &str) -> Result<String, String> {
    pg.psql(db, &format!("SET ROLE {role};\n{sql}"))
        .map_err(|e| e.to_string())
}

/// A batch of equity rows for `symbols` at `timestamp_ms`, through the real parser and merge.
fn batch(processor: &mut FrameProcessor, timestamp_ms: i64, symbols: &[(&str, f64)]) -> Batch {
    let items: Vec<String> = symbols
        .iter()
        .map(|(s, p)| {
            format!(
                r#"{{"key":"{s}","1":{},"2":{},"3":{p},"8":1000}}"#,
                p - 0.01,
                p + 0.01
            )
        })
        .collect();
    let frame = format!(
        r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{timestamp_ms},"content":[{}]}}]}}"#,
        items.join(",")
    );
    let mut rows = Vec::new();
    processor.process_text(&frame, 0, &mut rows);
    let mut b = Batch::default();
    rows.into_iter().for_each(|r| b.push(r));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anon_reads_market_tables_and_cannot_write_or_read_anything_else() {
    let (pg, sb) = setup("grants", true);
    let cfg = config_for(&sb.owner_url, &[("REALTIME_MODE", "both")]);
    app::replay(&cfg, &fixture("session.jsonl"))
        .await
        .expect("migrations and replay run as the non-superuser owner");
    let db = &sb.database;

    for role in ["anon", "authenticated"] {
        for table in ["equity_data", "option_data", "equity_bars", "latest_quotes"] {
            let n = as_role(&pg, db, role, &format!("SELECT count(*) FROM {table}"))
                .expect("select allowed");
            assert!(
                n.parse::<i64>().expect("count") > 0,
                "{role} sees rows of {table}"
            );
        }
        as_role(&pg, db, role, "SELECT count(*) FROM stream_gaps")
            .expect("stream_gaps is readable");
        for sql in [
            "INSERT INTO latest_quotes (ticker, \"timestamp\") VALUES ('X', now())",
            "UPDATE equity_data SET price = 0",
            "DELETE FROM equity_bars",
            "SELECT count(*) FROM equity_data_p20250813",
            "SELECT count(*) FROM equity_data_default",
            "SELECT count(*) FROM refinery_schema_history",
            "SELECT market_admin.ensure_day_partition('equity_data', current_date)",
            "SELECT count(*) FROM schwab_tokens",
            "SELECT count(*) FROM batch_ledger",
            "SELECT count(*) FROM rejected_rows",
            "INSERT INTO stream_gaps (gap_start, gap_end, reason) VALUES (now(), now(), 'x')",
        ] {
            let err =
                as_role(&pg, db, role, sql).expect_err(&format!("{role} must not run: {sql}"));
            assert!(err.contains("permission denied"), "{role}: {sql}: {err}");
        }
    }
    for sql in [
        "SELECT count(*) FROM schwab_tokens",
        "SELECT count(*) FROM batch_ledger",
    ] {
        let err = as_role(&pg, db, "service_role", sql).expect_err(sql);
        assert!(
            err.contains("permission denied"),
            "service_role: {sql}: {err}"
        );
    }
    // RLS is on, with a read-only policy.
    let rls = pg
        .psql(db, "SELECT string_agg(relname || '=' || relrowsecurity, ',' ORDER BY relname) FROM pg_class WHERE relname IN ('equity_data','option_data','equity_bars','latest_quotes')")
        .expect("rls");
    assert_eq!(
        rls,
        "equity_bars=true,equity_data=true,latest_quotes=true,option_data=true"
    );
    let policies = pg.psql(db, "SELECT count(*) FROM pg_policies WHERE policyname = 'market_data_read' AND cmd = 'SELECT'").expect("policies");
    assert_eq!(policies, "5", "the four market tables and stream_gaps");
    // The owner is not a superuser, as on Supabase.
    assert_eq!(
        pg.psql(
            db,
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'"
        )
        .expect("role"),
        "f"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_reach_a_wal2json_slot_under_latest_quotes() {
    let (pg, sb) = setup("changes", false);
    let cfg = config_for(&sb.owner_url, &[("REALTIME_MODE", "postgres_changes")]);
    app::migrate(&cfg).await.expect("migrate + realtime setup");
    let db = &sb.database;
    assert_eq!(
        pg.psql(db, "SELECT string_agg(tablename, ',') FROM pg_publication_tables WHERE pubname = 'supabase_realtime'").expect("pub"),
        "latest_quotes",
        "only the small unpartitioned table is published"
    );
    pg.psql(
        db,
        "SELECT 'ok' FROM pg_create_logical_replication_slot('rt_probe', 'wal2json')",
    )
    .expect("slot (wal2json installed?)");

    app::replay(&cfg, &fixture("session.jsonl"))
        .await
        .expect("replay");

    let changes = pg
        .psql(
            db,
            "SELECT data FROM pg_logical_slot_get_changes('rt_probe', null, null,
               'format-version', '2', 'include-pk', 'true', 'include-timestamp', 'true',
               'include-type-oids', 'true', 'include-transaction', 'false',
               'actions', 'insert,update,delete',
               'add-tables', (SELECT string_agg(format('%s.%s', schemaname, tablename), ',')
                              FROM pg_publication_tables WHERE pubname = 'supabase_realtime'));
             SELECT pg_drop_replication_slot('rt_probe');",
        )
        .expect("read slot");
    let changes: Vec<serde_json::Value> = changes
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("wal2json JSON"))
        .collect();
    assert!(
        !changes.is_empty(),
        "latest_quotes changes are visible to Realtime"
    );
    for c in &changes {
        assert_eq!(c["table"], "latest_quotes", "{c}");
        assert_eq!(c["schema"], "public");
        assert_eq!(
            c["pk"][0]["name"], "ticker",
            "a primary key, or Realtime answers 'no primary key'"
        );
    }
    let tickers: std::collections::BTreeSet<String> = changes
        .iter()
        .filter_map(|c| {
            c["columns"]
                .as_array()?
                .iter()
                .find(|col| col["name"] == "ticker")?["value"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(tickers.into_iter().collect::<Vec<_>>(), ["AAPL", "MSFT"]);

    // Switching the mode off takes the table out of the publication again.
    app::migrate(&config_for(&sb.owner_url, &[("REALTIME_MODE", "off")]))
        .await
        .expect("migrate");
    assert_eq!(
        pg.psql(
            db,
            "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        )
        .expect("pub"),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_sends_exactly_one_aggregated_message_per_flush() {
    let (pg, sb) = setup("broadcast", false);
    let cfg = config_for(
        &sb.owner_url,
        &[
            ("REALTIME_MODE", "broadcast"),
            ("REALTIME_TOPIC", "market:test"),
        ],
    );
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    db.prepare_realtime(cfg.realtime.mode)
        .await
        .expect("realtime");

    let mut p = FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    );
    let now = Utc::now().timestamp_millis();
    let mut first = batch(&mut p, now, &[("AAPL", 230.0), ("MSFT", 420.0)]);
    let mut more = batch(&mut p, now + 500, &[("AAPL", 230.5)]);
    first.equities.append(&mut more.equities); // AAPL twice in one flush: only its newest quote is sent
    db.write(&first).await.expect("flush 1");
    db.write(&batch(&mut p, now + 1000, &[("NVDA", 180.0)]))
        .await
        .expect("flush 2");
    db.write(&Batch::default())
        .await
        .expect("an empty flush broadcasts nothing");

    let calls = pg
        .psql(&sb.database, "SELECT topic || '|' || event || '|' || private || '|' || payload::text FROM realtime.send_calls ORDER BY id")
        .expect("calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "one message per flush: {calls:?}");
    let parse = |line: &str| -> serde_json::Value {
        let parts: Vec<&str> = line.splitn(4, '|').collect();
        assert_eq!(
            &parts[..3],
            ["market:test", "quotes", "false"],
            "public topic, event 'quotes'"
        );
        serde_json::from_str(parts[3]).expect("payload JSON")
    };
    let one = parse(calls[0]);
    assert_eq!(one["count"], 2);
    let quotes = one["quotes"].as_array().expect("quotes");
    assert_eq!(quotes.len(), 2);
    let aapl = quotes.iter().find(|q| q["ticker"] == "AAPL").expect("AAPL");
    assert_eq!(aapl["price"], 230.5, "the newest AAPL quote of the flush");
    assert_eq!(aapl["bid"], 230.49);
    assert!(aapl["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    for indicator in [
        "sma",
        "ema_fast",
        "ema_slow",
        "rsi",
        "macd",
        "macd_signal",
        "macd_hist",
        "bb_upper",
        "bb_middle",
        "bb_lower",
        "vwap",
    ] {
        assert!(
            aapl.get(indicator).is_some(),
            "the payload carries {indicator} (null until warmed up)"
        );
    }
    let cols = pg
        .psql(&sb.database, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'latest_quotes' AND column_name IN ('sma','rsi','macd','vwap','bb_upper')")
        .expect("columns");
    assert_eq!(cols, "5", "latest_quotes carries the indicator columns");
    let two = parse(calls[1]);
    assert_eq!(two["quotes"][0]["ticker"], "NVDA");
    assert_eq!(two["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_is_skipped_without_a_realtime_schema() {
    let pg = start_postgres();
    let url = pg.create_database("plain").expect("db");
    let cfg = config_for(&url, &[("REALTIME_MODE", "both")]);
    let summary = app::replay(&cfg, &fixture("session.jsonl"))
        .await
        .expect("plain PostgreSQL works in every mode");
    assert_eq!(summary.writer.rows_written, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_created_ahead_and_old_ones_dropped() {
    let (pg, sb) = setup("retention", true);
    let cfg = config_for(
        &sb.owner_url,
        &[
            ("TICK_RETENTION_DAYS", "7"),
            ("BAR_RETENTION_DAYS", "30"),
            ("PARTITION_PREMAKE_DAYS", "3"),
        ],
    );
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let Database::Postgres(sink) = &db else {
        panic!("postgres")
    };

    let today = Utc::now().date_naive();
    let day = |offset: i64| {
        if offset >= 0 {
            today.checked_add_days(Days::new(offset as u64))
        } else {
            today.checked_sub_days(Days::new((-offset) as u64))
        }
        .expect("date")
    };
    let ms = |d: chrono::NaiveDate| {
        d.and_hms_opt(12, 0, 0)
            .expect("noon")
            .and_utc()
            .timestamp_millis()
    };
    let mut p = FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    );
    // Rows 10 days old and from today: the writer creates their day partitions itself.
    db.write(&batch(&mut p, ms(day(-10)), &[("OLD", 1.0)]))
        .await
        .expect("old rows");
    db.write(&batch(&mut p, ms(today), &[("NEW", 2.0)]))
        .await
        .expect("new rows");
    let name = |d: chrono::NaiveDate| format!("equity_data_p{}", d.format("%Y%m%d"));
    let exists = |table: &str| {
        pg.psql(
            &sb.database,
            &format!("SELECT to_regclass('public.{table}') IS NOT NULL"),
        )
        .expect("q")
            == "t"
    };
    assert!(exists(&name(day(-10))));
    pg.psql(&sb.database, "INSERT INTO equity_bars (ticker, bar_start, open, high, low, close, volume) VALUES ('OLD', now() - interval '40 days', 1,1,1,1,1), ('NEW', now(), 1,1,1,1,1)")
        .expect("bars");
    // The ledger entry of a batch committed as long ago as the dropped ticks goes with them.
    pg.psql(&sb.database, "UPDATE batch_ledger SET committed_at = now() - interval '10 days' WHERE batch_id = (SELECT min(batch_id) FROM batch_ledger)")
        .expect("age a ledger entry");

    let report = sink
        .maintain(&market_streamer::settings::retention(&cfg).keep, today)
        .await
        .expect("maintenance");
    for offset in -1..=3 {
        assert!(
            exists(&name(day(offset))),
            "partition for day {offset} exists"
        );
        assert!(exists(&format!(
            "option_data_p{}",
            day(offset).format("%Y%m%d")
        )));
    }
    assert!(
        !exists(&name(day(-10))),
        "older than TICK_RETENTION_DAYS: dropped"
    );
    assert_eq!(
        report.partitions_dropped, 1,
        "the equity_data partition of day -10 (option_data had none)"
    );
    assert_eq!(report.bars_deleted, 1);
    assert_eq!(report.ledger_deleted, 1);
    assert_eq!(
        pg.psql(&sb.database, "SELECT count(*) FROM batch_ledger")
            .expect("ledger"),
        "1",
        "today's entry stays"
    );
    assert!(report.database_bytes > 1_000_000);
    let tickers = pg
        .psql(
            &sb.database,
            "SELECT string_agg(DISTINCT ticker, ',') FROM equity_data",
        )
        .expect("q");
    assert_eq!(tickers, "NEW");
    // New partitions are locked down like the others, even with legacy default grants.
    let err = as_role(
        &pg,
        &sb.database,
        "anon",
        &format!("SELECT 1 FROM {}", name(day(3))),
    )
    .expect_err("direct partition access");
    assert!(err.contains("permission denied"), "{err}");
    // Running it again changes nothing.
    let again = sink
        .maintain(&market_streamer::settings::retention(&cfg).keep, today)
        .await
        .expect("maintenance");
    assert_eq!((again.partitions_created, again.partitions_dropped), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_query_runs_as_written() {
    let (pg, sb) = setup("dashboard", false);
    let cfg = config_for(&sb.owner_url, &[]);
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let mut p = FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    );
    let now = Utc::now().timestamp_millis();
    for i in 0..12 {
        db.write(&batch(
            &mut p,
            now - 12_000 + i * 1000,
            &[("QQQ", 500.0 + i as f64)],
        ))
        .await
        .expect("write");
    }
    let out = as_role(
        &pg,
        &sb.database,
        "anon",
        "SELECT timestamp, price, volume, AGE(NOW(), timestamp) AS data_age FROM equity_data WHERE ticker = 'QQQ' ORDER BY timestamp DESC LIMIT 10;",
    )
    .expect("the dashboard query runs as anon");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 10);
    assert!(rows[0].contains("|511|1000|"), "newest first: {}", rows[0]);
}
