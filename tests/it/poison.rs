//! Poison in the stream: items no real Schwab symbol or clock could produce are refused one by
//! one at the parser, counted, and never reach the database; their neighbours in the same frame
//! are stored. Through replay into PostgreSQL and SQLite.

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
