//! Schema migrations of both engines through refinery: the SQL files of `migrations/postgres`
//! and `migrations/sqlite` (named `V{N}__{name}.sql`) are embedded here, and refinery keeps
//! what was applied in its history table, [`HISTORY_TABLE`] (version, name, applied_on,
//! checksum). Each migration runs in its own transaction.
//!
//! PostgreSQL uses refinery's tokio-postgres driver, on a connection of its own that holds a
//! session advisory lock ([`MIGRATION_LOCK_KEY`]) while it migrates, so two processes starting
//! together never apply the same migration twice. SQLite uses [`SqliteMigrator`], refinery's
//! async traits implemented over a sqlx connection (refinery's own SQLite driver needs
//! rusqlite, whose libsqlite3-sys would clash with sqlx's).
//!
//! **Upgrade from sqlx** (releases before refinery kept their history in `_sqlx_migrations`):
//! when refinery's history is missing or empty and `_sqlx_migrations` has successful rows, the
//! versions sqlx applied are recorded as applied without running them again
//! (`Target::FakeVersion(highest successful version)`), logged once, and the normal run then
//! applies whatever is newer. `_sqlx_migrations` is left as it was (no longer read after that).

use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use refinery_core::{Migration, Runner, Target};
use sqlx::{Connection as _, Row as _, SqliteConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::types::Type;

use super::SinkError;
use super::error::DbError;

/// refinery's history table (its default name).
pub const HISTORY_TABLE: &str = "refinery_schema_history";
/// The history table of releases that migrated with sqlx.
pub const SQLX_HISTORY_TABLE: &str = "_sqlx_migrations";
/// The PostgreSQL session advisory lock held while migrating.
pub const MIGRATION_LOCK_KEY: i64 = 0x6d73_6d69_6772_6174; // "msmigrat"

/// The PostgreSQL migrations, in order.
const POSTGRES: &[(&str, &str)] = &[
    (
        "V1__market_tables",
        include_str!("../../migrations/postgres/V1__market_tables.sql"),
    ),
    (
        "V2__schwab_session",
        include_str!("../../migrations/postgres/V2__schwab_session.sql"),
    ),
    (
        "V3__indicators",
        include_str!("../../migrations/postgres/V3__indicators.sql"),
    ),
    (
        "V4__supabase",
        include_str!("../../migrations/postgres/V4__supabase.sql"),
    ),
    (
        "V5__latest_quotes_indicators",
        include_str!("../../migrations/postgres/V5__latest_quotes_indicators.sql"),
    ),
    (
        "V6__session_table_grants",
        include_str!("../../migrations/postgres/V6__session_table_grants.sql"),
    ),
    (
        "V7__migration_history_grants",
        include_str!("../../migrations/postgres/V7__migration_history_grants.sql"),
    ),
    (
        "V8__batch_ledger",
        include_str!("../../migrations/postgres/V8__batch_ledger.sql"),
    ),
    (
        "V9__rejected_rows",
        include_str!("../../migrations/postgres/V9__rejected_rows.sql"),
    ),
    (
        "V10__more_services",
        include_str!("../../migrations/postgres/V10__more_services.sql"),
    ),
    (
        "V11__backfill",
        include_str!("../../migrations/postgres/V11__backfill.sql"),
    ),
    (
        "V12__watchlist",
        include_str!("../../migrations/postgres/V12__watchlist.sql"),
    ),
];

/// The SQLite migrations, in order.
const SQLITE: &[(&str, &str)] = &[
    (
        "V1__market_tables",
        include_str!("../../migrations/sqlite/V1__market_tables.sql"),
    ),
    (
        "V2__schwab_session",
        include_str!("../../migrations/sqlite/V2__schwab_session.sql"),
    ),
    (
        "V3__indicators",
        include_str!("../../migrations/sqlite/V3__indicators.sql"),
    ),
    (
        "V4__latest_quotes",
        include_str!("../../migrations/sqlite/V4__latest_quotes.sql"),
    ),
    (
        "V5__latest_quotes_indicators",
        include_str!("../../migrations/sqlite/V5__latest_quotes_indicators.sql"),
    ),
    (
        "V6__batch_ledger",
        include_str!("../../migrations/sqlite/V6__batch_ledger.sql"),
    ),
    (
        "V7__rejected_rows",
        include_str!("../../migrations/sqlite/V7__rejected_rows.sql"),
    ),
    (
        "V8__more_services",
        include_str!("../../migrations/sqlite/V8__more_services.sql"),
    ),
    (
        "V9__backfill",
        include_str!("../../migrations/sqlite/V9__backfill.sql"),
    ),
    (
        "V10__watchlist",
        include_str!("../../migrations/sqlite/V10__watchlist.sql"),
    ),
];

/// Which engine's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

impl Engine {
    fn label(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        }
    }

    /// The embedded migration files: (refinery name, SQL).
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Postgres => POSTGRES,
            Self::Sqlite => SQLITE,
        }
    }

    /// The embedded migrations as refinery's values.
    pub fn migrations(self) -> Result<Vec<Migration>, SinkError> {
        self.files()
            .iter()
            .map(|(name, sql)| {
                Migration::unapplied(name, sql)
                    .map_err(|e| SinkError::new(format!("load the embedded migration {name}"), e))
            })
            .collect()
    }
}

