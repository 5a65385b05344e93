//! Candle backfill against the fake Schwab: a gap of several (shortened) minutes refilled from
//! `pricehistory` with the simulator's values and marked `backfilled`, streamed candles left as
//! they were, the 429 `Retry-After` honoured; the startup refill from the newest stored candle;
//! options and futures never asked for; a window given up shows `failing` until a later one is
//! refilled. The gap refill runs on SQLite and on PostgreSQL (its own insert).
//!
//! The simulator's candles last one second here (`SimConfig::candle_ms`), so a gap of a few
//! seconds spans several "minutes" and the tests stay fast.

use std::time::{Duration, Instant};

use market_streamer::app::{self, RunOptions};
use schwab_sim::server::{SimServer, SimServerSettings};
use testkit::service::{
    ServiceOptions, TestService, WAIT, config_from, fast_sim, live_vars, login, start_sim,
};

const CANDLE_MS: i64 = 1000;

fn settings() -> SimServerSettings {
    let mut s = fast_sim();
    s.market.candle_ms = CANDLE_MS;
    s.market.updates_per_symbol_per_sec = 20.0;
    s
}

/// (ticker, bar_start, open, high, low, close, volume, backfilled, updated_at)
type Bar = (String, String, f64, f64, f64, f64, i64, i64, String);

