//! Two stream guards end to end, against the fake Schwab and the real service (SQLite): a
//! frame stamped ten minutes ahead is clamped to its receive time, so `latest_quotes` and the
//! indicators keep following the next frames (counted, with a clock note in `/health`); and
//! 100,000 items for keys never subscribed make no row and no per-symbol state (counted).
//! `health_check`'s side (a future newest row is a WARNING) is in `health_check/tests/it`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use testkit::service::{TestService, fast_sim};

const WAIT: Duration = Duration::from_secs(40);

async fn get(url: &str) -> String {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .expect("body")
}

async fn health(run: &TestService) -> Value {
    let body = get(&format!("{}/health", run.url)).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Waits until `pred` holds for `/health`; fails with the last body after [`WAIT`].
async fn wait_health(run: &TestService, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let h = health(run).await;
        if pred(&h) {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {h:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// AAPL's `latest_quotes` row: (timestamp, price, vwap).
async fn latest_aapl(run: &TestService) -> Option<(DateTime<Utc>, f64, Option<f64>)> {
    let pool = sqlx::SqlitePool::connect(&run.database_url)
        .await
        .expect("open db");
    let row: Option<(String, f64, Option<f64>)> = sqlx::query_as(
        "SELECT \"timestamp\", price, vwap FROM latest_quotes WHERE ticker = 'AAPL'",
    )
    .fetch_optional(&pool)
    .await
    .expect("read latest_quotes");
    pool.close().await;
    row.map(|(t, price, vwap)| {
        let t = DateTime::parse_from_rfc3339(&t)
            .unwrap_or_else(|e| panic!("time {t:?}: {e}"))
            .with_timezone(&Utc);
        (t, price, vwap)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_ten_minutes_ahead_is_clamped_and_latest_quotes_and_indicators_follow() {
    let mut run = TestService::start_sqlite(fast_sim(), &[]).await;
    run.wait_streamed(1).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while latest_aapl(&run).await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no AAPL quote");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sent = Utc::now();
    let ahead = sent.timestamp_millis() + 600_000;
    run.sim().send_raw(&format!(
        r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{ahead},"command":"SUBS","content":[{{"key":"AAPL","3":12345.5,"34":{ahead},"35":{ahead}}}]}}]}}"#
    ));
    let h = wait_health(&run, "the clamp", |h| {
        h["stream"]["times_clamped"].as_u64() >= Some(1)
    })
    .await;
    let skew = &h["stream"]["clock_skew"];
    let largest = skew["largest_skew_secs"].as_f64().expect("largest skew");
    assert!((590.0..=600.0).contains(&largest), "{skew:#}");
    let note = skew["note"].as_str().expect("note");
    assert!(
        note.contains("Schwab's clock and ours disagree") && note.contains("check NTP"),
        "{note}"
    );
    assert_eq!(h["status"], "ok", "a clamp is a note, not a problem: {h:#}");

    // The next ordinary frames move latest_quotes on, and its indicators change with them.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (t, price, vwap) = latest_aapl(&run).await.expect("AAPL row");
        assert!(
            t <= Utc::now() + chrono::TimeDelta::seconds(2),
            "latest_quotes moved into the future: {t}"
        );
        if t > sent && price != 12345.5 {
            seen.push((t, vwap));
        }
        let moved = seen.windows(2).any(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1);
        if moved {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "latest_quotes froze after the future frame: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The future frame's row itself was stored at its receive time.
    let pool = sqlx::SqlitePool::connect(&run.database_url)
        .await
        .expect("open db");
    let stored: String = sqlx::query_scalar(
        "SELECT \"timestamp\" FROM equity_data WHERE ticker = 'AAPL' AND price = 12345.5",
    )
    .fetch_one(&pool)
    .await
    .expect("the clamped row is stored");
    pool.close().await;
    let stored = DateTime::parse_from_rfc3339(&stored).expect("time");
    assert!(
        (stored.with_timezone(&Utc) - sent).num_seconds().abs() <= 5,
        "stored at {stored}, sent at {sent}"
    );

    let metrics = get(&format!("{}/metrics", run.url)).await;
    assert!(
        metrics.contains("market_streamer_times_clamped_total 1"),
        "{metrics}"
    );
    let summary = run.stop().await;
    assert_eq!(summary.times_clamped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_for_100000_unknown_keys_make_no_row_and_no_state() {
    let mut run = TestService::start_sqlite(fast_sim(), &[]).await;
    run.wait_streamed(1).await;
    const FRAMES: u64 = 5;
    const PER_FRAME: u64 = 20_000;
    for f in 0..FRAMES {
        let now = Utc::now().timestamp_millis();
        let items: Vec<String> = (0..PER_FRAME)
            .map(|i| {
                format!(
                    r#"{{"key":"ZU{:06}","1":9.9,"2":10.1,"3":10.0,"8":5}}"#,
                    f * PER_FRAME + i
                )
            })
            .collect();
        run.sim().send_raw(&format!(
            r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{now},"command":"SUBS","content":[{}]}}]}}"#,
            items.join(",")
        ));
        let want = (f + 1) * PER_FRAME;
        wait_health(&run, "the unknown items counted", |h| {
            h["stream"]["items_unsubscribed"].as_u64() >= Some(want)
        })
        .await;
    }
    let h = health(&run).await;
    assert_eq!(h["stream"]["items_unsubscribed"], FRAMES * PER_FRAME);
    let metrics = get(&format!("{}/metrics", run.url)).await;
    assert!(
        metrics.contains(
            "market_streamer_items_unsubscribed_total{service=\"LEVELONE_EQUITIES\"} 100000"
        ),
        "{metrics}"
    );
    // Streaming goes on for the subscribed keys.
    let rows_before = run.count("equity_data").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while run.count("equity_data").await <= rows_before {
        assert!(tokio::time::Instant::now() < deadline, "no new rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run.count("equity_data WHERE ticker LIKE 'ZU%'").await, 0);
    assert_eq!(run.count("latest_quotes WHERE ticker LIKE 'ZU%'").await, 0);
    let summary = run.stop().await;
    assert_eq!(summary.items_unsubscribed, FRAMES * PER_FRAME);
    // AAPL, MSFT and the one option: state for the subscribed keys only.
    assert!(summary.merged_symbols <= 3, "{summary:?}");
    assert!(summary.indicator_symbols <= 2, "{summary:?}");
}