/// What one migration run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The highest version that sqlx had applied, recorded in refinery's history on this run.
    pub adopted_from_sqlx: Option<i32>,
    /// The migrations applied on this run (`V{N}__{name}`).
    pub applied: Vec<String>,
}

/// What `_sqlx_migrations` says, when it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SqlxHistory {
    /// Highest version with `success = true`.
    max_success: Option<i64>,
    /// Lowest version with `success = false` (sqlx stopped there: a dirty database).
    first_failed: Option<i64>,
}

/// The version to record as applied without running anything, if the database was migrated
/// by sqlx and refinery has no history yet.
fn sqlx_version_to_adopt(
    engine: Engine,
    history_rows: Option<i64>,
    sqlx: Option<SqlxHistory>,
) -> Result<Option<i32>, SinkError> {
    if history_rows.is_some_and(|n| n > 0) {
        return Ok(None);
    }
    let Some(sqlx) = sqlx else { return Ok(None) };
    let action = format!("adopt the {} migration history of sqlx", engine.label());
    if let Some(failed) = sqlx.first_failed {
        return Err(SinkError::new(
            action,
            DbError::Schema(format!(
                "{SQLX_HISTORY_TABLE} says migration {failed} failed part-way under an earlier release; repair the schema by hand (apply the rest of migrations/{}/V{failed}__*.sql), delete that row from {SQLX_HISTORY_TABLE} and start again",
                match engine {
                    Engine::Postgres => "postgres",
                    Engine::Sqlite => "sqlite",
                }
            )),
        ));
    }
    let Some(max) = sqlx.max_success else {
        return Ok(None);
    };
    let known = engine.files().len() as i64;
    if max > known {
        return Err(SinkError::new(
            action,
            DbError::Schema(format!(
                "{SQLX_HISTORY_TABLE} records migration {max}, newer than this release knows ({known}): run the release that migrated this database, or a newer one"
            )),
        ));
    }
    i32::try_from(max).map(Some).map_err(|_| {
        SinkError::new(
            action,
            DbError::Schema(format!("{SQLX_HISTORY_TABLE} holds version {max}")),
        )
    })
}

/// Records `adopt` (when set) and then applies every pending migration on `conn`.
async fn run<C: AsyncMigrate + Send>(
    engine: Engine,
    conn: &mut C,
    adopt: Option<i32>,
) -> Result<MigrationReport, SinkError> {
    let migrations = engine.migrations()?;
    let action = format!("run the {} migrations", engine.label());
    if let Some(version) = adopt {
        Runner::new(&migrations)
            .set_target(Target::FakeVersion(version))
            .run_async(conn)
            .await
            .map_err(|e| SinkError::new(action.clone(), e))?;
        tracing::info!(
            engine = engine.label(),
            version,
            "database migrated by an earlier release (sqlx): versions 1..={version} recorded as applied in {HISTORY_TABLE}; {SQLX_HISTORY_TABLE} is kept but no longer used"
        );
    }
    let report = Runner::new(&migrations)
        .run_async(conn)
        .await
        .map_err(|e| SinkError::new(action, e))?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect();
    if !applied.is_empty() {
        tracing::info!(engine = engine.label(), applied = ?applied, "migrations applied");
    }
    Ok(MigrationReport {
        adopted_from_sqlx: adopt,
        applied,
    })
}

