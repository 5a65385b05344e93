//! Issue 15, the session side: every service subscribed and replayed after reconnects against
//! the simulator, code 19, the zero-configuration run, the account-activity text frame and no
//! account number in the log.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use market_streamer::schwab::session::SessionState;
use schwab_sim::server::SimServer;
use testkit::service::{
    TestService, config_from, fast_sim, live_vars, login, spawn_binary, start_sim,
};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_market-streamer");

/// The thirteen streamer services, in the order the service subscribes them.
const SERVICES: [&str; 13] = [
    "LEVELONE_EQUITIES",
    "LEVELONE_OPTIONS",
    "CHART_EQUITY",
    "LEVELONE_FUTURES",
    "LEVELONE_FUTURES_OPTIONS",
    "LEVELONE_FOREX",
    "CHART_FUTURES",
    "NYSE_BOOK",
    "NASDAQ_BOOK",
    "OPTIONS_BOOK",
    "SCREENER_EQUITY",
    "SCREENER_OPTION",
    "ACCT_ACTIVITY",
];

/// The tables of issue 15, each with the column that says when a row was last written.
const NEW_TABLES: [(&str, &str); 7] = [
    ("futures_data", "inserted_at"),
    ("futures_option_data", "inserted_at"),
    ("forex_data", "inserted_at"),
    ("futures_bars", "updated_at"),
    ("book_snapshots", "inserted_at"),
    ("screener_snapshots", "inserted_at"),
    ("account_activity", "inserted_at"),
];

/// The text of ACCT_ACTIVITY's nightly trap item.
const FEATURE_NOT_SUPPORTED: &str = "Feature not supported";

/// Keys for every service (testkit's live service turns the services of issue 15 off unless
/// asked): the defaults of the zero-configuration run plus the two books that are off by
/// default, books stored every 0.2 s.
const EVERY_SERVICE: [(&str, &str); 10] = [
    ("FUTURES_SYMBOLS", "/ES,/NQ"),
    ("FUTURES_OPTION_SYMBOLS", "./OZCZ27C565"),
    ("FOREX_SYMBOLS", "EUR/USD,USD/JPY"),
    ("NYSE_BOOK_SYMBOLS", "IBM"),
    ("NASDAQ_BOOK_SYMBOLS", "AAPL"),
    ("OPTIONS_BOOK_SYMBOLS", "AAPL  271217C00250000"),
    ("SCREENER_EQUITY_KEYS", "NASDAQ_VOLUME_5"),
    ("SCREENER_OPTION_KEYS", "OPTION_CALL_VOLUME_5"),
    ("ACCOUNT_ACTIVITY", "on"),
    ("BOOK_SNAPSHOT_INTERVAL", "0.2"),
];

/// How long a test waits for rows.
const ROWS_WAIT: Duration = Duration::from_secs(60);

/// One number from the SQLite database at `url`; `None` while it cannot be read (not created
/// yet, busy).
async fn scalar(url: &str, sql: &str) -> Option<i64> {
    let pool = sqlx::SqlitePool::connect(url).await.ok()?;
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&pool)
        .await
        .ok();
    pool.close().await;
    n
}

/// Rows of each table in `tables` written after `since` (a UTC time as SQLite writes it;
/// `""` for every row).
async fn rows_since(url: &str, tables: &[(&str, &str)], since: &str) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (table, column) in tables {
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} > '{since}'");
        counts.insert(table.to_string(), scalar(url, &sql).await.unwrap_or(0));
    }
    counts
}

