//! Ingest into PostgreSQL: rows/s end to end through the real writer and sink for several
//! `BATCH_SIZE`s, against the database's own ceiling (`COPY` of the same rows from a file)
//! and a naive client (one autocommitted `INSERT` per row), all in the same run on the same
//! throwaway cluster; plus the sink's `UNNEST` insert against COPY into a staging table.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Postgres, Transaction};

use crate::batch::{OverflowPolicy, WriterSettings, spawn_writer};
use crate::rows::{Batch, EquityRow, Row, finite, time_from_ms};
use crate::sink::postgres::insert;
use crate::sink::{Database, SinkError};
use crate::stats::PipelineStats;
use crate::testkit::TestPostgres;

use super::csv::{EQUITY_COLUMNS, equity_columns, equity_csv, push_equity_line};
use super::{BenchError, bench_config, load_average};

/// Rows committed in some time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    pub rows: u64,
    pub elapsed: Duration,
}

impl Throughput {
    /// Rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// One run through the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterRun {
    pub batch_size: usize,
    pub throughput: Throughput,
    /// Transactions the writer committed.
    pub writes: u64,
}

/// The sink's equity insert against COPY into a staging table, at one batch size.
#[derive(Debug, Clone, Copy)]
pub struct StrategyRun {
    pub batch_size: usize,
    pub unnest: Throughput,
    pub copy_staging: Throughput,
}

/// Everything the ingest section measured.
#[derive(Debug, Clone)]
pub struct IngestResult {
    pub rows: u64,
    /// `COPY ... FROM 'file'` runs (one at the start, one at the end of the section).
    pub copy_file: Vec<Throughput>,
    /// `COPY ... FROM STDIN` of the same CSV over the client connection, one statement.
    pub copy_stdin: Throughput,
    pub writer: Vec<WriterRun>,
    /// One autocommitted `INSERT` per row, on a sample of the rows.
    pub naive: Throughput,
    pub strategies: Vec<StrategyRun>,
    /// 1-minute load average before and after the section.
    pub load: (f64, f64),
}

impl IngestResult {
    /// The mean of the `COPY` ceiling runs.
    pub fn copy_ceiling(&self) -> f64 {
        let n = self.copy_file.len().max(1) as f64;
        self.copy_file.iter().map(Throughput::rows_per_sec).sum::<f64>() / n
    }

