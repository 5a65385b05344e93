//! Embedded SQLite sink: the zero-configuration default (`sqlite://data/market.db`).
//!
//! Multi-row `INSERT ... ON CONFLICT DO NOTHING` in chunks that stay under SQLite's bound
//! parameter limit, all in one transaction. WAL journal, so readers never block the writer.
//! Times are stored as ISO-8601 UTC text with milliseconds (`2026-01-02T15:00:00.000Z`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::columns::{
    ACCOUNT_ACTIVITY, BOOK_SNAPSHOTS, EQUITY_BARS, EQUITY_DATA, FOREX_DATA, FUTURES_BARS,
    FUTURES_DATA, FUTURES_OPTION_DATA, LATEST_QUOTES, OPTION_DATA, SCREENER_SNAPSHOTS, TableSpec,
    Value,
};
use super::migrate::MigrationReport;
use super::{ACCOUNT_ACTIVITY_RETENTION, CANDLE_TABLES, TICK_TABLES};
use super::{SinkError, WriteReport};
use crate::rows::Batch;

/// The ledger entry of a batch; nothing when the batch is already recorded.
const LEDGER_SQL: &str =
    "INSERT INTO batch_ledger (batch_id, row_count) VALUES (?, ?) ON CONFLICT DO NOTHING";

/// Rows per INSERT statement: at most 31 columns × 500 stays far below the 32766 parameter limit
/// (a test checks the widest table).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// Writes batches into a SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteSink {
    pool: SqlitePool,
}

/// The text form of a time in SQLite columns.
pub fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl SqliteSink {
    /// Opens (creating if missing) the database file and its parent folder.
    pub async fn open(path: &Path) -> Result<Self, SinkError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                SinkError::new(
                    format!("create folder {} for the SQLite file", dir.display()),
                    sqlx::Error::Io(e),
                )
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| SinkError::new("build SQLite options", e))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| SinkError::new(format!("open SQLite file {}", path.display()), e))?;
        Ok(Self { pool })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the embedded SQLite migrations ([`super::migrate`]).
    pub async fn migrate(&self) -> Result<MigrationReport, SinkError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| SinkError::new("open the SQLite file for migrations", e))?;
        super::migrate::sqlite(&mut conn).await
    }

    /// Writes one batch in one transaction.
    pub async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| SinkError::new("begin transaction", e))?;
        // The ledger first: a batch committed before (a crash between the commit and the
        // spool's bookkeeping) is recognised and not written again.
        let recorded = sqlx::query(LEDGER_SQL)
            .bind(batch.id.get())
            .bind(i64::try_from(batch.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(|e| SinkError::new("record the batch in batch_ledger", e))?
            .rows_affected();
        if recorded == 0 {
            tx.rollback()
                .await
                .map_err(|e| SinkError::new("roll back", e))?;
            return Ok(WriteReport::committed(batch, 0, true));
        }
        let mut inserted = 0;
        for chunk in batch.equities.chunks(ROWS_PER_STATEMENT) {
            inserted += write_rows(&mut tx, &EQUITY_DATA, chunk, "insert into equity_data").await?;
        }
        for chunk in batch.options.chunks(ROWS_PER_STATEMENT) {
            inserted += write_rows(&mut tx, &OPTION_DATA, chunk, "insert into option_data").await?;
        }
        for chunk in batch.latest_bars().chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().copied();
            write_rows(&mut tx, &EQUITY_BARS, rows, "upsert into equity_bars").await?;
        }
        inserted += write_market_tables(&mut tx, batch).await?;
        let latest = batch.latest_quotes();
        for chunk in latest.chunks(ROWS_PER_STATEMENT) {
            let rows = chunk.iter().map(AsRef::as_ref);
            write_rows(&mut tx, &LATEST_QUOTES, rows, "upsert into latest_quotes").await?;
        }
        tx.commit().await.map_err(|e| SinkError::new("commit", e))?;
        Ok(WriteReport::committed(batch, inserted, false))
    }
}

