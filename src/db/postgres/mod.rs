//! PostgreSQL sink (Supabase or any PostgreSQL 13+).
//!
//! One transaction per batch: quote inserts (`UNNEST` of column arrays, one statement per
//! table whatever the batch size), candle upserts, the `latest_quotes` upsert and, in
//! Broadcast mode, one `realtime.send`. Daily partitions the batch needs are created first.

pub mod insert;
pub mod partitions;
pub mod realtime;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

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

#[derive(Debug)]
struct Shared {
    realtime_mode: RealtimeMode,
    realtime_topic: String,
    /// Set by [`PostgresSink::prepare_realtime`] when `realtime.send` exists.
    broadcast: AtomicBool,
    partitions: PartitionCache,
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
    /// Connects to `url` (the PostgreSQL `settings.target`), one writer connection plus spares.
    pub async fn connect(url: &str, settings: &DbSettings) -> Result<Self, SinkError> {
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
        Ok(Self {
            pool,
            shared: Arc::new(Shared {
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

    /// Writes one batch in one transaction.
    pub async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        self.shared
            .partitions
            .ensure_for_batch(&self.pool, batch)
            .await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| SinkError::new("begin transaction", e))?;
        let equities = insert::insert_equities(&mut tx, batch).await?;
        let options = insert::insert_options(&mut tx, batch).await?;
        insert::upsert_bars(&mut tx, batch).await?;
        let latest = batch.latest_equities();
        insert::upsert_latest_quotes(&mut tx, &latest).await?;
        if self.broadcasts() && !latest.is_empty() {
            // realtime.send turns its own errors into warnings, so it never aborts the flush.
            sqlx::query("SELECT realtime.send($1, $2, $3, false)")
                .bind(super::broadcast::quotes_payload(&latest))
                .bind(super::broadcast::QUOTES_EVENT)
                .bind(&self.shared.realtime_topic)
                .execute(&mut *tx)
                .await
                .map_err(|e| SinkError::new("broadcast with realtime.send", e))?;
        }
        tx.commit().await.map_err(|e| SinkError::new("commit", e))?;
        Ok(WriteReport {
            rows: batch.len() as u64,
            inserted: equities + options,
            equities: batch.equities.len() as u64,
            options: batch.options.len() as u64,
            bars: batch.bars.len() as u64,
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
