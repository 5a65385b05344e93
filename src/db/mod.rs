//! The database: the one home of every SQL statement, for PostgreSQL (Supabase) and the
//! embedded SQLite default. Batches of rows ([`Sink`]), stream gaps ([`stream_gaps`]), the indicator
//! warm start ([`warm_start`]), retention and size ([`postgres::partitions`], [`sqlite`]),
//! Realtime ([`postgres::realtime`], [`broadcast`]) and the token table ([`tokens`]).
//!
//! A [`Sink`] writes one [`Batch`] in one transaction, idempotently: quotes use
//! `ON CONFLICT DO NOTHING` on their natural key and candles are upserted, so a retried batch
//! never fails on rows that already went in. Every error says whether to retry
//! ([`ErrorKind`]) and what an operator should do.

pub mod broadcast;
pub mod error;
pub mod postgres;
pub mod sqlite;
pub mod stream_gaps;
pub mod tokens;
pub mod warm_start;

use std::future::Future;
use std::time::Duration;

pub use crate::schwab::session::gaps::StreamGap;
pub use error::{ErrorKind, SinkError};

use crate::config::{Config, DatabaseTarget};
use crate::rows::Batch;

/// What one committed write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    /// Rows sent in the batch (all of them are now in the database).
    pub rows: u64,
    /// Quote rows newly inserted (the rest were already there).
    pub inserted: u64,
    pub equities: u64,
    pub options: u64,
    pub bars: u64,
}

/// A database that commits batches.
pub trait Sink: Send + Sync + 'static {
    /// Writes `batch` in one transaction. On error nothing of the batch is committed.
    fn write(&self, batch: &Batch) -> impl Future<Output = Result<WriteReport, SinkError>> + Send;
}

/// The configured database, chosen by `DATABASE_URL`.
#[derive(Clone)]
pub enum Database {
    Postgres(postgres::PostgresSink),
    Sqlite(sqlite::SqliteSink),
}

impl Database {
    /// Connects to `cfg.database` (creating the SQLite file and its folder if missing).
    /// Does not migrate.
    pub async fn connect(cfg: &Config) -> Result<Self, SinkError> {
        match &cfg.database {
            DatabaseTarget::Postgres(url) => postgres::PostgresSink::connect(url, cfg)
                .await
                .map(Self::Postgres),
            DatabaseTarget::Sqlite(path) => sqlite::SqliteSink::open(path).await.map(Self::Sqlite),
        }
    }

    /// Connects, retrying transient failures (database not up yet) with capped backoff
    /// until `give_up_after`; permanent failures (bad password, unknown database) return at once.
    pub async fn connect_with_retry(
        cfg: &Config,
        give_up_after: Duration,
    ) -> Result<Self, SinkError> {
        let target = &cfg.database;
        let started = tokio::time::Instant::now();
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match Self::connect(cfg).await {
                Ok(db) => return Ok(db),
                Err(e) if e.kind == ErrorKind::Transient && started.elapsed() < give_up_after => {
                    let wait = backoff.next_delay();
                    tracing::warn!(database = %target.redacted(), error = %e, retry_in = ?wait, "database not reachable yet");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets up Supabase Realtime per `REALTIME_MODE` (PostgreSQL only; SQLite has none and
    /// says so once when a mode other than `off` is configured).
    pub async fn prepare_realtime(&self, cfg: &Config) -> Result<(), SinkError> {
        match self {
            Self::Postgres(s) => s.prepare_realtime().await,
            Self::Sqlite(_) => {
                if cfg.realtime_mode != crate::config::RealtimeMode::Off {
                    tracing::info!(
                        "REALTIME_MODE is ignored with SQLite (no Supabase Realtime): broadcast skipped"
                    );
                }
                Ok(())
            }
        }
    }

    /// Runs the embedded migrations of this database kind.
    pub async fn migrate(&self) -> Result<(), SinkError> {
        match self {
            Self::Postgres(s) => s.migrate().await,
            Self::Sqlite(s) => s.migrate().await,
        }
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        match self {
            Self::Postgres(s) => s.pool().close().await,
            Self::Sqlite(s) => s.pool().close().await,
        }
    }
}

impl Sink for Database {
    async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        match self {
            Self::Postgres(s) => s.write(batch).await,
            Self::Sqlite(s) => s.write(batch).await,
        }
    }
}
