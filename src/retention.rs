//! Retention and database sizing, run at startup and every `MAINTENANCE_INTERVAL`.
//!
//! PostgreSQL: daily partitions are created `PARTITION_PREMAKE_DAYS` ahead, tick partitions
//! older than `TICK_RETENTION_DAYS` are dropped (which frees space at once), candles older
//! than `BAR_RETENTION_DAYS` are deleted. SQLite: old rows are deleted in bounded chunks.
//! Both: the database size is measured and a warning is logged (and kept in the stats for
//! the health endpoint) when it reaches `DB_SIZE_WARN_PERCENT` of `DB_SIZE_LIMIT_MB`.
//!
//! The size guard runs first: at `DB_SIZE_GUARD_PERCENT` of the limit it removes the oldest
//! data (whole tick days, never today's; then the oldest candles) until the database is below
//! `DB_SIZE_GUARD_TARGET_PERCENT`, logging what it removed. It also works on a database that
//! has already turned read-only (Supabase Free past 500 MB), where nothing else can write.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use chrono::{Days, Utc};

use crate::counters::PipelineStats;
use crate::db::{Database, GuardReport, RetentionDays, SinkError};
use crate::storage_budget;

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
    /// `DB_SIZE_GUARD_PERCENT` and `DB_SIZE_GUARD_TARGET_PERCENT`: remove old data at the
    /// first share of the limit, down to the second.
    pub db_size_guard_percent: u8,
    pub db_size_guard_target_percent: u8,
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    pub partitions_created: u32,
    pub partitions_dropped: u32,
    pub rows_deleted: u64,
    pub database_bytes: u64,
    /// What the size guard removed (nothing when the database is below its threshold).
    pub guard: GuardReport,
}

/// `percent` of `limit` bytes.
fn share(limit: u64, percent: u8) -> u64 {
    limit / 100 * u64::from(percent)
}

/// The size guard (see the module docs). Its failure is logged, never fatal.
async fn guard(db: &Database, settings: &RetentionSettings) -> GuardReport {
    let limit = settings.db_size_limit_mb.saturating_mul(1024 * 1024);
    let act_at = share(limit, settings.db_size_guard_percent);
    let target = share(limit, settings.db_size_guard_target_percent);
    let today = Utc::now().date_naive();
    let result = match db {
        Database::Postgres(pg) => pg.guard_size(act_at, target, today).await,
        Database::Sqlite(lite) => lite.guard_size(act_at, target, today).await,
    };
    match result {
        Ok(g) => {
            if !g.days_dropped.is_empty() || g.candles_deleted > 0 {
                let days: Vec<String> = g.days_dropped.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    before_mb = g.bytes_before / (1024 * 1024),
                    after_mb = g.bytes_after / (1024 * 1024),
                    limit_mb = settings.db_size_limit_mb,
                    tick_days_removed = ?days,
                    candles_deleted = g.candles_deleted,
                    read_only = g.read_only,
                    "size guard: the database reached DB_SIZE_GUARD_PERCENT of DB_SIZE_LIMIT_MB; the oldest data was removed (lower TICK_RETENTION_DAYS or trim SYMBOLS so it does not have to)"
                );
            }
            if g.bytes_after >= act_at {
                tracing::error!(
                    size_mb = g.bytes_after / (1024 * 1024),
                    limit_mb = settings.db_size_limit_mb,
                    "size guard: nothing old is left to remove and the database is still at DB_SIZE_GUARD_PERCENT: raise DB_SIZE_LIMIT_MB (a bigger plan), trim SYMBOLS or OPTION_SYMBOLS"
                );
            }
            g
        }
        Err(e) => {
            tracing::warn!(error = %e, "size guard failed; trying again at the next MAINTENANCE_INTERVAL");
            GuardReport::default()
        }
    }
}

/// One maintenance pass.
pub async fn run_once(
    db: &Database,
    settings: &RetentionSettings,
    stats: &PipelineStats,
) -> Result<RetentionReport, SinkError> {
    let now = Utc::now();
    let guarded = guard(db, settings).await;
    let mut report = match db {
        Database::Postgres(pg) => {
            let m = pg.maintain(&settings.keep, now.date_naive()).await?;
            RetentionReport {
                partitions_created: m.partitions_created,
                partitions_dropped: m.partitions_dropped,
                rows_deleted: m.bars_deleted + m.ledger_deleted,
                database_bytes: m.database_bytes,
                ..RetentionReport::default()
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
    report.guard = guarded;
    stats.database_bytes.store(report.database_bytes, Relaxed);
    PipelineStats::stamp_now(&stats.database_measured_unix_ms);
    let limit = settings.db_size_limit_mb.saturating_mul(1024 * 1024);
    let warn_at = share(limit, settings.db_size_warn_percent);
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
    match crate::db::usage::tick_usage(db, now.date_naive()).await {
        Ok(usage) => {
            let b = storage_budget::budget(
                &usage,
                share(limit, settings.db_size_guard_percent),
                settings.keep.ticks,
            );
            if b.fits {
                tracing::info!(bytes_per_row = b.bytes_per_row, rows_per_day = b.rows_per_day, days_that_fit = ?b.days_that_fit, tick_retention_days = b.retention_days, "storage budget");
            } else {
                tracing::warn!(bytes_per_row = b.bytes_per_row, rows_per_day = b.rows_per_day, days_that_fit = ?b.days_that_fit, tick_retention_days = b.retention_days, "storage budget: TICK_RETENTION_DAYS does not fit under DB_SIZE_GUARD_PERCENT of DB_SIZE_LIMIT_MB at the measured rate, so the size guard will remove the oldest days; lower TICK_RETENTION_DAYS, trim SYMBOLS or OPTION_SYMBOLS, or raise DB_SIZE_LIMIT_MB (a bigger plan)");
            }
            stats.set_storage_budget(b);
        }
        Err(e) => tracing::warn!(error = %e, "could not measure the storage budget"),
    }
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
