//! Bounded memory on any input, against the service binary: a 50 MB message from Schwab is
//! refused before it is read whole, and 5,000 idle connections to the health port are capped
//! and timed out; the process's peak RSS stays under 64 MB throughout.

use std::io::{Read, Write};
use std::time::Duration;

use testkit::service::{config_from, fast_sim, live_vars, login, spawn_binary, start_sim};
use tokio::time::Instant;

const PEAK_RSS_LIMIT_KB: u64 = 64 * 1024;

/// `kB` of a `/proc/<pid>/status` line (`VmHWM`: the peak resident set).
fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `GET /health` on `port` (blocking, short timeouts): the JSON body, if it answered.
fn health(port: u16) -> Option<serde_json::Value> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_health(port: u16, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = tokio::task::spawn_blocking(move || health(port))
            .await
            .expect("join");
        if answer.as_ref().is_some_and(&ok) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_message_and_5000_idle_health_connections_stay_under_64_mb() {
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let vars = live_vars(&sim, dir.path(), &url, &[("HEALTH_ADDR", &addr)]);
    login(&config_from(&vars), &sim).await;
    let log = dir.path().join("service.log");
    let mut child = spawn_binary(
        env!("CARGO_BIN_EXE_market-streamer").as_ref(),
        dir.path(),
        &vars,
        &log,
    )
    .expect("start the service");
    let pid = child.id().expect("a running child");
    wait_health(port, "rows written", |j| {
        j["writer"]["rows_written"].as_u64() > Some(0)
    })
    .await;

    // 50 MB in one WebSocket message: refused from its frame header (MAX_FRAME_BYTES, 4M).
    let huge = format!(r#"{{"notify":[{{"service":"{}"}}]}}"#, "x".repeat(50 << 20));
    sim.send_raw(&huge);
    drop(huge);

    // 5,000 connections that never send a byte.
    let mut idle = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {} failed: {e}", idle.len()),
        }
    }
    // Past the header-read timeout every one of them is closed and the endpoint answers.
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(idle);
    wait_health(port, "a new connection after the oversized message", |j| {
        j["stream"]["connects"].as_u64() >= Some(2) && j["stream"]["state"] == "connected"
    })
    .await;

    let peak = status_kb(pid, "VmHWM:").expect("the service is running");
    let _ = child.start_kill();
    let _ = child.wait().await;
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        err.contains("frame_too_large") || err.contains("MAX_FRAME_BYTES"),
        "the refusal is logged"
    );
    assert!(
        peak < PEAK_RSS_LIMIT_KB,
        "peak RSS {peak} kB is over {PEAK_RSS_LIMIT_KB} kB"
    );
}
