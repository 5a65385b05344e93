//! `replay` end to end: the recorded session fixture into SQLite and into a real PostgreSQL.

use crate::fixture;
use market_streamer::app;
use sqlx::Row;
use testkit::{config_for, start_postgres};

/// What the fixture holds (see tests/fixtures/session.jsonl): 6 LEVELONE_EQUITIES updates,
/// 2 LEVELONE_OPTIONS updates, 3 CHART_EQUITY items for 2 distinct candles, one bad item
/// (`"key": 5`) and two malformed lines.
fn check_summary(s: &app::ReplaySummary) {
    assert_eq!(s.counts.lines, 16);
    assert_eq!(s.counts.blank_lines, 1);
    assert_eq!(
        s.counts.malformed_lines, 2,
        "the non-JSON line and the truncated one"
    );
    assert_eq!(s.skipped_items, 1, "the item with \"key\": 5");
    assert_eq!(s.updates, 11);
    assert_eq!((s.equity_rows, s.option_rows, s.bar_rows), (6, 2, 3));
    assert_eq!(s.writer.rows_written, 11);
    assert_eq!(s.writer.rows_dropped, 0);
}

#[tokio::test]
async fn replay_into_sqlite_writes_merged_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("nested/replay.db");
    let url = format!("sqlite://{}", db_path.display());
    let cfg = config_for(&url, &[("BATCH_SIZE", "3")]);
    let summary = app::replay(&cfg, &fixture("session.jsonl"))
        .await
        .expect("replay");
    check_summary(&summary);

    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM equity_data")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 6, "exactly one row per LEVELONE update");
    // The last AAPL update carried only field 8; everything else is merged from earlier ones.
    let last = sqlx::query(
        r#"SELECT price, volume, bid, ask, bid_size, ask_size, high, close, "timestamp" FROM equity_data
           WHERE ticker = 'AAPL' ORDER BY "timestamp" DESC LIMIT 1"#,
    )
    .fetch_one(&pool)
    .await
    .expect("row");
    assert_eq!(last.get::<f64, _>("price"), 233.34);
    assert_eq!(last.get::<i64, _>("volume"), 69784645);
    assert_eq!(
        (last.get::<f64, _>("bid"), last.get::<f64, _>("ask")),
        (233.33, 233.39)
    );
    assert_eq!(
        (
            last.get::<i64, _>("bid_size"),
            last.get::<i64, _>("ask_size")
        ),
        (1, 1)
    );
    assert_eq!(
        (last.get::<f64, _>("high"), last.get::<f64, _>("close")),
        (235.12, 229.65)
    );
    assert_eq!(
        last.get::<String, _>("timestamp"),
        "2025-08-13T20:58:28.300Z"
    );

    let bar = sqlx::query(
        "SELECT open, high, low, close, volume, sequence FROM equity_bars WHERE ticker = 'AAPL'",
    )
    .fetch_all(&pool)
    .await
    .expect("bars");
    assert_eq!(bar.len(), 1, "the repeated candle was upserted");
    assert_eq!(
        bar[0].get::<f64, _>("high"),
        233.45,
        "the later copy of the candle wins"
    );
    assert_eq!(bar[0].get::<i64, _>("volume"), 11800);
    assert_eq!(bar[0].get::<i64, _>("sequence"), 597);

    let opt = sqlx::query(
        "SELECT underlying, expiration, strike, contract_type, delta, gamma, implied_volatility, volume, open_interest
         FROM option_data ORDER BY \"timestamp\" DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("option");
    assert_eq!(opt.get::<String, _>("underlying"), "AAPL");
    assert_eq!(opt.get::<String, _>("expiration"), "2025-12-19");
    assert_eq!(opt.get::<f64, _>("strike"), 230.0);
    assert_eq!(opt.get::<String, _>("contract_type"), "C");
    assert_eq!(opt.get::<f64, _>("delta"), 0.5833);
    assert_eq!(
        opt.get::<f64, _>("gamma"),
        0.0121,
        "merged from the snapshot"
    );
    assert_eq!(opt.get::<f64, _>("implied_volatility"), 27.35);
    assert_eq!(
        (
            opt.get::<i64, _>("volume"),
            opt.get::<i64, _>("open_interest")
        ),
        (1531, 48211)
    );

    // Replaying the same file again adds nothing: natural keys make writes idempotent.
    let again = app::replay(&cfg, &fixture("session.jsonl"))
        .await
        .expect("replay twice");
    assert_eq!(again.writer.rows_written, 11);
    let n2: i64 = sqlx::query_scalar("SELECT count(*) FROM equity_data")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n2, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_postgres_writes_merged_rows() {
    let pg = start_postgres();
    let url = pg.create_database("replay").expect("create db");
    let cfg = config_for(&url, &[("BATCH_SIZE", "4"), ("BATCH_INTERVAL", "0.05")]);
    let summary = app::replay(&cfg, &fixture("session.jsonl"))
        .await
        .expect("replay");
    check_summary(&summary);

    let client = testkit::pg_client(&url).await.expect("connect");
    let n = testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
        .await
        .expect("count");
    assert_eq!(n, 6);
    let msft = client
        .query(
            r#"SELECT price, volume, bid, mark, "timestamp" FROM equity_data WHERE ticker = 'MSFT' ORDER BY "timestamp""#,
            &[],
        )
        .await
        .expect("rows");
    assert_eq!(msft.len(), 2);
    assert_eq!(
        msft[0].get::<_, i64>("volume"),
        18235000,
        "18235000.0 on the wire"
    );
    assert_eq!(msft[1].get::<_, f64>("price"), 520.3);
    assert_eq!(
        msft[1].get::<_, f64>("bid"),
        520.1,
        "unchanged bid carried over"
    );
    assert_eq!(msft[1].get::<_, f64>("mark"), 520.15);
    let ts: chrono::DateTime<chrono::Utc> = msft[1].get("timestamp");
    assert_eq!(ts.timestamp_millis(), 1755118707300);

    let bars: Vec<(String, f64, i64)> = client
        .query(
            "SELECT ticker, high, volume FROM equity_bars ORDER BY ticker",
            &[],
        )
        .await
        .expect("bars")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        bars,
        vec![("AAPL".into(), 233.45, 11800), ("MSFT".into(), 520.4, 26)]
    );

    let option = client
        .query_one(
            "SELECT expiration, contract_type, strike, underlying_price FROM option_data ORDER BY \"timestamp\" DESC LIMIT 1",
            &[],
        )
        .await
        .expect("option");
    let (exp, ctype, strike, underlying_price): (chrono::NaiveDate, String, f64, f64) =
        (option.get(0), option.get(1), option.get(2), option.get(3));
    assert_eq!(exp.to_string(), "2025-12-19");
    assert_eq!(
        (ctype.as_str(), strike, underlying_price),
        ("C", 230.0, 233.34)
    );
}

#[tokio::test]
async fn replay_of_a_missing_file_says_which_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(&format!("sqlite://{}/x.db", dir.path().display()), &[]);
    let err = app::replay(&cfg, std::path::Path::new("/nonexistent/frames.jsonl"))
        .await
        .expect_err("missing");
    assert!(
        err.to_string().contains("/nonexistent/frames.jsonl"),
        "{err}"
    );
}
