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

use super::{SinkError, WriteReport};
use crate::rows::{Batch, finite, time_from_ms};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per INSERT statement: at most 31 columns × 500 stays far below the 32766 parameter limit.
const ROWS_PER_STATEMENT: usize = 500;

/// Writes batches into a SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteSink {
    pool: SqlitePool,
}

/// The text form of a time in SQLite columns.
pub fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn sqlite_time_ms(ms: Option<i64>) -> Option<String> {
    ms.and_then(time_from_ms).map(sqlite_time)
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

    /// Applies the embedded SQLite migrations.
    pub async fn migrate(&self) -> Result<(), SinkError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| SinkError::new("run SQLite migrations", sqlx::Error::from(e)))
    }

    /// Writes one batch in one transaction.
    pub async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| SinkError::new("begin transaction", e))?;
        let mut inserted = 0;
        for chunk in batch.equities.chunks(ROWS_PER_STATEMENT) {
            inserted += insert_equities(&mut tx, chunk).await?;
        }
        for chunk in batch.options.chunks(ROWS_PER_STATEMENT) {
            inserted += insert_options(&mut tx, chunk).await?;
        }
        if !batch.bars.is_empty() {
            let mut deduped = Batch {
                bars: batch.bars.clone(),
                ..Batch::default()
            };
            deduped.dedup_bars();
            for chunk in deduped.bars.chunks(ROWS_PER_STATEMENT) {
                upsert_bars(&mut tx, chunk).await?;
            }
        }
        let latest = batch.latest_equities();
        for chunk in latest.chunks(ROWS_PER_STATEMENT) {
            upsert_latest_quotes(&mut tx, chunk).await?;
        }
        tx.commit().await.map_err(|e| SinkError::new("commit", e))?;
        Ok(WriteReport {
            rows: batch.len() as u64,
            inserted,
            equities: batch.equities.len() as u64,
            options: batch.options.len() as u64,
            bars: batch.bars.len() as u64,
        })
    }
}

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
        for (table, column, cutoff) in [
            ("equity_data", "\"timestamp\"", tick_cutoff),
            ("option_data", "\"timestamp\"", tick_cutoff),
            ("equity_bars", "bar_start", bar_cutoff),
        ] {
            let sql = format!(
                "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ? LIMIT {DELETE_CHUNK})"
            );
            loop {
                let n = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(sqlite_time(cutoff))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| SinkError::new(format!("delete old rows from {table}"), e))?
                    .rows_affected();
                deleted += n;
                if n < DELETE_CHUNK as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        let bytes: i64 = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| SinkError::new("measure the SQLite file", e))?;
        Ok((deleted, bytes.max(0) as u64))
    }
}

async fn upsert_latest_quotes(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[&crate::rows::EquityRow],
) -> Result<u64, SinkError> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        r#"INSERT INTO latest_quotes (ticker, "timestamp", price, volume, bid, ask, bid_size, ask_size,
           mark, high, low, open, close, net_change, net_percent_change, security_status,
           sma, ema_fast, ema_slow, rsi, macd, macd_signal, macd_hist, bb_upper, bb_middle, bb_lower, vwap) "#,
    );
    qb.push_values(rows, |mut b, r| {
        let f = &r.quote;
        b.push_bind(&*r.ticker)
            .push_bind(sqlite_time(r.timestamp))
            .push_bind(finite(f.last))
            .push_bind(f.total_volume)
            .push_bind(finite(f.bid))
            .push_bind(finite(f.ask))
            .push_bind(f.bid_size)
            .push_bind(f.ask_size)
            .push_bind(finite(f.mark))
            .push_bind(finite(f.high))
            .push_bind(finite(f.low))
            .push_bind(finite(f.open))
            .push_bind(finite(f.close))
            .push_bind(finite(f.net_change))
            .push_bind(finite(f.net_percent_change))
            .push_bind(f.security_status.as_deref());
        for v in r.indicators.to_array() {
            b.push_bind(finite(v));
        }
    });
    qb.push(
        r#" ON CONFLICT (ticker) DO UPDATE SET "timestamp" = excluded."timestamp", price = excluded.price,
           volume = excluded.volume, bid = excluded.bid, ask = excluded.ask, bid_size = excluded.bid_size,
           ask_size = excluded.ask_size, mark = excluded.mark, high = excluded.high, low = excluded.low,
           open = excluded.open, close = excluded.close, net_change = excluded.net_change,
           net_percent_change = excluded.net_percent_change, security_status = excluded.security_status,
           sma = excluded.sma, ema_fast = excluded.ema_fast, ema_slow = excluded.ema_slow, rsi = excluded.rsi,
           macd = excluded.macd, macd_signal = excluded.macd_signal, macd_hist = excluded.macd_hist,
           bb_upper = excluded.bb_upper, bb_middle = excluded.bb_middle, bb_lower = excluded.bb_lower,
           vwap = excluded.vwap, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
           WHERE latest_quotes."timestamp" <= excluded."timestamp""#,
    );
    let result = qb
        .build()
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new("upsert into latest_quotes", e))?;
    Ok(result.rows_affected())
}

