//! Sink errors and whether they are worth retrying.
//!
//! Each error has a rule:
//! - Transient: the database is unreachable, restarting, out of connections or momentarily
//!   locked; the batch stays buffered (or spooled) and is retried with backoff.
//! - Refused: the database is up but refuses writes (read-only mode, disk full); every row is
//!   kept in the disk spool, the write is retried slowly, streaming goes on, never an exit.
//! - Rejected: the database refused the batch's *data* (a data exception, an integrity or a
//!   program-limit error on market rows); the writer isolates the rejected rows, writes the
//!   others and quarantines those.
//! - Permanent: configuration or schema (missing table, bad password, missing privilege);
//!   retrying would loop forever, so the service stops with the fix.
//!
//! Three sources report errors: sqlx (SQLite), tokio-postgres (every PostgreSQL connection)
//! and refinery (migrations, wrapping either driver's error). SQLSTATEs map the same way
//! whichever driver saw them.

use std::fmt;

/// What to do about an error (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Transient,
    /// The database refuses writes (read-only mode, disk full): spool, retry slowly.
    Refused,
    /// The database refused the data: isolate and quarantine the rows.
    Rejected,
    Permanent,
}

/// Retry delays (first, cap) while the database refuses writes (read-only, disk full): slow,
/// since only an operator or the size guard can change that. The writer and the start-up
/// migration both wait this way.
pub const REFUSED_RETRY: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_secs(5),
    std::time::Duration::from_secs(60),
);

impl ErrorKind {
    /// Whether the same write may succeed later without anyone changing the data or the
    /// configuration (transient failures and refused writes).
    pub const fn retry_later(self) -> bool {
        matches!(self, Self::Transient | Self::Refused)
    }
}

/// A database error with its retry class and an operator hint.
#[derive(Debug, thiserror::Error)]
pub struct SinkError {
    pub kind: ErrorKind,
    /// What we were doing, e.g. "insert into equity_data".
    pub action: String,
    #[source]
    pub source: DbError,
}

/// The driver error behind a [`SinkError`].
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// tokio-postgres; shown with the server's message (its own `Display` says only "db error").
    #[error("{}", postgres_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The server did not answer in time (the connection is dropped and remade).
    #[error("no answer from PostgreSQL within {0:?}")]
    Timeout(std::time::Duration),
    /// DATABASE_URL or its TLS settings cannot be used.
    #[error("{0}")]
    Config(String),
    /// A migration failed, or the database's migration history does not match this release.
    #[error("{}", migration_text(.0))]
    Migration(#[from] refinery_core::Error),
    /// The schema or its migration history is not what this release expects (the text says
    /// what to do).
    #[error("{0}")]
    Schema(String),
    /// The database answered with a value this release cannot read.
    #[error("unexpected value from the database: {0}")]
    Decode(String),
}

impl SinkError {
    /// Classifies a driver error raised while doing `action`.
    pub fn new(action: impl Into<String>, source: impl Into<DbError>) -> Self {
        let source = source.into();
        Self {
            kind: match &source {
                DbError::Sqlx(e) => classify(e),
                DbError::Postgres(e) => classify_postgres(e),
                DbError::Timeout(_) => ErrorKind::Transient,
                DbError::Migration(e) => match migration_driver_error(e) {
                    Some(Driver::Postgres(e)) => classify_postgres(e),
                    Some(Driver::Sqlx(e)) => classify(e),
                    None => ErrorKind::Permanent,
                },
                DbError::Config(_) | DbError::Schema(_) | DbError::Decode(_) => {
                    ErrorKind::Permanent
                }
            },
            action: action.into(),
            source,
        }
    }

