//! Fault injection with the real PostgreSQL of the test harness and the protocol-faithful
//! simulator: a 30 s database outage under steady load, and a SIGKILL during an outage.
//! Rows are counted exactly against what the service received (its own counters) and, for
//! the crash, against the batches found in the spool at the moment of the kill.

use std::time::Duration;

use market_streamer::app::{self, RunOptions};
use market_streamer::spool::Spool;
use testkit::{config_for, pg_client, pg_i64, start_postgres};
use tokio::time::Instant;

async fn count(url: &str, sql: &str) -> i64 {
    let client = pg_client(url).await.expect("connect");
    pg_i64(&client, sql).await.expect("count")
}

async fn try_count(url: &str, table: &str) -> Option<i64> {
    let client = pg_client(url).await.ok()?;
    pg_i64(&client, &format!("SELECT count(*) FROM {table}"))
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_outage_under_load_loses_and_duplicates_nothing() {
    let mut pg = start_postgres();
    let url = pg.create_database("outage30").expect("db");
    let spool = tempfile::tempdir().expect("tempdir");
    let spool_path = spool.path().display().to_string();
    let cfg = config_for(
        &url,
        &[
            ("SYMBOLS", "AAPL,MSFT,NVDA,SPY,TSLA,QQQ,AMD,META"),
            ("SIM_UPDATES_PER_SEC", "10"),
            ("BATCH_SIZE", "1"),
            ("BATCH_INTERVAL", "0.25"),
            ("SPOOL_DIR", &spool_path),
            ("STATUS_INTERVAL", "0"),
            ("SHUTDOWN_GRACE", "20"),
        ],
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        app::run(&cfg, RunOptions::default(), async {
            let _ = stop_rx.await;
        })
        .await
    });

    // Steady load first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_count(&url, "equity_data").await.unwrap_or(0) < 200 {
        assert!(
            Instant::now() < deadline,
            "the service did not start streaming"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // 30 s without a database while about 80 updates/s keep arriving.
    pg.stop().expect("stop postgres");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let spooled = segments(spool.path()).len();
    assert!(spooled > 0, "the outage went through the disk spool");
    pg.start_again().expect("restart postgres");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = stop_tx.send(());
    let summary = run
        .await
        .expect("join")
        .expect("the service survived the outage");

    assert_eq!(summary.writer.rows_dropped, 0, "{summary:?}");
    assert_eq!(summary.writer.rows_left_in_spool, 0, "{summary:?}");
    assert!(summary.writer.rows_spooled > 0, "{summary:?}");
    let equities = count(&url, "SELECT count(*) FROM equity_data").await;
    let options = count(&url, "SELECT count(*) FROM option_data").await;
    assert_eq!(
        equities as u64, summary.equity_updates,
        "every equity update received is in the database once"
    );
    assert_eq!(
        options as u64, summary.option_updates,
        "every option update received is in the database once"
    );
    assert!(summary.equity_updates > 2000, "steady load: {summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// SAFETY: the only unsafe call is libc::kill(pid, SIGINT) on the child this test started; it shares no memory.
#[allow(unsafe_code)]
async fn kill_minus_nine_during_an_outage_then_restart_delivers_the_spooled_rows() {
    let mut pg = start_postgres();
    let base = pg.create_database("killed").expect("db");
    // A password in the URL (trust auth ignores it) that must never be printed.
    let url = base.replace("postgres@", "postgres:pw-NEVER-PRINT-7@");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_market-streamer");
    let logs = tempfile::tempdir().expect("tempdir");
    let log = |name: &str| std::fs::File::create(logs.path().join(name)).expect("log file");
    // The first run's health port is known, to read what it received just before the kill.
    let health_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let start = |run: &str| {
        let health = if run == "first" {
            format!("127.0.0.1:{health_port}")
        } else {
            "127.0.0.1:0".to_string()
        };
        tokio::process::Command::new(bin)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("DATABASE_URL", &url)
            .env("HEALTH_ADDR", health)
            .env("SIM_UPDATES_PER_SEC", "10")
            .env("BATCH_INTERVAL", "0.2")
            .env("RUST_LOG", "debug")
            // Files, not pipes: nobody reads a pipe while the test waits, and a full pipe
            // would block the service's logging.
            .stdout(log(&format!("{run}.out")))
            .stderr(log(&format!("{run}.err")))
            .kill_on_drop(true)
            .spawn()
            .expect("start the service")
    };

    let mut first = start("first");
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_count(&base, "equity_data").await.unwrap_or(0) < 50 {
        assert!(Instant::now() < deadline, "no rows from the first run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pg.stop().expect("stop postgres");
    let outage_started = Instant::now();
    let spool_dir = dir.path().join("data/spool");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The service's own gauge, not `Spool::open` on the live folder: opening cuts a
        // tail it takes for torn, and an append in flight looks torn to a reader.
        let rows = metric(health_port, "market_streamer_spool_rows ")
            .await
            .unwrap_or(0);
        if rows >= 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached the spool during the outage"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // About five seconds into the outage: what the service has received, then SIGKILL.
    tokio::time::sleep_until(outage_started + Duration::from_secs(5)).await;
    let received = metric(
        health_port,
        r#"market_streamer_updates_total{service="LEVELONE_EQUITIES"}"#,
    )
    .await
    .expect("the equity update counter is in /metrics");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("wait");

    // What the spool holds at the kill (read from a copy: replaying deletes segments).
    let copy = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&spool_dir)
        .expect("spool dir")
        .filter_map(Result::ok)
    {
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
    }
    let (mut spool, recovery) = Spool::open(copy.path(), u64::MAX).expect("open the copy");
    assert!(recovery.rows >= 100, "{recovery:?}");
    let mut tickers = Vec::new();
    let mut times = Vec::new();
    let mut seqs = Vec::new();
    while let Some((id, batch)) = spool.oldest().expect("read") {
        for r in &batch.equities {
            tickers.push(r.ticker.to_string());
            times.push(r.timestamp);
            seqs.push(r.seq);
        }
        spool.commit(id).expect("commit");
    }
    assert!(!tickers.is_empty());

    // A torn tail on top (as if the kill hit in the middle of an append).
    let segments = segments(&spool_dir);
    let last = segments.last().expect("a segment");
    let mut bytes = std::fs::read(last).expect("read");
    bytes.extend_from_slice(b"MSP1\x10\x00\x00torn");
    std::fs::write(last, bytes).expect("write");

    pg.start_again().expect("restart postgres");
    let client = pg_client(&base).await.expect("connect");
    // The loss bound: received = committed before the outage + spooled (not already
    // committed) + at most one BATCH_INTERVAL of updates plus one frame.
    let committed = pg_i64(&client, "SELECT count(*) FROM equity_data")
        .await
        .expect("count");
    let spooled_not_committed: i64 = client
        .query_one(
            r#"SELECT count(*) FROM UNNEST($1::text[], $2::timestamptz[], $3::int4[]) AS k(ticker, ts, seq)
               WHERE NOT EXISTS (SELECT 1 FROM equity_data e
                                 WHERE e.ticker = k.ticker AND e."timestamp" = k.ts AND e.seq = k.seq)"#,
            &[&tickers, &times, &seqs],
        )
        .await
        .and_then(|row| row.try_get(0))
        .expect("count");
    let symbols = market_streamer::settings::from_lookup(|_| None)
        .expect("defaults")
        .symbols
        .equities
        .len() as u64;
    // SIM_UPDATES_PER_SEC=10 per symbol, BATCH_INTERVAL=0.2 s: 2 updates per symbol, plus
    // one frame (one update per symbol), plus one for the instant between reading the
    // counter and the kill.
    let bound = symbols * 2 + symbols + 1;
    let durable = (committed + spooled_not_committed) as u64;
    assert!(
        received.saturating_sub(durable) <= bound,
        "received {received}, durable {durable} (committed {committed} + spooled {spooled_not_committed}): lost more than {bound}"
    );
    let mut second = start("second");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let present: i64 = client
            .query_one(
                r#"SELECT count(*) FROM equity_data e
                   JOIN UNNEST($1::text[], $2::timestamptz[], $3::int4[]) AS k(ticker, ts, seq)
                     ON e.ticker = k.ticker AND e."timestamp" = k.ts AND e.seq = k.seq"#,
                &[&tickers, &times, &seqs],
            )
            .await
            .and_then(|row| row.try_get(0))
            .expect("count");
        if present == tickers.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{present} of {} spooled rows arrived after the restart",
            tickers.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pid = i32::try_from(second.id().expect("pid")).expect("pid");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = second.wait().await.expect("wait");
    let read = |name: &str| std::fs::read_to_string(logs.path().join(name)).expect("log");
    let stderr2 = read("second.err");
    assert!(status.success(), "{stderr2}");
    assert!(
        stderr2.contains("torn"),
        "the torn tail was reported: {stderr2}"
    );
    let dups = pg_i64(
        &client,
        r#"SELECT count(*) - count(DISTINCT (ticker, "timestamp", seq)) FROM equity_data"#,
    )
    .await
    .expect("dups");
    assert_eq!(dups, 0);
    for name in ["first.out", "first.err", "second.out", "second.err"] {
        let text = read(name);
        assert!(
            !text.contains("pw-NEVER-PRINT-7"),
            "the database password was printed in {name}:\n{text}"
        );
    }
}

/// The value of the `/metrics` line starting with `prefix` of the service on `port` (`None`
/// while the line is missing; a failed request panics).
async fn metric(port: u16, prefix: &'static str) -> Option<u64> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("response");
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
    })
    .await
    .expect("join")
}

/// The spool's segment files in `dir`, oldest first (not its lock file).
fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("spool dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "spool"))
        .collect();
    v.sort();
    v
}
