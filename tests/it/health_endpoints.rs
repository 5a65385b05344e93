//! `GET /health` and `GET /metrics` (the live page: `tests/live_page.rs`) of a running service fed by the fake Schwab: the
//! zero-configuration run, a PostgreSQL outage and recovery, a stalled stream with the
//! market open and closed, tokens near their end, a needed login and a code-12 kick; and
//! no secret in any body.
//!
//! Market hours are pinned with `RunOptions::market_clock` (ages stay on the wall clock),
//! so the verdicts do not depend on when the tests run. Waits poll with generous deadlines.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use market_streamer::app::{self, RunOptions};
use market_streamer::health::MarketClock;
use schwab_sim::server::SimServerSettings;
use serde_json::Value;
use testkit::service::{ServiceOptions, TestService};

use testkit::service::fast_sim;

/// How long a test waits for a state before failing with the last answer.
const DEADLINE: Duration = Duration::from_secs(30);

/// Wednesday 2025-01-08 10:00 New York: the regular session.
const MARKET_OPEN: &str = "2025-01-08T15:00:00Z";
/// Saturday 2025-01-11 10:00 New York.
const WEEKEND: &str = "2025-01-11T15:00:00Z";

fn pinned(text: &str) -> MarketClock {
    MarketClock::Fixed(
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .with_timezone(&Utc),
    )
}

/// Reads the endpoints and keeps every body it saw, for the secrets check.
struct Probe {
    client: reqwest::Client,
    url: String,
    bodies: std::sync::Mutex<Vec<String>>,
}

