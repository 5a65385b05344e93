//! The Dockerfile's `HEALTHCHECK` command, run for real: the exact argument list from the
//! Dockerfile (with the URL pointed at the running service, or at a stand-in for its
//! `/health`) must be flags this binary accepts, exit 0 for a healthy service and non-zero
//! otherwise (Docker counts any non-zero exit as a failed check).

use std::time::{Duration, Instant};

use crate::common::{MARKET_OPEN_NOW, StubServer, run, unused_url};
use chrono::{DateTime, Utc};
use market_streamer::health::MarketClock;
use schwab_sim::server::SimServerSettings;
use testkit::service::{ServiceOptions, TestService};

/// The JSON array after `HEALTHCHECK ... CMD` in the repository's Dockerfile.
fn healthcheck_command() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile");
    let text = std::fs::read_to_string(path).expect("read the Dockerfile");
    // Join continuation lines, then find the HEALTHCHECK instruction.
    let joined = text.replace("\\\n", " ");
    let line = joined
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("the Dockerfile has a HEALTHCHECK");
    let (_, cmd) = line
        .split_once(" CMD ")
        .expect("HEALTHCHECK ... CMD [..] (exec form)");
    serde_json::from_str(cmd.trim()).expect("the HEALTHCHECK command is a JSON array (exec form)")
}

/// The command's arguments with the service URL replaced by `url`.
fn arguments_against(url: &str) -> Vec<String> {
    let cmd = healthcheck_command();
    assert_eq!(cmd[0], "health_check", "{cmd:?}");
    let url_at = cmd
        .iter()
        .position(|a| a == "--url")
        .expect("the HEALTHCHECK passes --url");
    assert_eq!(
        cmd[url_at + 1],
        "http://127.0.0.1:8080",
        "the container's HEALTH_ADDR port"
    );
    let mut args: Vec<String> = cmd[1..].to_vec();
    args[url_at] = url.to_string();
    args
}

fn run_healthcheck(url: &str) -> crate::common::Run {
    let args = arguments_against(url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

fn service_answering(body: &'static str) -> StubServer {
    StubServer::start(move |req| (req.target == "/health").then(|| (200, body.to_string())))
}

#[test]
fn a_healthy_service_passes_the_container_healthcheck() {
    let server = service_answering(r#"{"status":"ok","stream":{"state":"streaming"}}"#);
    let out = run_healthcheck(&server.url);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("OK"), "{out:?}");
    assert!(
        !out.stdout.contains('\u{1b}'),
        "--color never keeps escape codes out of `docker inspect`: {out:?}"
    );
    assert_eq!(server.received()[0].target, "/health");
}

#[test]
fn a_down_or_unreachable_service_fails_the_container_healthcheck() {
    let server = service_answering(r#"{"status":"down","reasons":["no frames for 5 min"]}"#);
    let out = run_healthcheck(&server.url);
    assert_eq!(out.code, 2, "{out:?}");

    let out = run_healthcheck(&unused_url());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("unreachable"), "{out:?}");
}

#[test]
fn the_healthcheck_timeout_fits_dockers_timeout() {
    // health_check's own --timeout must end the check before Docker's --timeout kills it,
    // or a hung service shows up as a killed check instead of a report.
    let cmd = healthcheck_command();
    let own: f64 = cmd
        .iter()
        .position(|a| a == "--timeout")
        .map(|i| cmd[i + 1].parse().expect("--timeout SECS"))
        .expect("the HEALTHCHECK passes --timeout");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile"))
        .expect("read the Dockerfile");
    let docker: f64 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--timeout="))
        .and_then(|v| v.strip_suffix('s'))
        .expect("HEALTHCHECK --timeout=Ns")
        .parse()
        .expect("seconds");
    assert!(
        own < docker,
        "health_check --timeout {own} vs Docker's {docker}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_passes_the_container_healthcheck() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let open = DateTime::parse_from_rfc3339(MARKET_OPEN_NOW)
        .expect("RFC 3339")
        .with_timezone(&Utc);
    let mut service = TestService::start(
        SimServerSettings::default(),
        &url,
        &[],
        ServiceOptions {
            market_clock: MarketClock::Fixed(open),
            login_age: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the service did not start: {e}"));

    // Docker retries a failing check (--retries, --start-period); the service must turn
    // healthy within a bounded wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let target = service.url.clone();
        let out = tokio::task::spawn_blocking(move || run_healthcheck(&target))
            .await
            .expect("health_check ran");
        if out.code == 0 || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("status ok"), "{out:?}");

    service.stop().await;
    let gone = run_healthcheck(&service.url);
    assert_eq!(gone.code, 2, "a stopped service fails the check: {gone:?}");
}
