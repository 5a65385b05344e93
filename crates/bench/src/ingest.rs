//! Ingest into PostgreSQL: rows/s end to end through the real writer and sink for several
//! `BATCH_SIZE`s, against the database's own ceiling (`COPY` of the same rows from a file)
//! and a naive client (one autocommitted `INSERT` per row), all in the same run on the same
//! throwaway cluster; plus the sink's `UNNEST` insert against COPY into a staging table.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Postgres, Transaction};

use super::unnest_sqlx as insert;
use market_streamer::counters::PipelineStats;
use market_streamer::db::{Database, SinkError};
use market_streamer::rows::{Batch, EquityRow, Row, finite, time_from_ms};
use market_streamer::writer::{OverflowPolicy, spawn_writer};
use testkit::TestPostgres;

use super::copy_binary::{copy_equities, equity_copy_data};
use super::csv::{EQUITY_COLUMNS, equity_csv, push_equity_line};
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

/// How a batch's equity rows go in (the sink strategy comparison). Each is one transaction
/// per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The sink's flush: `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT DO NOTHING` + the
    /// `latest_quotes` upsert.
    Unnest,
    /// A candidate flush: binary `COPY` (no conflict handling: a sink would need a fallback)
    /// + the `latest_quotes` upsert (see [`super::copy_binary`]).
    CopyBinary,
    /// That `UNNEST` insert alone (what the `latest_quotes` upsert costs).
    UnnestOnly,
    /// CSV `COPY` into a temporary table, `INSERT ... SELECT ... ON CONFLICT DO NOTHING`,
    /// plus the `latest_quotes` upsert: the other candidate of the foundation issue.
    CopyStaging,
}

impl Strategy {
    /// A short description for the report.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unnest => {
                "**sink flush** (current): `INSERT ... UNNEST ... ON CONFLICT DO NOTHING` + `latest_quotes` upsert"
            }
            Self::CopyBinary => {
                "candidate: binary `COPY` (no conflict handling) + `latest_quotes` upsert"
            }
            Self::UnnestOnly => "that `UNNEST` insert alone",
            Self::CopyStaging => {
                "CSV `COPY` → temp table → `INSERT ... ON CONFLICT DO NOTHING` + `latest_quotes` upsert"
            }
        }
    }
}

/// One strategy at one batch size.
#[derive(Debug, Clone, Copy)]
pub struct StrategyRun {
    pub strategy: Strategy,
    pub batch_size: usize,
    pub throughput: Throughput,
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
    pub strategies: Vec<StrategyRun>,
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
    pub strategy_rows: usize,
    /// Each strategy with the batch sizes it runs at.
    pub strategies: Vec<(Strategy, Vec<usize>)>,
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
    std::fs::write(&csv_path, equity_csv(&rows))
        .map_err(|e| BenchError::io(format!("cannot write {}", csv_path.display()), e))?;
    let binary_path = folder.join("bench-equity.bin");
    std::fs::write(&binary_path, equity_copy_data(&rows))
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

    let sample = &rows[..plan.strategy_rows.min(rows.len())];
    let mut strategies = Vec::new();
    for (s, batch_sizes) in &plan.strategies {
        for &batch_size in batch_sizes {
            strategies.push(StrategyRun {
                strategy: *s,
                batch_size,
                throughput: strategy(pg, sample, batch_size, *s).await?,
            });
        }
    }
    Ok(IngestResult {
        rows: rows.len() as u64,
        rounds: plan.rounds.max(1),
        copy_file,
        copy_file_binary,
        copy_stdin,
        writer,
        naive,
        strategies,
        load: (load_before, load_average()),
    })
}