/// The tables of the futures, forex, book, screener and account activity services; returns
/// the rows newly inserted (candles are upserted and not counted, as for equities).
async fn write_market_tables(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    let mut inserted = 0;
    for chunk in batch.futures.chunks(ROWS_PER_STATEMENT) {
        inserted += write_rows(tx, &FUTURES_DATA, chunk, "insert into futures_data").await?;
    }
    for chunk in batch.futures_options.chunks(ROWS_PER_STATEMENT) {
        inserted += write_rows(
            tx,
            &FUTURES_OPTION_DATA,
            chunk,
            "insert into futures_option_data",
        )
        .await?;
    }
    for chunk in batch.forex.chunks(ROWS_PER_STATEMENT) {
        inserted += write_rows(tx, &FOREX_DATA, chunk, "insert into forex_data").await?;
    }
    for chunk in batch.latest_futures_bars().chunks(ROWS_PER_STATEMENT) {
        let rows = chunk.iter().copied();
        write_rows(tx, &FUTURES_BARS, rows, "upsert into futures_bars").await?;
    }
    for chunk in batch.books.chunks(ROWS_PER_STATEMENT) {
        inserted += write_rows(tx, &BOOK_SNAPSHOTS, chunk, "insert into book_snapshots").await?;
    }
    for chunk in batch.screeners.chunks(ROWS_PER_STATEMENT) {
        inserted += write_rows(
            tx,
            &SCREENER_SNAPSHOTS,
            chunk,
            "insert into screener_snapshots",
        )
        .await?;
    }
    for chunk in batch.account_activity.chunks(ROWS_PER_STATEMENT) {
        inserted +=
            write_rows(tx, &ACCOUNT_ACTIVITY, chunk, "insert into account_activity").await?;
    }
    Ok(inserted)
}

/// The oldest tick time over every tick table.
static OLDEST_TICK_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let parts: Vec<String> = TICK_TABLES
        .iter()
        .map(|t| format!("SELECT min(\"timestamp\") AS t FROM {t}"))
        .collect();
    format!("SELECT min(t) FROM ({})", parts.join(" UNION ALL "))
});

/// Rows deleted per statement by retention, so a big purge never holds the write lock long.
const DELETE_CHUNK: i64 = 5_000;

impl SqliteSink {
    /// Retention: deletes ticks older than `tick_cutoff` and candles older than `bar_cutoff`
    /// in bounded chunks; returns (rows deleted, database bytes).
    pub async fn maintain(
        &self,
        tick_cutoff: DateTime<Utc>,
        bar_cutoff: DateTime<Utc>,
    ) -> Result<(u64, u64), SinkError> {
        let mut deleted = 0;
        let ticks = TICK_TABLES.map(|t| (t, "\"timestamp\"", tick_cutoff));
        let candles = CANDLE_TABLES.map(|t| (t, "bar_start", bar_cutoff));
        let (account, received) = ACCOUNT_ACTIVITY_RETENTION;
        for (table, column, cutoff) in ticks.into_iter().chain(candles).chain([
            (account, received, bar_cutoff),
            // A batch can only come back while its rows are kept.
            ("batch_ledger", "committed_at", tick_cutoff),
            ("rejected_rows", "rejected_at", tick_cutoff),
        ]) {
            deleted += self
                .delete_before(table, column, sqlite_time(cutoff))
                .await?;
        }
        Ok((deleted, self.used_bytes().await?))
    }

