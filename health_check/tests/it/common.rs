//! Helpers for the `health_check` integration tests: run the built binary in a clean
//! environment, a tiny HTTP server answering canned responses on 127.0.0.1, and rows written
//! through the service's real sinks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use market_streamer::db::{Database, Sink};
use market_streamer::rows::{Batch, EquityRow};
use market_streamer::settings::{self, Config};

/// Wednesday 2025-01-08 10:00 New York: the regular session is running.
pub const MARKET_OPEN_NOW: &str = "2025-01-08T15:00:00Z";

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `--json` output, parsed.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `health_check` with only `env` set (no proxy, no inherited settings), in `cwd` (a
/// fresh empty directory when `None`, so no `.env` is picked up).
pub fn run_in(cwd: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Run {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = cwd.unwrap_or(scratch.path());
    let out = Command::new(env!("CARGO_BIN_EXE_health_check"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run health_check");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `health_check` with `args` in an empty directory and environment.
pub fn run(args: &[&str]) -> Run {
    run_in(None, args, &[])
}

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// A config for `url` through the service's real validation.
pub fn config_for(url: &str) -> Config {
    settings::from_lookup(|name| (name == "DATABASE_URL").then(|| url.to_string()))
        .expect("valid config")
}

/// Migrates the database at `url` and writes one quote per `(ticker, time)` through the
/// service's sink (which also upserts `latest_quotes`).
pub async fn write_quotes(url: &str, quotes: &[(&str, &str)]) {
    let db = Database::connect(&settings::database(&config_for(url)))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    let mut batch = Batch::default();
    for (ticker, time) in quotes {
        batch.equities.push(EquityRow {
            ticker: Arc::from(*ticker),
            timestamp: at(time),
            seq: 0,
            quote: Default::default(),
            indicators: Default::default(),
        });
    }
    db.write(&batch).await.expect("write");
    db.close().await;
}

/// One request the stub server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the stub answers a request: `Some((status, body))`, or `None` to never answer.
pub type Responder = dyn Fn(&Received) -> Option<(u16, String)> + Send + Sync;

/// A minimal HTTP/1.1 server on 127.0.0.1 (one thread, one request per connection), for
/// standing in for the service's `/health` and for PostgREST. Stops when dropped.
pub struct StubServer {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StubServer {
    pub fn start(
        respond: impl Fn(&Received) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let respond: Arc<Responder> = Arc::new(respond);
        let thread = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Connections that get no answer are held here until the server stops.
                let mut held = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(held_stream) = serve(stream, &*respond, &received) {
                        held.push(held_stream);
                    }
                }
            })
        };
        Self {
            url,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    respond: &Responder,
    received: &Mutex<Vec<Received>>,
) -> Option<TcpStream> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                content_length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    let request = Received {
        method,
        target,
        headers,
    };
    received.lock().expect("lock").push(request.clone());
    let Some((status, body)) = respond(&request) else {
        return Some(stream);
    };
    let mut stream = stream;
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    None
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A URL on 127.0.0.1 where nothing listens.
pub fn unused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// Percent-decodes a query component (`%22` → `"`, `+` → space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded query parameters of a request target.
pub fn query_params(target: &str) -> Vec<(String, String)> {
    target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}
