//! Ingest into PostgreSQL: rows/s end to end through the real writer and sink for several
//! `BATCH_SIZE`s (large batches go by binary `COPY`, small ones by `UNNEST`), against the
//! database's own ceiling (`COPY` of the same rows from a file, CSV and binary) and a naive
//! client (one autocommitted `INSERT` per row), all in the same run on the same throwaway
//! cluster.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::types::ToSql;

use market_streamer::counters::PipelineStats;
use market_streamer::db::Database;
use market_streamer::db::columns::{EQUITY_DATA, Value};
use market_streamer::db::postgres::copy;
use market_streamer::rows::{EquityRow, Row};
use market_streamer::writer::{OverflowPolicy, spawn_writer};
use testkit::TestPostgres;

use super::csv::to_csv;
use super::pg::Conn;
use super::{BenchError, bench_config, load_average};

/// Rows committed in some time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    /// Rows committed.
    pub rows: u64,
    /// Wall time from the first row offered to the last commit.
    pub elapsed: Duration,
}

impl Throughput {
    /// Rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Repeated measurements of one method (rounds interleaved with the other methods, so a
/// change of machine load hits all of them alike).
#[derive(Debug, Clone, Default)]
pub struct Runs(pub Vec<Throughput>);

impl Runs {
    /// The median rows/s (the figure ratios use).
    pub fn median(&self) -> f64 {
        let mut r: Vec<f64> = self.0.iter().map(Throughput::rows_per_sec).collect();
        r.sort_by(f64::total_cmp);
        match r.len() {
            0 => 0.0,
            n if !n.is_multiple_of(2) => r[n / 2],
            n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
        }
    }

    /// Slowest and fastest rows/s.
    pub fn range(&self) -> (f64, f64) {
        let r = self.0.iter().map(Throughput::rows_per_sec);
        let min = r.clone().fold(f64::INFINITY, f64::min);
        let max = r.fold(0.0, f64::max);
        (if min.is_finite() { min } else { 0.0 }, max)
    }
}

/// The writer's runs at one batch size.
#[derive(Debug, Clone)]
pub struct WriterRuns {
    pub batch_size: usize,
    pub runs: Runs,
    /// Transactions the writer committed per run.
    pub writes: Vec<u64>,
}

/// Everything the ingest section measured.
#[derive(Debug, Clone)]
pub struct IngestResult {
    pub rows: u64,
    pub rounds: usize,
    /// `COPY ... FROM 'file'`: the server reads the CSV itself, one statement.
    pub copy_file: Runs,
    /// The same with the binary format (no text parsing on the server).
    pub copy_file_binary: Runs,
    /// `COPY ... FROM STDIN` of the same CSV over the client connection, one statement.
    pub copy_stdin: Runs,
    pub writer: Vec<WriterRuns>,
    /// One autocommitted `INSERT` per row, on a sample of the rows.
    pub naive: Throughput,
    /// 1-minute load average before and after the section.
    pub load: (f64, f64),
}

impl IngestResult {
    /// The `COPY` ceiling: the faster (median rows/s) of CSV and binary `COPY` from a file.
    pub fn copy_ceiling(&self) -> f64 {
        self.copy_file.median().max(self.copy_file_binary.median())
    }

