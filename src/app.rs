//! What each command does, wired from the parts: open the database, start the writer,
//! run a source, drain, and report. The binary maps these to exit codes.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::{OverflowPolicy, WriterError, WriterReport, WriterSettings, spawn_writer};
use crate::config::Config;
use crate::indicators::warm_start::{self, WarmSymbols};
use crate::indicators::{BadPeriods, IndicatorEngine};
use crate::pipeline::FrameProcessor;
use crate::sink::{Database, SinkError};
use crate::source::replay::{ReplayCounts, ReplayError, replay_file};
use crate::source::simulated;
use crate::stats::PipelineStats;

/// How long startup waits for an unreachable database before giving up.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(60);

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Database(#[from] SinkError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("the writer task crashed ({0}); this is a bug, please report it with the log")]
    WriterCrashed(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Indicators(#[from] BadPeriods),
}

/// Connects to `DATABASE_URL` (waiting up to a minute for it to come up) and migrates it.
pub async fn open_database(cfg: &Config) -> Result<Database, AppError> {
    let db = Database::connect_with_retry(cfg, CONNECT_GIVE_UP).await?;
    db.migrate().await?;
    db.prepare_realtime(cfg).await?;
    tracing::info!(database = %cfg.database.redacted(), "database ready (migrations applied)");
    Ok(db)
}

/// `market-streamer migrate`.
pub async fn migrate(cfg: &Config) -> Result<(), AppError> {
    let db = open_database(cfg).await?;
    db.close().await;
    Ok(())
}

/// The indicator engine for `cfg`, warm-started from the database's latest bars of `symbols`
/// (see [`crate::indicators::warm_start`]). Call after migrations, before streaming.
pub async fn indicator_engine(
    cfg: &Config,
    db: &Database,
    symbols: WarmSymbols<'_>,
) -> Result<IndicatorEngine, AppError> {
    let mut engine = IndicatorEngine::new(cfg.indicators)?;
    let started = std::time::Instant::now();
    let warm = warm_start::load(db, &cfg.indicators, symbols).await?;
    warm.apply(&mut engine);
    if cfg.indicators.warm_start_bars > 0 {
        tracing::info!(
            symbols = warm.symbols.len(),
            bars = warm.bar_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "indicators warm-started from equity_data"
        );
    }
    Ok(engine)
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub counts: ReplayCounts,
    pub frames: u64,
    pub updates: u64,
    pub skipped_items: u64,
    pub writer: WriterReport,
    pub equity_rows: u64,
    pub option_rows: u64,
    pub bar_rows: u64,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replay done: {} lines, {} frames, {} updates, {} rows written (equity_data {}, option_data {}, equity_bars {}), {} lines skipped as malformed, {} items skipped",
            self.counts.lines,
            self.frames,
            self.updates,
            self.writer.rows_written,
            self.equity_rows,
            self.option_rows,
            self.bar_rows,
            self.counts.malformed_lines,
            self.skipped_items,
        )
    }
}

/// `market-streamer replay FILE`: returns once every row is committed.
pub async fn replay(cfg: &Config, path: &Path) -> Result<ReplaySummary, AppError> {
    let db = Arc::new(open_database(cfg).await?);
    let engine = indicator_engine(cfg, &db, WarmSymbols::AllInDatabase).await?;
    let stats = Arc::new(PipelineStats::default());
    let writer = spawn_writer(
        db.clone(),
        WriterSettings::from_config(cfg, OverflowPolicy::Backpressure),
        stats.clone(),
    );
    let mut processor = FrameProcessor::new(stats.clone(), engine);
    let read = replay_file(path, &mut processor, &writer.tx).await;
    drop(writer.tx);
    let written = writer.task.await?;
    db.close().await;
    // A writer error explains a read that stopped early, so it comes first.
    let report = written?;
    let counts = read?;
    Ok(ReplaySummary {
        counts,
        frames: PipelineStats::get(&stats.frames),
        updates: PipelineStats::get(&stats.updates),
        skipped_items: PipelineStats::get(&stats.skipped_items),
        writer: report,
        equity_rows: PipelineStats::get(&stats.equity_rows_written),
        option_rows: PipelineStats::get(&stats.option_rows_written),
        bar_rows: PipelineStats::get(&stats.bar_rows_written),
    })
}

/// What a streaming run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub updates: u64,
    pub writer: WriterReport,
}

/// `market-streamer run` on the simulated market: streams until `shutdown` resolves, then
/// drains the buffer into the database.
pub async fn run_simulated(
    cfg: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, AppError> {
    let db = Arc::new(open_database(cfg).await?);
    let engine = indicator_engine(cfg, &db, WarmSymbols::These(&cfg.symbols)).await?;
    let stats = Arc::new(PipelineStats::default());
    let writer = spawn_writer(
        db.clone(),
        WriterSettings::from_config(cfg, OverflowPolicy::DropOldest),
        stats.clone(),
    );
    let status = tokio::spawn(crate::status::report_every(
        stats.clone(),
        cfg.status_interval,
    ));
    if let Err(e) = crate::retention::run_once(&db, cfg, &stats).await {
        tracing::warn!(error = %e, "startup retention pass failed; it runs again every MAINTENANCE_INTERVAL");
    }
    let retention = tokio::spawn(crate::retention::run_every(
        db.clone(),
        cfg.clone(),
        stats.clone(),
    ));
    let mut processor = FrameProcessor::new(stats.clone(), engine);
    tracing::info!(
        symbols = %cfg.symbols.join(","),
        options = cfg.option_symbols.len(),
        batch_size = cfg.batch_size,
        batch_interval = ?cfg.batch_interval,
        "streaming the simulated market (Ctrl-C to stop)"
    );
    simulated::stream(cfg, &mut processor, &writer.tx, shutdown).await;
    drop(writer.tx);
    let written = writer.task.await?;
    status.abort();
    retention.abort();
    db.close().await;
    let report = written?;
    tracing::info!(
        rows_written = report.rows_written,
        rows_dropped = report.rows_dropped,
        "stopped: every buffered row was written"
    );
    Ok(RunSummary {
        updates: PipelineStats::get(&stats.updates),
        writer: report,
    })
}