/// Waits until every table in `tables` has a row written after `since`; fails after
/// [`ROWS_WAIT`] naming the empty ones (and the log tail, if there is a log).
async fn wait_rows_in_every_table(
    url: &str,
    tables: &[(&str, &str)],
    since: &str,
    log: Option<&Path>,
) {
    let deadline = Instant::now() + ROWS_WAIT;
    loop {
        let counts = rows_since(url, tables, since).await;
        if counts.values().all(|&n| n > 0) {
            return;
        }
        if Instant::now() >= deadline {
            let tail = log.map(log_tail).unwrap_or_default();
            panic!("tables without rows after {since} within {ROWS_WAIT:?}: {counts:?}\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `check` every 100 ms until it holds; fails after [`ROWS_WAIT`] with `what`.
async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + ROWS_WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Now, as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` writes it.
fn sqlite_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The log file without the ANSI colour sequences of the terminal formatter.
fn read_log(log: &Path) -> String {
    let text = std::fs::read_to_string(log).expect("read the service log");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last 40 lines of the log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "last log lines:\n{}",
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

/// A free loopback port for the health endpoint of a binary.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET /health` on `port`: the JSON body, if it answered.
async fn health(port: u16) -> Option<serde_json::Value> {
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
    })
    .await
    .expect("join the health request")
}

/// A service binary against `sim`, writing to a SQLite file in `dir`, its health endpoint on
/// `port`, its log in `dir/service.log`; logged in first. Killed when dropped.
async fn spawn_live_binary(
    sim: &SimServer,
    dir: &Path,
    port: u16,
    extra: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let url = format!("sqlite://{}", dir.join("market.db").display());
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec![("HEALTH_ADDR", addr.as_str())];
    all.extend_from_slice(extra);
    let vars = live_vars(sim, dir, &url, &all);
    login(&config_from(&vars), sim).await;
    let child = spawn_binary(BIN.as_ref(), dir, &vars, &dir.join("service.log"))
        .expect("start the service binary");
    (child, url)
}

/// `subscription_counts()` when each of `services` was subscribed `n` times.
fn subscribed(services: &[&str], n: u64) -> BTreeMap<String, u64> {
    services.iter().map(|s| (s.to_string(), n)).collect()
}

/// (service, command, answer code) of every command on `connection`.
fn commands_of(sim: &SimServer, connection: u64) -> Vec<(String, String, i64)> {
    sim.received()
        .into_iter()
        .filter(|c| c.connection == connection)
        .map(|c| (c.service, c.command, c.response_code))
        .collect()
}

/// All thirteen services (the two books that are off by default included) are subscribed,
/// one at a time after LOGIN, and all of them again after the connection drops; every new
/// table gets rows before and after the reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_is_subscribed_and_replayed_after_a_reconnect() {
    let mut run = TestService::start_sqlite(fast_sim(), &EVERY_SERVICE).await;
    run.wait_streamed(1).await;
    assert_eq!(
        run.sim().subscription_counts(),
        subscribed(&SERVICES, 1),
        "every service subscribed once"
    );
    let mut expected = vec![("ADMIN".to_string(), "LOGIN".to_string(), 0)];
    expected.extend(SERVICES.map(|s| (s.to_string(), "SUBS".to_string(), 0)));
    let first = run.sim().received()[0].connection;
    assert_eq!(
        commands_of(run.sim(), first),
        expected,
        "LOGIN, then each service in order"
    );
    wait_rows_in_every_table(&run.database_url, &NEW_TABLES, "", None).await;

    let dropped_at = sqlite_now();
    run.sim().drop_connections();
    let health = run.wait_streamed(2).await;
    assert_eq!(health.connects, 2);
    assert_eq!(
        run.sim().subscription_counts(),
        subscribed(&SERVICES, 2),
        "every service subscribed again after the reconnect"
    );
    let second = run
        .accepted_logins()
        .last()
        .expect("a second login")
        .connection;
    assert_ne!(second, first);
    assert_eq!(
        commands_of(run.sim(), second),
        expected,
        "the same sequence replayed"
    );
    wait_rows_in_every_table(&run.database_url, &NEW_TABLES, &dropped_at, None).await;
    let summary = run.stop().await;
    assert_eq!(summary.connects, 2);
}

/// A symbol limit that the first five services fill: LEVELONE_FOREX and every service after
/// it get code 19, which is logged with the services and counts involved; the connection
/// stays up (no reconnect loop) and the accepted services keep writing rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_19_is_reported_with_the_counts_and_the_other_services_stream_on() {
    let sim = start_sim(fast_sim()).await;
    // One key each for the first five services (equities, options, equity candles, futures,
    // futures options): 5 keys; forex asks for 3 more.
    sim.set_symbol_limit(Some(5));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (mut child, url) = spawn_live_binary(
        &sim,
        dir.path(),
        port,
        &[
            ("SYMBOLS", "AAPL"),
            ("FUTURES_SYMBOLS", "/ES"),
            ("FUTURES_OPTION_SYMBOLS", "./OZCZ27C565"),
            ("FOREX_SYMBOLS", "EUR/USD,USD/JPY,GBP/USD"),
            ("NASDAQ_BOOK_SYMBOLS", "AAPL"),
            ("SCREENER_EQUITY_KEYS", "NASDAQ_VOLUME_5"),
            ("SCREENER_OPTION_KEYS", "OPTION_CALL_VOLUME_5"),
            ("ACCOUNT_ACTIVITY", "on"),
        ],
    )
    .await;
    let log = dir.path().join("service.log");

    // Every subscription answered (ACCT_ACTIVITY is the last one).
    wait_until("the last subscription's answer", async || {
        sim.received()
            .iter()
            .any(|c| c.service == "ACCT_ACTIVITY" && c.response_code >= 0)
    })
    .await;
    let accepted = [
        "LEVELONE_EQUITIES",
        "LEVELONE_OPTIONS",
        "CHART_EQUITY",
        "LEVELONE_FUTURES",
        "LEVELONE_FUTURES_OPTIONS",
    ];
    let refused = [
        "LEVELONE_FOREX",
        "CHART_FUTURES",
        "NASDAQ_BOOK",
        "SCREENER_EQUITY",
        "SCREENER_OPTION",
        "ACCT_ACTIVITY",
    ];
    let answers: Vec<(String, i64)> = sim
        .received()
        .into_iter()
        .map(|c| (c.service, c.response_code))
        .collect();
    let mut expected = vec![("ADMIN".to_string(), 0)];
    expected.extend(accepted.map(|s| (s.to_string(), 0)));
    expected.extend(refused.map(|s| (s.to_string(), 19)));
    assert_eq!(answers, expected, "one connection, each service asked once");
    assert_eq!(sim.subscription_counts(), subscribed(&accepted, 1));

    let streaming = [
        ("equity_data", "inserted_at"),
        ("option_data", "inserted_at"),
        ("futures_data", "inserted_at"),
        ("futures_option_data", "inserted_at"),
    ];
    wait_rows_in_every_table(&url, &streaming, "", Some(&log)).await;

    // Several seconds without a reconnect, still writing.
    let since = sqlite_now();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let h = health(port).await.expect("the health endpoint answers");
        assert_eq!(h["stream"]["connects"], 1, "no reconnect: {h}");
        assert_eq!(h["stream"]["state"], "connected", "{h}");
        assert_eq!(sim.open_connections(), 1);
    }
    let logins = sim
        .received()
        .iter()
        .filter(|c| c.command == "LOGIN")
        .count();
    assert_eq!(logins, 1, "no second LOGIN");
    let after = rows_since(&url, &streaming, &since).await;
    assert!(
        after.values().all(|&n| n > 0),
        "the accepted services keep writing: {after:?}"
    );
    let refused_tables = [
        ("forex_data", "inserted_at"),
        ("futures_bars", "updated_at"),
        ("book_snapshots", "inserted_at"),
        ("screener_snapshots", "inserted_at"),
        ("account_activity", "inserted_at"),
    ];
    let none = rows_since(&url, &refused_tables, "").await;
    assert!(
        none.values().all(|&n| n == 0),
        "nothing from the refused services: {none:?}"
    );

    let _ = child.start_kill();
    let _ = child.wait().await;
    let text = read_log(&log);
    let reports: Vec<&str> = text.lines().filter(|l| l.contains("(code 19)")).collect();
    assert_eq!(
        reports.len(),
        refused.len(),
        "one report per refused service:\n{}",
        reports.join("\n")
    );
    let first = reports[0];
    for part in [
        "ERROR",
        "Schwab refused the LEVELONE_FOREX subscription of 3 key(s)",
        "service=\"LEVELONE_FOREX\"",
        "keys_refused=3 ",
        "keys_accepted_before=5 ",
        "keys_accepted_by_service=LEVELONE_EQUITIES 1, LEVELONE_OPTIONS 1, CHART_EQUITY 1, LEVELONE_FUTURES 1, LEVELONE_FUTURES_OPTIONS 1 ",
        "keys_configured=13 ",
    ] {
        assert!(
            first.contains(part),
            "`{part}` missing in the report: {first}"
        );
    }
    for (line, service) in reports.iter().zip(refused) {
        assert!(
            line.contains(&format!("Schwab refused the {service} subscription")),
            "{service}: {line}"
        );
    }
}

