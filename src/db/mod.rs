//! The database: the one home of every SQL statement, for PostgreSQL (Supabase) and the
//! embedded SQLite default. Batches of rows ([`Sink`]), stream gaps ([`stream_gaps`]), the indicator
//! warm start ([`warm_start`]), retention and size ([`postgres::partitions`], [`sqlite`]),
//! Realtime ([`postgres::realtime`], [`broadcast`]), the token table ([`tokens`]) and the
//! migrations of both engines ([`migrate`]).
//!
//! A [`Sink`] writes one [`Batch`] in one transaction, idempotently: quotes use
//! `ON CONFLICT DO NOTHING` on their natural key and candles are upserted, so a retried batch
//! never fails on rows that already went in. Every error says whether to retry
//! ([`ErrorKind`]) and what an operator should do.

pub mod backfill;
pub mod broadcast;
pub mod columns;
pub mod error;
pub mod migrate;
pub mod postgres;
pub mod quarantine;
pub mod sqlite;
pub mod stream_gaps;
pub mod tokens;
pub mod usage;
pub mod warm_start;
pub mod watchlist;

use std::future::Future;
use std::time::Duration;

pub use crate::schwab::session::gaps::StreamGap;
pub use error::{DbError, ErrorKind, SinkError};
/// The value types of `DATABASE_URL` and `REALTIME_MODE` (defined by the leaf settings crate,
/// which parses them).
pub use streamer_config::{DatabaseTarget, RealtimeMode};

use chrono::NaiveDate;

use crate::rows::Batch;

/// Where rows go and how the front end is fed (`DATABASE_URL`, `REALTIME_MODE`,
/// `REALTIME_TOPIC`, `REALTIME_INTERVAL`, the payload limit of `REALTIME_PLAN`).
#[derive(Debug, Clone, PartialEq)]
pub struct DbSettings {
    pub target: DatabaseTarget,
    pub realtime_mode: RealtimeMode,
    /// The public Broadcast topic.
    pub realtime_topic: String,
    /// The live cadence: at most one Realtime update per this long.
    pub realtime_interval: std::time::Duration,
    /// The largest payload of one Broadcast message (bytes); a larger update is split.
    pub realtime_max_payload_bytes: usize,
}

/// How long rows are kept, and how far ahead daily partitions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays {
    /// `TICK_RETENTION_DAYS`: whole UTC days of `equity_data` / `option_data`.
    pub ticks: u32,
    /// `BAR_RETENTION_DAYS`: days of `equity_bars`.
    pub bars: u32,
    /// `PARTITION_PREMAKE_DAYS` (PostgreSQL).
    pub partition_premake: u32,
}

/// The tables holding one row per update or snapshot, by `"timestamp"`: range-partitioned by
/// UTC day on PostgreSQL, kept `TICK_RETENTION_DAYS`, the first the size guard removes.
pub const TICK_TABLES: [&str; 7] = [
    "equity_data",
    "option_data",
    "futures_data",
    "futures_option_data",
    "forex_data",
    "book_snapshots",
    "screener_snapshots",
];

/// The candle tables, by `bar_start`: kept `BAR_RETENTION_DAYS`; the size guard removes
/// their oldest day once only today's ticks are left.
pub const CANDLE_TABLES: [&str; 2] = ["equity_bars", "futures_bars"];

/// `account_activity` is kept like the candles (`BAR_RETENTION_DAYS`, by `received_at`): an
/// order history is worth more than ticks. The size guard never removes it.
pub const ACCOUNT_ACTIVITY_RETENTION: (&str, &str) = ("account_activity", "received_at");

/// `SELECT (SELECT count(*) FROM t1 WHERE <cond>) + (…)` over the tick tables; `cond` may be
/// empty.
pub fn tick_count_sql(cond: &str) -> String {
    let parts: Vec<String> = TICK_TABLES
        .iter()
        .map(|t| {
            if cond.is_empty() {
                format!("(SELECT count(*) FROM {t})")
            } else {
                format!("(SELECT count(*) FROM {t} WHERE {cond})")
            }
        })
        .collect();
    parts.join(" + ")
}

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
    /// Rows by [`crate::rows::Table::index`].
    pub by_table: [u64; crate::counters::TABLES],
    /// The batch was found in `batch_ledger`: an earlier attempt (whose answer was lost, or
    /// before a crash) committed it, and nothing was written again.
    pub already_committed: bool,
    /// Quote rows written by binary `COPY` (PostgreSQL, large batches).
    pub copied_rows: u64,
}