    /// The same error under another rule (tests and stand-in sinks).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The SQLSTATE (Postgres) or result code (SQLite), when the database answered.
    pub fn code(&self) -> Option<String> {
        match &self.source {
            DbError::Sqlx(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            DbError::Postgres(e) => e.code().map(|c| c.code().to_owned()),
            DbError::Migration(e) => match migration_driver_error(e) {
                Some(Driver::Postgres(e)) => e.code().map(|c| c.code().to_owned()),
                Some(Driver::Sqlx(sqlx::Error::Database(db))) => db.code().map(|c| c.into_owned()),
                _ => None,
            },
            _ => None,
        }
    }

    fn hint(&self) -> &'static str {
        match self.kind {
            ErrorKind::Transient => {
                return "retrying with backoff; check that the database is running and reachable";
            }
            ErrorKind::Refused => {
                return match self.code().as_deref() {
                    Some("25006") | Some("8") => {
                        "the database is read-only (on Supabase Free a database over 500 MB is switched to read-only mode): rows are kept in the disk spool and written once it accepts writes again; free space (lower TICK_RETENTION_DAYS, the size guard DB_SIZE_LIMIT_MB) or move to a bigger plan"
                    }
                    _ => {
                        "the database has no space left: rows are kept in the disk spool and written once it accepts writes again; free disk space or lower TICK_RETENTION_DAYS"
                    }
                };
            }
            ErrorKind::Rejected => {
                return "the database refused some of the data: those rows are isolated and quarantined (table rejected_rows), the others are written";
            }
            ErrorKind::Permanent => {}
        }
        match self.code().as_deref() {
            Some("42P01") | Some("42703") => {
                "the schema is missing or old: run `market-streamer migrate` with this DATABASE_URL"
            }
            Some("28P01") | Some("28000") => {
                "authentication failed: check the user and password in DATABASE_URL"
            }
            Some("3D000") => {
                "the database does not exist: create it or fix the name in DATABASE_URL"
            }
            Some("42501") => {
                "permission denied: grant this user INSERT/UPDATE on the market tables"
            }
            Some(c) if c.starts_with("23") => {
                "a row broke a table constraint: this is a bug, please report it with the log"
            }
            _ => match &self.source {
                DbError::Migration(e) => match e.kind() {
                    refinery_core::error::Kind::DivergentVersion(..)
                    | refinery_core::error::Kind::MissingVersion(_) => {
                        "the database was migrated by a different release of market-streamer: run that release (or a newer one), or restore the database from a backup"
                    }
                    _ => "the migration was rolled back; fix the cause above and start again",
                },
                DbError::Decode(_) => {
                    "the schema was changed by hand or this is a bug: check the table against SCHEMA.md and report it with the log"
                }
                DbError::Sqlx(sqlx::Error::Configuration(_)) | DbError::Config(_) => {
                    "DATABASE_URL is malformed: fix it and start again"
                }
                DbError::Postgres(e) if postgres_kind(e) == PgKind::Config => {
                    "DATABASE_URL is malformed: fix it and start again"
                }
                _ => "not retried; fix the cause above and start the service again",
            },
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sqlx and tokio-postgres error texts carry no URL or password.
        write!(
            f,
            "{} failed: {} ({})",
            self.action,
            self.source,
            self.hint()
        )
    }
}

/// Sorts sqlx errors into transient and permanent.
pub fn classify(e: &sqlx::Error) -> ErrorKind {
    use ErrorKind::*;
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => Transient,
        sqlx::Error::Database(db)
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
        {
            // SQLite primary result codes (extended ones too): BUSY, LOCKED, IOERR retry;
            // READONLY and FULL refuse writes; TOOBIG, CONSTRAINT, MISMATCH reject the data.
            match db.code().as_deref().and_then(sqlite_primary) {
                Some(5 | 6 | 10) => Transient,
                Some(8 | 13) => Refused,
                Some(18..=20) => Rejected,
                _ => Permanent,
            }
        }
        sqlx::Error::Database(db) => db.code().as_deref().map_or(Permanent, classify_sqlstate),
        _ => Permanent,
    }
}

/// PostgreSQL SQLSTATEs: a read-only transaction (25006: Supabase's read-only mode) and a
/// full disk (53100) refuse writes; data exceptions (22), integrity violations (23) and
/// program limits (54) reject the data; connection exceptions, shutdown/restart, other
/// resource shortages, serialization failures, deadlocks, lock timeouts and the statement
/// timeout (a slow moment, not bad data) are transient; everything else is permanent.
pub fn classify_sqlstate(code: &str) -> ErrorKind {
    use ErrorKind::*;
    match code {
        "25006" | "53100" => Refused,
        c if c.starts_with("22") || c.starts_with("23") || c.starts_with("54") => Rejected,
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => Transient,
        "40001" | "40P01" | "55P03" | "58030" | "57014" => Transient,
        _ => Permanent,
    }
}

