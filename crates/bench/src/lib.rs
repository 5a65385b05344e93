//! The benchmark (`cargo run --release -p bench`): throughput, latency and footprint, measured against the
//! database's own ceiling in the same run, written to `BENCHMARKS.md`.
//!
//! Sections (all on a deterministic simulated market of made-up tickers):
//! 1. [`hot_path`]: parse + merge + indicators per update on one thread.
//! 2. [`ingest`]: rows/s through the real writer and PostgreSQL sink for several
//!    `BATCH_SIZE`s, against `COPY` of the same rows from a file (the ceiling) and one
//!    autocommitted `INSERT` per row (naive), on a throwaway cluster with default
//!    durability (`fsync` on); large batches go by the writer's binary `COPY`.
//! 3. [`latency`]: tick-to-commit p50/p99/max at paced offered loads, default settings, on
//!    loopback and through a delay proxy (a WAN: round trips per flush).
//! 4. [`footprint`]: the binary itself on the zero-configuration path: peak RSS, CPU,
//!    time to the first committed row, binary size.
//!
//! The machine is usually shared, so every comparison is made within one run and reported
//! as a ratio, with the load average noted. Performance is never asserted in tests; the
//! `--quick` mode (small sizes) is run end to end by the test suite so the benchmark keeps
//! working.

pub mod csv;
mod error;
pub mod footprint;
pub mod hot_path;
pub mod ingest;
pub mod latency;
mod machine;
pub mod pg;
pub mod report;
pub mod session;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::BenchError;
pub use machine::{Machine, load_average};
pub use report::Report;

use market_streamer::rows::Row;
use market_streamer::settings::{self, Config};
use testkit::{PgOptions, TestPostgres};

/// Options of the benchmark.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Small sizes (about a minute in a debug build): checks that everything works; the
    /// figures are not representative and targets are not judged.
    pub quick: bool,
    /// The binary measured by the footprint section (default: `market-streamer` next to the
    /// running executable, i.e. in the same target folder).
    pub binary: Option<PathBuf>,
}

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub symbols: usize,
    /// Updates per symbol per second of the hot-path and ingest session (Schwab sends about 1).
    pub session_rate: f64,
    pub hot_updates: u64,
    pub hot_passes: usize,
    /// Equity rows loaded by each ingest measurement.
    pub ingest_rows: usize,
    pub ingest: ingest::IngestPlan,
    /// Offered loads (updates/s over all symbols) of the latency section.
    pub latency_loads: Vec<u64>,
    pub latency_duration: Duration,
    /// The WAN run: offered load and one-way delay of the proxy.
    pub wan_load: u64,
    pub wan_one_way: Duration,
    pub footprint_symbols: usize,
    pub footprint_rate: f64,
    pub footprint_window: Duration,
}

impl Plan {
    /// The sizes: 500 symbols, 200k rows (3 interleaved rounds), 1k and 10k
    /// updates/s for 20 s.
    pub fn full() -> Self {
        Self {
            quick: false,
            symbols: 500,
            session_rate: 1.0,
            hot_updates: 300_000,
            hot_passes: 5,
            ingest_rows: 200_000,
            ingest: ingest::IngestPlan {
                rounds: 3,
                batch_sizes: vec![5000, 1000, 100, 1],
                naive_rows: 5_000,
            },
            latency_loads: vec![1_000, 10_000],
            latency_duration: Duration::from_secs(20),
            wan_load: 1_000,
            wan_one_way: Duration::from_millis(10),
            footprint_symbols: 500,
            footprint_rate: 20.0,
            footprint_window: Duration::from_secs(20),
        }
    }

    /// Small sizes for the test suite.
    pub fn quick() -> Self {
        Self {
            quick: true,
            symbols: 50,
            session_rate: 1.0,
            hot_updates: 3_000,
            hot_passes: 1,
            ingest_rows: 2_000,
            ingest: ingest::IngestPlan {
                rounds: 1,
                batch_sizes: vec![1000, 100, 1],
                naive_rows: 200,
            },
            latency_loads: vec![200, 1_000],
            latency_duration: Duration::from_secs(2),
            wan_load: 200,
            wan_one_way: Duration::from_millis(10),
            footprint_symbols: 50,
            footprint_rate: 2.0,
            footprint_window: Duration::from_secs(2),
        }
    }
}

