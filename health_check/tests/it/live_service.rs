//! `--url` against the real service's `/health` (not a stand-in): a fresh stream is OK
//! (exit 0), a stalled stream during market hours is CRITICAL (exit 2), and the same URL
//! once the service has stopped is unreachable (exit 2).
//!
//! The service runs in process against the fake Schwab, with market hours pinned to a
//! Wednesday morning so the verdict does not depend on when the test runs.

use std::time::{Duration, Instant};

use crate::common::{MARKET_OPEN_NOW, Run, run};
use chrono::{DateTime, Utc};
use market_streamer::health::MarketClock;
use schwab_sim::SimConfig;
use schwab_sim::server::SimServerSettings;
use testkit::service::{ServiceOptions, TestService};

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `health_check --url URL` (off the async runtime's workers) until `done` holds for
/// its result; fails after [`DEADLINE`] with the last run.
async fn poll_check(url: &str, what: &str, done: impl Fn(&Run) -> bool) -> Run {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let url = url.to_string();
        let out = tokio::task::spawn_blocking(move || run(&["--url", &url]))
            .await
            .expect("health_check ran");
        if done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last run: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_live_service_fresh_stalled_and_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let open = DateTime::parse_from_rfc3339(MARKET_OPEN_NOW)
        .expect("RFC 3339")
        .with_timezone(&Utc);
    let settings = SimServerSettings {
        market: SimConfig {
            seed: 7,
            updates_per_symbol_per_sec: 5.0,
            heartbeat_interval_ms: 200,
            ..SimConfig::default()
        },
        tick: Duration::from_millis(20),
        ..SimServerSettings::default()
    };
    let mut service = TestService::start(
        settings,
        &url,
        &[("STALL_TIMEOUT", "1")],
        ServiceOptions {
            market_clock: MarketClock::Fixed(open),
            login_age: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the service did not start: {e}"));

    let fresh = poll_check(&service.url, "OK", |r| r.code == 0).await;
    assert!(
        fresh.stdout.contains(&format!(
            "{}/health: status ok, stream connected",
            service.url
        )),
        "{fresh:?}"
    );

    // The fake Schwab goes away: no frame for more than 2 x STALL_TIMEOUT while the
    // (pinned) market is open.
    service.stop_simulator();
    let stalled = poll_check(&service.url, "CRITICAL", |r| r.code != 0 && r.code != 1).await;
    assert_eq!(stalled.code, 2, "{stalled:?}");
    assert!(stalled.stdout.contains("status down"), "{stalled:?}");
    assert!(
        stalled.stdout.contains("no frame from Schwab for"),
        "{stalled:?}"
    );

    service.stop().await;
    let gone = run(&["--url", &service.url]);
    assert_eq!(gone.code, 2, "{gone:?}");
    assert!(gone.stdout.contains("unreachable"), "{gone:?}");
}
