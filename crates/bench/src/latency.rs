//! Latency: tick-to-commit at a paced, offered load with the default writer settings
//! (`BATCH_SIZE=1`, `BATCH_INTERVAL=1`, live overflow policy, disk spool on).
//!
//! Each load runs on loopback, and the WAN run puts a delay proxy (testkit) between the
//! writer and PostgreSQL, `one_way` each way, to count the round trips a flush costs (the
//! proxy counts the client's turns) next to its duration.
//!
//! A tick is the moment a frame reaches the processor; its rows are committed when the
//! sink's transaction holding them returns. A wrapping sink stamps every committed equity
//! row, so the writer needs no change: tick-to-commit = parse + merge + indicators +
//! channel + buffer + write + commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use market_streamer::counters::PipelineStats;
use market_streamer::db::{Database, Sink, SinkError, WriteReport};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::{Batch, Row};
use market_streamer::writer::{OverflowPolicy, spawn_writer};
use testkit::TestPostgres;
use testkit::proxy::DelayProxy;

use super::session::{self, Until};
use super::{BenchError, bench_config, load_average};

/// A row's identity: ticker, event ms, seq (the table's key).
type RowKey = (Arc<str>, i64, i32);

/// One offered load.
#[derive(Debug, Clone)]
pub struct LatencyRun {
    pub offered_per_sec: u64,
    pub duration: Duration,
    /// Equity rows offered and rows measured (committed).
    pub offered_rows: u64,
    pub measured_rows: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub writes: u64,
    pub batch_interval: Duration,
    /// The delay proxy's round trip (WAN run), `None` on loopback.
    pub rtt: Option<Duration>,
    /// Mean time of a committed write.
    pub flush_mean: Duration,
    /// Client turns (round trips waited for) per committed write, counted by the proxy
    /// (WAN run only).
    pub turns_per_flush: Option<f64>,
    /// 1-minute load average before and after.
    pub load: (f64, f64),
}

/// The database sink plus a stopwatch per row and per write.
struct StampingSink {
    db: Database,
    ticks: Mutex<HashMap<RowKey, Instant>>,
    samples: Mutex<Vec<Duration>>,
    /// Committed writes and their total time.
    flushes: Mutex<(u64, Duration)>,
}

impl Sink for StampingSink {
    async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        let started = Instant::now();
        let result = self.db.write(batch).await;
        if result.is_ok() {
            let committed = Instant::now();
            {
                let mut f = self.flushes.lock().unwrap_or_else(PoisonError::into_inner);
                f.0 += 1;
                f.1 += committed - started;
            }
            let mut ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
            let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
            for r in &batch.equities {
                let key = (r.ticker.clone(), r.timestamp.timestamp_millis(), r.seq);
                if let Some(tick) = ticks.remove(&key) {
                    samples.push(committed.saturating_duration_since(tick));
                }
            }
        }
        result
    }
}