/// Runs every section and returns the report (print it, or write it with
/// [`Report::write_markdown`]). Progress goes to stderr.
pub async fn run(options: &BenchOptions) -> Result<Report, BenchError> {
    let plan = if options.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let load_start = load_average();
    let work = tempfile::Builder::new()
        .prefix("market-streamer-bench-")
        .tempdir()
        .map_err(|e| BenchError::io("cannot create a temporary folder", e))?;
    let symbols = session::tickers(plan.symbols);

    progress(&format!(
        "[1/4] hot path: generating {} updates of {} symbols",
        plan.hot_updates, plan.symbols
    ));
    let session = Arc::new(session::generate(
        &symbols,
        plan.session_rate,
        session::SESSION_START_MS,
        session::Until::Updates(plan.hot_updates.max(plan.ingest_rows as u64 * 21 / 20)),
    )?);
    let hot = {
        let session = session.clone();
        let passes = plan.hot_passes;
        tokio::task::spawn_blocking(move || hot_path::run(&session, passes)).await?
    };
    let ingest_frames = equity_frames(&session.rows(), plan.ingest_rows);
    drop(session);

    progress("[2/4] ingest: starting a throwaway PostgreSQL cluster (fsync on)");
    let pg = tokio::task::spawn_blocking(|| {
        TestPostgres::start_with(PgOptions {
            fsync: true,
            ..PgOptions::default()
        })
    })
    .await??;
    let postgres = pg.psql("postgres", "SHOW server_version")?;
    progress(&format!(
        "[2/4] ingest: {} rows per measurement (COPY from a file, COPY FROM STDIN, the writer at BATCH_SIZE {:?}, naive INSERT per row)",
        plan.ingest_rows, plan.ingest.batch_sizes
    ));
    let ingest = ingest::run(&pg, &ingest_frames, &plan.ingest).await?;
    drop(ingest_frames);

    let mut latency = Vec::new();
    for &load in &plan.latency_loads {
        progress(&format!(
            "[3/4] latency: {load} updates/s for {} s",
            plan.latency_duration.as_secs()
        ));
        latency.push(
            latency::run(
                &pg,
                &symbols,
                load,
                plan.latency_duration,
                work.path(),
                None,
            )
            .await?,
        );
    }
    progress(&format!(
        "[3/4] latency over a WAN: {} updates/s for {} s through a proxy adding {} ms each way",
        plan.wan_load,
        plan.latency_duration.as_secs(),
        plan.wan_one_way.as_millis()
    ));
    let wan = latency::run(
        &pg,
        &symbols,
        plan.wan_load,
        plan.latency_duration,
        work.path(),
        Some(plan.wan_one_way),
    )
    .await?;

    let binary = match &options.binary {
        Some(b) => b.clone(),
        None => service_binary()?,
    };
    let footprint_symbols = session::tickers(plan.footprint_symbols);
    progress(&format!(
        "[4/4] footprint: {} run, {} symbols at {} updates/s each for {} s",
        binary.display(),
        plan.footprint_symbols,
        plan.footprint_rate,
        plan.footprint_window.as_secs()
    ));
    let footprint = footprint::run(
        &pg,
        &binary,
        &footprint_symbols,
        plan.footprint_rate,
        plan.footprint_window,
        work.path(),
    )
    .await?;
    tokio::task::spawn_blocking(move || drop(pg)).await?;

    Ok(Report {
        machine: Machine::detect(postgres),
        plan,
        load: (load_start, load_average()),
        hot,
        ingest,
        latency,
        wan,
        footprint,
    })
}

/// The equity rows of the first frames, `Vec` per frame, until `limit` rows.
fn equity_frames(frames: &[Vec<Row>], limit: usize) -> Vec<Vec<Row>> {
    let mut out = Vec::new();
    let mut n = 0;
    for frame in frames {
        if n >= limit {
            break;
        }
        let rows: Vec<Row> = frame
            .iter()
            .filter(|r| matches!(r, Row::Equity(_)))
            .take(limit - n)
            .cloned()
            .collect();
        n += rows.len();
        if !rows.is_empty() {
            out.push(rows);
        }
    }
    out
}

/// A validated config for `database_url` with the service's defaults, no spool unless
/// `extra` sets one, and `extra`.
pub(crate) fn bench_config(
    database_url: &str,
    extra: &[(&str, &str)],
) -> Result<Config, BenchError> {
    let mut vars: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), database_url.into()),
        ("SPOOL_DIR".into(), "off".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    Ok(settings::from_lookup(|name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })?)
}

fn progress(msg: &str) {
    eprintln!("bench {msg}");
}

/// `market-streamer` in the folder of the running executable (cargo builds both there).
fn service_binary() -> Result<PathBuf, BenchError> {
    let exe = std::env::current_exe()
        .map_err(|e| BenchError::io("cannot find the running executable", e))?;
    let binary = exe.with_file_name("market-streamer");
    if binary.is_file() {
        return Ok(binary);
    }
    Err(BenchError::io(
        format!(
            "the footprint section runs the service binary, but {} is missing: build it first \
             (`cargo build --release` at the repository root)",
            binary.display()
        ),
        std::io::Error::from(std::io::ErrorKind::NotFound),
    ))
}