    /// Rows/s of the writer run with `batch_size`.
    pub fn writer_rate(&self, batch_size: usize) -> Option<f64> {
        self.writer
            .iter()
            .find(|w| w.batch_size == batch_size)
            .map(|w| w.throughput.rows_per_sec())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    pub batch_sizes: Vec<usize>,
    pub naive_rows: usize,
    pub strategy_rows: usize,
    pub strategy_batch_sizes: Vec<usize>,
}

/// Runs the section on `pg` with `frames` (one `Vec` of equity rows per frame).
pub async fn run(
    pg: &TestPostgres,
    frames: &[Vec<Row>],
    plan: &IngestPlan,
) -> Result<IngestResult, BenchError> {
    let load_before = load_average();
    let rows: Vec<EquityRow> = super::session::equity_rows(frames);
    let csv_path = pg
        .data_dir()
        .parent()
        .unwrap_or(pg.data_dir())
        .join("bench-equity.csv");
    // The server reads this file as its own OS user: it lives in the cluster's folder.
    std::fs::write(&csv_path, equity_csv(&rows))
        .map_err(|e| BenchError::io(format!("cannot write {}", csv_path.display()), e))?;

    let mut copy_file = vec![copy_from_file(pg, &rows, &csv_path, "copy_file_1").await?];
    let copy_stdin = copy_from_stdin(pg, &rows, &csv_path).await?;
    let mut writer = Vec::new();
    for &batch_size in &plan.batch_sizes {
        writer.push(through_writer(pg, frames, &rows, batch_size).await?);
    }
    let naive = naive_inserts(pg, &rows[..plan.naive_rows.min(rows.len())]).await?;
    let mut strategies = Vec::new();
    let sample = &rows[..plan.strategy_rows.min(rows.len())];
    for &batch_size in &plan.strategy_batch_sizes {
        strategies.push(StrategyRun {
            batch_size,
            unnest: strategy(pg, sample, batch_size, Strategy::Unnest).await?,
            copy_staging: strategy(pg, sample, batch_size, Strategy::CopyStaging).await?,
        });
    }
    copy_file.push(copy_from_file(pg, &rows, &csv_path, "copy_file_2").await?);
    let _ = std::fs::remove_file(&csv_path);
    Ok(IngestResult {
        rows: rows.len() as u64,
        copy_file,
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
    let db = crate::app::open_database(&cfg).await?;
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
    pg.psql("postgres", &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))?;
    Ok(())
}

/// Checks that `equity_data` holds exactly `expected` rows: a benchmark that loses rows
/// would measure nothing.
async fn verify_rows(conn: &mut PgConnection, expected: usize, what: &str) -> Result<(), BenchError> {
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

/// The ceiling: the server reads the CSV file itself (`COPY ... FROM 'file'`), one statement.
async fn copy_from_file(
    pg: &TestPostgres,
    rows: &[EquityRow],
    csv_path: &Path,
    name: &str,
) -> Result<Throughput, BenchError> {
    let (_, mut conn) = fresh_database(pg, name, rows).await?;
    let path = csv_path.display().to_string().replace('\'', "''");
    let sql = format!("COPY equity_data ({EQUITY_COLUMNS}) FROM '{path}' WITH (FORMAT csv)");
    let started = Instant::now();
    // Audited: the column list is a constant and the path is our own, quotes doubled.
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|e| BenchError::sql("COPY from the CSV file", e))?;
    let elapsed = started.elapsed();
    verify_rows(&mut conn, rows.len(), "COPY FROM file").await?;
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
) -> Result<WriterRun, BenchError> {
    let name = format!("writer_batch_{batch_size}");
    let (url, mut conn) = fresh_database(pg, &name, rows).await?;
    let cfg = bench_config(
        &url,
        &[
            ("BATCH_SIZE", &batch_size.to_string()),
            ("BATCH_INTERVAL", "1"),
        ],
    )?;
    let db = Arc::new(Database::connect(&cfg).await?);
    // Owned copies made before the clock starts; the writer takes them as they come.
    let input: Vec<Vec<Row>> = frames.to_vec();
    let stats = Arc::new(PipelineStats::default());
    // A finite producer: the writer's full buffer makes it wait (Backpressure), nothing is
    // dropped or spooled.
    let settings = WriterSettings::from_config(&cfg, OverflowPolicy::Backpressure);
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
    verify_rows(&mut conn, rows.len(), &format!("writer BATCH_SIZE={batch_size}")).await?;
    let _ = conn.close().await;
    drop_database(pg, &name)?;
    Ok(WriterRun {
        batch_size,
        throughput: Throughput {
            rows: report.rows_written,
            elapsed,
        },
        writes: report.writes,
    })
}

/// The naive client: one `INSERT` per row, each its own transaction (autocommit), with a
/// prepared statement. Timed on `rows` (a sample) and extrapolated as rows/s.
async fn naive_inserts(pg: &TestPostgres, rows: &[EquityRow]) -> Result<Throughput, BenchError> {
    let name = "naive";
    let (_, mut conn) = fresh_database(pg, name, rows).await?;
    const SQL: &str = concat!(
        "INSERT INTO equity_data (",
        equity_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)"
    );
    let started = Instant::now();
    for r in rows {
        bind_row(sqlx::query(SQL), r)
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

/// How a batch's equity rows go in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// The sink's `INSERT ... SELECT FROM UNNEST($1::text[], ...) ON CONFLICT DO NOTHING`.
    Unnest,
    /// CSV `COPY` into a temporary table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
    CopyStaging,
}

/// One transaction per batch of `batch_size` rows: the equity insert by `strategy`, then
/// the sink's `latest_quotes` upsert (as every flush does), then commit.
async fn strategy(
    pg: &TestPostgres,
    rows: &[EquityRow],
    batch_size: usize,
    strategy: Strategy,
) -> Result<Throughput, BenchError> {
    let name = format!("strategy_{strategy:?}_{batch_size}").to_lowercase();
    let (_, mut conn) = fresh_database(pg, &name, rows).await?;
    if strategy == Strategy::CopyStaging {
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
            Strategy::Unnest => {
                insert::insert_equities(&mut tx, batch).await?;
            }
            Strategy::CopyStaging => copy_staging(&mut tx, batch).await?,
        }
        insert::upsert_latest_quotes(&mut tx, &batch.latest_equities()).await?;
        tx.commit()
            .await
            .map_err(|e| BenchError::sql("commit", e))?;
    }
    let elapsed = started.elapsed();
    verify_rows(&mut conn, rows.len(), &format!("{strategy:?} batches of {batch_size}")).await?;
    let _ = conn.close().await;
    drop_database(pg, &name)?;
    Ok(Throughput {
        rows: rows.len() as u64,
        elapsed,
    })
}

/// The COPY-into-staging insert of one batch (CSV encoding included in the cost).
async fn copy_staging(tx: &mut Transaction<'_, Postgres>, batch: &Batch) -> Result<(), SinkError> {
    let mut csv = String::with_capacity(batch.equities.len() * 320);
    batch
        .equities
        .iter()
        .for_each(|r| push_equity_line(&mut csv, r));
    let mut copy = (**tx)
        .copy_in_raw(&format!(
            "COPY equity_staging ({EQUITY_COLUMNS}) FROM STDIN WITH (FORMAT csv)"
        ))
        .await
        .map_err(|e| SinkError::new("start COPY into staging", e))?;
    copy.send(csv.as_bytes())
        .await
        .map_err(|e| SinkError::new("send COPY data", e))?;
    copy.finish()
        .await
        .map_err(|e| SinkError::new("finish COPY into staging", e))?;
    sqlx::query(concat!(
        "INSERT INTO equity_data (",
        equity_columns!(),
        ") SELECT ",
        equity_columns!(),
        " FROM equity_staging ON CONFLICT DO NOTHING"
    ))
    .execute(&mut **tx)
    .await
    .map_err(|e| SinkError::new("insert from staging", e))?;
    Ok(())
}
