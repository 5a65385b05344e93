//! Issue 16, the watchlist: symbols inserted into and deleted from the `watchlist` table while
//! the service streams are applied on the running connection (no reconnect), invalid ones are
//! `rejected` with a reason, the set survives a reconnect; PostgreSQL by LISTEN/NOTIFY,
//! SQLite by polling; on Supabase `authenticated` may write the table and `anon` may not.

use std::time::Duration;

use testkit::service::{ServiceOptions, TestService, fast_sim};
use tokio::time::Instant;

/// How long a test waits for a state before failing.
const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` until it gives `Some`.
async fn wait<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sqlite(service: &TestService) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&service.database_url)
        .await
        .expect("open the SQLite file")
}

/// `(status, reason)` of a row.
async fn status(
    pool: &sqlx::SqlitePool,
    service: &str,
    symbol: &str,
) -> Option<(String, Option<String>)> {
    sqlx::query_as("SELECT status, reason FROM watchlist WHERE service = ?1 AND symbol = ?2")
        .bind(service)
        .bind(symbol)
        .fetch_optional(pool)
        .await
        .expect("read the watchlist")
}

async fn rows_of(pool: &sqlx::SqlitePool, ticker: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM equity_data WHERE ticker = ?1")
        .bind(ticker)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// SQLite (polled): an inserted symbol streams within seconds without a reconnect and is
/// `active`; an invalid one is `rejected` with the reason and the session goes on; a deleted
/// one stops; the table's symbols are subscribed again after a reconnect; a configured
/// symbol removed from the table stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_watchlist_is_applied_live_and_survives_a_reconnect() {
    let mut service = TestService::start_sqlite(fast_sim(), &[("WATCHLIST_POLL", "0.2")]).await;
    service.wait_streamed(1).await;
    let pool = sqlite(&service).await;
    sqlx::query(
        "INSERT INTO watchlist (service, symbol) VALUES ('LEVELONE_EQUITIES', 'nvda'), \
         ('LEVELONE_FOREX', 'EURUSD'), ('LEVELONE_EQUITIES', 'AAPL')",
    )
    .execute(&pool)
    .await
    .expect("insert");
    wait("NVDA rows", async || {
        (rows_of(&pool, "NVDA").await > 0).then_some(())
    })
    .await;
    assert_eq!(
        service.health.borrow().connects,
        1,
        "applied without reconnecting"
    );
    let added: Vec<_> = service
        .sim()
        .received()
        .into_iter()
        .filter(|c| c.command == "ADD")
        .collect();
    assert_eq!(added.len(), 1, "one ADD: {added:#?}");
    assert_eq!(added[0].keys.as_deref(), Some("NVDA"));
    let nvda = wait("NVDA active", async || {
        status(&pool, "LEVELONE_EQUITIES", "nvda")
            .await
            .filter(|(s, _)| s == "active")
    })
    .await;
    assert_eq!(nvda.1, None);
    wait("NVDA on the live page", async || {
        live_page_shows(&service)
            .await
            .contains(&"NVDA".to_string())
            .then_some(())
    })
    .await;
    let forex = wait("EURUSD rejected", async || {
        status(&pool, "LEVELONE_FOREX", "EURUSD")
            .await
            .filter(|(s, _)| s == "rejected")
    })
    .await;
    assert!(
        forex.1.as_deref().is_some_and(|r| r.contains("EURUSD")),
        "the reason names the key: {forex:?}"
    );
    let aapl = status(&pool, "LEVELONE_EQUITIES", "AAPL").await;
    assert_eq!(
        aapl.map(|a| a.0).as_deref(),
        Some("active"),
        "configured anyway"
    );

    // After a reconnect the table's symbols are subscribed again with the rest.
    service.sim().drop_connections();
    service.wait_streamed(2).await;
    let resubscribed = service
        .sim()
        .received()
        .into_iter()
        .filter(|c| c.connection >= 2 && c.service == "LEVELONE_EQUITIES" && c.command == "SUBS")
        .filter_map(|c| c.keys)
        .collect::<Vec<_>>();
    assert!(
        resubscribed
            .iter()
            .any(|k| k.split(',').any(|s| s == "NVDA")),
        "{resubscribed:?}"
    );

    // Deleting rows: NVDA stops (UNSUBS); AAPL, configured in .env, stays.
    sqlx::query("DELETE FROM watchlist WHERE symbol IN ('nvda', 'AAPL')")
        .execute(&pool)
        .await
        .expect("delete");
    wait("the UNSUBS", async || {
        service
            .sim()
            .received()
            .into_iter()
            .any(|c| c.command == "UNSUBS" && c.keys.as_deref() == Some("NVDA"))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = rows_of(&pool, "NVDA").await;
    let aapl_before = rows_of(&pool, "AAPL").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rows_of(&pool, "NVDA").await, settled, "no more NVDA rows");
    wait("NVDA off the live page, AAPL on it", async || {
        let shown = live_page_shows(&service).await;
        (!shown.contains(&"NVDA".to_string()) && shown.contains(&"AAPL".to_string())).then_some(())
    })
    .await;
    assert!(
        rows_of(&pool, "AAPL").await > aapl_before,
        "AAPL streams on"
    );
    assert_eq!(service.health.borrow().connects, 2);
    pool.close().await;
    service.stop().await;
}

/// The symbols the live page lists now (its first event).
async fn live_page_shows(service: &TestService) -> Vec<String> {
    let (events, raw) =
        crate::live_page::read_events(&service.url, Duration::from_millis(300)).await;
    events
        .first()
        .and_then(|e| e["shown"].as_array())
        .unwrap_or_else(|| panic!("no view event: {raw}"))
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// A refused ADD (the simulator's symbol limit: code 19) marks the row `rejected` with
/// Schwab's code, and the session streams on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbol_schwab_refuses_is_rejected_with_its_code() {
    let mut service = TestService::start_sqlite(fast_sim(), &[("WATCHLIST_POLL", "0.2")]).await;
    service.wait_streamed(1).await;
    service.sim().set_symbol_limit(Some(5));
    let pool = sqlite(&service).await;
    sqlx::query("INSERT INTO watchlist (service, symbol) VALUES ('LEVELONE_EQUITIES', 'TSLA')")
        .execute(&pool)
        .await
        .expect("insert");
    let tsla = wait("TSLA rejected", async || {
        status(&pool, "LEVELONE_EQUITIES", "TSLA")
            .await
            .filter(|(s, _)| s == "rejected")
    })
    .await;
    assert!(
        tsla.1.as_deref().is_some_and(|r| r.contains("code 19")),
        "{tsla:?}"
    );
    let before = service.count("equity_data").await;
    wait("equities stream on", async || {
        (service.count("equity_data").await > before + 10).then_some(())
    })
    .await;
    assert_eq!(service.health.borrow().connects, 1);
    pool.close().await;
    service.stop().await;
}

/// PostgreSQL: LISTEN/NOTIFY applies an insert within seconds (the periodic re-read is 30 s)
/// and a delete stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_watchlist_is_applied_by_notification() {
    let pg = testkit::start_postgres();
    let url = pg.create_database("watchlist_notify").expect("database");
    let mut service = TestService::start(fast_sim(), &url, &[], ServiceOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the service did not start: {e}"));
    service.wait_streamed(1).await;
    let client = testkit::pg_client(&url).await.expect("connect");
    client
        .batch_execute(
            "INSERT INTO watchlist (service, symbol) VALUES ('LEVELONE_EQUITIES', 'META')",
        )
        .await
        .expect("insert");
    let inserted = Instant::now();
    wait("META rows", async || {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM equity_data WHERE ticker = 'META'",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        (n > 0).then_some(())
    })
    .await;
    assert!(
        inserted.elapsed() < Duration::from_secs(10),
        "notified, not the 30 s re-read: {:?}",
        inserted.elapsed()
    );
    let status: String = client
        .query_one("SELECT status FROM watchlist WHERE symbol = 'META'", &[])
        .await
        .expect("status")
        .get(0);
    assert_eq!(status, "active");
    assert_eq!(service.health.borrow().connects, 1);
    client
        .batch_execute("DELETE FROM watchlist WHERE symbol = 'META'")
        .await
        .expect("delete");
    wait("the UNSUBS", async || {
        service
            .sim()
            .received()
            .into_iter()
            .any(|c| c.command == "UNSUBS" && c.keys.as_deref() == Some("META"))
            .then_some(())
    })
    .await;
    service.stop().await;
}

/// Supabase grants: `authenticated` may insert (only service and symbol; the row starts
/// `pending`) and delete; `anon` may read but not write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_may_write_the_watchlist_and_anon_may_not() {
    let pg = testkit::start_postgres();
    let sb = testkit::supabase::prepare(&pg, "watchlist_grants", true).expect("supabase-like");
    let cfg = testkit::config_for(&sb.owner_url, &[]);
    market_streamer::app::migrate(&cfg).await.expect("migrate");
    let db = &sb.database;
    let as_role = |role: &str, sql: &str| pg.psql(db, &format!("SET ROLE {role};\n{sql}"));
    as_role(
        "authenticated",
        "INSERT INTO watchlist (service, symbol) VALUES ('LEVELONE_EQUITIES', 'IBM');",
    )
    .expect("authenticated inserts");
    let status =
        as_role("anon", "SELECT status FROM watchlist WHERE symbol = 'IBM';").expect("anon reads");
    assert_eq!(status, "pending");
    let denied = as_role(
        "anon",
        "INSERT INTO watchlist (service, symbol) VALUES ('LEVELONE_EQUITIES', 'ORCL');",
    )
    .expect_err("anon may not insert");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    let denied = as_role("anon", "DELETE FROM watchlist;").expect_err("anon may not delete");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    let denied = as_role(
        "authenticated",
        "INSERT INTO watchlist (service, symbol, status) VALUES ('LEVELONE_EQUITIES', 'ORCL', 'active');",
    )
    .expect_err("authenticated may not set the status");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    let denied = as_role("authenticated", "UPDATE watchlist SET status = 'active';")
        .expect_err("authenticated may not update");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    as_role(
        "authenticated",
        "DELETE FROM watchlist WHERE symbol = 'IBM';",
    )
    .expect("authenticated deletes");
    let left = pg
        .psql(db, "SELECT count(*) FROM watchlist")
        .expect("count");
    assert_eq!(left, "0");
}