/// The stored candles; none while the database or the table does not exist yet.
async fn bars(url: &str) -> Vec<Bar> {
    let Ok(pool) = sqlx::SqlitePool::connect(url).await else {
        return Vec::new();
    };
    let rows = sqlx::query_as(
        "SELECT ticker, bar_start, open, high, low, close, volume, backfilled, updated_at \
         FROM equity_bars ORDER BY ticker, bar_start",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    pool.close().await;
    rows
}

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time")
        .timestamp_millis()
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every simulator candle of `symbol` starting in `[from, to]` is stored with the same values;
/// returns how many of them are marked backfilled.
fn assert_matches_sim(sim: &SimServer, stored: &[Bar], symbol: &str, from: i64, to: i64) -> usize {
    let expected = sim.candle_history(symbol, from, to);
    assert!(
        !expected.is_empty(),
        "the simulator has candles of {symbol} in the window"
    );
    let mut backfilled = 0;
    for (start, open, high, low, close, volume) in expected {
        let row = stored
            .iter()
            .find(|b| b.0 == symbol && ms(&b.1) == start)
            .unwrap_or_else(|| panic!("{symbol} candle at {start} missing from equity_bars"));
        assert_eq!(
            (row.2, row.3, row.4, row.5, row.6),
            (open, high, low, close, volume),
            "{symbol} candle at {start} has the simulator's values"
        );
        backfilled += usize::from(row.7 == 1);
    }
    backfilled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_refilled_with_the_simulators_candles_and_streamed_ones_stay() {
    let mut svc = TestService::start_sqlite(settings(), &[("FUTURES_SYMBOLS", "/ES")]).await;
    svc.wait_streamed(1).await;
    let url = svc.database_url.clone();
    wait_until("a few streamed candles of both symbols", async || {
        let b = bars(&url).await;
        ["AAPL", "MSFT"]
            .iter()
            .all(|s| b.iter().filter(|r| r.0 == *s).count() >= 3)
    })
    .await;
    let before = bars(&url).await;
    assert!(
        before.iter().all(|b| b.7 == 0),
        "streamed candles are not marked"
    );

    // Schwab unreachable for ~4 s ("minutes" here), and the first pricehistory call throttled.
    svc.sim().set_pricehistory_429(1);
    outage(&mut svc, 4, 2).await;
    wait_until("the gap row and its refill", async || {
        let b = bars(&url).await;
        !svc.gaps().await.is_empty()
            && ["AAPL", "MSFT"]
                .iter()
                .all(|s| b.iter().any(|r| r.0 == *s && r.7 == 1))
            && svc.sim().pricehistory_calls() >= 3
    })
    .await;
    // Let the backfill task finish its second symbol and the stream catch up.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let gaps = svc.gaps().await;
    let (_, gap_start, gap_end) = &gaps[0];
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.timestamp_millis())
            .expect("gap time")
    };
    let (start, end) = (parse(gap_start), parse(gap_end));
    assert!(end - start >= 3000, "a gap of several candles: {gaps:?}");
    let after = bars(&url).await;
    for symbol in ["AAPL", "MSFT"] {
        // The candles that ended during the gap (the first one's minute was open at the drop).
        let refilled = assert_matches_sim(svc.sim(), &after, symbol, start, end - CANDLE_MS);
        assert!(
            refilled >= 2,
            "{symbol}: the gap's candles were refilled and marked ({refilled})"
        );
    }
    // Streamed candles untouched: same values, not marked, never rewritten (same updated_at).
    for b in &before {
        assert!(after.contains(b), "streamed candle changed: {b:?}");
    }
    // One call per equity chart symbol, plus the one answered 429 and retried after
    // Retry-After; none for the option or /ES.
    assert_eq!(svc.sim().pricehistory_calls(), 3);

    let b = &backfill_health(&svc).await;
    assert_eq!(b["state"], "idle", "{b}");
    assert_eq!(b["gaps_filled"], 1, "{b}");
    assert_eq!(b["requests"], 2, "{b}");
    assert!(b["candles_written"].as_u64().unwrap_or(0) >= 4, "{b}");
    let skipped = b["skipped_no_history"].to_string();
    assert!(
        skipped.contains("/ES") && skipped.contains("AAPL  271217C00250000"),
        "{b}"
    );
    let metrics = reqwest::get(format!("{}/metrics", svc.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("market_streamer_backfill_requests_total 2"),
        "{metrics}"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_refills_from_the_newest_stored_candle() {
    let sim = start_sim(settings()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let vars = live_vars(&sim, dir.path(), &url, &[("HEALTH_ADDR", "off")]);
    let cfg = config_from(&vars);
    login(&cfg, &sim).await;
    let run = |cfg: market_streamer::settings::Config| {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app::run(&cfg, RunOptions::default(), async move {
                let _ = stop_rx.await;
            })
            .await
        });
        (stop, task)
    };

    let (stop, task) = run(cfg.clone());
    wait_until("streamed candles", async || {
        let b = bars(&url).await;
        ["AAPL", "MSFT"]
            .iter()
            .all(|s| b.iter().filter(|r| r.0 == *s).count() >= 2)
    })
    .await;
    let _ = stop.send(());
    task.await.expect("joined").expect("first run");
    let first = bars(&url).await;
    assert!(first.iter().all(|b| b.7 == 0));
    assert_eq!(
        sim.pricehistory_calls(),
        0,
        "nothing to refill on an empty database"
    );
    let newest = |s: &str| {
        first
            .iter()
            .filter(|b| b.0 == s)
            .map(|b| ms(&b.1))
            .max()
            .expect("a candle")
    };
    let (aapl, msft) = (newest("AAPL"), newest("MSFT"));

    // Stopped for ~4 candles; the market goes on.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restart = chrono::Utc::now().timestamp_millis();
    let (stop, task) = run(cfg.clone());
    wait_until("the startup refill", async || {
        let b = bars(&url).await;
        ["AAPL", "MSFT"]
            .iter()
            .all(|s| b.iter().any(|r| r.0 == *s && r.7 == 1))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = bars(&url).await;
    for (symbol, from) in [("AAPL", aapl), ("MSFT", msft)] {
        let refilled = assert_matches_sim(&sim, &after, symbol, from, restart - CANDLE_MS);
        assert!(
            refilled >= 2,
            "{symbol}: the downtime was refilled ({refilled})"
        );
    }
    for b in &first {
        assert!(after.contains(b), "stored candle changed: {b:?}");
    }
    assert_eq!(
        sim.pricehistory_calls(),
        2,
        "one call per equity chart symbol"
    );
    let _ = stop.send(());
    task.await.expect("joined").expect("second run");
}

/// `/health`'s backfill section of the service.
async fn backfill_health(svc: &TestService) -> serde_json::Value {
    let health: serde_json::Value = reqwest::get(format!("{}/health", svc.url))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    health["backfill"].clone()
}

/// Schwab unreachable for `secs`, then the service streams again (connection `n`).
async fn outage(svc: &mut TestService, secs: u64, n: u64) {
    svc.sim().refuse_connections(true);
    svc.sim().drop_connections();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    svc.sim().refuse_connections(false);
    svc.wait_streamed(n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_given_up_is_failing_until_a_later_one_is_refilled() {
    let mut svc = TestService::start_sqlite(settings(), &[("CHART_SYMBOLS", "AAPL")]).await;
    svc.wait_streamed(1).await;
    let url = svc.database_url.clone();
    wait_until("streamed candles", async || {
        bars(&url).await.iter().filter(|b| b.0 == "AAPL").count() >= 2
    })
    .await;

    // Every try of the first refill fails (a server error each time): given up.
    svc.sim()
        .fail_pricehistory(market_streamer::backfill::ATTEMPTS);
    outage(&mut svc, 2, 2).await;
    let mut failing = serde_json::Value::Null;
    wait_until("the refill given up", async || {
        failing = backfill_health(&svc).await;
        failing["state"] == "failing"
    })
    .await;
    assert_eq!(failing["gaps_given_up"], 1, "{failing}");
    assert_eq!(failing["gaps_filled"], 0, "{failing}");
    let error = failing["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("AAPL: ") && error.contains("500"),
        "{failing}"
    );
    assert_eq!(
        svc.sim().pricehistory_calls(),
        u64::from(market_streamer::backfill::ATTEMPTS)
    );

    // The next gap is refilled completely: the backfill works again.
    outage(&mut svc, 2, 3).await;
    let mut idle = serde_json::Value::Null;
    wait_until("the next refill", async || {
        idle = backfill_health(&svc).await;
        idle["gaps_filled"] == 1 && idle["state"] == "idle"
    })
    .await;
    assert_eq!(idle["last_error"], serde_json::Value::Null, "{idle}");
    assert_eq!(idle["gaps_given_up"], 1, "the count stays: {idle}");
    assert!(
        bars(&url).await.iter().any(|b| b.0 == "AAPL" && b.7 == 1),
        "the second gap's candles are stored as backfilled"
    );
    svc.stop().await;
}

/// The stored candles on PostgreSQL, in [`Bar`]'s shape.
async fn pg_bars(client: &tokio_postgres::Client) -> Vec<Bar> {
    use chrono::{DateTime, Utc};
    let rows = client
        .query(
            "SELECT ticker, bar_start, open, high, low, close, volume, backfilled, updated_at \
             FROM equity_bars ORDER BY ticker, bar_start",
            &[],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|r| {
            let start: DateTime<Utc> = r.get(1);
            let updated: DateTime<Utc> = r.get(8);
            (
                r.get(0),
                start.to_rfc3339(),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                i64::from(r.get::<_, bool>(7)),
                updated.to_rfc3339(),
            )
        })
        .collect()
}

/// The PostgreSQL refill insert: the same gap as on SQLite, refilled with the simulator's
/// candles, marked `backfilled`, streamed candles never rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_refilled_on_postgres_and_streamed_candles_stay() {
    let pg = testkit::start_postgres();
    let url = pg.create_database("backfill").expect("db");
    let mut svc = TestService::start(settings(), &url, &[], ServiceOptions::default())
        .await
        .expect("the service starts");
    svc.wait_streamed(1).await;
    let client = testkit::pg_client(&url).await.expect("connect");
    wait_until("a few streamed candles of both symbols", async || {
        let b = pg_bars(&client).await;
        ["AAPL", "MSFT"]
            .iter()
            .all(|s| b.iter().filter(|r| r.0 == *s).count() >= 3)
    })
    .await;
    let before = pg_bars(&client).await;
    assert!(before.iter().all(|b| b.7 == 0));

    outage(&mut svc, 4, 2).await;
    let gap = async || {
        client
            .query_opt(
                "SELECT (extract(epoch FROM gap_start) * 1000)::bigint, \
                        (extract(epoch FROM gap_end) * 1000)::bigint FROM stream_gaps",
                &[],
            )
            .await
            .ok()
            .flatten()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
    };
    wait_until("the gap row and its refill", async || {
        let b = pg_bars(&client).await;
        gap().await.is_some()
            && ["AAPL", "MSFT"]
                .iter()
                .all(|s| b.iter().any(|r| r.0 == *s && r.7 == 1))
            && svc.sim().pricehistory_calls() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (start, end) = gap().await.expect("the gap row");
    assert!(end - start >= 3000, "a gap of several candles");
    let after = pg_bars(&client).await;
    for symbol in ["AAPL", "MSFT"] {
        let refilled = assert_matches_sim(svc.sim(), &after, symbol, start, end - CANDLE_MS);
        assert!(refilled >= 2, "{symbol}: refilled and marked ({refilled})");
    }
    for b in &before {
        assert!(after.contains(b), "streamed candle changed: {b:?}");
    }
    svc.stop().await;
}
