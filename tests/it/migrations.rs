//! Migrations through refinery on both engines: a fresh database gets every migration and
//! its history, a second run changes nothing, two services migrating at once do not collide,
//! and a database migrated by an earlier release (sqlx, `_sqlx_migrations`) is taken over
//! without running anything twice or losing a row.

use market_streamer::db::Database;
use market_streamer::db::migrate::{Engine, HISTORY_TABLE, MigrationReport, SQLX_HISTORY_TABLE};
use sqlx::Connection as _;
use testkit::{TestPostgres, config_for, pg_client, pg_i64, start_postgres};

/// `_sqlx_migrations` as sqlx 0.9 creates it on PostgreSQL.
const SQLX_TABLE_PG: &str = "CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);";

/// `_sqlx_migrations` as sqlx 0.9 creates it on SQLite.
const SQLX_TABLE_SQLITE: &str = "CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);";

/// The `_sqlx_migrations` rows sqlx wrote for versions `1..=upto` of `engine`.
fn sqlx_rows(engine: Engine, upto: usize) -> String {
    let (yes, checksum) = match engine {
        Engine::Postgres => ("true", r"'\x00'::bytea"),
        Engine::Sqlite => ("1", "x'00'"),
    };
    engine.files()[..upto]
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let description = name.split_once("__").map_or(*name, |(_, d)| d);
            format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ({}, '{}', {yes}, {checksum}, 1);\n",
                i + 1,
                description.replace('_', " ")
            )
        })
        .collect()
}

fn names(engine: Engine, versions: std::ops::RangeInclusive<usize>) -> Vec<String> {
    versions
        .map(|v| engine.files()[v - 1].0.to_string())
        .collect()
}

async fn connect(url: &str) -> Database {
    Database::connect(&market_streamer::settings::database(&config_for(url, &[])))
        .await
        .expect("connect")
}

/// PostgreSQL as an earlier release left it: migrations `1..=upto` applied and recorded by
/// sqlx, one market row and one token row written.
fn old_postgres(pg: &TestPostgres, name: &str, upto: usize) -> String {
    let url = pg.create_database(name).expect("create database");
    let mut script = format!("{SQLX_TABLE_PG}\n");
    for (_, sql) in &Engine::Postgres.files()[..upto] {
        script.push_str(sql);
        script.push('\n');
    }
    script.push_str(&sqlx_rows(Engine::Postgres, upto));
    script.push_str(
        r#"INSERT INTO equity_data (ticker, "timestamp", seq, price) VALUES ('OLD', '2025-08-13 14:00:00+00', 0, 1.5);
INSERT INTO schwab_tokens (client_id, access_token, refresh_token, access_expires_at, refresh_issued_at) VALUES ('app', 'a', 'r', now(), now());"#,
    );
    pg.psql(name, &script).expect("old schema");
    url
}

