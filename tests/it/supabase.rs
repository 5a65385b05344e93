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
    assert_eq!(
        policies, "11",
        "the four market tables, stream_gaps and the six market tables of issue 15 (not account_activity)"
    );
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

/// Every `realtime.send` call recorded by the stub, in order: (ms since the epoch when it
/// ran, topic|event|private, payload).
fn send_calls(pg: &TestPostgres, db: &str) -> Vec<(i64, String, serde_json::Value)> {
    let out = pg
        .psql(
            db,
            "SELECT (extract(epoch FROM called_at) * 1000)::bigint || '|' || topic || ',' || event || ',' || private || '|' || payload::text FROM realtime.send_calls ORDER BY id",
        )
        .expect("calls");
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.splitn(3, '|').collect();
            assert_eq!(parts.len(), 3, "{line}");
            (
                parts[0].parse().expect("ms"),
                parts[1].to_string(),
                serde_json::from_str(parts[2]).expect("payload JSON"),
            )
        })
        .collect()
}

fn ms(rfc3339: &serde_json::Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

fn processor() -> FrameProcessor {
    FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    )
}

/// The acceptance run of the live cadence: `BATCH_SIZE=1`, 100 symbols at one update a
/// second each for 30 s through the real writer: at most 30 / REALTIME_INTERVAL + 1
/// broadcasts, each with only tickers that changed since the one before, every committed
/// change carried by a later broadcast, every ticker's newest values in the last one that
/// holds it, and nothing while the market is silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_follows_realtime_interval_whatever_the_write_cadence() {
    use market_streamer::rows::Row;
    use market_streamer::writer::{OverflowPolicy, spawn_writer};
    use std::collections::HashMap;
    use std::time::Duration;

    let (pg, sb) = setup("cadence", false);
    let cfg = config_for(
        &sb.owner_url,
        &[
            ("REALTIME_MODE", "broadcast"),
            ("REALTIME_TOPIC", "market:test"),
            ("REALTIME_INTERVAL", "1"),
            ("BATCH_SIZE", "1"),
            ("BATCH_INTERVAL", "1"),
        ],
    );
    let stats = Arc::new(PipelineStats::default());
    let db = Arc::new(
        app::open_database_with(&cfg, stats.clone())
            .await
            .expect("open"),
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        send_calls(&pg, &sb.database).is_empty(),
        "nothing is sent before anything changed"
    );

    let writer = spawn_writer(
        db.clone(),
        market_streamer::settings::writer(&cfg, OverflowPolicy::Backpressure),
        stats.clone(),
    );
    let symbols: Vec<String> = (0..100).map(|i| format!("S{i:03}")).collect();
    let mut p = processor();
    let t0 = Utc::now().timestamp_millis();
    let start = tokio::time::Instant::now();
    const SECONDS: u64 = 30;
    for second in 0..SECONDS {
        for (i, sym) in symbols.iter().enumerate() {
            let offset = second * 1000 + i as u64 * 10;
            tokio::time::sleep_until(start + Duration::from_millis(offset)).await;
            let b = batch(
                &mut p,
                t0 + offset as i64,
                &[(sym, 100.0 + second as f64 + i as f64 / 1000.0)],
            );
            for row in b.equities {
                writer
                    .tx
                    .send(vec![Row::Equity(row)])
                    .await
                    .expect("the writer runs");
            }
        }
    }
    drop(writer.tx);
    let report = writer.task.await.expect("writer task").expect("writer");
    assert_eq!(report.rows_written, 100 * SECONDS);
    assert!(
        PipelineStats::get(&stats.flushes) > 5 * SECONDS,
        "BATCH_SIZE=1 writes many times a second ({} flushes)",
        PipelineStats::get(&stats.flushes)
    );
    // The last rows go out within one interval; then the market is silent.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = send_calls(&pg, &sb.database);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        send_calls(&pg, &sb.database).len(),
        calls.len(),
        "no broadcast while nothing changes"
    );

    assert!(
        calls.len() as u64 <= SECONDS + 1,
        "at most 30 / REALTIME_INTERVAL + 1 broadcasts, not one per flush: {}",
        calls.len()
    );
    assert!(calls.len() as u64 >= SECONDS - 5, "{}", calls.len());
    // A send starts one interval after the previous one ended, so even the server's stamps
    // are an interval apart (per-flush broadcasting would be ~10 ms apart here).
    for w in calls.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= 995,
            "broadcasts at least REALTIME_INTERVAL apart: {} ms",
            w[1].0 - w[0].0
        );
    }
    // Per ticker, the (time, price) of every broadcast quote, in order.
    let mut sent: HashMap<String, Vec<(i64, i64, f64)>> = HashMap::new();
    for (at, route, payload) in &calls {
        assert_eq!(
            route, "market:test,quotes,false",
            "public topic, event 'quotes'"
        );
        assert_eq!(
            (payload["part"].as_u64(), payload["parts"].as_u64()),
            (Some(1), Some(1))
        );
        let quotes = payload["quotes"].as_array().expect("quotes");
        assert_eq!(payload["count"].as_u64(), Some(quotes.len() as u64));
        let mut tickers: Vec<&str> = quotes.iter().filter_map(|q| q["ticker"].as_str()).collect();
        tickers.dedup();
        assert_eq!(tickers.len(), quotes.len(), "one quote per ticker, sorted");
        for q in quotes {
            let list = sent
                .entry(q["ticker"].as_str().expect("ticker").to_string())
                .or_default();
            let t = ms(&q["timestamp"]);
            // Only tickers that changed since the broadcast before.
            assert!(list.last().is_none_or(|last| last.1 < t), "{q}");
            list.push((*at, t, q["price"].as_f64().expect("price")));
            assert!(
                q.get("rsi").is_some() && q.get("vwap").is_some(),
                "indicators carried"
            );
        }
    }
    // Every committed change is carried by a broadcast after it (the same or a newer quote).
    let rows = pg
        .psql(
            &sb.database,
            "SELECT ticker || '|' || (extract(epoch FROM \"timestamp\") * 1000)::bigint || '|' || (extract(epoch FROM inserted_at) * 1000)::bigint || '|' || price FROM equity_data ORDER BY ticker, \"timestamp\"",
        )
        .expect("rows");
    let mut newest: HashMap<String, (i64, f64)> = HashMap::new();
    let mut checked = 0;
    for line in rows.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let (ticker, t, inserted, price): (&str, i64, i64, f64) = (
            f[0],
            f[1].parse().expect("t"),
            f[2].parse().expect("inserted"),
            f[3].parse().expect("price"),
        );
        let list = sent
            .get(ticker)
            .unwrap_or_else(|| panic!("{ticker} never sent"));
        assert!(
            list.iter().any(|(at, st, _)| *at >= inserted && *st >= t),
            "{ticker} at {t} (committed at {inserted}) is in no later broadcast"
        );
        newest.insert(ticker.to_string(), (t, price));
        checked += 1;
    }
    assert_eq!(checked, 100 * SECONDS);
    assert_eq!(newest.len(), 100);
    for (ticker, (t, price)) in &newest {
        let last = sent[ticker].last().expect("sent");
        assert_eq!(
            (last.1, last.2),
            (*t, *price),
            "{ticker}: the newest values were broadcast"
        );
    }
    // latest_quotes keeps the write cadence in broadcast mode (health_check and page loads).
    assert_eq!(
        pg.psql(&sb.database, "SELECT count(*) FROM latest_quotes")
            .expect("latest"),
        "100"
    );
    assert!(PipelineStats::get(&stats.realtime_sends) as usize >= calls.len());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_over_the_plans_payload_limit_is_split() {
    let (pg, sb) = setup("split", false);
    let cfg = config_for(
        &sb.owner_url,
        &[
            ("REALTIME_MODE", "broadcast"),
            ("REALTIME_TOPIC", "market:test"),
        ],
    );
    let db = app::open_database(&cfg).await.expect("open");
    let mut p = processor();
    let symbols: Vec<(String, f64)> = (0..1000)
        .map(|i| (format!("SYM{i:04}"), 100.0 + f64::from(i)))
        .collect();
    let refs: Vec<(&str, f64)> = symbols.iter().map(|(s, x)| (s.as_str(), *x)).collect();
    db.write(&batch(&mut p, Utc::now().timestamp_millis(), &refs))
        .await
        .expect("write 1000 tickers");
    db.close().await; // sends what is pending
    let calls = send_calls(&pg, &sb.database);
    assert!(
        calls.len() >= 2,
        "1000 quotes pass 256 KB: {} message(s)",
        calls.len()
    );
    let mut tickers = std::collections::BTreeSet::new();
    for (i, (_, _, payload)) in calls.iter().enumerate() {
        let bytes = payload.to_string().len();
        assert!(
            bytes <= 256_000,
            "part {i} is {bytes} bytes, over the Free plan's 256 KB"
        );
        assert_eq!(payload["part"].as_u64(), Some(i as u64 + 1));
        assert_eq!(payload["parts"].as_u64(), Some(calls.len() as u64));
        assert_eq!(payload["sent_at"], calls[0].2["sent_at"]);
        for q in payload["quotes"].as_array().expect("quotes") {
            assert!(tickers.insert(q["ticker"].as_str().expect("ticker").to_string()));
        }
    }
    assert_eq!(tickers.len(), 1000, "every ticker in exactly one part");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_on_latest_quotes_follow_the_cadence() {
    use std::time::Duration;
    let (pg, sb) = setup("changes_cadence", false);
    let cfg = config_for(
        &sb.owner_url,
        &[
            ("REALTIME_MODE", "postgres_changes"),
            ("REALTIME_INTERVAL", "1"),
        ],
    );
    let db = app::open_database(&cfg).await.expect("open");
    pg.psql(
        &sb.database,
        "SELECT 'ok' FROM pg_create_logical_replication_slot('rt_cadence', 'wal2json')",
    )
    .expect("slot (wal2json installed?)");
    let mut p = processor();
    let t0 = Utc::now().timestamp_millis();
    let start = std::time::Instant::now();
    for i in 0..40 {
        let x = 100.0 + f64::from(i);
        db.write(&batch(
            &mut p,
            t0 + i64::from(i) * 50,
            &[("AAPL", x), ("MSFT", x + 300.0)],
        ))
        .await
        .expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    db.close().await;
    let changes = pg
        .psql(
            &sb.database,
            "SELECT data FROM pg_logical_slot_get_changes('rt_cadence', null, null,
               'format-version', '2', 'include-pk', 'true', 'include-timestamp', 'true',
               'include-type-oids', 'true', 'include-transaction', 'false',
               'actions', 'insert,update,delete',
               'add-tables', (SELECT string_agg(format('%s.%s', schemaname, tablename), ',')
                              FROM pg_publication_tables WHERE pubname = 'supabase_realtime'));
             SELECT pg_drop_replication_slot('rt_cadence');",
        )
        .expect("read slot");
    let changes = changes.lines().filter(|l| l.starts_with('{')).count();
    let ticks = elapsed.ceil() as usize + 1;
    assert!(
        (2..=2 * ticks).contains(&changes),
        "{changes} latest_quotes changes for 40 flushes in {elapsed:.1} s: at most one per ticker per REALTIME_INTERVAL"
    );
    // The newest row is there (health_check freshness and page loads).
    assert_eq!(
        pg.psql(
            &sb.database,
            "SELECT string_agg(ticker || '=' || price, ',' ORDER BY ticker) FROM latest_quotes"
        )
        .expect("latest"),
        "AAPL=139,MSFT=439"
    );
    assert_eq!(
        pg.psql(&sb.database, "SELECT count(*) FROM realtime.send_calls")
            .expect("calls"),
        "0",
        "no Broadcast in postgres_changes mode"
    );
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
