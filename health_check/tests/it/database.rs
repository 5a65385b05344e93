//! `--database-url` against a real PostgreSQL (the service's testkit, migrated with the
//! service's migrations, rows written by the service's sink) and a real SQLite file: fresh,
//! stale, missing symbols, the equity_data fallback, unreachable, and the market calendar
//! end to end (weekend, holiday, early close, pre-market).

use crate::common::{MARKET_OPEN_NOW, run, write_quotes};
use testkit::TestPostgres;

/// Quotes relative to Wednesday 2025-01-08 10:00 New York (15:00 UTC).
const QUOTES: &[(&str, &str)] = &[
    ("AAPL", "2025-01-08T14:59:30Z"), // 30 s: fresh
    ("MSFT", "2025-01-08T14:55:00Z"), // 5 min: warning
    ("NVDA", "2025-01-08T14:40:00Z"), // 20 min: critical
];

fn check(url: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec!["--database-url", url, "--now", MARKET_OPEN_NOW];
    args.extend_from_slice(extra);
    run(&args)
}

fn start_postgres() -> TestPostgres {
    TestPostgres::start().unwrap_or_else(|e| panic!("cannot start the test PostgreSQL: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_fresh_stale_missing_and_unreachable() {
    let mut pg = start_postgres();
    let url = pg.create_database("hc").expect("create database");
    write_quotes(&url, QUOTES).await;

    let out = check(&url, &["--symbols", "AAPL"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("AAPL    newest 2025-01-08T14:59:30Z, 30.0 s ago"),
        "{}",
        out.stdout
    );
    assert_eq!(check(&url, &["--symbols", "AAPL,MSFT"]).code, 1);
    assert_eq!(check(&url, &["--symbols", "AAPL,NVDA"]).code, 2);

    // Without --symbols: every ticker of latest_quotes.
    let out = check(&url, &["--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let json = out.json();
    let db = &json["checks"][0];
    assert_eq!(db["check"], "database");
    assert_eq!(db["message"], "3 symbols: 1 ok, 1 warning, 1 critical");
    let names: Vec<&str> = db["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s["symbol"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["AAPL", "MSFT", "NVDA"]);

    // A symbol never written is critical.
    let out = check(&url, &["--symbols", "AAPL,TSLA"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("TSLA    no rows"), "{}", out.stdout);

    // Not in latest_quotes: the newest equity_data row (partitioned table, primary key).
    pg.psql("hc", "DELETE FROM latest_quotes WHERE ticker = 'AAPL'")
        .expect("delete");
    let out = check(&url, &["--symbols", "AAPL", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["checks"][0]["symbols"][0]["source"],
        "equity_data"
    );

    // The password never shows.
    let with_password = url.replacen("postgres@", "postgres:s3cret@", 1);
    let out = check(&with_password, &["--symbols", "AAPL"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("s3cret") && out.stdout.contains("postgres:***@"));

    // Database stopped: critical, says what to check.
    pg.stop().expect("stop");
    let out = check(&url, &["--symbols", "AAPL"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("cannot connect"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_without_the_service_tables() {
    let pg = start_postgres();
    let url = pg.create_database("empty").expect("create database");
    // No latest_quotes and no symbols: cannot tell which symbols to check.
    let out = check(&url, &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("pass --symbols"), "{}", out.stdout);
    // With symbols: the missing equity_data table is critical and says why.
    let out = check(&url, &["--symbols", "AAPL"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("migrations"), "{}", out.stdout);
    // Migrated but empty.
    write_quotes(&url, &[]).await;
    let out = check(&url, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("latest_quotes is empty"));
}

/// `sslmode` means what it means for the service (the same `pg-connect` rules): `require`
/// encrypts without checking the certificate, `verify-full` checks it (a self-signed test
/// certificate is refused without its `sslrootcert`), and `require` never falls back to a
/// plain connection.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_sslmode_is_honoured() {
    let pg = TestPostgres::start_with(testkit::PgOptions {
        tls: true,
        ..testkit::PgOptions::default()
    })
    .unwrap_or_else(|e| panic!("cannot start the test PostgreSQL with ssl=on: {e}"));
    let url = pg.create_database("tls").expect("create database");
    write_quotes(&url, QUOTES).await;

    let out = check(&format!("{url}?sslmode=require"), &["--symbols", "AAPL"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = check(
        &format!("{url}?sslmode=verify-full"),
        &["--symbols", "AAPL"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("cannot connect") && out.stdout.contains("certificate"),
        "{}",
        out.stdout
    );
    let out = check(
        &format!("{url}?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"),
        &["--symbols", "AAPL"],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("sslrootcert"), "{}", out.stdout);

    let plain = start_postgres();
    let plain_url = plain.create_database("plain").expect("create database");
    write_quotes(&plain_url, QUOTES).await;
    let out = check(
        &format!("{plain_url}?sslmode=require"),
        &["--symbols", "AAPL"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    let out = check(
        &format!("{plain_url}?sslmode=prefer"),
        &["--symbols", "AAPL"],
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_fresh_stale_and_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/market.db", dir.path().display());
    write_quotes(&url, QUOTES).await;

    assert_eq!(check(&url, &["--symbols", "AAPL"]).code, 0);
    assert_eq!(check(&url, &["--symbols", "AAPL,MSFT"]).code, 1);
    assert_eq!(check(&url, &["--symbols", "NVDA"]).code, 2);
    // The equity_data fallback reads SQLite's text times too.
    let lite = sqlx_sqlite_delete(&url, "AAPL").await;
    assert_eq!(lite, 1);
    let out = check(&url, &["--symbols", "AAPL", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["checks"][0]["symbols"][0]["source"],
        "equity_data"
    );

    let missing = format!("sqlite://{}/nope.db", dir.path().display());
    let out = check(&missing, &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("no database file"), "{}", out.stdout);
    assert!(
        !dir.path().join("nope.db").exists(),
        "the check never creates a database"
    );
}

/// Deletes `ticker`'s latest_quotes row; returns the rows deleted.
async fn sqlx_sqlite_delete(url: &str, ticker: &str) -> u64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
    let done = sqlx::query("DELETE FROM latest_quotes WHERE ticker = ?")
        .bind(ticker)
        .execute(&mut conn)
        .await
        .expect("delete");
    done.rows_affected()
}

/// The calendar end to end: the same rows judged at different instants.
#[tokio::test(flavor = "multi_thread")]
async fn market_hours_decide_whether_silence_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/calendar.db", dir.path().display());
    write_quotes(
        &url,
        &[
            // Friday 2025-01-10, one minute before the 16:00 EST close.
            ("FRI", "2025-01-10T20:59:00Z"),
            // Wednesday 2025-01-08, 15:59 EST: the day before the Carter closure.
            ("WED", "2025-01-08T20:59:00Z"),
            // Friday 2025-11-28, 12:59 EST: the early close (13:00) after Thanksgiving.
            ("TGF", "2025-11-28T17:59:00Z"),
        ],
    )
    .await;
    let at = |symbol: &str, now: &str| {
        run(&["--database-url", &url, "--symbols", symbol, "--now", now]).code
    };
    // Weekend: Friday's close is fresh until Monday's open, and 2 min after it.
    assert_eq!(at("FRI", "2025-01-11T17:00:00Z"), 0);
    assert_eq!(at("FRI", "2025-01-13T13:00:00Z"), 0); // Monday 08:00 pre-market
    assert_eq!(at("FRI", "2025-01-13T14:31:00Z"), 0); // 1 min after the open
    assert_eq!(at("FRI", "2025-01-13T14:34:00Z"), 1); // 4 min of open market
    assert_eq!(at("FRI", "2025-01-13T14:45:00Z"), 2);
    // Holiday (Thursday 2025-01-09, markets closed): Wednesday's close is fresh all day.
    assert_eq!(at("WED", "2025-01-09T18:00:00Z"), 0);
    // Friday 2025-01-10 after its open, the same row is stale.
    assert_eq!(at("WED", "2025-01-10T14:45:00Z"), 2);
    // Early close: at 15:00 EST the session ended two hours ago.
    assert_eq!(at("TGF", "2025-11-28T20:00:00Z"), 0);
    // Counting stopped at 13:00: on Monday 09:31 only 2 minutes of open market passed
    // (12:59–13:00 Friday, 09:30–09:31 Monday); at 09:33, 4 minutes.
    assert_eq!(at("TGF", "2025-12-01T14:31:00Z"), 0);
    assert_eq!(at("TGF", "2025-12-01T14:33:00Z"), 1);
    let out = run(&[
        "--database-url",
        &url,
        "--symbols",
        "TGF",
        "--now",
        "2025-12-01T14:33:00Z",
        "--json",
    ]);
    assert_eq!(out.json()["market"]["phase"], "regular");
    assert_eq!(
        out.json()["checks"][0]["symbols"][0]["open_market_secs"],
        240.0
    );
}

/// A newest row in the future (a clock is wrong) is a WARNING saying how far ahead, never
/// fresh.
#[tokio::test(flavor = "multi_thread")]
async fn a_newest_row_in_the_future_is_a_warning_not_fresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/future.db", dir.path().display());
    // Ten minutes after MARKET_OPEN_NOW.
    write_quotes(&url, &[("AHEAD", "2025-01-08T15:10:00Z")]).await;
    let out = check(&url, &["--symbols", "AHEAD"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("10 min in the future") && out.stdout.contains("NTP"),
        "{}",
        out.stdout
    );
    let out = check(&url, &["--symbols", "AHEAD", "--json"]);
    let symbol = &out.json()["checks"][0]["symbols"][0];
    assert_eq!(symbol["status"], "warning", "{symbol}");
    assert_eq!(symbol["age_secs"], -600.0);
}