async fn pg_history(url: &str) -> Vec<(i32, String)> {
    let client = pg_client(url).await.expect("connect");
    client
        .query(
            &format!("SELECT version, name FROM {HISTORY_TABLE} ORDER BY version"),
            &[],
        )
        .await
        .expect("history")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn expected_history(engine: Engine) -> Vec<(i32, String)> {
    engine
        .files()
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let short = name.split_once("__").map_or(*name, |(_, n)| n);
            (i as i32 + 1, short.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_postgres_database_is_migrated_once() {
    let pg = start_postgres();
    let url = pg.create_database("fresh").expect("db");
    let db = connect(&url).await;
    let first = db.migrate().await.expect("migrate");
    let all = Engine::Postgres.files().len();
    assert_eq!(
        first,
        MigrationReport {
            adopted_from_sqlx: None,
            applied: names(Engine::Postgres, 1..=all),
        }
    );
    let second = db.migrate().await.expect("migrate again");
    assert_eq!(second, MigrationReport::default(), "nothing left to apply");
    db.close().await;
    assert_eq!(pg_history(&url).await, expected_history(Engine::Postgres));
    let client = pg_client(&url).await.expect("connect");
    let sqlx_table = pg_i64(
        &client,
        &format!("SELECT count(*) FROM pg_class WHERE relname = '{SQLX_HISTORY_TABLE}'"),
    )
    .await
    .expect("lookup");
    assert_eq!(sqlx_table, 0, "no sqlx table on a new database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_migrating_at_once_apply_each_migration_once() {
    let pg = start_postgres();
    let url = pg.create_database("race").expect("db");
    let (a, b) = (connect(&url).await, connect(&url).await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.expect("first"), rb.expect("second"));
    let mut applied = [ra.applied, rb.applied].concat();
    applied.sort_by_key(|n| {
        n.trim_start_matches('V')
            .split_once("__")
            .and_then(|(v, _)| v.parse::<u32>().ok())
    });
    assert_eq!(
        applied,
        names(Engine::Postgres, 1..=Engine::Postgres.files().len())
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_migrated_by_sqlx_is_taken_over_without_losing_data() {
    let pg = start_postgres();
    let all = Engine::Postgres.files().len();
    // Every migration of the sqlx era applied (1..=6), and one only partly migrated (1..=3).
    for (name, upto) in [("sqlx_full", 6), ("sqlx_part", 3)] {
        let url = old_postgres(&pg, name, upto);
        let db = connect(&url).await;
        let report = db.migrate().await.expect("migrate an old database");
        assert_eq!(
            report,
            MigrationReport {
                adopted_from_sqlx: Some(upto as i32),
                applied: names(Engine::Postgres, upto + 1..=all),
            },
            "{name}"
        );
        let again = db.migrate().await.expect("migrate again");
        assert_eq!(again, MigrationReport::default(), "{name}: second run");
        db.close().await;
        assert_eq!(pg_history(&url).await, expected_history(Engine::Postgres));
        let client = pg_client(&url).await.expect("connect");
        let count = async |sql: &str| pg_i64(&client, sql).await.expect(sql);
        assert_eq!(
            count("SELECT count(*) FROM equity_data WHERE ticker = 'OLD'").await,
            1
        );
        assert_eq!(count("SELECT count(*) FROM schwab_tokens").await, 1);
        assert_eq!(
            count(&format!("SELECT count(*) FROM {SQLX_HISTORY_TABLE}")).await,
            upto as i64,
            "{name}: the old history is kept as it was"
        );
        // The migrations after the adopted version ran: the market tables are partitioned.
        assert_eq!(
            count("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'equity_data'::regclass").await,
            1
        );
    }
}

async fn sqlite_history(url: &str) -> Vec<(i32, String)> {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("open");
    let rows: Vec<(i32, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, name FROM {HISTORY_TABLE} ORDER BY version"
    )))
    .fetch_all(&mut conn)
    .await
    .expect("history");
    conn.close().await.expect("close");
    rows
}

#[tokio::test]
async fn a_fresh_sqlite_database_is_migrated_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/fresh.db", dir.path().display());
    let db = connect(&url).await;
    let all = Engine::Sqlite.files().len();
    assert_eq!(
        db.migrate().await.expect("migrate"),
        MigrationReport {
            adopted_from_sqlx: None,
            applied: names(Engine::Sqlite, 1..=all),
        }
    );
    assert_eq!(
        db.migrate().await.expect("migrate again"),
        MigrationReport::default()
    );
    db.close().await;
    assert_eq!(sqlite_history(&url).await, expected_history(Engine::Sqlite));
}

#[tokio::test]
async fn a_sqlite_file_migrated_by_sqlx_is_taken_over_without_losing_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = Engine::Sqlite.files().len();
    for (name, upto) in [("sqlx_full", all), ("sqlx_part", 3)] {
        let url = format!("sqlite://{}/{name}.db?mode=rwc", dir.path().display());
        // The file as an earlier release left it.
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("create");
        let mut script = format!("{SQLX_TABLE_SQLITE}\n");
        for (_, sql) in &Engine::Sqlite.files()[..upto] {
            script.push_str(sql);
            script.push('\n');
        }
        script.push_str(&sqlx_rows(Engine::Sqlite, upto));
        script.push_str(
            r#"INSERT INTO equity_data (ticker, "timestamp", seq, price) VALUES ('OLD', '2025-08-13T14:00:00.000Z', 0, 1.5);"#,
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(script))
            .execute(&mut conn)
            .await
            .expect("old schema");
        conn.close().await.expect("close");

        let url = url.trim_end_matches("?mode=rwc").to_string();
        let db = connect(&url).await;
        assert_eq!(
            db.migrate().await.expect("migrate an old file"),
            MigrationReport {
                adopted_from_sqlx: Some(upto as i32),
                applied: names(Engine::Sqlite, upto + 1..=all),
            },
            "{name}"
        );
        assert_eq!(
            db.migrate().await.expect("migrate again"),
            MigrationReport::default(),
            "{name}: second run"
        );
        db.close().await;
        assert_eq!(sqlite_history(&url).await, expected_history(Engine::Sqlite));
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
        let old: i64 = sqlx::query_scalar("SELECT count(*) FROM equity_data WHERE ticker = 'OLD'")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(old, 1, "{name}: the row from before the upgrade");
        let sqlx_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(sqlx_rows, upto as i64, "{name}: the old history is kept");
        // The latest migration's columns exist (it ran, or sqlx had run it).
        let columns: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pragma_table_info('latest_quotes') WHERE name = 'rsi'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("columns");
        assert_eq!(columns, 1, "{name}");
        conn.close().await.expect("close");
    }
}
