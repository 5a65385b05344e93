//! PostgreSQL sink (Supabase or any PostgreSQL 13+).
//!
//! One transaction per batch: quote inserts (`UNNEST` of column arrays, one statement per
//! table whatever the batch size), candle upserts, the `latest_quotes` upsert and, in
//! Broadcast mode, one `realtime.send`, all pipelined on one tokio-postgres connection so a
//! flush costs one round trip ([`insert::flush`], [`conn`]). Daily partitions the batch needs
//! are created first. Migrations, Realtime setup, partitions, retention and the other tables
//! still use a small sqlx pool.

pub mod conn;
pub mod copy;
pub mod insert;
pub mod partitions;
pub mod realtime;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::error::DbError;
use super::{DbSettings, RealtimeMode, RetentionDays, SinkError, WriteReport};
use crate::rows::Batch;
use partitions::{PartitionCache, TICK_TABLES};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Writes batches into PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresSink {
    pool: PgPool,
    shared: Arc<Shared>,
}

struct Shared {
    /// How the writer connection is made.
    connect: conn::ConnectSettings,
    /// The writer connection and its prepared statements; `None` after it failed.
    writer: tokio::sync::Mutex<Option<WriterConn>>,
    realtime_mode: RealtimeMode,
    realtime_topic: String,
    /// Set by [`PostgresSink::prepare_realtime`] when `realtime.send` exists.
    broadcast: AtomicBool,
    partitions: PartitionCache,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("connect", &self.connect)
            .field("realtime_mode", &self.realtime_mode)
            .field("realtime_topic", &self.realtime_topic)
            .field("broadcast", &self.broadcast)
            .finish_non_exhaustive()
    }
}

/// One tokio-postgres connection with the flush's statements prepared on it (at its first
/// flush: the service connects before it migrates).
struct WriterConn {
    client: tokio_postgres::Client,
    prepared: Option<insert::Prepared>,
    driver: tokio::task::AbortHandle,
}

impl WriterConn {
    async fn open(settings: &conn::ConnectSettings) -> Result<Self, SinkError> {
        let (client, driver) = settings.connect().await?;
        Ok(Self {
            client,
            prepared: None,
            driver,
        })
    }
}

impl Drop for WriterConn {
    /// Closes the socket even when the peer stopped answering.
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How long a flush may wait for the server's answers before the connection is given up:
/// the statement timeout plus as much again (at most 5 s) for the network.
fn flush_deadline(statement_timeout: Duration) -> Duration {
    statement_timeout + statement_timeout.min(Duration::from_secs(5))
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    pub partitions_created: u32,
    pub partitions_dropped: u32,
    pub bars_deleted: u64,
    pub database_bytes: u64,
}

impl PostgresSink {
    /// Connects to `url` (the PostgreSQL `settings.target`): the writer connection plus a
    /// small pool for everything else.
    pub async fn connect(url: &str, settings: &DbSettings) -> Result<Self, SinkError> {
        Self::connect_with(url, settings, conn::ConnectSettings::from_url(url)?).await
    }