    /// Bytes in use: the file's pages minus its free pages (space freed by deletes is reused
    /// before the file grows, so this is what counts against the limit).
    pub async fn used_bytes(&self) -> Result<u64, SinkError> {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT (page_count - freelist_count) * page_size \
             FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| SinkError::new("measure the SQLite file", e))?;
        Ok(bytes.max(0) as u64)
    }

    /// The size guard on SQLite: like PostgreSQL's ([`super::postgres::PostgresSink::guard_size`]),
    /// deleting the oldest day of ticks (never `today`), then of candles, in chunks, until the
    /// used size is below `target`; freed pages are given back when the file allows it
    /// (`PRAGMA incremental_vacuum`).
    pub async fn guard_size(
        &self,
        act_at: u64,
        target: u64,
        today: chrono::NaiveDate,
    ) -> Result<super::GuardReport, SinkError> {
        let mut report = super::GuardReport {
            bytes_before: self.used_bytes().await?,
            ..super::GuardReport::default()
        };
        report.bytes_after = report.bytes_before;
        if report.bytes_before < act_at {
            return Ok(report);
        }
        let day_start =
            |d: chrono::NaiveDate| sqlite_time(d.and_time(chrono::NaiveTime::MIN).and_utc());
        for _ in 0..super::GUARD_STEPS {
            if report.bytes_after < target {
                break;
            }
            let oldest: Option<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(OLDEST_TICK_SQL.as_str()))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| SinkError::new("find the oldest tick day", e))?;
            let oldest_day = oldest
                .as_deref()
                .and_then(|t| chrono::NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok())
                .filter(|d| *d < today);
            let (tables, cutoff): (Vec<(&str, &str)>, _) = match oldest_day {
                Some(day) => {
                    report.days_dropped.push(day);
                    (
                        TICK_TABLES.map(|t| (t, "\"timestamp\"")).to_vec(),
                        day.succ_opt().unwrap_or(day),
                    )
                }
                None => (CANDLE_TABLES.map(|t| (t, "bar_start")).to_vec(), today),
            };
            for (table, column) in tables {
                let n = self.delete_before(table, column, day_start(cutoff)).await?;
                if CANDLE_TABLES.contains(&table) {
                    report.candles_deleted += n;
                }
            }
            report.bytes_after = self.used_bytes().await?;
            if oldest_day.is_none() {
                break; // only today's ticks left, candles before today removed
            }
        }
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&self.pool)
            .await
            .map_err(|e| SinkError::new("give freed pages back", e))?;
        Ok(report)
    }

    /// Deletes rows of `table` with `column` before `cutoff` (stored text form), in chunks.
    async fn delete_before(
        &self,
        table: &str,
        column: &str,
        cutoff: String,
    ) -> Result<u64, SinkError> {
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ? LIMIT {DELETE_CHUNK})"
        );
        let mut deleted = 0;
        loop {
            let n = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&cutoff)
                .execute(&self.pool)
                .await
                .map_err(|e| SinkError::new(format!("delete old rows from {table}"), e))?
                .rows_affected();
            deleted += n;
            if n < DELETE_CHUNK as u64 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// SQLite's current time in the stored text form, for `updated_at`.
const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// One multi-row `INSERT INTO t (cols) VALUES (…), (…) ON CONFLICT …` of `spec` over `rows`,
/// generated from the table's column list ([`crate::db::columns`]).
pub(crate) async fn write_rows<'r, R: 'static>(
    tx: &mut Transaction<'_, Sqlite>,
    spec: &TableSpec<R>,
    rows: impl IntoIterator<Item = &'r R>,
    action: &str,
) -> Result<u64, SinkError> {
    let mut qb = QueryBuilder::<Sqlite>::new(format!("INSERT INTO {} ", spec.insert_target()));
    qb.push_values(rows, |mut b, r| {
        for column in &spec.columns {
            match (column.get)(r) {
                Value::Text(t) => b.push_bind(t),
                Value::Time(t) => b.push_bind(t.map(sqlite_time)),
                Value::Date(d) => b.push_bind(d.map(|d| d.format("%Y-%m-%d").to_string())),
                Value::Int4(n) => b.push_bind(n),
                Value::Int8(n) => b.push_bind(n),
                Value::Float8(x) => b.push_bind(x),
                Value::Json(j) => b.push_bind(j),
                Value::Bool(x) => b.push_bind(x),
            };
        }
    });
    qb.push(" ");
    qb.push(spec.conflict_clause(SQLITE_NOW));
    let result = qb
        .build()
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new(action, e))?;
    Ok(result.rows_affected())
}
