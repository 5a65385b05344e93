//! `TOKEN_STORE=database`: the tokens in table `schwab_tokens` of `DATABASE_URL`, one row per
//! app (`client_id`). The store has its own connections, separate from the writer's: on
//! PostgreSQL reads use the shared connection and each refresh lock a connection of its own.
//! It implements the Schwab session's [`TokenTable`] seam, so the session never imports the
//! database; [`open_token_store`] picks the store `TOKEN_STORE` names.
//!
//! Refresh lock: on PostgreSQL a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`) keyed by the app, held while the row is re-read, the refresh
//! runs and the new row is written; a crashed holder's lock ends with its connection (and a
//! lock dropped without release closes its connection, which rolls the transaction back). On
//! SQLite (one machine) an exclusive lock file next to the database file does the same.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::postgres::PgConn;
use super::sqlite::sqlite_time;
use super::{Database, DatabaseTarget, DbSettings, SinkError};
use crate::schwab::secret::Secret;
use crate::schwab::tokens::file::{FileLock, lock_file, lock_path};
use crate::schwab::tokens::{
    TokenSet, TokenStore, TokenStoreError, TokenStoreKind, TokenTable, TokenTableLock,
};

/// Opens the store chosen by `TOKEN_STORE`: `token_file`, or the `schwab_tokens` table of
/// `db` (connecting on its own and applying the migrations, so `login` works on a fresh
/// database).
pub async fn open_token_store(
    kind: TokenStoreKind,
    token_file: &std::path::Path,
    db: &DbSettings,
) -> Result<TokenStore, TokenStoreError> {
    match kind {
        TokenStoreKind::File => Ok(TokenStore::file(token_file)),
        TokenStoreKind::Database => {
            let store = DatabaseStore::open(db).await?;
            Ok(TokenStore::Table(Box::new(store)))
        }
    }
}

fn db_error(e: SinkError) -> TokenStoreError {
    TokenStoreError::Database(Box::new(e))
}

/// How long opening the store waits for an unreachable database.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(60);

/// The `schwab_tokens` table.
pub struct DatabaseStore {
    db: Database,
    target: DatabaseTarget,
}

impl std::fmt::Debug for DatabaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl DatabaseStore {
    /// Connects to `settings.target` and applies the migrations (which create `schwab_tokens`).
    pub async fn open(settings: &DbSettings) -> Result<Self, TokenStoreError> {
        let db = Database::connect_with_retry(settings, CONNECT_GIVE_UP)
            .await
            .map_err(db_error)?;
        db.migrate().await.map_err(db_error)?;
        Ok(Self {
            db,
            target: settings.target.clone(),
        })
    }

    /// Reads the row of `client_id`.
    async fn load_row(&self, client_id: &str) -> Result<Option<TokenSet>, TokenStoreError> {
        match &self.db {
            Database::Postgres(pg) => {
                let conn = pg.shared_conn().await.map_err(db_error)?;
                load_postgres(&conn, client_id).await
            }
            Database::Sqlite(s) => load_sqlite(s.pool(), client_id).await,
        }
    }

    /// Takes the refresh lock of `client_id`.
    async fn lock_row(&self, client_id: &str) -> Result<DatabaseLock, TokenStoreError> {
        let client_id = client_id.to_string();
        match &self.db {
            Database::Postgres(pg) => {
                let session = pg.session().await.map_err(db_error)?;
                let db_err = |action: &'static str| move |e| db_error(SinkError::new(action, e));
                session
                    .batch_execute("BEGIN; SET LOCAL lock_timeout = '30s'")
                    .await
                    .map_err(db_err("begin the token transaction"))?;
                session
                    .execute_typed(
                        "SELECT pg_advisory_xact_lock($1)",
                        &[(&advisory_key(&client_id), Type::INT8)],
                    )
                    .await
                    .map_err(|e| {
                        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                            TokenStoreError::LockTimeout {
                                what: "(PostgreSQL advisory lock of schwab_tokens)".into(),
                                secs: 30,
                            }
                        } else {
                            db_error(SinkError::new("take the schwab_tokens advisory lock", e))
                        }
                    })?;
                Ok(DatabaseLock::Postgres { session, client_id })
            }
            Database::Sqlite(s) => {
                let lock = lock_file(&self.sqlite_lock_path()).await?;
                Ok(DatabaseLock::Sqlite {
                    pool: s.pool().clone(),
                    _lock: lock,
                    client_id,
                })
            }
        }
    }

    fn sqlite_lock_path(&self) -> PathBuf {
        match &self.target {
            DatabaseTarget::Sqlite(path) => lock_path(&path.with_extension("tokens")),
            DatabaseTarget::Postgres(_) => PathBuf::from("schwab-tokens.lock"),
        }
    }
}

