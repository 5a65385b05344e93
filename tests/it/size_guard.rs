//! The size guard against a real PostgreSQL and SQLite: at `DB_SIZE_GUARD_PERCENT` of a small
//! `DB_SIZE_LIMIT_MB` the oldest tick days are removed (oldest first, never today's) until the
//! database is below `DB_SIZE_GUARD_TARGET_PERCENT`, also when the database is read-only.

use chrono::{Days, Utc};
use market_streamer::counters::PipelineStats;
use market_streamer::db::Database;
use testkit::{config_for, start_postgres};

const LIMIT_MB: u64 = 50;

/// Fills `equity_data` with about `mb` megabytes of rows on each of the `days` days before
/// today, plus a few rows today.
fn fill_postgres(pg: &testkit::TestPostgres, db: &str, days: u64, mb: u64) {
    let today = Utc::now().date_naive();
    for back in (0..=days).rev() {
        let day = today.checked_sub_days(Days::new(back)).expect("a day");
        let rows = if back == 0 {
            10
        } else {
            mb * 1024 * 1024 / 220
        };
        pg.psql(
            db,
            &format!(
                "SELECT market_admin.ensure_day_partition('equity_data'::regclass, '{day}'); \
                 INSERT INTO equity_data (ticker, \"timestamp\", seq, price, volume) \
                 SELECT 'T' || (i % 50), '{day}'::timestamptz + (i || ' ms')::interval, 0, 100 + i % 7, i \
                 FROM generate_series(1, {rows}) i;"
            ),
        )
        .expect("fill");
    }
}

/// A migrated database at `url` with a small `DB_SIZE_LIMIT_MB` and a long tick retention
/// (so only the size guard removes anything), and its configuration.
async fn guarded_database(url: &str) -> (market_streamer::settings::Config, Database) {
    let cfg = config_for(
        url,
        &[
            ("DB_SIZE_LIMIT_MB", &LIMIT_MB.to_string()),
            ("TICK_RETENTION_DAYS", "30"),
        ],
    );
    let db = Database::connect(&market_streamer::settings::database(&cfg))
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    (cfg, db)
}

fn size_mb(pg: &testkit::TestPostgres, db: &str) -> u64 {
    pg.psql(db, "SELECT pg_database_size(current_database()) / 1048576")
        .expect("size")
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_guard_drops_the_oldest_days_even_on_a_read_only_database() {
    let pg = start_postgres();
    let url = pg.create_database("guard").expect("db");
    let (cfg, db) = guarded_database(&url).await;
    fill_postgres(&pg, "guard", 6, 9);
    let before = size_mb(&pg, "guard");
    assert!(
        before >= LIMIT_MB * 90 / 100,
        "filled past the guard: {before} MB"
    );

    // The database has already turned read-only (as Supabase Free does past 500 MB).
    pg.psql(
        "postgres",
        "ALTER SYSTEM SET default_transaction_read_only = on",
    )
    .expect("read-only");
    pg.psql("postgres", "SELECT pg_reload_conf()")
        .expect("reload");

    let stats = PipelineStats::default();
    let settings = market_streamer::settings::retention(&cfg);
    let report = market_streamer::retention::run_once(&db, &settings, &stats).await;
    // The rest of the pass (making partitions ahead) cannot run on a read-only database.
    assert!(
        report.is_err(),
        "maintenance itself is refused while read-only"
    );
    let after = size_mb(&pg, "guard");
    assert!(
        after < LIMIT_MB * 75 / 100,
        "below the target: {before} -> {after} MB"
    );
    let days = pg
        .psql(
            "guard",
            "SELECT string_agg(right(c.relname, 8), ',' ORDER BY c.relname) FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'equity_data'::regclass \
             AND c.relname ~ '_p[0-9]{8}$'",
        )
        .expect("partitions");
    let today = Utc::now().date_naive().format("%Y%m%d").to_string();
    assert!(days.ends_with(&today), "today's partition is kept: {days}");
    let kept: Vec<&str> = days.split(',').collect();
    assert!(kept.len() < 7, "the oldest days went first: {days}");
    let oldest_kept = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(kept.len() as u64 - 1))
        .expect("day")
        .format("%Y%m%d")
        .to_string();
    assert_eq!(
        kept[0], oldest_kept,
        "only the newest days are left: {days}"
    );
    // Everyone else still sees a read-only database: the guard never writes new data.
    let err = pg
        .psql(
            "guard",
            "INSERT INTO stream_gaps (gap_start, gap_end, reason) VALUES (now(), now(), 'x')",
        )
        .expect_err("still read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    pg.psql(
        "postgres",
        "SET default_transaction_read_only = off; ALTER SYSTEM RESET default_transaction_read_only;",
    )
    .expect("back");
    pg.psql("postgres", "SELECT pg_reload_conf()")
        .expect("reload");
}

#[tokio::test]
async fn the_size_guard_deletes_the_oldest_days_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let (cfg, db) = guarded_database(&url).await;
    let Database::Sqlite(lite) = &db else {
        panic!("sqlite")
    };
    let today = Utc::now().date_naive();
    for back in (0..=6u64).rev() {
        let day = today.checked_sub_days(Days::new(back)).expect("a day");
        let rows = if back == 0 { 10 } else { 9 * 1024 * 1024 / 120 };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO equity_data (ticker, \"timestamp\", seq, price, volume) \
             SELECT 'T' || (i % 50), '{day}T00:00:00.000Z', i, 100.5, i FROM n"
        )))
        .execute(lite.pool())
        .await
        .expect("fill");
    }
    let before = lite.used_bytes().await.expect("size");
    assert!(
        before >= LIMIT_MB * 1024 * 1024 * 90 / 100,
        "filled: {before}"
    );
    let stats = PipelineStats::default();
    let report = market_streamer::retention::run_once(
        &db,
        &market_streamer::settings::retention(&cfg),
        &stats,
    )
    .await
    .expect("retention");
    assert!(!report.guard.days_dropped.is_empty(), "{report:?}");
    assert!(
        report.guard.days_dropped.windows(2).all(|w| w[0] < w[1]),
        "oldest first"
    );
    let after = lite.used_bytes().await.expect("size");
    assert!(
        after < LIMIT_MB * 1024 * 1024 * 75 / 100,
        "{before} -> {after}"
    );
    let today_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM equity_data WHERE \"timestamp\" >= ?")
            .bind(format!("{today}T00:00:00.000Z"))
            .fetch_one(lite.pool())
            .await
            .expect("today");
    assert_eq!(today_rows, 10, "today's rows are kept");
    let budget = stats
        .storage_budget()
        .expect("the pass measured the storage budget");
    assert!(budget.bytes_per_row > 0, "{budget:?}");
    assert_eq!(budget.retention_days, 30);
}
