//! Issue 19, the session rules: every subscription watched. Against the simulator's hostile
//! switches, with the market clock pinned to the regular session: a refused SUBS (code 19),
//! a silent service (resubscribed on the same connection, then a new connection), an
//! unanswered SUBS (the other services stream on), and LOGIN answered with code 12.

use std::time::Duration;

use chrono::{DateTime, Utc};
use market_streamer::health::MarketClock;
use market_streamer::schwab::session::subscriptions::SubState;
use serde_json::Value;
use testkit::service::{ServiceOptions, TestService, fast_sim};
use tokio::time::Instant;

/// How long a test waits for a state before failing.
const DEADLINE: Duration = Duration::from_secs(30);

/// Wednesday 2025-01-08 10:00 New York: the regular session (and the futures week).
fn open_market() -> ServiceOptions {
    ServiceOptions {
        market_clock: MarketClock::Fixed(
            DateTime::parse_from_rfc3339("2025-01-08T15:00:00Z")
                .expect("RFC 3339")
                .with_timezone(&Utc),
        ),
        login_age: None,
    }
}

/// The service on SQLite (in the returned folder) against a fast simulator, with `extra`
/// settings.
async fn start(extra: &[(&str, &str)]) -> (TestService, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let service = TestService::start(fast_sim(), &url, extra, open_market())
        .await
        .unwrap_or_else(|e| panic!("the service did not start: {e}"));
    (service, dir)
}

async fn health(service: &TestService) -> (u16, Value) {
    let r = reqwest::get(format!("{}/health", service.url))
        .await
        .expect("GET /health");
    let code = r.status().as_u16();
    let body = r.text().await.expect("body");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (code, json)
}

