//! The Dockerfile's `HEALTHCHECK` command (`market-streamer probe`), run for real: the exact
//! argument list from the Dockerfile, with the URL pointed at a stand-in `/health` or at the
//! running service, exits 0 for a healthy service and non-zero otherwise (Docker counts any
//! non-zero exit as a failed check), and ends before Docker's own timeout.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use schwab_sim::server::SimServerSettings;
use testkit::service::{ServiceOptions, TestService};

/// The JSON array after `HEALTHCHECK ... CMD` in the repository's Dockerfile.
fn healthcheck_command() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("read the Dockerfile");
    let joined = text.replace("\\\n", " ");
    let line = joined
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("the Dockerfile has a HEALTHCHECK");
    let (_, cmd) = line.split_once(" CMD ").expect("exec form");
    serde_json::from_str(cmd.trim()).expect("the HEALTHCHECK command is a JSON array")
}

/// Runs the command with its URL replaced by `url`: (exit code, stdout).
fn run_healthcheck(url: &str) -> (i32, String) {
    let cmd = healthcheck_command();
    assert_eq!(
        cmd[0], "market-streamer",
        "the image's only binary: {cmd:?}"
    );
    let at = cmd.iter().position(|a| a == "--url").expect("--url");
    assert_eq!(
        cmd[at + 1],
        "http://127.0.0.1:8080",
        "the container's HEALTH_ADDR port"
    );
    let mut args = cmd[1..].to_vec();
    args[at] = url.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_market-streamer"))
        .args(&args)
        .env_clear()
        .output()
        .expect("run market-streamer probe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A one-shot HTTP server answering `body` with `code`.
fn stand_in(code: u16, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn healthy_passes_down_or_unreachable_fails() {
    let (code, out) = run_healthcheck(&stand_in(
        200,
        r#"{"status":"ok","stream":{"state":"connected"}}"#,
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK"), "{out}");
    let (code, out) = run_healthcheck(&stand_in(
        200,
        r#"{"status":"degraded","reasons":["run `market-streamer login`"]}"#,
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("WARNING") && out.contains("login"), "{out}");
    let (code, out) = run_healthcheck(&stand_in(503, r#"{"status":"down","reasons":["x"]}"#));
    assert_eq!(code, 2, "{out}");
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", free.local_addr().expect("addr"));
    drop(free);
    let (code, out) = run_healthcheck(&url);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unreachable"), "{out}");
}

#[test]
fn the_probe_timeout_fits_dockers_timeout() {
    let cmd = healthcheck_command();
    let own: f64 = cmd
        .iter()
        .position(|a| a == "--timeout")
        .map(|i| cmd[i + 1].parse().expect("--timeout SECS"))
        .expect("the HEALTHCHECK passes --timeout");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("read the Dockerfile");
    let docker: f64 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--timeout="))
        .and_then(|v| v.strip_suffix('s'))
        .expect("HEALTHCHECK --timeout=Ns")
        .parse()
        .expect("seconds");
    assert!(own < docker, "probe --timeout {own} vs Docker's {docker}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_passes_the_container_healthcheck() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let mut service = TestService::start(
        SimServerSettings::default(),
        &url,
        &[],
        ServiceOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("the service did not start: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (code, out) = loop {
        let target = service.url.clone();
        let (code, out) = tokio::task::spawn_blocking(move || run_healthcheck(&target))
            .await
            .expect("probe ran");
        if code == 0 || Instant::now() > deadline {
            break (code, out);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK service: ok"), "{out}");
    service.stop().await;
    let (gone, out) = run_healthcheck(&service.url);
    assert_eq!(gone, 2, "a stopped service fails the check: {out}");
}
