//! The live page on the health port, read as a client would without a browser: `GET /`
//! serves the embedded page (self-contained), `GET /live` streams every subscribed symbol with
//! changing prices and the same verdict as `/health`, nothing secret is in either, and
//! `HEALTH_ADDR=off` turns the page off with the rest. The browser test is in
//! `crates/extra-checks/tests/browser.rs`.

use std::time::{Duration, Instant};

use market_streamer::app::RunOptions;
use serde_json::Value;
use testkit::service::{ServiceOptions, TestService};

use testkit::service::fast_sim;

const DEADLINE: Duration = Duration::from_secs(30);

/// The default `SYMBOLS`.
const DEFAULT_SYMBOLS: [&str; 5] = ["AAPL", "MSFT", "NVDA", "SPY", "TSLA"];
/// The option contract the test harness subscribes (`OPTION_SYMBOLS`): shown like an equity.
const OPTION: &str = "AAPL  271217C00250000";

/// Reads `GET /live` for `window` and returns the JSON of each `view` event, and the raw text.
pub(crate) async fn read_events(url: &str, window: Duration) -> (Vec<Value>, String) {
    let client = reqwest::Client::new();
    let mut response = client
        .get(format!("{url}/live"))
        .send()
        .await
        .expect("GET /live");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut raw = String::new();
    let end = Instant::now() + window;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(
        end.saturating_duration_since(Instant::now()),
        response.chunk(),
    )
    .await
    {
        raw.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = raw
        .split("\n\n")
        .filter(|e| e.lines().any(|l| l == "event: view"))
        .map(|e| {
            let data: String = e.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            serde_json::from_str(&data).unwrap_or_else(|err| panic!("{err}: {data}"))
        })
        .collect();
    (events, raw)
}

fn last_price(event: &Value, symbol: &str) -> Option<f64> {
    event["symbols"]
        .as_array()?
        .iter()
        .find(|s| s["symbol"] == symbol)?["quote"]["last"]
        .as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_event_stream_show_every_symbol_live_and_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("market.db").display());
    let symbols = DEFAULT_SYMBOLS.join(",");
    let mut service = TestService::start(
        fast_sim(),
        &db,
        &[("SYMBOLS", &symbols)],
        ServiceOptions::default(),
    )
    .await
    .expect("service starts");
    let client = reqwest::Client::new();

    let page = client.get(&service.url).send().await.expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let content_type = page.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = page.text().await.expect("body");
    assert!(
        html.contains("new EventSource(\"/live\")"),
        "the page reads /live"
    );
    // Offline: nothing is loaded from anywhere (the only URL is the SVG namespace name).
    for needle in ["src=\"http", "href=\"http", "@import", "url(http", "//cdn"] {
        assert!(!html.contains(needle), "{needle} in the page");
    }
    let urls: Vec<&str> = html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 30).min(html.len())])
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .collect();
    assert!(
        urls.iter()
            .all(|u| u.starts_with("http://www.w3.org/2000/svg")),
        "{urls:?}"
    );

    // Wait until every symbol has a price, then read the stream for a few seconds.
    let start = Instant::now();
    let (events, raw) = loop {
        let (events, raw) = read_events(&service.url, Duration::from_secs(3)).await;
        let first = &events[0];
        if DEFAULT_SYMBOLS
            .iter()
            .chain([&OPTION])
            .all(|s| last_price(first, s).is_some())
        {
            break (events, raw);
        }
        assert!(start.elapsed() < DEADLINE, "symbols without prices: {raw}");
    };
    let first = &events[0];
    assert_eq!(first["full"], true);
    let listed: Vec<&str> = first["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["symbol"].as_str())
        .collect();
    for symbol in DEFAULT_SYMBOLS.into_iter().chain([OPTION]) {
        assert!(listed.contains(&symbol), "{symbol} missing: {listed:?}");
    }
    // Every event lists the symbols on the page (a row not listed leaves it).
    for e in &events {
        let shown: Vec<&str> = e["shown"]
            .as_array()
            .expect("shown")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(shown, listed, "{e}");
    }
    assert!(events.len() >= 3, "a few events in 3 s: {}", events.len());
    assert!(
        events.len() <= 12,
        "at most a few per second: {}",
        events.len()
    );
    // Later events carry only what changed, and prices move.
    assert!(events[1..].iter().all(|e| e["full"] == false));
    let moved = DEFAULT_SYMBOLS.iter().any(|s| {
        let prices: Vec<f64> = events.iter().filter_map(|e| last_price(e, s)).collect();
        prices.windows(2).any(|w| w[0] != w[1])
    });
    assert!(moved, "no price changed in 3 s: {raw}");
    // Each symbol has its ring of one-minute closes and indicators.
    let aapl = first["symbols"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["symbol"] == "AAPL"))
        .expect("AAPL");
    assert!(!aapl["ring"].as_array().expect("ring").is_empty(), "{aapl}");
    assert!(aapl["quote"].get("rsi").is_some() && aapl["quote"].get("vwap").is_some());

    // The page's verdict is /health's.
    let health: Value = client
        .get(format!("{}/health", service.url))
        .send()
        .await
        .expect("GET /health")
        .json()
        .await
        .expect("JSON");
    let status = &events.last().expect("event")["status"];
    assert_eq!(status["status"], health["status"], "{status} vs {health}");
    assert_eq!(status["stream_state"], health["stream"]["state"]);
    assert!(status["rows_written"].as_u64() > Some(0), "{status}");
    assert!(status["market_phase"].is_string() && status["buffered_rows"].is_u64());
    assert_eq!(
        status["database_limit_bytes"],
        health["database"]["limit_bytes"]
    );

    let secrets = service.sim().issued_secrets();
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(
            !raw.contains(secret.as_str()),
            "a secret ({}…) is on /live",
            &secret[..4]
        );
        assert!(!html.contains(secret.as_str()));
    }
    assert!(!raw.contains("token") && !raw.contains(service.sim().client_id()));
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_addr_off_serves_no_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("market.db").display());
    let cfg = testkit::config_for(
        &db,
        &[
            ("SCHWAB_MODE", "simulated"),
            ("HEALTH_ADDR", "off"),
            ("STATUS_INTERVAL", "0"),
            ("SPOOL_DIR", "off"),
        ],
    );
    assert!(cfg.health.addr.is_none());
    let running = testkit::service::spawn_run(cfg, RunOptions::default());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let addr = running.addr.clone();
    let summary = tokio::time::timeout(DEADLINE, running.stop())
        .await
        .expect("stops")
        .expect("run");
    assert!(summary.writer.rows_written > 0, "it streamed: {summary:?}");
    assert!(addr.borrow().is_none(), "nothing listened");
}