impl TokenTable for DatabaseStore {
    /// "table schwab_tokens in <redacted url>".
    fn describe(&self) -> String {
        format!("table schwab_tokens in {}", self.target.redacted())
    }

    fn load<'a>(
        &'a self,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TokenSet>, TokenStoreError>> {
        Box::pin(self.load_row(client_id))
    }

    fn lock<'a>(
        &'a self,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn TokenTableLock>, TokenStoreError>> {
        Box::pin(async move {
            let lock = self.lock_row(client_id).await?;
            Ok(Box::new(lock) as Box<dyn TokenTableLock>)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.db.close())
    }
}

/// The refresh lock of one app: a PostgreSQL connection of its own in a transaction holding
/// the advisory lock (dropped unreleased, the connection closes and the server rolls back),
/// or an exclusive lock file for SQLite.
enum DatabaseLock {
    Postgres {
        session: PgConn,
        client_id: String,
    },
    Sqlite {
        pool: sqlx::SqlitePool,
        _lock: FileLock,
        client_id: String,
    },
}

impl TokenTableLock for DatabaseLock {
    fn load(&mut self) -> BoxFuture<'_, Result<Option<TokenSet>, TokenStoreError>> {
        Box::pin(async move {
            match self {
                Self::Postgres { session, client_id } => load_postgres(session, client_id).await,
                Self::Sqlite {
                    pool, client_id, ..
                } => load_sqlite(pool, client_id).await,
            }
        })
    }

    fn save<'a>(&'a mut self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), TokenStoreError>> {
        Box::pin(async move {
            match self {
                Self::Postgres { session, .. } => save_postgres(session, tokens).await,
                Self::Sqlite { pool, .. } => save_sqlite(pool, tokens).await,
            }
        })
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TokenStoreError>> {
        Box::pin(async move {
            match *self {
                Self::Postgres { session, .. } => {
                    let committed = session
                        .batch_execute("COMMIT")
                        .await
                        .map_err(|e| db_error(SinkError::new("commit schwab_tokens", e)));
                    session.close().await;
                    committed
                }
                Self::Sqlite { .. } => Ok(()),
            }
        })
    }
}

