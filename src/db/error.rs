//! Sink errors and whether they are worth retrying.
//!
//! Transient: the database is unreachable, restarting, out of connections or momentarily
//! locked; the batch stays buffered and is retried. Permanent: the data or schema is wrong
//! (missing table, constraint violation, bad password); retrying would loop forever.

use std::fmt;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Transient,
    Permanent,
}

/// A database error with its retry class and an operator hint.
#[derive(Debug, thiserror::Error)]
pub struct SinkError {
    pub kind: ErrorKind,
    /// What we were doing, e.g. "insert into equity_data".
    pub action: String,
    #[source]
    pub source: sqlx::Error,
}

impl SinkError {
    /// Classifies a sqlx error raised while doing `action`.
    pub fn new(action: impl Into<String>, source: sqlx::Error) -> Self {
        Self {
            kind: classify(&source),
            action: action.into(),
            source,
        }
    }

    /// The SQLSTATE (Postgres) or result code (SQLite), when the database answered.
    pub fn code(&self) -> Option<String> {
        match &self.source {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    fn hint(&self) -> &'static str {
        if self.kind == ErrorKind::Transient {
            return "retrying with backoff; check that the database is running and reachable";
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
                sqlx::Error::Configuration(_) => {
                    "DATABASE_URL is malformed: fix it and start again"
                }
                _ => "not retried; fix the cause above and start the service again",
            },
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sqlx error texts carry no URL or password.
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
            // SQLite: BUSY, LOCKED, IOERR, FULL (primary result codes, also extended ones).
            match db.code().as_deref().and_then(sqlite_primary) {
                Some(5 | 6 | 10 | 13) => Transient,
                _ => Permanent,
            }
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // Postgres: connection exceptions, shutdown/restart, out of resources,
            // serialization failures, deadlocks, lock timeouts.
            Some(c) if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => {
                Transient
            }
            Some("40001") | Some("40P01") | Some("55P03") | Some("58030") => Transient,
            _ => Permanent,
        },
        _ => Permanent,
    }
}

/// SQLite reports numeric result codes; extended codes keep the primary code in the low byte.
fn sqlite_primary(code: &str) -> Option<u32> {
    code.parse::<u32>().ok().map(|c| c & 0xff)
}