/// The zero-configuration binary (the built-in simulator, `data/market.db`) writes rows into
/// every new table within a minute of its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zero_configuration_run_fills_every_new_table_within_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("service.log");
    // Zero configuration except a free health port: tests run side by side.
    let vars = [("HEALTH_ADDR".to_string(), "127.0.0.1:0".to_string())];
    let mut child = spawn_binary(BIN.as_ref(), dir.path(), &vars, &log).expect("start the binary");
    let url = format!("sqlite://{}", dir.path().join("data/market.db").display());
    wait_rows_in_every_table(&url, &NEW_TABLES, "", Some(&log)).await;
    assert!(
        child.try_wait().expect("child status").is_none(),
        "still running"
    );
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// ACCT_ACTIVITY's "Feature not supported" item (plain text, empty type) becomes one
/// `account_activity` row with the text, and the session streams on without a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_text_frame_is_stored_as_text_without_a_reconnect() {
    let mut run = TestService::start_sqlite(
        fast_sim(),
        &[("FUTURES_SYMBOLS", "/ES"), ("ACCOUNT_ACTIVITY", "on")],
    )
    .await;
    run.wait_streamed(1).await;
    let url = run.database_url.clone();
    let text_rows = format!(
        "SELECT count(*) FROM account_activity WHERE message_text = '{FEATURE_NOT_SUPPORTED}'"
    );
    // An order event arrives 3-8 s after SUBS: by then the text item the simulator sends after
    // a SUBS outside market hours is written too.
    wait_until("an order event", async || {
        scalar(
            &url,
            "SELECT count(*) FROM account_activity WHERE message_type <> ''",
        )
        .await
        .unwrap_or(0)
            > 0
    })
    .await;
    let before = scalar(&url, &text_rows).await.expect("count text rows");

    assert!(
        run.sim().send_account_text_frame(),
        "ACCT_ACTIVITY subscribed"
    );
    wait_until("the text row", async || {
        scalar(&url, &text_rows).await.unwrap_or(0) > before
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        scalar(&url, &text_rows).await,
        Some(before + 1),
        "exactly one row"
    );
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open db");
    let (key, message_type, json): (String, String, Option<String>) = sqlx::query_as(
        "SELECT subscription_key, message_type, message_json FROM account_activity \
         WHERE message_text = ? ORDER BY seq DESC LIMIT 1",
    )
    .bind(FEATURE_NOT_SUPPORTED)
    .fetch_one(&pool)
    .await
    .expect("the text row");
    pool.close().await;
    assert_eq!(key, "Account Activity");
    assert_eq!(message_type, "");
    assert_eq!(json, None, "plain text is no JSON");
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM rejected_rows").await,
        Some(0)
    );

    // Still the first session, still writing.
    let since = sqlite_now();
    wait_rows_in_every_table(&url, &[("futures_data", "inserted_at")], &since, None).await;
    let health = run.health.borrow().clone();
    assert_eq!(health.state, SessionState::Streaming);
    assert_eq!(health.connects, 1);
    assert_eq!(health.sessions_streamed, 1);
    assert_eq!(health.last_close, None);
    let summary = run.stop().await;
    assert_eq!(summary.connects, 1);
}