    /// Median rows/s of the writer at `batch_size`.
    pub fn writer_rate(&self, batch_size: usize) -> Option<f64> {
        self.writer
            .iter()
            .find(|w| w.batch_size == batch_size)
            .map(|w| w.runs.median())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    /// Interleaved rounds of COPY, COPY FROM STDIN and the writer runs.
    pub rounds: usize,
    pub batch_sizes: Vec<usize>,
    pub naive_rows: usize,
}

/// One measurement of the interleaved rounds.
#[derive(Debug, Clone, Copy)]
enum Method {
    CopyFile,
    CopyFileBinary,
    CopyStdin,
    Writer(usize),
}

/// Runs the section on `pg` with `frames` (one `Vec` of equity rows per frame).
pub async fn run(
    pg: &TestPostgres,
    frames: &[Vec<Row>],
    plan: &IngestPlan,
) -> Result<IngestResult, BenchError> {
    let load_before = load_average();
    let rows: Vec<EquityRow> = super::session::equity_rows(frames);
    // The server reads these files as its own OS user: they live in the cluster's folder.
    let folder = pg.data_dir().parent().unwrap_or(pg.data_dir());
    let csv_path = folder.join("bench-equity.csv");
    std::fs::write(&csv_path, to_csv(&EQUITY_DATA, &rows))
        .map_err(|e| BenchError::io(format!("cannot write {}", csv_path.display()), e))?;
    let binary_path = folder.join("bench-equity.bin");
    std::fs::write(&binary_path, copy::encode(&EQUITY_DATA, rows.iter()))
        .map_err(|e| BenchError::io(format!("cannot write {}", binary_path.display()), e))?;

    let mut methods = vec![Method::CopyFile, Method::CopyFileBinary, Method::CopyStdin];
    methods.extend(plan.batch_sizes.iter().map(|&b| Method::Writer(b)));
    let mut copy_file = Runs::default();
    let mut copy_file_binary = Runs::default();
    let mut copy_stdin = Runs::default();
    let mut writer: Vec<WriterRuns> = plan
        .batch_sizes
        .iter()
        .map(|&batch_size| WriterRuns {
            batch_size,
            runs: Runs::default(),
            writes: Vec::new(),
        })
        .collect();
    for round in 0..plan.rounds.max(1) {
        // Rotated each round, so no method always runs first or last.
        for k in 0..methods.len() {
            match methods[(k + round) % methods.len()] {
                Method::CopyFile => {
                    copy_file
                        .0
                        .push(copy_from_file(pg, &rows, &csv_path, "csv").await?);
                }
                Method::CopyFileBinary => {
                    let t = copy_from_file(pg, &rows, &binary_path, "binary").await?;
                    copy_file_binary.0.push(t);
                }
                Method::CopyStdin => copy_stdin
                    .0
                    .push(copy_from_stdin(pg, &rows, &csv_path).await?),
                Method::Writer(batch_size) => {
                    let (t, writes) = through_writer(pg, frames, &rows, batch_size).await?;
                    if let Some(w) = writer.iter_mut().find(|w| w.batch_size == batch_size) {
                        w.runs.0.push(t);
                        w.writes.push(writes);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(&csv_path);
    let _ = std::fs::remove_file(&binary_path);
    let naive = naive_inserts(pg, &rows[..plan.naive_rows.min(rows.len())]).await?;
    Ok(IngestResult {
        rows: rows.len() as u64,
        rounds: plan.rounds.max(1),
        copy_file,
        copy_file_binary,
        copy_stdin,
        writer,
        naive,
        load: (load_before, load_average()),
    })
}

/// The `equity_data` columns, as `COPY` and `INSERT` name them.
fn equity_target() -> String {
    EQUITY_DATA.insert_target()
}

/// A fresh, migrated database with the day partitions of `rows`, and a connection to it.
async fn fresh_database(
    pg: &TestPostgres,
    name: &str,
    rows: &[EquityRow],
) -> Result<(String, Conn), BenchError> {
    let url = pg.create_database(name)?;
    let cfg = bench_config(&url, &[])?;
    let db = market_streamer::app::open_database(&cfg).await?;
    db.close().await;
    let conn = Conn::open(&url, name).await?;
    let mut days: Vec<_> = rows.iter().map(|r| r.timestamp.date_naive()).collect();
    days.sort();
    days.dedup();
    for day in days {
        conn.client
            .execute(
                "SELECT market_admin.ensure_day_partition('equity_data'::regclass, $1)",
                &[&day],
            )
            .await
            .map_err(|e| BenchError::sql("create the day partition", e))?;
    }
    Ok((url, conn))
}

/// Drops a benchmark database (frees its disk at once).
fn drop_database(pg: &TestPostgres, name: &str) -> Result<(), BenchError> {
    pg.psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )?;
    Ok(())
}

/// Checks that `equity_data` holds exactly `expected` rows: a benchmark that loses rows
/// would measure nothing.
async fn verify_rows(conn: &Conn, expected: usize, what: &str) -> Result<(), BenchError> {
    let n = conn.count("SELECT count(*) FROM equity_data").await?;
    if n != expected as i64 {
        return Err(BenchError::Check(format!(
            "{what}: equity_data holds {n} rows, expected {expected}"
        )));
    }
    Ok(())
}

/// The ceiling: the server reads the file itself (`COPY ... FROM 'file'`), one statement.
/// `format` is `csv` or `binary`.
async fn copy_from_file(
    pg: &TestPostgres,
    rows: &[EquityRow],
    path: &Path,
    format: &str,
) -> Result<Throughput, BenchError> {
    let name = format!("copy_file_{format}");
    let name = name.as_str();
    let (_, conn) = fresh_database(pg, name, rows).await?;
    let path = path.display().to_string().replace('\'', "''");
    let sql = format!(
        "COPY {} FROM '{path}' WITH (FORMAT {format})",
        equity_target()
    );
    let started = Instant::now();
    let done = conn
        .client
        .execute(&sql, &[])
        .await
        .map_err(|e| BenchError::sql("COPY from the file", e))?;
    let elapsed = started.elapsed();
    verify_rows(&conn, rows.len(), &format!("COPY FROM {format} file")).await?;
    drop(conn);
    drop_database(pg, name)?;
    Ok(Throughput {
        rows: done,
        elapsed,
    })
}

/// `COPY ... FROM STDIN` of the same (pre-encoded) CSV over the client connection.
async fn copy_from_stdin(
    pg: &TestPostgres,
    rows: &[EquityRow],
    csv_path: &Path,
) -> Result<Throughput, BenchError> {
    let name = "copy_stdin";
    let (_, conn) = fresh_database(pg, name, rows).await?;
    let data = std::fs::read(csv_path)
        .map_err(|e| BenchError::io(format!("cannot read {}", csv_path.display()), e))?;
    let sql = format!("COPY {} FROM STDIN WITH (FORMAT csv)", equity_target());
    let started = Instant::now();
    let sink = conn
        .client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(|e| BenchError::sql("start COPY FROM STDIN", e))?;
    let mut sink = Box::pin(sink);
    for chunk in data.chunks(1 << 20) {
        sink.send(Bytes::copy_from_slice(chunk))
            .await
            .map_err(|e| BenchError::sql("send COPY data", e))?;
    }
    let n = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| BenchError::sql("finish COPY FROM STDIN", e))?;
    let elapsed = started.elapsed();
    verify_rows(&conn, rows.len(), "COPY FROM STDIN").await?;
    drop(conn);
    drop_database(pg, name)?;
    Ok(Throughput { rows: n, elapsed })
}

/// End to end: the real writer task and PostgreSQL sink, the producer offering every frame's
/// rows as fast as the writer's channel takes them; timed until the writer has drained.
async fn through_writer(
    pg: &TestPostgres,
    frames: &[Vec<Row>],
    rows: &[EquityRow],
    batch_size: usize,
) -> Result<(Throughput, u64), BenchError> {
    let name = format!("writer_batch_{batch_size}");
    let (url, conn) = fresh_database(pg, &name, rows).await?;
    let cfg = bench_config(
        &url,
        &[
            ("BATCH_SIZE", &batch_size.to_string()),
            ("BATCH_INTERVAL", "1"),
        ],
    )?;
    let db = Arc::new(Database::connect(&market_streamer::settings::database(&cfg)).await?);
    // Owned copies made before the clock starts; the writer takes them as they come.
    let input: Vec<Vec<Row>> = frames.to_vec();
    let stats = Arc::new(PipelineStats::default());
    // A finite producer: the writer's full buffer makes it wait (Backpressure), nothing is
    // dropped or spooled.
    let settings = market_streamer::settings::writer(&cfg, OverflowPolicy::Backpressure);
    let started = Instant::now();
    let writer = spawn_writer(db.clone(), settings, stats);
    for rows in input {
        if writer.tx.send(rows).await.is_err() {
            break; // the writer stopped; its error comes from the task below
        }
    }
    drop(writer.tx);
    let report = writer.task.await??;
    let elapsed = started.elapsed();
    db.close().await;
    verify_rows(
        &conn,
        rows.len(),
        &format!("writer BATCH_SIZE={batch_size}"),
    )
    .await?;
    drop(conn);
    drop_database(pg, &name)?;
    Ok((
        Throughput {
            rows: report.rows_written,
            elapsed,
        },
        report.writes,
    ))
}

/// The naive client: one `INSERT` per row, each its own transaction (autocommit), with a
/// prepared statement. Timed on `rows` (a sample) and extrapolated as rows/s.
async fn naive_inserts(pg: &TestPostgres, rows: &[EquityRow]) -> Result<Throughput, BenchError> {
    let name = "naive";
    let (_, conn) = fresh_database(pg, name, rows).await?;
    let placeholders: Vec<String> = (1..=EQUITY_DATA.columns.len())
        .map(|i| format!("${i}"))
        .collect();
    let sql = format!(
        "INSERT INTO {} VALUES ({})",
        equity_target(),
        placeholders.join(", ")
    );
    let statement = conn
        .client
        .prepare(&sql)
        .await
        .map_err(|e| BenchError::sql("prepare the naive INSERT", e))?;
    let started = Instant::now();
    for r in rows {
        let values = row_values(r);
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        conn.client
            .execute(&statement, &params)
            .await
            .map_err(|e| BenchError::sql("naive INSERT", e))?;
    }
    let elapsed = started.elapsed();
    verify_rows(&conn, rows.len(), "naive INSERT").await?;
    drop(conn);
    drop_database(pg, name)?;
    Ok(Throughput {
        rows: rows.len() as u64,
        elapsed,
    })
}

/// One row's values in column order, as the naive client binds them.
fn row_values(r: &EquityRow) -> Vec<Box<dyn ToSql + Sync + '_>> {
    EQUITY_DATA
        .columns
        .iter()
        .map(|c| -> Box<dyn ToSql + Sync + '_> {
            match (c.get)(r) {
                Value::Text(v) => Box::new(v),
                Value::Time(v) => Box::new(v),
                Value::Date(v) => Box::new(v),
                Value::Int4(v) => Box::new(v),
                Value::Int8(v) => Box::new(v),
                Value::Float8(v) => Box::new(v),
                Value::Bool(v) => Box::new(v),
                // EQUITY_DATA has no JSON column; bound as text if one ever came.
                Value::Json(v) => Box::new(v),
            }
        })
        .collect()
}