/// Migrates a PostgreSQL database on `client` (a connection of its own: it holds the
/// migration advisory lock until it returns).
pub async fn postgres(client: &mut tokio_postgres::Client) -> Result<MigrationReport, SinkError> {
    client
        .execute_typed(
            "SELECT pg_advisory_lock($1)",
            &[(&MIGRATION_LOCK_KEY, Type::INT8)],
        )
        .await
        .map_err(|e| SinkError::new("take the migration lock", e))?;
    let result = postgres_locked(client).await;
    if let Err(e) = client
        .execute_typed(
            "SELECT pg_advisory_unlock($1)",
            &[(&MIGRATION_LOCK_KEY, Type::INT8)],
        )
        .await
    {
        // The lock ends with the connection anyway.
        tracing::debug!(error = %DbError::from(e), "could not release the migration lock");
    }
    result
}

async fn postgres_locked(
    client: &mut tokio_postgres::Client,
) -> Result<MigrationReport, SinkError> {
    let read = |e| SinkError::new("read the migration history", e);
    let exists = async |client: &tokio_postgres::Client, table: &str| {
        client
            .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
            .await
            .and_then(|row| row.try_get::<_, bool>(0))
    };
    let history_rows = if exists(client, HISTORY_TABLE).await.map_err(read)? {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {HISTORY_TABLE}"), &[])
            .await
            .map_err(read)?;
        Some(row.try_get::<_, i64>(0).map_err(read)?)
    } else {
        None
    };
    let sqlx = if history_rows.is_some_and(|n| n > 0) {
        None
    } else if exists(client, SQLX_HISTORY_TABLE).await.map_err(read)? {
        let row = client
            .query_one(
                &format!(
                    "SELECT max(version) FILTER (WHERE success), min(version) FILTER (WHERE NOT success) FROM {SQLX_HISTORY_TABLE}"
                ),
                &[],
            )
            .await
            .map_err(read)?;
        Some(SqlxHistory {
            max_success: row.try_get(0).map_err(read)?,
            first_failed: row.try_get(1).map_err(read)?,
        })
    } else {
        None
    };
    let adopt = sqlx_version_to_adopt(Engine::Postgres, history_rows, sqlx)?;
    // A read-only database (Supabase's read-only mode) whose schema is current needs no
    // write: starting must not fail on the runner's bookkeeping DDL then.
    if adopt.is_none() && history_rows.is_some() && read_only(client).await.map_err(read)? {
        let latest = Engine::Postgres.files().len() as i64;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(DISTINCT version), coalesce(max(version), 0) FROM {HISTORY_TABLE}"
                ),
                &[],
            )
            .await
            .map_err(read)?;
        let (count, max): (i64, i32) =
            (row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?);
        if count == latest && i64::from(max) == latest {
            tracing::warn!(
                version = max,
                "the database is read-only; its schema is current, so nothing needs writing now (rows wait in the disk spool until it accepts writes)"
            );
            return Ok(MigrationReport::default());
        }
    }
    run(Engine::Postgres, client, adopt).await
}

/// Whether this session's transactions are read-only (`default_transaction_read_only`, a
/// standby, Supabase's read-only mode).
async fn read_only(client: &tokio_postgres::Client) -> Result<bool, tokio_postgres::Error> {
    let row = client.query_one("SHOW transaction_read_only", &[]).await?;
    Ok(row.try_get::<_, String>(0)? == "on")
}

/// Migrates a SQLite database on `conn`.
pub async fn sqlite(conn: &mut SqliteConnection) -> Result<MigrationReport, SinkError> {
    let read = |e| SinkError::new("read the migration history", e);
    let exists = async |conn: &mut SqliteConnection, table: &str| {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        )
        .bind(table.to_string())
        .fetch_one(conn)
        .await
    };
    let history_rows = if exists(conn, HISTORY_TABLE).await.map_err(read)? {
        Some(
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {HISTORY_TABLE}"
            )))
            .fetch_one(&mut *conn)
            .await
            .map_err(read)?,
        )
    } else {
        None
    };
    let sqlx = if history_rows.is_some_and(|n| n > 0) {
        None
    } else if exists(conn, SQLX_HISTORY_TABLE).await.map_err(read)? {
        let (max_success, first_failed) = sqlx::query_as::<_, (Option<i64>, Option<i64>)>(
            sqlx::AssertSqlSafe(format!(
                "SELECT max(CASE WHEN success THEN version END), min(CASE WHEN success THEN NULL ELSE version END) FROM {SQLX_HISTORY_TABLE}"
            )),
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(read)?;
        Some(SqlxHistory {
            max_success,
            first_failed,
        })
    } else {
        None
    };
    let adopt = sqlx_version_to_adopt(Engine::Sqlite, history_rows, sqlx)?;
    run(Engine::Sqlite, &mut SqliteMigrator(conn), adopt).await
}