impl Probe {
    fn new(url: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            url: url.to_string(),
            bodies: std::sync::Mutex::new(Vec::new()),
        }
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        let code = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = r.text().await.expect("body");
        self.bodies.lock().expect("lock").push(body.clone());
        (code, content_type, body)
    }

    async fn health(&self) -> (u16, Value) {
        let (code, content_type, body) = self.get("/health").await;
        assert_eq!(content_type, "application/json", "{body}");
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        (code, json)
    }

    async fn metrics(&self) -> String {
        let (code, content_type, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        body
    }

    /// Polls `/health` until `pred` holds; fails after [`DEADLINE`] with the last answer.
    async fn wait_health(&self, what: &str, pred: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (code, json) = self.health().await;
            if pred(code, &json) {
                return (code, json);
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last /health (HTTP {code}): {json:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls `/metrics` until `pred` holds for the text.
    async fn wait_metrics(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = self.metrics().await;
            if pred(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last /metrics:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// No body seen so far contains any of `secrets`.
    fn assert_no_secret(&self, secrets: &[String]) {
        let bodies = self.bodies.lock().expect("lock");
        assert!(!bodies.is_empty());
        for secret in secrets.iter().filter(|s| s.len() >= 6) {
            for body in bodies.iter() {
                assert!(
                    !body.contains(secret.as_str()),
                    "a secret ({}…) is in a body: {body}",
                    &secret[..4]
                );
            }
        }
    }
}

/// The value of the sample `series` (name with labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

fn positive(text: &str, series: &str) -> bool {
    sample(text, series).is_some_and(|v| v > 0.0)
}

fn reasons(json: &Value) -> String {
    json["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

fn status_is(code: u16, json: &Value, status: &str) -> bool {
    json["status"] == status && code == if status == "down" { 503 } else { 200 }
}

async fn start(
    settings: SimServerSettings,
    database_url: &str,
    extra: &[(&str, &str)],
    clock: MarketClock,
) -> TestService {
    start_with(
        settings,
        database_url,
        extra,
        ServiceOptions {
            market_clock: clock,
            login_age: None,
        },
    )
    .await
}

async fn start_with(
    settings: SimServerSettings,
    database_url: &str,
    extra: &[(&str, &str)],
    options: ServiceOptions,
) -> TestService {
    TestService::start(settings, database_url, extra, options)
        .await
        .unwrap_or_else(|e| panic!("the service did not start: {e}"))
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("market.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_configuration_run_is_ok_and_serves_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool").display().to_string();
    // What `cargo run --release` does, with a free port and a temporary database.
    let cfg = testkit::config_for(
        &sqlite_url(&dir),
        &[
            ("SCHWAB_MODE", "simulated"),
            ("HEALTH_ADDR", "127.0.0.1:0"),
            ("STATUS_INTERVAL", "0"),
            ("SPOOL_DIR", &spool),
        ],
    );
    let mut running = testkit::service::spawn_run(cfg, RunOptions::default());
    let addr = running.listens().await;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let probe = Probe::new(&format!("http://{addr}"));

    let (_, json) = probe
        .wait_health("ok with rows written", |code, j| {
            status_is(code, j, "ok") && j["writer"]["rows_written"].as_u64() > Some(5)
        })
        .await;
    assert_eq!(json["reasons"], serde_json::json!([]));
    assert_eq!(json["stream"]["state"], "connected");
    assert!(
        json["stream"]["last_frame_age_secs"].as_f64() < Some(10.0),
        "{json:#}"
    );
    assert!(
        json["writer"]["last_commit_age_secs"].is_number(),
        "{json:#}"
    );
    assert!(json["writer"]["buffered_rows"].is_u64(), "{json:#}");
    assert!(json["market"]["open"].is_boolean() && json["market"]["phase"].is_string());
    assert_eq!(json["tokens"]["state"], "valid");
    assert!(json["tokens"]["access_expires_in_secs"].as_f64() > Some(0.0));
    assert!(json["tokens"]["refresh_expires_in_secs"].as_f64() > Some(6.0 * 86_400.0));
    assert_eq!(json["database"]["kind"], "sqlite");
    assert_eq!(json["database"]["limit_bytes"], 500 * 1024 * 1024);
    assert!(
        json["database"]["size_bytes"].as_u64() > Some(0),
        "{json:#}"
    );
    assert_eq!(json["spool"]["enabled"], true);
    assert_eq!(json["spool"]["usable"], true);

    let text = probe
        .wait_metrics("streaming and writing counters, nothing buffered", |t| {
            positive(t, "market_streamer_flush_duration_seconds_count")
                && positive(t, "market_streamer_tick_to_commit_seconds_count")
                && positive(
                    t,
                    "market_streamer_rows_written_total{table=\"option_data\"}",
                )
                && positive(
                    t,
                    "market_streamer_rows_written_total{table=\"futures_data\"}",
                )
                // Rows keep arriving (every service of the zero-configuration run): a
                // scrape between two writes shows none waiting.
                && sample(t, "market_streamer_buffered_rows") == Some(0.0)
        })
        .await;
    for series in [
        "market_streamer_frames_total{service=\"LEVELONE_EQUITIES\"}",
        "market_streamer_frames_total{service=\"LEVELONE_OPTIONS\"}",
        "market_streamer_frames_total{service=\"other\"}",
        "market_streamer_updates_total{service=\"LEVELONE_EQUITIES\"}",
        "market_streamer_updates_total{service=\"LEVELONE_OPTIONS\"}",
        "market_streamer_rows_written_total{table=\"equity_data\"}",
        "market_streamer_writes_total",
        "market_streamer_flush_rows_count",
        "market_streamer_flush_duration_seconds_bucket{le=\"+Inf\"}",
        "market_streamer_tick_to_commit_seconds_bucket{le=\"+Inf\"}",
        "market_streamer_connects_total",
        "market_streamer_access_token_seconds_left",
        "market_streamer_refresh_token_seconds_left",
        "market_streamer_stream_connected",
        "market_streamer_database_bytes",
        "market_streamer_database_limit_bytes",
    ] {
        assert!(positive(&text, series), "{series} not positive in:\n{text}");
    }
    for series in [
        "market_streamer_malformed_frames_total",
        "market_streamer_buffered_rows",
        "market_streamer_rows_dropped_total",
        "market_streamer_health_status",
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in:\n{text}");
    }
    for kind in ["counter", "gauge", "histogram"] {
        assert!(
            text.contains(&format!(" {kind}\n")),
            "{kind} types:\n{text}"
        );
    }

    let (code, _, body) = probe.get("/nothing-here").await;
    assert_eq!(code, 404);
    assert!(body.contains("GET /health and GET /metrics"), "{body}");
    let post = probe
        .client
        .post(format!("{}/health", probe.url))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status().as_u16(), 405);

    tokio::time::timeout(DEADLINE, running.stop())
        .await
        .expect("stops in time")
        .expect("run succeeded");
    assert!(
        probe
            .client
            .get(format!("{}/health", probe.url))
            .send()
            .await
            .is_err(),
        "the endpoint stops with the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_degraded_then_down_and_ok_again_after_the_restart() {
    let mut pg = testkit::start_postgres();
    pg.create_database("outage").expect("db");
    // Trust authentication ignores the password, but the service carries it everywhere.
    let password = "Pg-s3cret-9f2c7d1e";
    let url = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/outage",
        pg.port()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool").display().to_string();
    let mut service = start(
        fast_sim(),
        &url,
        &[
            ("SPOOL_DIR", &spool),
            ("HEALTH_DB_DOWN_AFTER", "2"),
            ("REALTIME_MODE", "off"),
        ],
        pinned(MARKET_OPEN),
    )
    .await;
    let probe = Probe::new(&service.url);
    let (_, json) = probe
        .wait_health("ok with rows written", |code, j| {
            status_is(code, j, "ok") && j["writer"]["rows_written"].as_u64() > Some(0)
        })
        .await;
    assert_eq!(json["database"]["kind"], "postgres");
    assert_eq!(json["market"]["open"], true, "the pinned clock");

    pg.stop().expect("stop PostgreSQL");
    let (_, json) = probe
        .wait_health("degraded: writes failing", |code, j| {
            status_is(code, j, "degraded")
                && reasons(j).contains("database writes failing")
                && j["database"]["writes_failing"] == true
        })
        .await;
    assert!(json["writer"]["failing_since"].is_string(), "{json:#}");
    let (_, json) = probe
        .wait_health("down after HEALTH_DB_DOWN_AFTER", |code, j| {
            status_is(code, j, "down")
        })
        .await;
    let why = reasons(&json);
    assert!(
        why.contains("down after HEALTH_DB_DOWN_AFTER (2.0 s)"),
        "{why}"
    );
    assert!(
        json["writer"]["unwritten_rows"].as_u64() > Some(0),
        "{json:#}"
    );
    assert_eq!(
        json["stream"]["state"], "connected",
        "the stream keeps going"
    );
    let text = probe
        .wait_metrics("retries and spooled rows", |t| {
            positive(t, "market_streamer_write_retries_total")
                && positive(t, "market_streamer_rows_spooled_total")
        })
        .await;
    assert_eq!(sample(&text, "market_streamer_health_status"), Some(2.0));

    pg.start_again().expect("start PostgreSQL again");
    let (_, json) = probe
        .wait_health("ok after the restart, spool written", |code, j| {
            status_is(code, j, "ok")
        })
        .await;
    assert!(json["writer"]["failing_since"].is_null(), "{json:#}");
    assert_eq!(json["spool"]["rows"], 0);
    probe.metrics().await;

    let mut secrets = service.sim().issued_secrets();
    secrets.push(password.to_string());
    probe.assert_no_secret(&secrets);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_down_while_the_market_is_open_and_only_degraded_on_a_weekend() {
    let open_dir = tempfile::tempdir().expect("tempdir");
    let closed_dir = tempfile::tempdir().expect("tempdir");
    let fast_stall = [("STALL_TIMEOUT", "1")];
    let mut open = start(
        fast_sim(),
        &sqlite_url(&open_dir),
        &fast_stall,
        pinned(MARKET_OPEN),
    )
    .await;
    let mut closed = start(
        fast_sim(),
        &sqlite_url(&closed_dir),
        &fast_stall,
        pinned(WEEKEND),
    )
    .await;
    let open_probe = Probe::new(&open.url);
    let closed_probe = Probe::new(&closed.url);
    for probe in [&open_probe, &closed_probe] {
        probe
            .wait_health("ok", |code, j| status_is(code, j, "ok"))
            .await;
    }

    // The fake Schwab goes away: no frame arrives, reconnects fail.
    open.stop_simulator();
    closed.stop_simulator();
    let (_, json) = open_probe
        .wait_health("down: stalled during the regular session", |code, j| {
            status_is(code, j, "down")
        })
        .await;
    let why = reasons(&json);
    assert!(why.contains("no frame from Schwab for"), "{why}");
    assert!(why.contains("during the regular session"), "{why}");
    // Down once the silence exceeds 2 s; the age is shown in whole milliseconds, so it can
    // read exactly 2.0 at that moment.
    assert!(
        json["stream"]["last_frame_age_secs"].as_f64() >= Some(2.0),
        "{json:#}"
    );
    assert_ne!(json["stream"]["state"], "connected", "{json:#}");
    assert_eq!(json["stream"]["stall_after_secs"], 2.0);

    closed_probe
        .wait_health("a silent stream on a weekend", |_, j| {
            j["stream"]["last_frame_age_secs"].as_f64() > Some(2.5)
                && j["stream"]["state"] != "connected"
        })
        .await;
    // Silence is no error with the market closed; the failing reconnects still show.
    let (code, json) = closed_probe
        .wait_health("degraded while reconnecting", |_, j| {
            j["stream"]["state"] == "backing_off"
        })
        .await;
    assert_eq!(
        (code, json["status"].as_str()),
        (200, Some("degraded")),
        "{json:#}"
    );
    assert!(!reasons(&json).contains("no frame"), "{json:#}");
    assert_eq!(json["market"]["closed_reason"], "weekend");

    let text = open_probe
        .wait_metrics("reconnects by reason", |t| {
            t.contains("market_streamer_reconnects_total{reason=")
        })
        .await;
    assert_eq!(sample(&text, "market_streamer_health_status"), Some(2.0));
    assert_eq!(sample(&text, "market_streamer_stream_connected"), Some(0.0));
    assert!(
        sample(&text, "market_streamer_last_frame_age_seconds") > Some(2.0),
        "{text}"
    );
    for service in [&mut open, &mut closed] {
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_near_their_end_are_shown_and_degrade_the_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Short-lived access tokens, and a browser login 6.5 days ago: its 7 days end in 12 h.
    let settings = SimServerSettings {
        access_token_lifetime: Duration::from_secs(600),
        ..fast_sim()
    };
    let mut service = start_with(
        settings,
        &sqlite_url(&dir),
        &[],
        ServiceOptions {
            market_clock: pinned(MARKET_OPEN),
            login_age: Some(chrono::Duration::hours(6 * 24 + 12)),
        },
    )
    .await;
    let probe = Probe::new(&service.url);
    let (code, json) = probe
        .wait_health("the refresh token's end", |_, j| {
            reasons(j).contains("the refresh token ends in")
        })
        .await;
    assert_eq!(
        (code, json["status"].as_str()),
        (200, Some("degraded")),
        "{json:#}"
    );
    assert!(
        reasons(&json).contains("run `market-streamer login` before then"),
        "{json:#}"
    );
    assert_eq!(json["tokens"]["state"], "expiring_soon");
    let refresh_left = json["tokens"]["refresh_expires_in_secs"]
        .as_f64()
        .expect("refresh expiry");
    assert!(
        refresh_left > 11.0 * 3600.0 && refresh_left <= 12.0 * 3600.0,
        "{json:#}"
    );
    let access_left = json["tokens"]["access_expires_in_secs"]
        .as_f64()
        .expect("access expiry");
    assert!(access_left > 0.0 && access_left <= 600.0, "{json:#}");
    assert!(json["tokens"]["access_expires_at"].is_string());

    let text = probe.metrics().await;
    let gauge = sample(&text, "market_streamer_refresh_token_seconds_left").expect("gauge");
    assert!(gauge > 0.0 && gauge <= 12.0 * 3600.0, "{text}");
    assert!(sample(&text, "market_streamer_access_token_seconds_left") <= Some(600.0));
    assert_eq!(sample(&text, "market_streamer_health_status"), Some(1.0));
    probe.assert_no_secret(&service.sim().issued_secrets());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_needed_login_is_down_in_market_hours_a_new_login_heals_it_and_a_kick_degrades() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A long stall timeout: the kicked state is judged on its own, not as a stall.
    let mut service = start(
        fast_sim(),
        &sqlite_url(&dir),
        &[("STALL_TIMEOUT", "30")],
        pinned(MARKET_OPEN),
    )
    .await;
    let probe = Probe::new(&service.url);
    probe
        .wait_health("ok", |code, j| status_is(code, j, "ok"))
        .await;

    // Schwab refuses the refresh token (a login elsewhere); the next connect needs a login.
    let sim = service.sim();
    sim.revoke_refresh_tokens();
    sim.drop_connections();
    let (_, json) = probe
        .wait_health("down: needs_login", |code, j| {
            status_is(code, j, "down") && j["stream"]["state"] == "needs_login"
        })
        .await;
    assert!(
        reasons(&json).contains("a browser login is needed (run `market-streamer login`)"),
        "{json:#}"
    );
    assert_eq!(json["tokens"]["state"], "needs_login");

    service.login_again().await.expect("login");
    probe
        .wait_health("ok after the login", |code, j| status_is(code, j, "ok"))
        .await;

    service.sim().kick();
    let (code, json) = probe
        .wait_health("kicked", |_, j| j["stream"]["state"] == "kicked")
        .await;
    assert_eq!(
        (code, json["status"].as_str()),
        (200, Some("degraded")),
        "{json:#}"
    );
    assert!(
        reasons(&json).contains("kicked by another login (code 12)"),
        "{json:#}"
    );
    let text = probe
        .wait_metrics("the kick counted", |t| {
            positive(t, "market_streamer_reconnects_total{reason=\"kicked\"}")
        })
        .await;
    assert!(positive(
        &text,
        "market_streamer_reconnects_total{reason=\"network_error\"}"
    ));
    assert!(positive(
        &text,
        "market_streamer_reconnects_total{reason=\"needs_login\"}"
    ));
    probe.assert_no_secret(&service.sim().issued_secrets());
    service.stop().await;
}

/// Turns the whole cluster read-only (as Supabase does past the Free plan's 500 MB) or back.
fn set_read_only(pg: &testkit::TestPostgres, on: bool) {
    let sql = if on {
        "ALTER SYSTEM SET default_transaction_read_only = on;"
    } else {
        "SET default_transaction_read_only = off; ALTER SYSTEM RESET default_transaction_read_only;"
    };
    pg.psql("postgres", sql).expect("alter system");
    pg.psql("postgres", "SELECT pg_reload_conf()")
        .expect("reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_down_by_name_keeps_every_row_and_gap_and_survives_a_restart() {
    let pg = testkit::start_postgres();
    let url = pg.create_database("readonly").expect("db");
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool").display().to_string();
    let vars = [
        ("SPOOL_DIR", spool.as_str()),
        ("REALTIME_MODE", "off"),
        ("BATCH_INTERVAL", "0.2"),
    ];
    let mut service = start(fast_sim(), &url, &vars, pinned(MARKET_OPEN)).await;
    let probe = Probe::new(&service.url);
    probe
        .wait_health("ok with rows written", |code, j| {
            status_is(code, j, "ok") && j["writer"]["rows_written"].as_u64() > Some(0)
        })
        .await;

    // Read-only mid-stream: down at once, naming read-only mode, the stream goes on.
    set_read_only(&pg, true);
    let (_, json) = probe
        .wait_health("down: read-only", |code, j| {
            status_is(code, j, "down") && reasons(j).contains("read-only")
        })
        .await;
    assert!(json["writer"]["refusing_writes"].is_string(), "{json:#}");
    assert_eq!(json["stream"]["state"], "connected", "{json:#}");
    probe
        .wait_health("rows kept in the spool", |_, j| {
            j["spool"]["rows"].as_u64() > Some(0)
        })
        .await;
    let first = service.stop().await;

    // A restart while the database is still read-only: no exit, rows keep being spooled.
    let mut service = start(fast_sim(), &url, &vars, pinned(MARKET_OPEN)).await;
    let probe = Probe::new(&service.url);
    probe
        .wait_health("down while read-only after a restart", |code, j| {
            status_is(code, j, "down")
                && reasons(j).contains("read-only")
                && j["stream"]["state"] == "connected"
        })
        .await;
    // A stream interruption while the database refuses writes: its gap row waits, retried.
    service.sim().drop_connections();
    probe
        .wait_health("streaming again after the drop", |_, j| {
            j["stream"]["gaps"] == 1 && j["stream"]["state"] == "connected"
        })
        .await;
    set_read_only(&pg, false);
    let (_, json) = probe
        .wait_health("ok again, spool written", |code, j| {
            status_is(code, j, "ok") && j["spool"]["rows"] == 0
        })
        .await;
    assert!(json["writer"]["refusing_writes"].is_null(), "{json:#}");
    let client = testkit::pg_client(&url).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    while testkit::pg_i64(&client, "SELECT count(*) FROM stream_gaps")
        .await
        .expect("count gaps")
        < 1
    {
        assert!(
            Instant::now() < deadline,
            "the gap of the read-only time was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = service.stop().await;

    let stored = testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
        .await
        .expect("count");
    assert_eq!(
        stored as u64,
        first.equity_updates + second.equity_updates,
        "every update received in both runs is stored once"
    );
}

/// The message budget of the default Realtime setup (Broadcast every second, the five
/// default symbols, Supabase Free) in `/health`, against a hand computation for 2026, and
/// what the live cadence sent, in `/health` and `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realtime_budget_of_the_default_setup_is_in_health() {
    let pg = testkit::start_postgres();
    let sb = testkit::supabase::prepare(&pg, "budget", false).expect("supabase-like database");
    let service = start(
        fast_sim(),
        &sb.owner_url,
        &[("SYMBOLS", "AAPL,MSFT,NVDA,SPY,TSLA")],
        // Monday 2026-06-01 11:00 New York: the budget counts an average month of 2026.
        pinned("2026-06-01T15:00:00Z"),
    )
    .await;
    let probe = Probe::new(&service.url);
    let (_, json) = probe
        .wait_health("Broadcast sent while streaming", |code, j| {
            j["realtime"]["messages_sent"].as_u64() > Some(0) && status_is(code, j, "ok")
        })
        .await;
    let b = &json["realtime"]["budget"];
    // 2026: 251 trading days, 2 of them closing at 13:00 (Nov 27, Dec 24):
    // (249 x 6.5 h + 2 x 3.5 h) x 3600 / 12 = 487,650 s of regular session a month.
    // Broadcast every second: one message per second per viewer, plus one to send it.
    let per_viewer = (249 * 6 * 3600 + 249 * 1800 + 2 * 3 * 3600 + 2 * 1800) / 12;
    assert_eq!(per_viewer, 487_650);
    assert_eq!(b["messages_per_month_per_viewer"], per_viewer, "{b:#}");
    assert_eq!(b["messages_per_month_sending"], per_viewer);
    assert_eq!(b["messages_per_month_one_viewer"], 2 * per_viewer);
    // (2,000,000 - 487,650) / 487,650 = 3.1 viewers on Free.
    assert_eq!(b["viewers_fit"], 3);
    assert_eq!(b["limited_by"], "messages_per_month");
    assert_eq!(
        (
            b["mode"].as_str(),
            b["plan"].as_str(),
            b["symbols"].as_u64()
        ),
        (Some("broadcast"), Some("free"), Some(5))
    );
    assert_eq!(b["plan_messages_per_month"], 2_000_000);
    assert_eq!(b["plan_messages_per_second"], 100);
    let warning = b["warning"].as_str().expect("a warning: few viewers fit");
    assert!(
        warning.contains("only 3 viewer(s)") && warning.contains("REALTIME_INTERVAL to 2.7"),
        "{warning}"
    );
    assert_eq!(
        json["status"], "ok",
        "a tight budget is a warning, not a fault: {json:#}"
    );
    let metrics = probe
        .wait_metrics("Realtime counters", |t| {
            positive(t, "market_streamer_realtime_sends_total")
                && positive(t, "market_streamer_realtime_messages_total")
        })
        .await;
    assert!(
        metrics.contains("market_streamer_realtime_send_failures_total 0"),
        "{metrics}"
    );
    drop(service);
}

/// A database that is down when `run` starts is waited for (past the first connect attempts,
/// one more every `retry`), `/health` says so, and the service streams into it once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_unreachable_at_start_is_waited_for_then_streamed_into() {
    let mut pg = testkit::start_postgres();
    let url = pg.create_database("late").expect("db");
    pg.stop().expect("stop postgres");
    let cfg = testkit::config_for(
        &url,
        &[
            ("SCHWAB_MODE", "simulated"),
            ("HEALTH_ADDR", "127.0.0.1:0"),
            ("STATUS_INTERVAL", "0"),
            ("SPOOL_DIR", "off"),
            ("REALTIME_MODE", "off"),
        ],
    );
    let mut running = testkit::service::spawn_run(
        cfg,
        RunOptions {
            database_wait: app::DatabaseWait {
                connect_for: Duration::from_millis(500),
                retry: Duration::from_secs(1),
            },
            ..RunOptions::default()
        },
    );
    let addr = running.listens().await;
    let probe = Probe::new(&format!("http://{addr}"));
    let (_, json) = probe
        .wait_health("waiting for the database", |_, j| {
            j.to_string().contains("waiting for the database (postgres")
        })
        .await;
    assert_eq!(json["writer"]["rows_written"], 0, "{json:#}");
    // Several retries go by; the service is still there, waiting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!running.task.is_finished(), "the service did not exit");

    pg.start_again().expect("restart postgres");
    probe
        .wait_health("ok with rows written once the database is up", |code, j| {
            status_is(code, j, "ok") && j["writer"]["rows_written"].as_u64() > Some(0)
        })
        .await;
    let summary = running.stop().await.expect("the run ended cleanly");
    let client = testkit::pg_client(&url).await.expect("connect");
    let stored = testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
        .await
        .expect("count");
    assert_eq!(stored as u64, summary.equity_updates, "{summary:?}");
}