impl WriteReport {
    /// The report of a committed `batch` (now, or by an earlier attempt).
    pub fn committed(batch: &Batch, inserted: u64, already_committed: bool) -> Self {
        Self {
            rows: batch.len() as u64,
            inserted,
            equities: batch.equities.len() as u64,
            options: batch.options.len() as u64,
            bars: batch.bars.len() as u64,
            by_table: batch.counts().map(|n| n as u64),
            already_committed,
            copied_rows: 0,
        }
    }
}

/// What the size guard did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GuardReport {
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Tick days removed, oldest first.
    pub days_dropped: Vec<NaiveDate>,
    pub partitions_dropped: u32,
    pub candles_deleted: u64,
    /// The database was read-only; the maintenance session overrode it to remove data.
    pub read_only: bool,
}

/// At most this many removal steps (a day each) per size-guard pass.
pub const GUARD_STEPS: usize = 400;

/// A database that commits batches.
pub trait Sink: Send + Sync + 'static {
    /// Writes `batch` in one transaction. On error nothing of the batch is committed.
    fn write(&self, batch: &Batch) -> impl Future<Output = Result<WriteReport, SinkError>> + Send;

    /// Stores rows the database rejected (the quarantine). Without a quarantine table (the
    /// default) it fails and the writer keeps them in a file instead.
    fn quarantine(
        &self,
        rows: &[quarantine::RejectedRow],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let n = rows.len();
        async move {
            Err(SinkError::new(
                format!("store {n} rejected row(s)"),
                DbError::Config("this sink has no quarantine table".into()),
            ))
        }
    }
}

/// The configured database, chosen by `DATABASE_URL`.
#[derive(Clone)]
pub enum Database {
    Postgres(postgres::PostgresSink),
    Sqlite(sqlite::SqliteSink),
}

impl Database {
    /// Connects to `settings.target` (creating the SQLite file and its folder if missing).
    /// Does not migrate.
    pub async fn connect(settings: &DbSettings) -> Result<Self, SinkError> {
        match &settings.target {
            DatabaseTarget::Postgres(url) => postgres::PostgresSink::connect(url, settings)
                .await
                .map(Self::Postgres),
            DatabaseTarget::Sqlite(path) => sqlite::SqliteSink::open(path).await.map(Self::Sqlite),
        }
    }

    /// Connects, retrying transient failures (database not up yet) with capped backoff
    /// until `give_up_after`; permanent failures (bad password, unknown database) return at once.
    pub async fn connect_with_retry(
        settings: &DbSettings,
        give_up_after: Duration,
    ) -> Result<Self, SinkError> {
        let target = &settings.target;
        let started = tokio::time::Instant::now();
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match Self::connect(settings).await {
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
    /// says so once when a mode other than `off` is configured), with counters nobody reads.
    pub async fn prepare_realtime(&self, mode: RealtimeMode) -> Result<(), SinkError> {
        self.prepare_realtime_with(mode, std::sync::Arc::default())
            .await
    }

    /// [`prepare_realtime`](Self::prepare_realtime), counting what the live cadence sends in
    /// `stats` (for `/health` and `/metrics`).
    pub async fn prepare_realtime_with(
        &self,
        mode: RealtimeMode,
        stats: std::sync::Arc<crate::counters::PipelineStats>,
    ) -> Result<(), SinkError> {
        match self {
            Self::Postgres(s) => s.prepare_realtime(stats).await,
            Self::Sqlite(_) => {
                if mode != RealtimeMode::Off {
                    tracing::info!(
                        "REALTIME_MODE is ignored with SQLite (no Supabase Realtime): broadcast skipped"
                    );
                }
                Ok(())
            }
        }
    }

    /// Runs the embedded migrations of this database kind ([`migrate`]).
    pub async fn migrate(&self) -> Result<migrate::MigrationReport, SinkError> {
        match self {
            Self::Postgres(s) => s.migrate().await,
            Self::Sqlite(s) => s.migrate().await,
        }
    }

    /// Closes the database connections.
    pub async fn close(&self) {
        match self {
            Self::Postgres(s) => s.close().await,
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

    async fn quarantine(&self, rows: &[quarantine::RejectedRow]) -> Result<(), SinkError> {
        quarantine::store(self, rows).await
    }
}