/// Polls `/health` until `pred` holds.
async fn wait_health(
    service: &TestService,
    what: &str,
    pred: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (code, json) = health(service).await;
        if pred(code, &json) {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last /health (HTTP {code}): {json:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `/health` report of `service`'s subscription.
fn subscription<'a>(json: &'a Value, service: &str) -> &'a Value {
    json["stream"]["subscriptions"]
        .as_array()
        .and_then(|subs| subs.iter().find(|s| s["service"] == service))
        .unwrap_or_else(|| panic!("no {service} subscription in {json:#}"))
}

fn reasons(json: &Value) -> String {
    json["reasons"].to_string()
}

/// Waits until `table` has more than `than` rows.
async fn wait_rows(service: &TestService, table: &str, than: i64) -> i64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let n = service.count(table).await;
        if n > than {
            return n;
        }
        assert!(Instant::now() < deadline, "{table} stuck at {n} rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Code 19 on one service: `/health` names it (service, code, keys, what to do) within
/// seconds and is `degraded`, `/metrics` shows it refused, the other services keep writing
/// on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_is_named_in_health_and_the_others_write_on() {
    let (mut service, _dir) = start(&[]).await;
    service.wait_streamed(1).await;
    service
        .sim()
        .refuse_subscriptions("LEVELONE_OPTIONS", 19, 100);
    // A reconnect sends the subscriptions again, now with the refusal.
    service.sim().drop_connections();
    service.wait_streamed(2).await;
    let json = wait_health(&service, "the refusal in /health", |code, j| {
        code == 200 && j["status"] == "degraded" && reasons(j).contains("LEVELONE_OPTIONS")
    })
    .await;
    let options = subscription(&json, "LEVELONE_OPTIONS");
    assert_eq!(options["state"], "refused", "{json:#}");
    assert_eq!(options["code"], 19);
    assert_eq!(options["keys"], 1);
    let text = reasons(&json);
    assert!(
        text.contains("code 19") && text.contains("symbol limit") && text.contains(".env"),
        "{text}"
    );
    assert_eq!(subscription(&json, "LEVELONE_EQUITIES")["state"], "active");
    let health = service.health.borrow().clone();
    assert!(matches!(
        health.subscriptions[1].state,
        SubState::Refused { code: 19, .. }
    ));
    // The others keep writing, on the same connection, with no retry loop.
    let before = service.count("equity_data").await;
    wait_rows(&service, "equity_data", before + 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(service.health.borrow().connects, 2, "no reconnect loop");
    let refusals = service
        .sim()
        .received()
        .iter()
        .filter(|c| c.service == "LEVELONE_OPTIONS" && c.response_code == 19)
        .count();
    assert_eq!(refusals, 1, "asked once per connection, not in a loop");
    let metrics = reqwest::get(format!("{}/metrics", service.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("market_streamer_subscription_state{service=\"LEVELONE_OPTIONS\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("market_streamer_subscription_state{service=\"LEVELONE_EQUITIES\"} 2")
    );
    service.stop().await;
}

/// One service stops delivering while heartbeats and the others go on: it turns `silent`,
/// is subscribed again on the same connection within its limit, `/health` is not `ok`; when
/// its data come back the hole is a `stream_gaps` row (reason `service_silent`) without a
/// reconnect. Kept silent, the connection is made again (another `service_silent` gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_service_is_resubscribed_then_reconnected_with_gap_rows() {
    let (mut service, _dir) = start(&[("SERVICE_SILENCE_TIMEOUT", "2")]).await;
    service.wait_streamed(1).await;
    wait_rows(&service, "option_data", 0).await;
    let subs_before = service
        .sim()
        .received()
        .iter()
        .filter(|c| c.service == "LEVELONE_OPTIONS" && c.command == "SUBS")
        .count();
    service.sim().mute_service("LEVELONE_OPTIONS", true);
    let json = wait_health(&service, "the silent service", |_, j| {
        subscription(j, "LEVELONE_OPTIONS")["state"] == "silent"
    })
    .await;
    assert_ne!(json["status"], "ok", "{json:#}");
    assert!(
        reasons(&json).contains("LEVELONE_OPTIONS delivered no data"),
        "{json:#}"
    );
    let resubscribed = service
        .sim()
        .received()
        .iter()
        .filter(|c| c.service == "LEVELONE_OPTIONS" && c.command == "SUBS")
        .count();
    assert_eq!(
        resubscribed,
        subs_before + 1,
        "subscribed again on the same connection"
    );
    assert_eq!(service.health.borrow().connects, 1);
    // Data again: active, and the hole is a gap row, still on the first connection.
    service.sim().mute_service("LEVELONE_OPTIONS", false);
    service
        .wait_for("the silence to end", |h| h.silences >= 1)
        .await;
    assert_eq!(service.health.borrow().connects, 1, "no reconnect needed");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let gaps = service.gaps().await;
        if gaps.iter().any(|g| g.0 == "service_silent") {
            break;
        }
        assert!(Instant::now() < deadline, "no service_silent gap: {gaps:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Silent for good: resubscribed, then the connection is made again.
    service.sim().mute_service("LEVELONE_OPTIONS", true);
    service
        .wait_for("a new connection for the silent service", |h| {
            h.connects >= 2
        })
        .await;
    let health = service.health.borrow().clone();
    assert_eq!(
        health
            .last_close
            .as_deref()
            .map(|c| c.contains("LEVELONE_OPTIONS")),
        Some(true),
        "{health:?}"
    );
    assert_eq!(
        health.reconnects.get("service_silent"),
        Some(&1),
        "{health:?}"
    );
    service.sim().mute_service("LEVELONE_OPTIONS", false);
    service.wait_streamed(2).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let gaps = service.gaps().await;
        if gaps.iter().filter(|g| g.0 == "service_silent").count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no second service_silent gap: {gaps:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.stop().await;
}

/// A SUBS that never gets an answer is sent again on the same connection a bounded number
/// of times, then counts as unanswered (`/health` degraded) while the services already
/// streaming write on, uninterrupted (one connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_subscription_does_not_interrupt_the_others() {
    let (mut service, _dir) = start(&[("STREAM_RESPONSE_TIMEOUT", "0.5")]).await;
    service.wait_streamed(1).await;
    service.sim().ignore_subscriptions("CHART_EQUITY", 100);
    service.sim().drop_connections();
    service
        .wait_for("the second connection", |h| {
            h.connects >= 2 && h.sessions_streamed >= 2
        })
        .await;
    let json = wait_health(&service, "the unanswered subscription", |_, j| {
        subscription(j, "CHART_EQUITY")["state"] == "unanswered"
    })
    .await;
    assert_eq!(json["status"], "degraded", "{json:#}");
    assert_eq!(subscription(&json, "CHART_EQUITY")["attempts"], 3);
    assert!(reasons(&json).contains("CHART_EQUITY subscription got no answer"));
    let sent = service
        .sim()
        .received()
        .iter()
        .filter(|c| c.connection == 2 && c.service == "CHART_EQUITY")
        .count();
    assert_eq!(sent, 3, "sent three times on the same connection");
    // Equities stream on without interruption on the second connection.
    let before = service.count("equity_data").await;
    wait_rows(&service, "equity_data", before + 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(service.health.borrow().connects, 2, "no reconnect for it");
    assert_eq!(service.sim().open_connections(), 1);
    service.stop().await;
}

/// LOGIN answered with code 12 (the single streamer slot is taken) is a kick: at most one
/// LOGIN per `KICKED_BACKOFF`, state `kicked`, and no token refresh in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_12_at_login_waits_kicked_backoff_without_refreshing() {
    let (mut service, _dir) = start(&[("KICKED_BACKOFF", "3")]).await;
    service.wait_streamed(1).await;
    service.sim().answer_logins_with(12, 2);
    service.sim().drop_connections();
    service
        .wait_for("kicked", |h| {
            h.state == market_streamer::schwab::session::SessionState::Kicked
        })
        .await;
    let kicked_at = Instant::now();
    // The reconnect before the first code 12 took a fresh token; none from here on.
    let refreshes_before = service
        .sim()
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token")
        .count();
    // Two refused LOGINs, then one that works: KICKED_BACKOFF after each refusal.
    service.wait_streamed(2).await;
    assert!(
        kicked_at.elapsed() >= Duration::from_millis(5_500),
        "two KICKED_BACKOFF waits of 3 s: {:?}",
        kicked_at.elapsed()
    );
    let logins: Vec<_> = service
        .sim()
        .received()
        .into_iter()
        .filter(|c| c.command == "LOGIN" && c.connection > 1)
        .collect();
    assert_eq!(
        logins.iter().map(|c| c.response_code).collect::<Vec<_>>(),
        [12, 12, 0],
        "{logins:#?}"
    );
    let refreshes_after = service
        .sim()
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token")
        .count();
    assert_eq!(
        refreshes_after, refreshes_before,
        "no token refresh while kicked"
    );
    let kicked = service.health.borrow().reconnects.get("kicked").copied();
    assert_eq!(kicked, Some(2));
    service.stop().await;
}