/// refinery's async driver traits over a sqlx SQLite connection.
pub struct SqliteMigrator<'c>(pub &'c mut SqliteConnection);

impl AsyncTransaction for SqliteMigrator<'_> {
    type Error = sqlx::Error;

    /// Runs `queries` (each may hold several statements) in one transaction.
    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut tx = self.0.begin().await?;
        let mut count = 0;
        for query in queries {
            sqlx::raw_sql(sqlx::AssertSqlSafe(query))
                .execute(&mut *tx)
                .await?;
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for SqliteMigrator<'_> {
    /// Reads history rows (version, name, applied_on, checksum), refusing malformed ones.
    async fn query(&mut self, query: &str) -> Result<Vec<Migration>, Self::Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(query))
            .fetch_all(&mut *self.0)
            .await?;
        let bad = |what: String| sqlx::Error::Decode(what.into());
        rows.iter()
            .map(|row| {
                let version: i32 = row.try_get(0)?;
                let name: String = row.try_get(1)?;
                let applied_on: String = row.try_get(2)?;
                let checksum: String = row.try_get(3)?;
                let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339).map_err(|e| {
                    bad(format!(
                        "{HISTORY_TABLE} version {version}: applied_on {applied_on:?} is not RFC 3339 ({e})"
                    ))
                })?;
                let checksum = checksum.parse::<u64>().map_err(|e| {
                    bad(format!(
                        "{HISTORY_TABLE} version {version}: checksum {checksum:?} is not a number ({e})"
                    ))
                })?;
                Ok(Migration::applied(version, name, applied_on, checksum))
            })
            .collect()
    }
}

impl AsyncMigrate for SqliteMigrator<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the migrations folders is embedded, in order, under its own name.
    #[test]
    fn every_migration_file_is_embedded() {
        for (engine, dir) in [(Engine::Postgres, "postgres"), (Engine::Sqlite, "sqlite")] {
            let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
                .expect("migrations folder")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort_by_key(|name| {
                refinery_core::parse_migration_name(name.trim_end_matches(".sql"))
                    .map(|(_, v, _)| v)
                    .unwrap_or(i32::MAX)
            });
            let embedded: Vec<String> = engine
                .files()
                .iter()
                .map(|(name, _)| format!("{name}.sql"))
                .collect();
            assert_eq!(embedded, on_disk, "{dir}");
            for (name, sql) in engine.files() {
                let on_disk =
                    std::fs::read_to_string(folder.join(format!("{name}.sql"))).expect("read");
                assert_eq!(*sql, on_disk, "{name}");
            }
            let versions: Vec<i32> = engine
                .migrations()
                .expect("names parse")
                .iter()
                .map(|m| m.version())
                .collect();
            let expected: Vec<i32> = (1..=versions.len() as i32).collect();
            assert_eq!(versions, expected, "{dir}: versions 1..=N without gaps");
        }
    }

    #[test]
    fn sqlx_history_is_adopted_only_when_refinery_has_none() {
        let sqlx = |max, failed| {
            Some(SqlxHistory {
                max_success: max,
                first_failed: failed,
            })
        };
        let pg = Engine::Postgres;
        assert_eq!(sqlx_version_to_adopt(pg, None, None).ok(), Some(None));
        assert_eq!(
            sqlx_version_to_adopt(pg, None, sqlx(Some(6), None)).ok(),
            Some(Some(6))
        );
        assert_eq!(
            sqlx_version_to_adopt(pg, Some(0), sqlx(Some(3), None)).ok(),
            Some(Some(3))
        );
        assert_eq!(
            sqlx_version_to_adopt(pg, Some(7), sqlx(Some(6), None)).ok(),
            Some(None)
        );
        assert_eq!(
            sqlx_version_to_adopt(pg, None, sqlx(None, None)).ok(),
            Some(None)
        );
        let dirty = sqlx_version_to_adopt(pg, None, sqlx(Some(2), Some(3))).expect_err("dirty");
        assert!(dirty.to_string().contains("repair"), "{dirty}");
        let newer =
            sqlx_version_to_adopt(Engine::Sqlite, None, sqlx(Some(99), None)).expect_err("newer");
        assert!(newer.to_string().contains("newer"), "{newer}");
    }
}
