//! Retention and database sizing, run at startup and every `MAINTENANCE_INTERVAL`.
//!
//! PostgreSQL: daily partitions are created `PARTITION_PREMAKE_DAYS` ahead, tick partitions
//! older than `TICK_RETENTION_DAYS` are dropped (which frees space at once), candles older
//! than `BAR_RETENTION_DAYS` are deleted. SQLite: old rows are deleted in bounded chunks.
//! Both: the database size is measured and a warning is logged (and kept in the stats for
//! the health endpoint) when it reaches `DB_SIZE_WARN_PERCENT` of `DB_SIZE_LIMIT_MB`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use chrono::{Days, Utc};

use crate::counters::PipelineStats;
use crate::db::{Database, RetentionDays, SinkError};

/// When maintenance runs, what it keeps and the size budget it watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Days of ticks and candles kept, partitions made ahead.
    pub keep: RetentionDays,
    /// `MAINTENANCE_INTERVAL`: how often a pass runs.
    pub interval: std::time::Duration,
    /// `DB_SIZE_LIMIT_MB`: the database size to stay under.
    pub db_size_limit_mb: u64,
    /// `DB_SIZE_WARN_PERCENT`: warn at this share of the limit.
    pub db_size_warn_percent: u8,
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    pub partitions_created: u32,
    pub partitions_dropped: u32,
    pub rows_deleted: u64,
    pub database_bytes: u64,
}

/// One maintenance pass.
pub async fn run_once(
    db: &Database,
    settings: &RetentionSettings,
    stats: &PipelineStats,
) -> Result<RetentionReport, SinkError> {
    let now = Utc::now();
    let report = match db {
        Database::Postgres(pg) => {
            let m = pg.maintain(&settings.keep, now.date_naive()).await?;
            RetentionReport {
                partitions_created: m.partitions_created,
                partitions_dropped: m.partitions_dropped,
                rows_deleted: m.bars_deleted + m.ledger_deleted,
                database_bytes: m.database_bytes,
            }
        }
        Database::Sqlite(lite) => {
            let day_start = |days: u32| {
                now.date_naive()
                    .checked_sub_days(Days::new(u64::from(days)))
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc())
                    .unwrap_or(now)
            };
            let (rows_deleted, database_bytes) = lite
                .maintain(
                    day_start(settings.keep.ticks),
                    day_start(settings.keep.bars),
                )
                .await?;
            RetentionReport {
                rows_deleted,
                database_bytes,
                ..RetentionReport::default()
            }
        }
    };
    stats.database_bytes.store(report.database_bytes, Relaxed);
    PipelineStats::stamp_now(&stats.database_measured_unix_ms);
    let limit = settings.db_size_limit_mb.saturating_mul(1024 * 1024);
    let warn_at = limit / 100 * u64::from(settings.db_size_warn_percent);
    let near = report.database_bytes >= warn_at;
    stats.database_near_limit.store(near, Relaxed);
    if near {
        tracing::warn!(
            size_mb = report.database_bytes / (1024 * 1024),
            limit_mb = settings.db_size_limit_mb,
            "database is near DB_SIZE_LIMIT_MB (Supabase Free turns read-only past 500 MB): lower TICK_RETENTION_DAYS, trim SYMBOLS, or upgrade the plan"
        );
    }
    tracing::info!(?report, "retention pass done");
    Ok(report)
}

/// Runs a pass every `MAINTENANCE_INTERVAL` until aborted. Failures are logged and retried at
/// the next interval: retention must never stop streaming.
pub async fn run_every(db: Arc<Database>, settings: RetentionSettings, stats: Arc<PipelineStats>) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the startup pass already ran
    loop {
        tick.tick().await;
        if let Err(e) = run_once(&db, &settings, &stats).await {
            tracing::warn!(error = %e, "retention pass failed; trying again at the next MAINTENANCE_INTERVAL");
        }
    }
}
