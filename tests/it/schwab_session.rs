//! The real session (token task, REST, streamer connection, supervisor, writer) against the
//! fake Schwab: login and subscription order, fresh tokens, every close path, code 12,
//! needs_login and recovery, gaps.

use std::time::{Duration, Instant};

use market_streamer::schwab::session::SessionState;
use market_streamer::schwab::token_manager::TokenState;
use schwab_sim::server::{ReceivedCommand, SimServerSettings};
use testkit::service::{TestService, WAIT, fast_sim, login};

/// The commands of one connection.
fn commands_of(all: &[ReceivedCommand], connection: u64) -> Vec<ReceivedCommand> {
    all.iter()
        .filter(|c| c.connection == connection)
        .cloned()
        .collect()
}

/// Checks a connection did LOGIN, then the three subscriptions, each answered with 0.
fn assert_full_subscription(cmds: &[ReceivedCommand]) {
    let shape: Vec<(&str, &str)> = cmds
        .iter()
        .map(|c| (c.service.as_str(), c.command.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            ("ADMIN", "LOGIN"),
            ("LEVELONE_EQUITIES", "SUBS"),
            ("LEVELONE_OPTIONS", "SUBS"),
            ("CHART_EQUITY", "SUBS")
        ],
        "{cmds:#?}"
    );
    assert!(
        cmds.iter().all(|c| c.response_code == 0),
        "every command answered with 0 (none sent early or in parallel): {cmds:#?}"
    );
    for c in &cmds[1..] {
        let fields: Vec<u32> = c
            .fields
            .as_deref()
            .expect("fields")
            .split(',')
            .map(|f| f.parse().expect("number"))
            .collect();
        assert_eq!(fields[0], 0, "field 0 included: {c:?}");
        assert!(fields.windows(2).all(|w| w[0] < w[1]), "ascending: {c:?}");
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_first_then_one_subscription_at_a_time_with_ascending_fields() {
    let mut run = TestService::start_sqlite(fast_sim(), &[("EQUITY_FIELDS", "8,3,2,1")]).await;
    run.wait_streamed(1).await;
    let all = run.sim().received();
    let first = commands_of(&all, all[0].connection);
    assert_full_subscription(&first);
    let ids: Vec<&str> = first.iter().map(|c| c.request_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    assert_eq!(first[1].keys.as_deref(), Some("AAPL,MSFT"));
    assert_eq!(
        first[1].fields.as_deref(),
        Some("0,1,2,3,8"),
        "EQUITY_FIELDS sorted, with 0"
    );
    assert_eq!(first[2].keys.as_deref(), Some("AAPL  271217C00250000"));
    assert_eq!(
        first[3].keys.as_deref(),
        Some("AAPL,MSFT"),
        "CHART_SYMBOLS defaults to SYMBOLS"
    );
    let token = first[0].authorization.clone().expect("LOGIN token");
    assert!(!token.starts_with("Bearer"), "the raw access token");

    wait_until("equity rows", async || run.count("equity_data").await > 0).await;
    wait_until("option rows", async || run.count("option_data").await > 0).await;
    let summary = run.stop().await;
    assert_eq!(summary.connects, 1);
    assert!(run.gaps().await.is_empty(), "a clean stop is no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_close_path_ends_in_a_resubscribed_stream_with_a_fresh_token_and_a_gap() {
    let mut run = TestService::start_sqlite(fast_sim(), &[("STALL_TIMEOUT", "1.5")]).await;
    run.wait_streamed(1).await;

    type Switch = fn(&schwab_sim::server::SimServer);
    let paths: [(&str, Switch); 4] = [
        ("server_close", |s| s.close_connections()),
        ("network_error", |s| s.drop_connections()),
        ("stall", |s| s.silence_connections()),
        ("stop_streaming", |s| s.stop_streaming()),
    ];
    for (i, (reason, switch)) in paths.into_iter().enumerate() {
        let streamed = run.health.borrow().sessions_streamed;
        switch(run.sim());
        let health = run.wait_streamed(streamed + 1).await;
        assert_eq!(health.state, SessionState::Streaming, "after {reason}");

        // The newest connection logged in and replayed every subscription.
        let all = run.sim().received();
        let last = all
            .iter()
            .rfind(|c| c.command == "LOGIN" && c.response_code == 0)
            .expect("a login")
            .connection;
        assert_full_subscription(&commands_of(&all, last));
        wait_until(&format!("the {reason} gap"), async || {
            run.gaps().await.iter().any(|g| g.0 == reason)
        })
        .await;
        assert!(run.gaps().await.len() > i, "one gap per interruption");
    }

    // A fresh token on every (re)connect: all LOGIN tokens differ (each was valid: code 0).
    let tokens: Vec<String> = run
        .accepted_logins()
        .iter()
        .map(|c| c.authorization.clone().expect("token"))
        .collect();
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(
        distinct.len(),
        tokens.len(),
        "a new access token per connection"
    );
    let refreshes = run
        .sim()
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token" && g.status == 200)
        .count();
    assert!(
        refreshes >= tokens.len() - 1,
        "one refresh per reconnect at least"
    );

    for (_, start, end) in run.gaps().await {
        assert!(start <= end, "gap from {start} to {end}");
    }
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_3_retries_with_newer_tokens_a_bounded_number_of_times_then_needs_login() {
    let mut run = TestService::start_sqlite(fast_sim(), &[]).await;
    run.wait_streamed(1).await;

    // Two denials: retried with a newer token each time, then streaming again.
    run.sim().deny_next_logins(2);
    run.sim().drop_connections();
    run.wait_streamed(2).await;
    let logins: Vec<_> = run
        .sim()
        .received()
        .into_iter()
        .filter(|c| c.command == "LOGIN")
        .collect();
    let codes: Vec<i64> = logins.iter().map(|c| c.response_code).collect();
    assert_eq!(codes, [0, 3, 3, 0]);
    let tokens: std::collections::HashSet<_> =
        logins.iter().map(|c| c.authorization.clone()).collect();
    assert_eq!(tokens.len(), 4, "each retry used a newer token");

    // Four denials in a row: 1 + 3 retries, then needs_login until a new login.
    run.sim().deny_next_logins(4);
    run.sim().drop_connections();
    let health = run
        .wait_for("needs_login after repeated code 3", |h| {
            h.state == SessionState::NeedsLogin
        })
        .await;
    assert!(
        health.detail.contains("market-streamer login"),
        "{}",
        health.detail
    );
    let denied = run
        .sim()
        .received()
        .iter()
        .filter(|c| c.command == "LOGIN" && c.response_code == 3)
        .count();
    assert_eq!(denied, 2 + 4, "bounded: no fifth attempt");

    login(&run.cfg, run.sim()).await;
    run.wait_streamed(3).await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_12_backs_off_for_the_configured_time_and_reports_kicked() {
    let mut run = TestService::start_sqlite(fast_sim(), &[("KICKED_BACKOFF", "2")]).await;
    run.wait_streamed(1).await;
    let kicked_at = Instant::now();
    run.sim().kick();
    let health = run
        .wait_for("kicked", |h| h.state == SessionState::Kicked)
        .await;
    assert!(health.detail.contains("code 12"), "{}", health.detail);
    run.wait_streamed(2).await;
    assert!(
        kicked_at.elapsed() >= Duration::from_secs(2),
        "waited KICKED_BACKOFF before logging in again"
    );
    assert_eq!(
        run.accepted_logins().len(),
        2,
        "exactly one new login after the backoff"
    );
    wait_until("the kicked gap", async || {
        run.gaps().await.iter().any(|g| g.0 == "kicked")
    })
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_takes_the_slot_and_the_first_does_not_fight() {
    let mut first = TestService::start_sqlite(fast_sim(), &[]).await;
    first.wait_streamed(1).await;

    // A second client of the same Schwab user logs in on the same streamer.
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let cfg = testkit::service::config_from(&testkit::service::live_vars(
        first.sim(),
        dir.path(),
        &url,
        &[],
    ));
    let token = login(&cfg, first.sim()).await.access_token;
    let rest =
        market_streamer::schwab::rest::SchwabRest::new(market_streamer::settings::rest(&cfg))
            .expect("rest");
    let info = market_streamer::schwab::preferences::fetch_streamer_info(&rest, &token)
        .await
        .expect("prefs");
    let (mut ws, _) = tokio_tungstenite::connect_async(info.socket_url.as_str())
        .await
        .expect("connect");
    let mut builder = market_streamer::schwab::session::protocol::RequestBuilder::new(&info);
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        builder.login(&token).text().to_owned(),
    ))
    .await
    .expect("login");

    let health = first
        .wait_for("kicked by the second login", |h| {
            h.state == SessionState::Kicked
        })
        .await;
    assert!(
        health.detail.contains("600s"),
        "waits KICKED_BACKOFF (600 s here): {}",
        health.detail
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        first.accepted_logins().len(),
        2,
        "the first instance did not log in again to take the slot back"
    );
    assert_eq!(first.health.borrow().state, SessionState::Kicked);
    drop(ws);
    first.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_reports_needs_login_and_a_new_login_resumes_the_stream() {
    let mut run = TestService::start_sqlite(fast_sim(), &[]).await;
    run.wait_streamed(1).await;
    run.sim().revoke_refresh_tokens();
    run.sim().drop_connections();
    let health = run
        .wait_for("needs_login", |h| h.state == SessionState::NeedsLogin)
        .await;
    assert!(
        health.detail.contains("unsupported_token_type"),
        "{}",
        health.detail
    );
    assert!(
        health.detail.contains("market-streamer login"),
        "{}",
        health.detail
    );
    // Still running, and not hammering the token endpoint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(run.health.borrow().state, SessionState::NeedsLogin);
    let refused = run
        .sim()
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token" && g.status == 400)
        .count();
    assert_eq!(refused, 1, "a refused refresh is not retried in a loop");
    assert_eq!(
        run.tokens.borrow().state,
        TokenState::NeedsLogin,
        "{:?}",
        *run.tokens.borrow()
    );

    // `market-streamer login` writes the store: the service picks it up by itself.
    login(&run.cfg, run.sim()).await;
    run.wait_streamed(2).await;
    assert_eq!(run.tokens.borrow().state, TokenState::Valid);
    wait_until("the gap", async || {
        run.gaps().await.iter().any(|g| g.0 == "network_error")
    })
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_that_expired_during_a_long_session_is_replaced_on_reconnect() {
    let settings = SimServerSettings {
        access_token_lifetime: Duration::from_secs(3),
        ..fast_sim()
    };
    let mut run = TestService::start_sqlite(settings, &[]).await;
    run.wait_streamed(1).await;
    let first_token = run.accepted_logins()[0]
        .authorization
        .clone()
        .expect("token");
    let sim = run.sim();
    wait_until("the first LOGIN token to expire", async || {
        !sim.is_access_token_valid(&first_token)
    })
    .await;
    // The session outlived its LOGIN token and kept streaming.
    assert_eq!(run.health.borrow().state, SessionState::Streaming);
    assert_eq!(run.health.borrow().sessions_streamed, 1);
    let refreshes = run
        .sim()
        .token_grants()
        .iter()
        .filter(|g| g.grant_type == "refresh_token")
        .count();
    assert!(refreshes >= 1, "refreshed before expiry in the background");

    run.sim().drop_connections();
    run.wait_streamed(2).await;
    let logins = run.accepted_logins();
    assert_eq!(logins.len(), 2);
    assert_ne!(
        logins[1].authorization.as_deref(),
        Some(first_token.as_str()),
        "a fresh token, accepted (code 0)"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_rest_calls_wait_for_retry_after() {
    let mut run = TestService::start_sqlite(fast_sim(), &[]).await;
    run.wait_streamed(1).await;
    run.sim().throttle_next_requests(2);
    let started = Instant::now();
    run.sim().drop_connections();
    run.wait_streamed(2).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "two 429s with Retry-After: 1 were honoured"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_url_goes_through_rustls_and_a_failed_handshake_is_a_network_error() {
    use market_streamer::pipeline::{FrameProcessor, Pipeline};
    use market_streamer::schwab::preferences::StreamerInfo;
    use market_streamer::schwab::session::CloseReason;
    use market_streamer::schwab::session::connection::{
        ConnectionPlan, ConnectionSettings, FrameSink, run_connection,
    };
    use tokio::io::AsyncWriteExt;

    market_streamer::schwab::install_crypto_provider();
    // A server that is not TLS: the client's TLS handshake must fail cleanly.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let info = StreamerInfo {
        socket_url: format!("wss://localhost:{port}/ws"),
        customer_id: "c".into(),
        correl_id: "r".into(),
        channel: "N9".into(),
        function_id: "APIAPP".into(),
    };
    let settings = ConnectionSettings {
        connect_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        max_frame_bytes: 4 << 20,
        silence: Default::default(),
    };
    let processor = FrameProcessor::new(
        Default::default(),
        market_streamer::indicators::IndicatorEngine::new(
            market_streamer::indicators::IndicatorSettings::default(),
        )
        .expect("default periods"),
    );
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let mut pipeline = Pipeline::new(processor, tx);
    let mut sink = FrameSink {
        consumer: &mut pipeline,
        recorder: None,
    };
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let token = market_streamer::schwab::Secret::new("I0.x");
    let plan = ConnectionPlan {
        info: &info,
        access_token: &token,
        subscriptions: &[],
        previous: &[],
        settings: &settings,
    };
    let report = run_connection(plan, &mut sink, &mut stop, &mut |_| {}, &mut None).await;
    let CloseReason::NetworkError { detail } = &report.end else {
        panic!("a network error expected: {:?}", report.end);
    };
    assert!(
        detail.to_ascii_lowercase().contains("tls")
            || detail.contains("InvalidContentType")
            || detail.contains("corrupt"),
        "a TLS failure: {detail}"
    );
    assert!(!report.logged_in);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_max_frame_bytes_is_refused_and_the_session_carries_on() {
    let mut run = TestService::start_sqlite(fast_sim(), &[("MAX_FRAME_BYTES", "64K")]).await;
    run.wait_streamed(1).await;
    // 1 MB of one JSON string: refused from the frame header, never parsed or buffered whole.
    let huge = format!(r#"{{"notify":[{{"service":"{}"}}]}}"#, "x".repeat(1 << 20));
    run.sim().send_raw(&huge);
    wait_until("the frame_too_large gap", async || {
        run.gaps().await.iter().any(|g| g.0 == "frame_too_large")
    })
    .await;
    run.wait_streamed(2).await;
    run.stop().await;
}