/// What went wrong in tokio-postgres when the server did not answer with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgKind {
    /// The server answered with an error (a SQLSTATE).
    Db,
    /// The connection: I/O, TLS, closed, a timeout, an unreadable or unexpected message.
    Connection,
    /// The connection string or settings.
    Config,
    /// Encoding or decoding values, wrong parameter or column counts: a bug.
    Data,
}

/// tokio-postgres keeps its error kinds private; its `Display` names them, one fixed text
/// per kind (tokio-postgres 0.7).
fn postgres_kind(e: &tokio_postgres::Error) -> PgKind {
    if e.as_db_error().is_some() {
        return PgKind::Db;
    }
    if e.is_closed() {
        return PgKind::Connection;
    }
    let text = e.to_string();
    let starts = |p: &str| text.starts_with(p);
    if starts("error communicating with the server")
        || starts("unexpected message from server")
        || starts("error performing TLS handshake")
        || starts("connection closed")
        || starts("error parsing response from server")
        || starts("error connecting to server")
        || starts("timeout waiting for server")
    {
        PgKind::Connection
    } else if starts("invalid connection string") || starts("invalid configuration") {
        PgKind::Config
    } else {
        // Serialising/deserialising, column and parameter counts, authentication
        // (a missing password), encoding.
        PgKind::Data
    }
}

/// Sorts tokio-postgres errors into transient and permanent, like [`classify`].
pub fn classify_postgres(e: &tokio_postgres::Error) -> ErrorKind {
    match postgres_kind(e) {
        PgKind::Db => e
            .code()
            .map_or(ErrorKind::Permanent, |c| classify_sqlstate(c.code())),
        PgKind::Connection => ErrorKind::Transient,
        PgKind::Config | PgKind::Data => ErrorKind::Permanent,
    }
}

/// A tokio-postgres error with the server's message, detail and hint, or the kind and its
/// cause (its own `Display` prints only the kind, e.g. "db error").
fn postgres_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            if repeats_row_values(detail) {
                // Logs never carry row values (an account number of account_activity could be
                // one); the rejected row itself is quarantined whole in `rejected_rows`.
                text.push_str(" (detail withheld: it repeats the row's values)");
            } else {
                text.push_str(&format!(" (detail: {detail})"));
            }
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// True for a DETAIL that quotes row values: "Failing row contains (…)" (NOT NULL, CHECK)
/// and "Key (…)=(…) …" (unique, foreign key, exclusion).
fn repeats_row_values(detail: &str) -> bool {
    detail.starts_with("Failing row contains")
        || (detail.starts_with("Key (") && detail.contains(")=("))
}

/// The driver error behind a refinery error, when a query failed.
enum Driver<'e> {
    Postgres(&'e tokio_postgres::Error),
    Sqlx(&'e sqlx::Error),
}

fn migration_driver_error(e: &refinery_core::Error) -> Option<Driver<'_>> {
    let refinery_core::error::Kind::Connection(_, source) = e.kind() else {
        return None;
    };
    if let Some(pg) = source.downcast_ref::<tokio_postgres::Error>() {
        Some(Driver::Postgres(pg))
    } else {
        source.downcast_ref::<sqlx::Error>().map(Driver::Sqlx)
    }
}

/// refinery's text with the driver's (tokio-postgres' own says only "db error").
fn migration_text(e: &refinery_core::Error) -> String {
    match (e.kind(), migration_driver_error(e)) {
        (refinery_core::error::Kind::Connection(what, _), Some(Driver::Postgres(pg))) => {
            format!("{what}: {}", postgres_text(pg))
        }
        (refinery_core::error::Kind::Connection(what, _), Some(Driver::Sqlx(x))) => {
            format!("{what}: {x}")
        }
        _ => e.to_string(),
    }
}

/// SQLite reports numeric result codes; extended codes keep the primary code in the low byte.
fn sqlite_primary(code: &str) -> Option<u32> {
    code.parse::<u32>().ok().map(|c| c & 0xff)
}
