//! The binary with Schwab: `login` over stdin (and its error messages), `simulate`, no token
//! in any log line even at trace level, and `run --record` replayed into the same rows.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use schwab_sim::server::SimServer;
use testkit::service::{TestService, fast_sim, live_vars, start_sim};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_market-streamer");

/// The binary with a clean environment, the variables pointing at `sim`, and `extra`.
fn command(dir: &Path, sim: &SimServer, extra: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.current_dir(dir).env_clear().kill_on_drop(true);
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    let url = format!("sqlite://{}", dir.join("market.db").display());
    for (k, v) in live_vars(sim, dir, &url, extra) {
        cmd.env(k, v);
    }
    cmd
}

/// Follows the authorize URL like a browser would (the fake approves at once).
async fn browser(authorize_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client.get(authorize_url).send().await.expect("authorize");
    assert_eq!(r.status().as_u16(), 302);
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

fn assert_no_secret(text: &str, sim: &SimServer) {
    for secret in sim.issued_secrets() {
        assert!(
            !text.contains(&secret),
            "a secret ({}…) leaked into:\n{text}",
            &secret[..6.min(secret.len())]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_prints_the_url_takes_the_pasted_redirect_and_saves_the_tokens_0600() {
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = command(dir.path(), &sim, &[])
        .arg("login")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start login");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = String::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("output")
            .expect("read")
            .expect("a URL line");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = line.trim().strip_prefix("http") {
            break format!("http{url}");
        }
    };
    assert!(url.contains("/v1/oauth/authorize?client_id="), "{url}");
    assert!(
        url.contains("redirect_uri=https%3A%2F%2F127.0.0.1%3A8182"),
        "{url}"
    );
    let redirect = browser(&url).await;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{redirect}\n").as_bytes())
        .await
        .expect("paste");
    drop(stdin);
    while let Ok(Some(line)) = stdout.next_line().await {
        printed.push_str(&line);
        printed.push('\n');
    }
    let out = child.wait_with_output().await.expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{printed}\n{stderr}");
    assert!(printed.contains("Saved the tokens"), "{printed}");
    assert!(printed.contains("7 days"), "{printed}");
    assert_no_secret(&printed, &sim);
    assert_no_secret(&stderr, &sim);

    let file = dir.path().join("tokens.json");
    let mode = std::fs::metadata(&file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert!(sim.is_access_token_valid(stored["access_token"].as_str().expect("access")));
}

async fn login_with(
    dir: &Path,
    sim: &SimServer,
    extra: &[(&str, &str)],
    redirect: &str,
) -> (bool, String) {
    let out = command(dir, sim, extra)
        .args(["login", "--redirect-url", redirect])
        .output()
        .await
        .expect("run login");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&text, sim);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_say_what_to_do() {
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let redirect = sim.approve("https://127.0.0.1:8182").expect("approve");

    let (ok, text) = login_with(dir.path(), &sim, &[], &redirect).await;
    assert!(ok, "{text}");
    let (ok, text) = login_with(dir.path(), &sim, &[], &redirect).await;
    assert!(
        !ok && text.contains("rejected the authorization code") && text.contains("30 seconds"),
        "a used code: {text}"
    );

    let (ok, text) = login_with(
        dir.path(),
        &sim,
        &[],
        "https://127.0.0.1:8182/callback?code=C0.x%40",
    )
    .await;
    assert!(
        !ok && text.contains("SCHWAB_CALLBACK_URL"),
        "callback mismatch: {text}"
    );

    let fresh = sim.approve("https://127.0.0.1:8182").expect("approve");
    let (ok, text) = login_with(
        dir.path(),
        &sim,
        &[("SCHWAB_CLIENT_SECRET", "wrong")],
        &fresh,
    )
    .await;
    assert!(
        !ok && text.contains("rejected the app credentials") && text.contains("Ready For Use"),
        "bad secret: {text}"
    );

    let (ok, text) = login_with(
        dir.path(),
        &sim,
        &[("SCHWAB_CLIENT_ID", ""), ("SCHWAB_MODE", "simulated")],
        &fresh,
    )
    .await;
    assert!(!ok && text.contains("SCHWAB_CLIENT_ID"), "no app: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// SAFETY: the only unsafe call is libc::kill(pid, SIGINT) on the child this test started; it shares no memory.
#[allow(unsafe_code)]
async fn simulate_serves_a_fake_schwab_until_sigint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start simulate");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("output")
        .expect("read")
        .expect("line");
    let base = first.rsplit(' ').next().expect("address").to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    let r = reqwest::get(format!("{base}/trader/v1/userPreference"))
        .await
        .expect("call");
    assert_eq!(r.status().as_u16(), 401, "no token, no preferences");
    let pid = i32::try_from(child.id().expect("pid")).expect("pid");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(
        status.success(),
        "a SIGINT right after the listening line stops it cleanly: {status}"
    );
}

async fn equity_rows(path: &Path) -> i64 {
    let url = format!("sqlite://{}", path.display());
    match sqlx::SqlitePool::connect(&url).await {
        Ok(pool) => {
            let n = sqlx::query_scalar("SELECT count(*) FROM equity_data")
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            pool.close().await;
            n
        }
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// SAFETY: the only unsafe call is libc::kill(pid, SIGINT) on the child this test started; it shares no memory.
#[allow(unsafe_code)]
async fn no_token_or_secret_reaches_the_log_even_at_trace_level() {
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("market.db").display());
    let cfg = testkit::service::config_from(&live_vars(&sim, dir.path(), &url, &[]));
    testkit::service::login(&cfg, &sim).await;

    let mut child = command(
        dir.path(),
        &sim,
        &[("RUST_LOG", "trace"), ("STALL_TIMEOUT", "1.5")],
    )
    .arg("run")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start run");
    let stderr = child.stderr.take().expect("stderr");
    let collector = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let db = dir.path().join("market.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    while equity_rows(&db).await < 3 {
        assert!(Instant::now() < deadline, "no rows");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Reconnects (each with a refresh and a LOGIN), a stall, then a refused refresh and a new login.
    let logins = |sim: &SimServer| {
        sim.received()
            .iter()
            .filter(|c| c.command == "LOGIN" && c.response_code == 0)
            .count()
    };
    sim.drop_connections();
    while logins(&sim) < 2 {
        assert!(Instant::now() < deadline, "no reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.silence_connections();
    while logins(&sim) < 3 {
        assert!(Instant::now() < deadline, "no reconnect after the stall");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.revoke_refresh_tokens();
    sim.drop_connections();
    while !sim.token_grants().iter().any(|g| g.status == 400) {
        assert!(Instant::now() < deadline, "no refused refresh");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    testkit::service::login(&cfg, &sim).await;
    while logins(&sim) < 4 {
        assert!(Instant::now() < deadline, "no recovery after the new login");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = i32::try_from(child.id().expect("pid")).expect("pid");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    let log = collector.await.expect("log");
    assert!(status.success(), "{log}");
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "trace logging was on"
    );
    assert!(log.contains("access token refreshed"), "refreshes happened");
    assert!(
        log.contains("run `market-streamer login`"),
        "needs_login was reported"
    );
    assert!(log.contains("logged in to the Schwab streamer"), "{log}");
    assert_no_secret(&log, &sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_frames_replay_into_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live_db = format!("sqlite://{}", dir.path().join("live.db").display());
    let record = dir.path().join("session.jsonl");
    let replay_db = format!("sqlite://{}", dir.path().join("replayed.db").display());
    let mut run = TestService::start_recording(fast_sim(), &live_db, &[], record.clone()).await;
    run.wait_streamed(1).await;
    // Candles come at minute boundaries: up to a minute.
    let deadline = Instant::now() + Duration::from_secs(90);
    while run.count("equity_bars").await < 1 || run.count("option_data").await < 3 {
        assert!(Instant::now() < deadline, "no candle or option rows");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run.stop().await;

    let text = std::fs::read_to_string(&record).expect("record file");
    assert!(text.lines().count() > 5);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "one JSON frame per line"
    );
    assert!(
        text.contains("\"response\"") && text.contains("\"heartbeat\""),
        "every server frame, not only data"
    );

    let summary = market_streamer::app::replay(&testkit::config_for(&replay_db, &[]), &record)
        .await
        .expect("replay");
    assert_eq!(summary.counts.malformed_lines, 0);

    const EQUITY: &str = "SELECT ticker, \"timestamp\", seq, price, volume, bid, ask, mark FROM equity_data ORDER BY 1, 2, 3";
    const OPTION: &str =
        "SELECT symbol, \"timestamp\", seq, bid, ask, delta FROM option_data ORDER BY 1, 2, 3";
    const BARS: &str =
        "SELECT ticker, bar_start, open, high, low, close, volume FROM equity_bars ORDER BY 1, 2";
    for sql in [EQUITY, OPTION, BARS] {
        let live = dump(&live_db, sql).await;
        let replayed = dump(&replay_db, sql).await;
        assert!(!live.is_empty());
        if live != replayed {
            let first = live.iter().zip(&replayed).position(|(a, b)| a != b);
            panic!(
                "{sql}: live {} rows, replayed {} rows; first difference at {first:?}: live {:?} / replayed {:?}; live tail {:?}; replayed tail {:?}",
                live.len(),
                replayed.len(),
                first.map(|i| &live[i]),
                first.map(|i| &replayed[i]),
                live.last(),
                replayed.last()
            );
        }
    }
}

/// Every row of `sql` as text.
async fn dump(url: &str, sql: &str) -> Vec<String> {
    use sqlx::{Row, ValueRef};
    let pool = sqlx::SqlitePool::connect(url).await.expect("open");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&pool)
        .await
        .expect("rows");
    let out = rows
        .iter()
        .map(|r| {
            (0..r.columns().len())
                .map(|i| {
                    let raw = r.try_get_raw(i).expect("value");
                    if raw.is_null() {
                        "NULL".to_string()
                    } else {
                        r.try_get::<String, _>(i)
                            .or_else(|_| r.try_get::<f64, _>(i).map(|v| v.to_string()))
                            .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .unwrap_or_default()
                    }
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    pool.close().await;
    out
}