/// The advisory lock key of an app: a stable 64-bit FNV-1a hash of a fixed prefix and the id.
pub fn advisory_key(client_id: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "market-streamer/schwab-refresh/"
        .bytes()
        .chain(client_id.bytes())
    {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

const SELECT_SQL_PG: &str = "SELECT access_token, refresh_token, access_expires_at, refresh_issued_at, updated_at FROM schwab_tokens WHERE client_id = $1";
const UPSERT_SQL_PG: &str = "INSERT INTO schwab_tokens (client_id, access_token, refresh_token, access_expires_at, refresh_issued_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (client_id) DO UPDATE SET access_token = EXCLUDED.access_token,
       refresh_token = EXCLUDED.refresh_token, access_expires_at = EXCLUDED.access_expires_at,
       refresh_issued_at = EXCLUDED.refresh_issued_at, updated_at = EXCLUDED.updated_at";

/// Reads the row of `client_id` on a PostgreSQL connection.
async fn load_postgres(
    client: &tokio_postgres::Client,
    client_id: &str,
) -> Result<Option<TokenSet>, TokenStoreError> {
    let row = client
        .query_typed_opt(SELECT_SQL_PG, &[(&client_id, Type::TEXT)])
        .await
        .map_err(|e| db_error(SinkError::new("read schwab_tokens", e)))?;
    row.map(|r| -> Result<TokenSet, tokio_postgres::Error> {
        Ok(TokenSet {
            client_id: client_id.to_string(),
            access_token: Secret::new(r.try_get::<_, String>("access_token")?),
            refresh_token: Secret::new(r.try_get::<_, String>("refresh_token")?),
            access_expires_at: r.try_get("access_expires_at")?,
            refresh_issued_at: r.try_get("refresh_issued_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
    .map_err(|e| TokenStoreError::CorruptRow {
        client_id: client_id.to_string(),
        detail: e.to_string(),
    })
}

/// Writes the row of `tokens.client_id` on a PostgreSQL connection.
async fn save_postgres(
    client: &tokio_postgres::Client,
    tokens: &TokenSet,
) -> Result<(), TokenStoreError> {
    client
        .execute_typed(
            UPSERT_SQL_PG,
            &[
                (&tokens.client_id, Type::TEXT),
                (&tokens.access_token.expose(), Type::TEXT),
                (&tokens.refresh_token.expose(), Type::TEXT),
                (&tokens.access_expires_at, Type::TIMESTAMPTZ),
                (&tokens.refresh_issued_at, Type::TIMESTAMPTZ),
                (&tokens.updated_at, Type::TIMESTAMPTZ),
            ],
        )
        .await
        .map(|_| ())
        .map_err(|e| db_error(SinkError::new("write schwab_tokens", e)))
}

/// Reads the row of `client_id` from SQLite.
async fn load_sqlite(
    pool: &sqlx::SqlitePool,
    client_id: &str,
) -> Result<Option<TokenSet>, TokenStoreError> {
    let row = sqlx::query(
        "SELECT access_token, refresh_token, access_expires_at, refresh_issued_at, updated_at FROM schwab_tokens WHERE client_id = ?1",
    )
    .bind(client_id)
    .fetch_optional(pool)
    .await
    .map_err(|e| db_error(SinkError::new("read schwab_tokens", e)))?;
    let corrupt = |detail: String| TokenStoreError::CorruptRow {
        client_id: client_id.to_string(),
        detail,
    };
    let Some(r) = row else { return Ok(None) };
    let text = |col: &str| {
        r.try_get::<String, _>(col)
            .map_err(|e| corrupt(e.to_string()))
    };
    let time = |col: &str| -> Result<DateTime<Utc>, TokenStoreError> {
        let v = text(col)?;
        DateTime::parse_from_rfc3339(&v)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| corrupt(format!("{col}: {e}")))
    };
    Ok(Some(TokenSet {
        client_id: client_id.to_string(),
        access_token: Secret::new(text("access_token")?),
        refresh_token: Secret::new(text("refresh_token")?),
        access_expires_at: time("access_expires_at")?,
        refresh_issued_at: time("refresh_issued_at")?,
        updated_at: time("updated_at")?,
    }))
}

/// Writes the row of `tokens.client_id` into SQLite.
async fn save_sqlite(pool: &sqlx::SqlitePool, tokens: &TokenSet) -> Result<(), TokenStoreError> {
    sqlx::query(
        "INSERT INTO schwab_tokens (client_id, access_token, refresh_token, access_expires_at, refresh_issued_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token,
           refresh_token = excluded.refresh_token, access_expires_at = excluded.access_expires_at,
           refresh_issued_at = excluded.refresh_issued_at, updated_at = excluded.updated_at",
    )
    .bind(&tokens.client_id)
    .bind(tokens.access_token.expose())
    .bind(tokens.refresh_token.expose())
    .bind(sqlite_time(tokens.access_expires_at))
    .bind(sqlite_time(tokens.refresh_issued_at))
    .bind(sqlite_time(tokens.updated_at))
    .execute(pool)
    .await
    .map(|_| ())
    .map_err(|e| db_error(SinkError::new("write schwab_tokens", e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_differ_per_app() {
        assert_eq!(advisory_key("app-a"), advisory_key("app-a"));
        assert_ne!(advisory_key("app-a"), advisory_key("app-b"));
    }
}