/// The account number the simulator streams (read back from `account_activity`) never
/// appears in the service's log, even at `RUST_LOG=trace` and with the text item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_account_number_reaches_the_log() {
    let sim = start_sim(fast_sim()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut extra = EVERY_SERVICE.to_vec();
    extra.push(("RUST_LOG", "trace"));
    let (mut child, url) = spawn_live_binary(&sim, dir.path(), port, &extra).await;
    let log = dir.path().join("service.log");
    wait_until("an order event", async || {
        scalar(
            &url,
            "SELECT count(*) FROM account_activity WHERE message_type <> ''",
        )
        .await
        .unwrap_or(0)
            > 0
    })
    .await;
    assert!(sim.send_account_text_frame(), "ACCT_ACTIVITY subscribed");
    let text_rows = format!(
        "SELECT count(*) FROM account_activity WHERE message_text = '{FEATURE_NOT_SUPPORTED}'"
    );
    wait_until("the text row", async || {
        scalar(&url, &text_rows).await.unwrap_or(0) > 0
    })
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;

    let pool = sqlx::SqlitePool::connect(&url).await.expect("open db");
    let accounts: Vec<String> = sqlx::query_scalar("SELECT DISTINCT account FROM account_activity")
        .fetch_all(&pool)
        .await
        .expect("accounts");
    pool.close().await;
    assert_eq!(accounts.len(), 1, "one simulated account: {accounts:?}");
    let account = &accounts[0];
    assert_eq!(account.len(), 8, "an 8-digit account number: {account}");

    let text = read_log(&log);
    assert!(
        text.lines().count() > 50,
        "trace logging is on: {} lines",
        text.lines().count()
    );
    let leaks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(account.as_str()))
        .take(5)
        .collect();
    assert!(
        leaks.is_empty(),
        "the account number is in the log:\n{}",
        leaks.join("\n")
    );
}