/// Offers `offered_per_sec` updates per second (spread over `symbols`) for `duration`, in
/// real time, into a fresh database on `pg`; with `one_way`, through a proxy that delays
/// every packet that long in each direction.
pub async fn run(
    pg: &TestPostgres,
    symbols: &[String],
    offered_per_sec: u64,
    duration: Duration,
    spool_dir: &std::path::Path,
    one_way: Option<Duration>,
) -> Result<LatencyRun, BenchError> {
    let load_before = load_average();
    let name = match one_way {
        None => format!("latency_{offered_per_sec}"),
        Some(d) => format!("latency_{offered_per_sec}_wan_{}ms", d.as_millis()),
    };
    let url = pg.create_database(&name)?;
    let spool = spool_dir.join(&name).display().to_string();
    // The service's defaults (BATCH_SIZE=1, BATCH_INTERVAL=1, ...), only the spool moved.
    let cfg = bench_config(&url, &[("SPOOL_DIR", &spool)])?;
    let db = market_streamer::app::open_database(&cfg).await?;
    let stats = Arc::new(PipelineStats::default());
    // As at startup: today's partitions are made ahead by the retention pass.
    market_streamer::retention::run_once(&db, &market_streamer::settings::retention(&cfg), &stats)
        .await?;
    // The WAN run writes through the delay proxy (set up directly, as above, to save time).
    let proxy = match one_way {
        Some(delay) => Some(
            DelayProxy::start(pg.port(), delay)
                .await
                .map_err(|e| BenchError::io("cannot start the delay proxy", e))?,
        ),
        None => None,
    };
    let db = match &proxy {
        Some(p) => {
            db.close().await;
            let wan = bench_config(&p.url(&url, pg.port()), &[("SPOOL_DIR", &spool)])?;
            let db = Database::connect(&market_streamer::settings::database(&wan)).await?;
            market_streamer::retention::run_once(
                &db,
                &market_streamer::settings::retention(&wan),
                &stats,
            )
            .await?;
            db
        }
        None => db,
    };
    let turns_before = proxy.as_ref().map_or(0, DelayProxy::turns);

    let per_symbol = offered_per_sec as f64 / symbols.len().max(1) as f64;
    let start_ms = chrono::Utc::now().timestamp_millis();
    let sim = session::generate(
        symbols,
        per_symbol,
        start_ms,
        Until::Millis(duration.as_millis() as i64),
    )?;
    let mut processor = FrameProcessor::new(stats.clone(), sim.warm_engine());
    let sink = Arc::new(StampingSink {
        db,
        ticks: Mutex::new(HashMap::with_capacity(4096)),
        samples: Mutex::new(Vec::with_capacity(sim.updates as usize)),
        flushes: Mutex::new((0, Duration::ZERO)),
    });
    let writer = spawn_writer(
        sink.clone(),
        market_streamer::settings::writer(&cfg, OverflowPolicy::DropOldest),
        stats.clone(),
    );
    let mut offered_rows = 0u64;
    let t0 = Instant::now() + Duration::from_millis(100);
    for frame in &sim.frames {
        let due = t0 + Duration::from_millis((frame.at_ms - start_ms).max(0) as u64);
        tokio::time::sleep_until(due).await;
        let tick = Instant::now();
        let mut rows = Vec::new();
        processor.process_text(&frame.text, frame.at_ms, &mut rows);
        {
            let mut ticks = sink.ticks.lock().unwrap_or_else(PoisonError::into_inner);
            for row in &rows {
                if let Row::Equity(r) = row {
                    ticks.insert(
                        (r.ticker.clone(), r.timestamp.timestamp_millis(), r.seq),
                        tick,
                    );
                    offered_rows += 1;
                }
            }
        }
        if !rows.is_empty() && writer.tx.send(rows).await.is_err() {
            break; // the writer stopped; its error comes from the task below
        }
    }
    drop(writer.tx);
    let report = writer.task.await??;
    let turns = proxy.as_ref().map(|p| p.turns() - turns_before);
    sink.db.close().await;
    drop(proxy);
    pg.psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )?;

    let mut samples =
        std::mem::take(&mut *sink.samples.lock().unwrap_or_else(PoisonError::into_inner));
    samples.sort();
    let (flushes, flush_time) = *sink.flushes.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(LatencyRun {
        offered_per_sec,
        duration,
        offered_rows,
        measured_rows: samples.len() as u64,
        p50: percentile(&samples, 0.50),
        p99: percentile(&samples, 0.99),
        max: samples.last().copied().unwrap_or_default(),
        writes: report.writes,
        batch_interval: cfg.writer.batch_interval,
        rtt: one_way.map(|d| 2 * d),
        flush_mean: flush_time / u32::try_from(flushes.max(1)).unwrap_or(u32::MAX),
        turns_per_flush: turns.map(|t| t as f64 / flushes.max(1) as f64),
        load: (load_before, load_average()),
    })
}

/// The nearest-rank percentile of sorted `samples` (zero when empty).
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |v: u64| Duration::from_millis(v);
        let s: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&s, 0.50), ms(50));
        assert_eq!(percentile(&s, 0.99), ms(99));
        assert_eq!(percentile(&s, 1.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 0.99), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