    /// [`connect`](Self::connect) with explicit writer-connection settings (timeouts).
    pub async fn connect_with(
        url: &str,
        settings: &DbSettings,
        writer_settings: conn::ConnectSettings,
    ) -> Result<Self, SinkError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| SinkError::new("parse DATABASE_URL", e))?
            .application_name("market-streamer");
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| SinkError::new("connect to PostgreSQL", e))?;
        let writer = WriterConn::open(&writer_settings).await?;
        Ok(Self {
            pool,
            shared: Arc::new(Shared {
                connect: writer_settings,
                writer: tokio::sync::Mutex::new(Some(writer)),
                realtime_mode: settings.realtime_mode,
                realtime_topic: settings.realtime_topic.clone(),
                broadcast: AtomicBool::new(false),
                partitions: PartitionCache::default(),
            }),
        })
    }

    /// The connection pool (for migrations, health checks and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded PostgreSQL migrations.
    pub async fn migrate(&self) -> Result<(), SinkError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| SinkError::new("run PostgreSQL migrations", sqlx::Error::from(e)))
    }

    /// Sets up Realtime for `REALTIME_MODE` (publication membership, Broadcast availability).
    pub async fn prepare_realtime(&self) -> Result<(), SinkError> {
        let can_broadcast = realtime::prepare(&self.pool, self.shared.realtime_mode).await?;
        self.shared
            .broadcast
            .store(can_broadcast, Ordering::Relaxed);
        Ok(())
    }

    /// Whether each flush broadcasts (mode includes broadcast and `realtime.send` exists).
    pub fn broadcasts(&self) -> bool {
        self.shared.broadcast.load(Ordering::Relaxed)
    }

    /// Writes one batch in one transaction, pipelined on the writer connection (made again
    /// first when the last one failed).
    pub async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        self.shared
            .partitions
            .ensure_for_batch(&self.pool, batch)
            .await?;
        let mut slot = self.shared.writer.lock().await;
        if slot.as_ref().is_some_and(|w| w.client.is_closed()) {
            *slot = None;
        }
        let writer = match &mut *slot {
            Some(w) => w,
            None => slot.insert(WriterConn::open(&self.shared.connect).await?),
        };
        let broadcast = self.broadcasts().then_some(insert::Broadcast {
            topic: &self.shared.realtime_topic,
        });
        let deadline = flush_deadline(self.shared.connect.statement_timeout());
        let flush = async {
            let prepared = match &mut writer.prepared {
                Some(p) => p,
                None => writer
                    .prepared
                    .insert(insert::Prepared::new(&writer.client).await?),
            };
            insert::flush(&writer.client, prepared, batch, broadcast).await
        };
        let result = match tokio::time::timeout(deadline, flush).await {
            Ok(result) => result,
            Err(_) => Err(SinkError::new("write a batch", DbError::Timeout(deadline))),
        };
        // A server error leaves the connection usable (the transaction was rolled back);
        // anything else (timeout, I/O, closed), or a flush that left the connection out of
        // step, may leave it mid-transaction: drop it and connect again for the next write.
        let keep = match &result {
            Ok(_) => true,
            Err(e) => matches!(&e.source, DbError::Postgres(pg) if pg.as_db_error().is_some()),
        };
        let unusable = writer.prepared.as_ref().is_some_and(|p| p.unusable);
        if !keep || unusable || writer.client.is_closed() {
            *slot = None;
        }
        result.map(|flushed| WriteReport {
            copied_rows: flushed.copied_rows,
            ..WriteReport::committed(batch, flushed.inserted, flushed.already_committed)
        })
    }

    /// Retention and sizing: partitions for `today - 1 ..= today + premake`, drop tick
    /// partitions older than the retention, delete old candles, measure the database.
    pub async fn maintain(
        &self,
        keep: &RetentionDays,
        today: NaiveDate,
    ) -> Result<Maintenance, SinkError> {
        let mut report = Maintenance::default();
        let first = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        for offset in 0..=u64::from(keep.partition_premake) + 1 {
            let Some(day) = first.checked_add_days(Days::new(offset)) else {
                break;
            };
            for table in TICK_TABLES {
                if self
                    .shared
                    .partitions
                    .ensure(&self.pool, table, day)
                    .await?
                {
                    report.partitions_created += 1;
                }
            }
        }
        let tick_cutoff = today
            .checked_sub_days(Days::new(u64::from(keep.ticks)))
            .unwrap_or(today);
        for table in TICK_TABLES {
            report.partitions_dropped += partitions::drop_before(&self.pool, table, tick_cutoff)
                .await?
                .max(0) as u32;
        }
        if report.partitions_dropped > 0 {
            self.shared.partitions.clear();
        }
        let bar_cutoff = today
            .checked_sub_days(Days::new(u64::from(keep.bars)))
            .unwrap_or(today);
        report.bars_deleted = sqlx::query(
            "DELETE FROM equity_bars WHERE bar_start < $1::date::timestamp AT TIME ZONE 'UTC'",
        )
        .bind(bar_cutoff)
        .execute(&self.pool)
        .await
        .map_err(|e| SinkError::new("delete old equity_bars", e))?
        .rows_affected();
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| SinkError::new("measure the database size", e))?;
        report.database_bytes = bytes.max(0) as u64;
        Ok(report)
    }
}
