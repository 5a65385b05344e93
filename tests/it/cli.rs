//! The binary as an operator runs it: zero configuration, signals, and config errors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_market-streamer");

fn bare_command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// SAFETY: the only unsafe call is libc::kill(pid, SIGINT) on the child this test started; it shares no memory.
#[allow(unsafe_code)]
async fn zero_config_run_streams_into_the_default_sqlite_file_until_sigint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = bare_command(dir.path())
        // Zero configuration except a free health port: tests run side by side.
        .env("HEALTH_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");

    let db = dir.path().join("data/market.db");
    let url = format!("sqlite://{}", db.display());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rows = 0i64;
    while rows < 5 {
        assert!(Instant::now() < deadline, "no equity_data rows within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !db.exists() {
            continue;
        }
        if let Ok(pool) = sqlx::SqlitePool::connect(&url).await {
            rows = sqlx::query_scalar("SELECT count(*) FROM equity_data")
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            pool.close().await;
        }
    }

    // SIGINT, as Ctrl-C would send.
    let pid = i32::try_from(child.id()).expect("pid");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(
        stderr.contains("every buffered row was written"),
        "{stderr}"
    );

    let pool = sqlx::SqlitePool::connect(&url).await.expect("open db");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM equity_data")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(after >= rows, "rows kept after the drain");
    let nulls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM equity_data WHERE price IS NULL OR bid IS NULL OR ask IS NULL",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(
        nulls, 0,
        "merged rows carry every quote field from the first snapshot on"
    );
}

#[test]
fn every_bad_setting_is_reported_at_once_with_what_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare_command(dir.path())
        .arg("migrate")
        .env("BATCH_SIZE", "0")
        .env("BATCH_INTERVAL", "soon")
        .env("DATABASE_URL", "mysql://user:hunter2@db/x")
        .env("OPTION_SYMBOLS", "AAPL240517C100")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "4 problems",
        "BATCH_SIZE",
        "BATCH_INTERVAL",
        "DATABASE_URL",
        "OPTION_SYMBOLS",
        "allowed",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("hunter2"), "a password leaked:\n{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created with a bad config"
    );
}

#[test]
fn a_taken_health_port_fails_the_start_saying_how_to_change_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = bare_command(dir.path())
        .env("HEALTH_ADDR", &addr)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        format!("cannot listen on HEALTH_ADDR {addr}: the port is already in use"),
        "HEALTH_ADDR=127.0.0.1:8081".into(),
        "HEALTH_ADDR=off".into(),
    ] {
        assert!(stderr.contains(&needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is started or created when the port is taken"
    );
}

#[test]
fn dotenv_is_read_and_the_real_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".env"),
        "BATCH_SIZE=0\nDATABASE_URL=sqlite://from-dotenv.db\n",
    )
    .expect("write .env");
    // BATCH_SIZE=0 from .env is invalid, but the environment overrides it.
    let out = bare_command(dir.path())
        .arg("migrate")
        .env("BATCH_SIZE", "10")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path().join("from-dotenv.db").exists(),
        "DATABASE_URL came from .env"
    );
}

/// The Realtime message budget is logged at startup: the default Realtime setup (Broadcast
/// every second, the five default symbols, Supabase Free) on a Supabase-like database,
/// against a hand computation of the year's average month.
#[test]
fn the_realtime_budget_is_logged_at_startup() {
    use std::io::BufRead;
    let pg = testkit::start_postgres();
    let sb = testkit::supabase::prepare(&pg, "startup_budget", false).expect("supabase-like");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = bare_command(dir.path())
        .env("DATABASE_URL", &sb.owner_url)
        .env("HEALTH_ADDR", "127.0.0.1:0")
        .env("SPOOL_DIR", "off")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let line = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("Realtime message budget") => break line,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no budget line within 60 s:\n{}", seen.join("\n"));
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    // The defaults stream futures and forex, which quote nearly around the clock: the month
    // counts 23 h on 5 days a week, 52.18 weeks a year: 23 × 3600 × 5 × 52.18 / 12 s.
    let per_viewer = 1_800_210;
    assert!(
        line.contains(&format!(
            "costs about {per_viewer} messages a month per viewer plus {per_viewer} to send"
        )),
        "{line}"
    );
    assert!(
        line.contains("REALTIME_PLAN=free allows 2000000 a month"),
        "{line}"
    );
    assert!(line.contains("WARN"), "few viewers fit: a warning: {line}");
    assert!(line.contains("raise REALTIME_INTERVAL"), "{line}");
}
