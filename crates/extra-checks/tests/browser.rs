//! The live page in a real browser: the zero-configuration service (in process, fake Schwab,
//! temporary SQLite file) and headless Chromium driven over the DevTools protocol. Through the
//! DOM: every default symbol is shown, its price changes between two reads, and the verdict
//! is `/health`'s. A screenshot is taken with the same tooling; set `LIVE_PAGE_SCREENSHOT=PATH`
//! to keep it (README's docs/live-page.png is made that way).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use market_streamer::app::RunOptions;
use market_streamer::settings;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SYMBOLS: [&str; 5] = ["AAPL", "MSFT", "NVDA", "SPY", "TSLA"];
const DEADLINE: Duration = Duration::from_secs(60);

/// Headless Chromium, killed (by its own pid) when dropped.
struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_browser() -> Browser {
    let profile = tempfile::tempdir().expect("profile dir");
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts (Debian package `chromium`; .ci/run installs it)");
    let file = profile.path().join("DevToolsActivePort");
    let started = Instant::now();
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.parse().ok()))
        {
            break port;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "chromium did not open its DevTools port"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    Browser {
        child,
        port,
        _profile: profile,
    }
}

/// One plain HTTP request to the DevTools endpoint; the JSON body.
fn devtools_http(port: u16, method: &str, path: &str) -> Value {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("devtools http");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    // DevTools keeps the connection open: read until the body is complete.
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("read");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                return serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
            }
        }
        assert!(
            n > 0,
            "devtools closed the connection: {}",
            String::from_utf8_lossy(&raw)
        );
    }
}

/// A DevTools session on one page.
struct Page {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).await.expect("send");
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("a DevTools answer in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let v: Value = serde_json::from_str(&text).expect("json");
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    /// Evaluates `expr` in the page; its JSON value.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }
}

/// What the DOM shows: symbol → last price text, and the verdict.
const READ_DOM: &str = r#"(() => {
  const rows = {};
  for (const tr of document.querySelectorAll('#quotes tbody tr')) {
    rows[tr.dataset.symbol] = tr.querySelector('td.last').textContent;
  }
  return { rows, verdict: document.getElementById('verdict').textContent,
           conn: document.getElementById('conn').textContent };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: run scripts/extra-checks.sh"]
async fn the_live_page_in_chromium_shows_every_symbol_moving_and_the_health_verdict() {
    market_streamer::schwab::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("market.db").display());
    // The zero-configuration run: only where it writes and a free port differ.
    let vars = [
        ("DATABASE_URL", db.as_str()),
        ("HEALTH_ADDR", "127.0.0.1:0"),
        ("SPOOL_DIR", "off"),
        ("STATUS_INTERVAL", "0"),
    ];
    let cfg = settings::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .expect("config");
    let mut service = testkit::service::spawn_run(cfg, RunOptions::default());
    let url = format!("http://{}", service.listens().await);

    let browser = start_browser();
    let target = devtools_http(browser.port, "PUT", &format!("/json/new?{url}/"));
    let ws_url = target["webSocketDebuggerUrl"]
        .as_str()
        .expect("ws url")
        .to_string();
    let (ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("devtools ws");
    let mut page = Page { ws, next_id: 0 };
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;

    // First read: every symbol with a price.
    let started = Instant::now();
    let first = loop {
        let dom = page.eval(READ_DOM).await;
        if SYMBOLS.iter().all(|s| {
            dom["rows"][s]
                .as_str()
                .is_some_and(|p| p.parse::<f64>().is_ok())
        }) {
            break dom;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not every symbol shown: {dom}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Second read: some price moved (the simulator sends about one update a second each).
    let started = Instant::now();
    let second = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let dom = page.eval(READ_DOM).await;
        if SYMBOLS.iter().any(|s| dom["rows"][s] != first["rows"][s]) {
            break dom;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no price changed: {first} {dom}"
        );
    };
    assert_eq!(second["conn"], "live", "{second}");

    // The verdict on the page is /health's (read twice around it, it may change once).
    let health = || async {
        let v: Value = reqwest::get(format!("{url}/health"))
            .await
            .expect("GET /health")
            .json()
            .await
            .expect("json");
        v["status"].as_str().unwrap_or_default().to_string()
    };
    let started = Instant::now();
    loop {
        let before = health().await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let shown = page.eval(READ_DOM).await["verdict"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if shown == before && health().await == before {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "page says {shown}, /health {before}"
        );
    }

    // Click a symbol for its large chart, then the screenshot.
    page.eval("document.querySelector('#quotes tbody tr[data-symbol=\"NVDA\"]').click(); true")
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let shot = page
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("data"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let keep = std::env::var_os("LIVE_PAGE_SCREENSHOT");
    let path = keep
        .as_deref()
        .map(Path::new)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.path().join("live-page.png"));
    std::fs::write(&path, &png).expect("write the screenshot");

    drop(page);
    drop(browser);
    tokio::time::timeout(DEADLINE, service.stop())
        .await
        .expect("stops")
        .expect("run");
}