async fn insert_equities(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[crate::rows::EquityRow],
) -> Result<u64, SinkError> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        r#"INSERT INTO equity_data (ticker, "timestamp", seq, price, volume, bid, ask, bid_size, ask_size,
           mark, last_size, high, low, open, close, net_change, net_percent_change,
           quote_time, trade_time, security_status,
           sma, ema_fast, ema_slow, rsi, macd, macd_signal, macd_hist,
           bb_upper, bb_middle, bb_lower, vwap) "#,
    );
    qb.push_values(rows, |mut b, r| {
        let f = &r.quote;
        b.push_bind(&*r.ticker)
            .push_bind(sqlite_time(r.timestamp))
            .push_bind(r.seq)
            .push_bind(finite(f.last))
            .push_bind(f.total_volume)
            .push_bind(finite(f.bid))
            .push_bind(finite(f.ask))
            .push_bind(f.bid_size)
            .push_bind(f.ask_size)
            .push_bind(finite(f.mark))
            .push_bind(f.last_size)
            .push_bind(finite(f.high))
            .push_bind(finite(f.low))
            .push_bind(finite(f.open))
            .push_bind(finite(f.close))
            .push_bind(finite(f.net_change))
            .push_bind(finite(f.net_percent_change))
            .push_bind(sqlite_time_ms(f.quote_time_ms))
            .push_bind(sqlite_time_ms(f.trade_time_ms))
            .push_bind(f.security_status.as_deref());
        for v in r.indicators.to_array() {
            b.push_bind(finite(v));
        }
    });
    qb.push(" ON CONFLICT DO NOTHING");
    let result = qb
        .build()
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new("insert into equity_data", e))?;
    Ok(result.rows_affected())
}

async fn insert_options(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[crate::rows::OptionRow],
) -> Result<u64, SinkError> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        r#"INSERT INTO option_data (symbol, underlying, expiration, strike, contract_type, "timestamp", seq,
           bid, ask, price, mark, volume, open_interest, implied_volatility,
           delta, gamma, theta, vega, rho, underlying_price,
           high, low, close, bid_size, ask_size, net_change, time_value, theoretical_value,
           days_to_expiration, quote_time, trade_time) "#,
    );
    qb.push_values(rows, |mut b, r| {
        let f = &r.quote;
        b.push_bind(&*r.symbol)
            .push_bind(&*r.contract.underlying)
            .push_bind(r.contract.expiration.format("%Y-%m-%d").to_string())
            .push_bind(r.contract.strike)
            .push_bind(r.contract.contract_type.as_str())
            .push_bind(sqlite_time(r.timestamp))
            .push_bind(r.seq)
            .push_bind(finite(f.bid))
            .push_bind(finite(f.ask))
            .push_bind(finite(f.last))
            .push_bind(finite(f.mark))
            .push_bind(f.total_volume)
            .push_bind(f.open_interest)
            .push_bind(finite(f.volatility))
            .push_bind(finite(f.delta))
            .push_bind(finite(f.gamma))
            .push_bind(finite(f.theta))
            .push_bind(finite(f.vega))
            .push_bind(finite(f.rho))
            .push_bind(finite(f.underlying_price))
            .push_bind(finite(f.high))
            .push_bind(finite(f.low))
            .push_bind(finite(f.close))
            .push_bind(f.bid_size)
            .push_bind(f.ask_size)
            .push_bind(finite(f.net_change))
            .push_bind(finite(f.time_value))
            .push_bind(finite(f.theoretical_value))
            .push_bind(f.days_to_expiration)
            .push_bind(sqlite_time_ms(f.quote_time_ms))
            .push_bind(sqlite_time_ms(f.trade_time_ms));
    });
    qb.push(" ON CONFLICT DO NOTHING");
    let result = qb
        .build()
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new("insert into option_data", e))?;
    Ok(result.rows_affected())
}

async fn upsert_bars(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[crate::rows::BarRow],
) -> Result<u64, SinkError> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        "INSERT INTO equity_bars (ticker, bar_start, open, high, low, close, volume, sequence, chart_day) ",
    );
    qb.push_values(rows, |mut b, r| {
        b.push_bind(&*r.ticker)
            .push_bind(sqlite_time(r.bar_start))
            .push_bind(r.open)
            .push_bind(r.high)
            .push_bind(r.low)
            .push_bind(r.close)
            .push_bind(r.volume)
            .push_bind(r.sequence)
            .push_bind(r.chart_day);
    });
    qb.push(
        " ON CONFLICT (ticker, bar_start) DO UPDATE SET open = excluded.open, high = excluded.high, \
         low = excluded.low, close = excluded.close, volume = excluded.volume, sequence = excluded.sequence, \
         chart_day = excluded.chart_day, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    );
    let result = qb
        .build()
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new("upsert into equity_bars", e))?;
    Ok(result.rows_affected())
}
