//! No secret in any log line, at the most verbose level: the service binary at
//! `RUST_LOG=trace`, its database password given as `?password=` in `DATABASE_URL`, its tokens
//! in the database (`TOKEN_STORE=database`) and refreshed while it runs.

use std::time::Duration;

use testkit::service::{config_from, fast_sim, live_vars, login, spawn_binary, start_sim};
use testkit::start_postgres;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_parameter_and_the_tokens_never_reach_a_trace_log() {
    let pg = start_postgres();
    pg.create_database("secrets").expect("db");
    let password = "Query-pw-5e1f0c9a";
    // Trust authentication ignores the password, but the service carries it everywhere.
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/secrets?password={password}&sslmode=disable",
        pg.port()
    );
    // Access tokens that need a refresh within seconds (at three quarters of their life).
    let sim = start_sim(schwab_sim::server::SimServerSettings {
        access_token_lifetime: Duration::from_secs(8),
        ..fast_sim()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = live_vars(
        &sim,
        dir.path(),
        &url,
        &[("TOKEN_STORE", "database"), ("RUST_LOG", "trace")],
    );
    let cfg = config_from(&vars);
    market_streamer::app::migrate(&cfg).await.expect("migrate");
    login(&cfg, &sim).await;
    let log = dir.path().join("service.log");
    let mut child = spawn_binary(
        env!("CARGO_BIN_EXE_market-streamer").as_ref(),
        dir.path(),
        &vars,
        &log,
    )
    .expect("start the service");

    // Streaming, and at least one token refresh written to the token table.
    let grants_before = sim.token_grants().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let client = testkit::pg_client(&pg.url_for("secrets"))
            .await
            .expect("connect");
        let rows = testkit::pg_i64(&client, "SELECT count(*) FROM equity_data")
            .await
            .unwrap_or(0);
        if rows > 0 && sim.token_grants().len() > grants_before {
            break;
        }
        if Instant::now() >= deadline {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().filter(|l| !l.contains("TRACE")).collect();
            let tail = tail[tail.len().saturating_sub(40)..].join("\n");
            panic!(
                "no rows ({rows}) or no refresh ({} grants) in time; last lines:\n{tail}",
                sim.token_grants().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = child.start_kill();
    let _ = child.wait().await;

    let text = std::fs::read_to_string(&log).expect("read the log");
    assert!(
        text.lines().count() > 50,
        "trace logging is on: {} lines",
        text.lines().count()
    );
    let mut secrets = sim.issued_secrets();
    secrets.push(password.to_string());
    secrets.push(sim.client_secret().to_string());
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !text.contains(secret.as_str()),
            "a secret ({}…) is in the log",
            secret.get(..4).unwrap_or_default()
        );
    }
}