/// A fresh, migrated database with the day partitions of `rows`, and a connection to it.
async fn fresh_database(
    pg: &TestPostgres,
    name: &str,
    rows: &[EquityRow],
) -> Result<(String, PgConnection), BenchError> {
    let url = pg.create_database(name)?;
    let cfg = bench_config(&url, &[])?;
    let db = market_streamer::app::open_database(&cfg).await?;
    db.close().await;
    let mut conn = PgConnection::connect(&url)
        .await
        .map_err(|e| BenchError::sql(format!("connect to {name}"), e))?;
    let mut days: Vec<_> = rows.iter().map(|r| r.timestamp.date_naive()).collect();
    days.sort();
    days.dedup();
    for day in days {
        sqlx::query("SELECT market_admin.ensure_day_partition('equity_data'::regclass, $1)")
            .bind(day)
            .execute(&mut conn)
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
async fn verify_rows(
    conn: &mut PgConnection,
    expected: usize,
    what: &str,
) -> Result<(), BenchError> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM equity_data")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| BenchError::sql("count the rows", e))?;
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
    let (_, mut conn) = fresh_database(pg, name, rows).await?;
    let path = path.display().to_string().replace('\'', "''");
    let sql = format!("COPY equity_data ({EQUITY_COLUMNS}) FROM '{path}' WITH (FORMAT {format})");
    let started = Instant::now();
    // Audited: the column list is a constant and the path is our own, quotes doubled.
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| BenchError::sql("COPY from the file", e))?;
    let elapsed = started.elapsed();
    verify_rows(&mut conn, rows.len(), &format!("COPY FROM {format} file")).await?;
    let _ = conn.close().await;
    drop_database(pg, name)?;
    Ok(Throughput {
        rows: done.rows_affected(),
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
    let (_, mut conn) = fresh_database(pg, name, rows).await?;
    let data = std::fs::read(csv_path)
        .map_err(|e| BenchError::io(format!("cannot read {}", csv_path.display()), e))?;
    let sql = format!("COPY equity_data ({EQUITY_COLUMNS}) FROM STDIN WITH (FORMAT csv)");
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&sql)
        .await
        .map_err(|e| BenchError::sql("start COPY FROM STDIN", e))?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk)
            .await
            .map_err(|e| BenchError::sql("send COPY data", e))?;
    }
    let n = copy
        .finish()
        .await
        .map_err(|e| BenchError::sql("finish COPY FROM STDIN", e))?;
    let elapsed = started.elapsed();
    verify_rows(&mut conn, rows.len(), "COPY FROM STDIN").await?;
    let _ = conn.close().await;
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
    let (url, mut conn) = fresh_database(pg, &name, rows).await?;
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
        &mut conn,
        rows.len(),
        &format!("writer BATCH_SIZE={batch_size}"),
    )
    .await?;
    let _ = conn.close().await;
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
    let (_, mut conn) = fresh_database(pg, name, rows).await?;
    let placeholders: Vec<String> = (1..=31).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO equity_data ({EQUITY_COLUMNS}) VALUES ({})",
        placeholders.join(", ")
    );
    let started = Instant::now();
    for r in rows {
        // Audited: a constant column list and numbered placeholders.
        bind_row(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), r)
            .execute(&mut conn)
            .await
            .map_err(|e| BenchError::sql("naive INSERT", e))?;
    }
    let elapsed = started.elapsed();
    verify_rows(&mut conn, rows.len(), "naive INSERT").await?;
    let _ = conn.close().await;
    drop_database(pg, name)?;
    Ok(Throughput {
        rows: rows.len() as u64,
        elapsed,
    })
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds one row's 31 values in [`EQUITY_COLUMNS`] order.
fn bind_row<'q>(q: PgQuery<'q>, r: &'q EquityRow) -> PgQuery<'q> {
    let f = &r.quote;
    let t = |ms: Option<i64>| ms.and_then(time_from_ms);
    let mut q = q
        .bind(&*r.ticker)
        .bind(r.timestamp)
        .bind(r.seq)
        .bind(finite(f.last))
        .bind(f.total_volume)
        .bind(finite(f.bid))
        .bind(finite(f.ask))
        .bind(f.bid_size)
        .bind(f.ask_size)
        .bind(finite(f.mark))
        .bind(f.last_size)
        .bind(finite(f.high))
        .bind(finite(f.low))
        .bind(finite(f.open))
        .bind(finite(f.close))
        .bind(finite(f.net_change))
        .bind(finite(f.net_percent_change))
        .bind(t(f.quote_time_ms))
        .bind(t(f.trade_time_ms))
        .bind(f.security_status.as_deref());
    for v in r.indicators.to_array() {
        q = q.bind(finite(v));
    }
    q
}

/// One transaction per batch of `batch_size` rows, its rows loaded by `strategy`.
async fn strategy(
    pg: &TestPostgres,
    rows: &[EquityRow],
    batch_size: usize,
    strategy: Strategy,
) -> Result<Throughput, BenchError> {
    let name = format!("strategy_{strategy:?}_{batch_size}").to_lowercase();
    let (_, mut conn) = fresh_database(pg, &name, rows).await?;
    if strategy == Strategy::CopyStaging {
        // Created once per connection; emptied by every commit.
        sqlx::query(
            "CREATE TEMP TABLE equity_staging (LIKE equity_data INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
        )
        .execute(&mut conn)
        .await
        .map_err(|e| BenchError::sql("create the staging table", e))?;
    }
    let batches: Vec<Batch> = rows
        .chunks(batch_size.max(1))
        .map(|c| Batch {
            equities: c.to_vec(),
            ..Batch::default()
        })
        .collect();
    let started = Instant::now();
    for batch in &batches {
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| BenchError::sql("begin", e))?;
        match strategy {
            Strategy::CopyBinary => {
                copy_equities(&mut tx, batch).await?;
            }
            Strategy::UnnestOnly | Strategy::Unnest => {
                insert::insert_equities(&mut tx, batch).await?;
            }
            Strategy::CopyStaging => {
                copy_into(&mut tx, batch, "equity_staging").await?;
                // Audited: a constant column list.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO equity_data ({EQUITY_COLUMNS}) SELECT {EQUITY_COLUMNS} \
                     FROM equity_staging ON CONFLICT DO NOTHING"
                )))
                .execute(&mut *tx)
                .await
                .map_err(|e| BenchError::sql("insert from staging", e))?;
            }
        }
        if strategy != Strategy::UnnestOnly {
            insert::upsert_latest_quotes(&mut tx, &batch.latest_equities()).await?;
        }
        tx.commit()
            .await
            .map_err(|e| BenchError::sql("commit", e))?;
    }
    let elapsed = started.elapsed();
    verify_rows(
        &mut conn,
        rows.len(),
        &format!("{strategy:?} batches of {batch_size}"),
    )
    .await?;
    let _ = conn.close().await;
    drop_database(pg, &name)?;
    Ok(Throughput {
        rows: rows.len() as u64,
        elapsed,
    })
}

/// CSV `COPY ... FROM STDIN` of one batch into `table` (encoding included in the cost).
async fn copy_into(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
    table: &str,
) -> Result<(), SinkError> {
    let mut csv = String::with_capacity(batch.equities.len() * 320);
    batch
        .equities
        .iter()
        .for_each(|r| push_equity_line(&mut csv, r));
    let mut copy = (**tx)
        .copy_in_raw(&format!(
            "COPY {table} ({EQUITY_COLUMNS}) FROM STDIN WITH (FORMAT csv)"
        ))
        .await
        .map_err(|e| SinkError::new(format!("start COPY into {table}"), e))?;
    copy.send(csv.as_bytes())
        .await
        .map_err(|e| SinkError::new("send COPY data", e))?;
    copy.finish()
        .await
        .map_err(|e| SinkError::new(format!("finish COPY into {table}"), e))?;
    Ok(())
}
