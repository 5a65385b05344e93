//! Warm start: at startup, rebuild each symbol's latest bars from `equity_data` (futures keys:
//! `futures_data`, same columns and rules) and feed them through the live bar path
//! (`crate::indicators::warm_start`), so indicator values are valid on the first new row. This
//! module holds the queries.
//!
//! **Source: `equity_data`, always.** The live engine builds its bars from the merged quotes
//! stored there, so rebuilding them from the same rows with the same rules (see
//! `crate::indicators::bars`) gives the same bars, and a restarted run continues exactly where the
//! stopped one was, including the bar that was still open. `equity_bars` (CHART_EQUITY) holds
//! Schwab's trade candles instead: their volume and timing differ from quote-built bars, so
//! seeding from them would make values after a restart differ from an uninterrupted run.
//!
//! **Which bars:** per symbol, the database aggregates rows into bars (one result row per bar,
//! so startup is O(symbols × bars), not O(rows)), and the latest `WARM_START_BARS + 1` bars are
//! fed (the newest is the bar that was open), or every bar of the latest New York session if
//! there are more, so the session VWAP is complete. With fewer bars in the database, all of
//! them are fed, and values equal an uninterrupted run's bit for bit.
//!
//! **Refilled candles:** bars the quotes cannot give because the stream was down (a gap that
//! the backfill refilled into `equity_bars` with `backfilled = true`) are taken from those
//! candles: high, low and close per bar; no volume (a candle's minute volume is not the
//! cumulative day volume the live bars difference), so the session VWAP stays what the
//! quotes say. A bar the quotes give always wins. Futures have no refilled candles (Schwab has
//! no price history for them).
//!
//! **Window search:** the query covers `[end − (N+1) bars, end)` (or from the session start if
//! earlier), then doubles the look-back window while bars are missing and older rows exist,
//! so overnight or weekend gaps cost a few more queries, never a full scan.

use sqlx::Row as _;
use tokio_postgres::types::Type;

use super::error::DbError;
use super::postgres::PgConn;
use super::sqlite::sqlite_time;
use super::{Database, SinkError};
use crate::indicators::bars::{BarAggregate, session_of, session_start_ms};
use crate::indicators::settings::IndicatorSettings;
use crate::indicators::warm_start::{WarmStart, WarmSymbols};
use crate::rows::time_from_ms;

/// Loads the warm-start bars of `symbols`. `WARM_START_BARS = 0` loads nothing. On
/// PostgreSQL the queries run on a connection of their own (no statement timeout but the
/// server's), closed at the end.
pub async fn load(
    db: &Database,
    settings: &IndicatorSettings,
    symbols: WarmSymbols<'_>,
) -> Result<WarmStart, SinkError> {
    if settings.warm_start_bars == 0 {
        return Ok(WarmStart::default());
    }
    match db {
        Database::Postgres(pg) => {
            let session = pg.session().await?;
            let result = load_from(&Source::Postgres(&session), settings, symbols).await;
            session.close().await;
            result
        }
        Database::Sqlite(s) => load_from(&Source::Sqlite(s.pool()), settings, symbols).await,
    }
}

/// Where the warm start reads.
enum Source<'a> {
    Postgres(&'a PgConn),
    Sqlite(&'a sqlx::SqlitePool),
}

async fn load_from(
    db: &Source<'_>,
    settings: &IndicatorSettings,
    symbols: WarmSymbols<'_>,
) -> Result<WarmStart, SinkError> {
    let (equities, futures) = match symbols {
        WarmSymbols::These { equities, futures } => (equities.to_vec(), futures.to_vec()),
        WarmSymbols::AllInDatabase => (
            all_keys(db, &EQUITIES).await?,
            all_keys(db, &FUTURES).await?,
        ),
    };
    Ok(WarmStart {
        symbols: table_bars(db, &EQUITIES, equities, settings).await?,
        futures: table_bars(db, &FUTURES, futures, settings).await?,
    })
}

/// The latest bars of each of `keys` in `table` (keys without priced rows left out).
async fn table_bars(
    db: &Source<'_>,
    table: &TickTable,
    keys: Vec<String>,
    settings: &IndicatorSettings,
) -> Result<Vec<(String, Vec<BarAggregate>)>, SinkError> {
    let mut out = Vec::new();
    for key in keys {
        let bars = symbol_bars(db, table, &key, settings).await?;
        if !bars.is_empty() {
            out.push((key, bars));
        }
    }
    Ok(out)
}

/// The latest bars of one symbol (see the module doc for which).
async fn symbol_bars(
    db: &Source<'_>,
    table: &TickTable,
    ticker: &str,
    settings: &IndicatorSettings,
) -> Result<Vec<BarAggregate>, SinkError> {
    let Some((first_ms, last_ms)) = priced_bounds(db, table, ticker).await? else {
        return Ok(Vec::new());
    };
    let bar_ms = settings.bar_ms();
    let need = settings.warm_start_bars.saturating_add(1);
    let last_bucket = last_ms.div_euclid(bar_ms);
    let end = (last_bucket + 1) * bar_ms;
    let session_start = session_start_ms(session_of(last_bucket * bar_ms));
    let first_start = first_ms.div_euclid(bar_ms) * bar_ms;
    let mut span = i64::try_from(need)
        .unwrap_or(i64::MAX)
        .saturating_mul(bar_ms);
    let mut lo = end.saturating_sub(span).min(session_start).max(first_start);
    let mut bars = aggregates(db, table, ticker, bar_ms, lo, end).await?;
    while bars.len() < need && lo > first_start {
        span = span.saturating_mul(2);
        let older_lo = lo.saturating_sub(span).max(first_start);
        let mut older = aggregates(db, table, ticker, bar_ms, older_lo, lo).await?;
        older.append(&mut bars);
        bars = older;
        lo = older_lo;
    }
    if table.refilled_candles {
        fill_from_refilled_candles(db, ticker, bar_ms, lo, end, &mut bars).await?;
    }
    let session_bars = bars
        .iter()
        .filter(|b| b.bucket * bar_ms >= session_start)
        .count();
    let keep = need.max(session_bars);
    if bars.len() > keep {
        bars.drain(..bars.len() - keep);
    }
    Ok(bars)
}

/// Refilled candles of a symbol in a window: start (ms), high, low, close.
const REFILLED_PG_SQL: &str = r#"SELECT (extract(epoch FROM bar_start) * 1000)::bigint, high, low, close
FROM equity_bars WHERE ticker = $1 AND backfilled AND bar_start >= $2 AND bar_start < $3
ORDER BY bar_start"#;
const REFILLED_SQLITE_SQL: &str = r#"SELECT CAST(strftime('%s', bar_start) AS INTEGER) * 1000, high, low, close
FROM equity_bars WHERE ticker = ?1 AND backfilled AND bar_start >= ?2 AND bar_start < ?3
ORDER BY bar_start"#;

/// Adds bars for the buckets of `[from_ms, to_ms)` the quotes left empty, from the refilled
/// candles there (see the module doc); `bars` stays ordered by bucket.
async fn fill_from_refilled_candles(
    db: &Source<'_>,
    ticker: &str,
    bar_ms: i64,
    from_ms: i64,
    to_ms: i64,
    bars: &mut Vec<BarAggregate>,
) -> Result<(), SinkError> {
    let (Some(from), Some(to)) = (time_from_ms(from_ms), time_from_ms(to_ms)) else {
        return Ok(());
    };
    let candles: Vec<(i64, f64, f64, f64)> = match db {
        Source::Postgres(c) => c
            .query_typed(
                REFILLED_PG_SQL,
                &[
                    (&ticker, Type::TEXT),
                    (&from, Type::TIMESTAMPTZ),
                    (&to, Type::TIMESTAMPTZ),
                ],
            )
            .await
            .map_err(|e| SinkError::new(ACTION, e))?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| SinkError::new(ACTION, e))?,
        Source::Sqlite(pool) => sqlx::query_as(REFILLED_SQLITE_SQL)
            .bind(ticker)
            .bind(sqlite_time(from))
            .bind(sqlite_time(to))
            .fetch_all(*pool)
            .await
            .map_err(|e| SinkError::new(ACTION, e))?,
    };
    if candles.is_empty() {
        return Ok(());
    }
    let quoted: std::collections::BTreeSet<i64> = bars.iter().map(|b| b.bucket).collect();
    let mut added: std::collections::BTreeMap<i64, BarAggregate> =
        std::collections::BTreeMap::new();
    for (start_ms, high, low, close) in candles {
        let bucket = start_ms.div_euclid(bar_ms);
        if quoted.contains(&bucket) || ![high, low, close].iter().all(|x| x.is_finite()) {
            continue;
        }
        // The candle's last moment orders its close after anything earlier in the bucket.
        let key = (start_ms + 59_999, 0);
        added
            .entry(bucket)
            .and_modify(|b| {
                b.high = b.high.max(high);
                b.low = b.low.min(low);
                b.close = close;
                b.close_key = key;
            })
            .or_insert(BarAggregate {
                bucket,
                high,
                low,
                close,
                close_key: key,
                first_volume: None,
                last_volume: None,
            });
    }
    if added.is_empty() {
        return Ok(());
    }
    bars.extend(added.into_values());
    bars.sort_by_key(|b| b.bucket);
    Ok(())
}

/// Event time in epoch ms, PostgreSQL (exact: timestamps carry milliseconds).
macro_rules! pg_ms {
    () => {
        r#"(extract(epoch FROM "timestamp") * 1000)::bigint"#
    };
}

/// Event time in epoch ms, SQLite (times are `YYYY-MM-DDTHH:MM:SS.mmmZ` text).
macro_rules! sqlite_ms {
    () => {
        r#"(CAST(strftime('%s', "timestamp") AS INTEGER) * 1000 + CAST(substr("timestamp", 21, 3) AS INTEGER))"#
    };
}

/// One result row per bar: the [`BarAggregate`] of the priced rows of each bucket, ordered
/// by `(event time, seq)` exactly as [`BarAggregate::add_tick`] orders them.
/// Macro parameters: event-time expression, placeholder sign, table, key column. Query
/// parameters: key, bar length (ms), window start, window end.
macro_rules! aggregate_sql {
    ($ms:expr, $p:literal, $table:literal, $key:literal) => {
        concat!(
            r#"SELECT bucket,
       max(price) AS high,
       min(price) AS low,
       max(CASE WHEN rn_last = 1 THEN price END) AS close,
       max(CASE WHEN rn_last = 1 THEN ts_ms END) AS close_ts,
       max(CASE WHEN rn_last = 1 THEN seq END) AS close_seq,
       max(CASE WHEN rn_vfirst = 1 THEN volume END) AS first_volume,
       max(CASE WHEN rn_vfirst = 1 THEN ts_ms END) AS first_volume_ts,
       max(CASE WHEN rn_vfirst = 1 THEN seq END) AS first_volume_seq,
       max(CASE WHEN rn_vlast = 1 THEN volume END) AS last_volume,
       max(CASE WHEN rn_vlast = 1 THEN ts_ms END) AS last_volume_ts,
       max(CASE WHEN rn_vlast = 1 THEN seq END) AS last_volume_seq
FROM (
    SELECT bucket, ts_ms, seq, price, volume,
           row_number() OVER (PARTITION BY bucket ORDER BY ts_ms DESC, seq DESC) AS rn_last,
           CASE WHEN volume IS NOT NULL THEN
               row_number() OVER (PARTITION BY bucket, volume IS NULL ORDER BY ts_ms, seq) END AS rn_vfirst,
           CASE WHEN volume IS NOT NULL THEN
               row_number() OVER (PARTITION BY bucket, volume IS NULL ORDER BY ts_ms DESC, seq DESC) END AS rn_vlast
    FROM (
        SELECT ts_ms / "#,
            $p,
            r#"2 AS bucket, ts_ms, seq, price, volume
        FROM (
            SELECT "#,
            $ms,
            r#" AS ts_ms, seq, price, volume
            FROM "#,
            $table,
            r#"
            WHERE "#,
            $key,
            " = ",
            $p,
            r#"1 AND price IS NOT NULL AND "timestamp" >= "#,
            $p,
            r#"3 AND "timestamp" < "#,
            $p,
            r#"4
        ) r
    ) b
) w
GROUP BY bucket
ORDER BY bucket"#
        )
    };
}

/// The first and last event time (ms) of the symbol's priced rows. Macro parameters as
/// [`aggregate_sql!`]'s; query parameter: the key.
macro_rules! bounds_sql {
    ($ms:expr, $p:literal, $table:literal, $key:literal) => {
        concat!(
            "SELECT (SELECT ",
            $ms,
            " FROM ",
            $table,
            " WHERE ",
            $key,
            " = ",
            $p,
            r#"1 AND price IS NOT NULL ORDER BY "timestamp", seq LIMIT 1),
       (SELECT "#,
            $ms,
            " FROM ",
            $table,
            " WHERE ",
            $key,
            " = ",
            $p,
            r#"1 AND price IS NOT NULL ORDER BY "timestamp" DESC, seq DESC LIMIT 1)"#
        )
    };
}

/// Distinct keys of a tick table by a loose index scan of its primary key:
/// O(keys × log rows). Parameters: table, key column.
macro_rules! keys_sql {
    ($table:literal, $key:literal) => {
        concat!(
            "WITH RECURSIVE t(k) AS (\n    SELECT (SELECT ",
            $key,
            " FROM ",
            $table,
            " ORDER BY ",
            $key,
            " LIMIT 1)\n    UNION ALL\n    SELECT (SELECT e.",
            $key,
            " FROM ",
            $table,
            " e WHERE e.",
            $key,
            " > t.k ORDER BY e.",
            $key,
            " LIMIT 1)\n    FROM t WHERE t.k IS NOT NULL\n)\nSELECT k FROM t WHERE k IS NOT NULL"
        )
    };
}

/// A tick table the engine computes indicators for, with its warm-start queries.
struct TickTable {
    /// What failed, for errors: "load warm-start bars from equity_data".
    action: &'static str,
    keys: &'static str,
    pg_bounds: &'static str,
    sqlite_bounds: &'static str,
    pg_aggregate: &'static str,
    sqlite_aggregate: &'static str,
    /// Bars the quotes left empty are filled from backfilled `equity_bars` candles.
    refilled_candles: bool,
}

/// Builds a [`TickTable`] from its table and key column names.
macro_rules! tick_table {
    ($table:literal, $key:literal, $refilled:expr) => {
        TickTable {
            action: concat!("load warm-start bars from ", $table),
            keys: keys_sql!($table, $key),
            pg_bounds: bounds_sql!(pg_ms!(), "$", $table, $key),
            sqlite_bounds: bounds_sql!(sqlite_ms!(), "?", $table, $key),
            pg_aggregate: aggregate_sql!(pg_ms!(), "$", $table, $key),
            sqlite_aggregate: aggregate_sql!(sqlite_ms!(), "?", $table, $key),
            refilled_candles: $refilled,
        }
    };
}

const EQUITIES: TickTable = tick_table!("equity_data", "ticker", true);
const FUTURES: TickTable = tick_table!("futures_data", "symbol", false);

/// What failed while reading refilled candles.
const ACTION: &str = EQUITIES.action;

async fn all_keys(db: &Source<'_>, table: &TickTable) -> Result<Vec<String>, SinkError> {
    match db {
        Source::Postgres(c) => c
            .query_typed(table.keys, &[])
            .await
            .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect())
            .map_err(|e| SinkError::new(table.action, e)),
        Source::Sqlite(pool) => sqlx::query_scalar(table.keys)
            .fetch_all(*pool)
            .await
            .map_err(|e| SinkError::new(table.action, e)),
    }
}

async fn priced_bounds(
    db: &Source<'_>,
    table: &TickTable,
    ticker: &str,
) -> Result<Option<(i64, i64)>, SinkError> {
    let row: (Option<i64>, Option<i64>) = match db {
        Source::Postgres(c) => c
            .query_typed_one(table.pg_bounds, &[(&ticker, Type::TEXT)])
            .await
            .and_then(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .map_err(|e| SinkError::new(table.action, e))?,
        Source::Sqlite(pool) => sqlx::query_as(table.sqlite_bounds)
            .bind(ticker)
            .fetch_one(*pool)
            .await
            .map_err(|e| SinkError::new(table.action, e))?,
    };
    Ok(row.0.zip(row.1))
}

async fn aggregates(
    db: &Source<'_>,
    table: &TickTable,
    ticker: &str,
    bar_ms: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<BarAggregate>, SinkError> {
    let (Some(from), Some(to)) = (time_from_ms(from_ms), time_from_ms(to_ms)) else {
        return Ok(Vec::new());
    };
    let rows: Vec<Result<BarAggregate, DbError>> = match db {
        Source::Postgres(c) => c
            .query_typed(
                table.pg_aggregate,
                &[
                    (&ticker, Type::TEXT),
                    (&bar_ms, Type::INT8),
                    (&from, Type::TIMESTAMPTZ),
                    (&to, Type::TIMESTAMPTZ),
                ],
            )
            .await
            .map_err(|e| SinkError::new(table.action, e))?
            .iter()
            .map(pg_aggregate)
            .collect(),
        Source::Sqlite(pool) => sqlx::query(table.sqlite_aggregate)
            .bind(ticker)
            .bind(bar_ms)
            .bind(sqlite_time(from))
            .bind(sqlite_time(to))
            .fetch_all(*pool)
            .await
            .map_err(|e| SinkError::new(table.action, e))?
            .iter()
            .map(sqlite_aggregate)
            .collect(),
    };
    rows.into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| SinkError::new(table.action, e))
}

fn pg_aggregate(row: &tokio_postgres::Row) -> Result<BarAggregate, DbError> {
    aggregate_from(
        |i| Ok(row.try_get::<_, Option<i64>>(i)?),
        |i| Ok(row.try_get::<_, Option<f64>>(i)?),
        |i| Ok(row.try_get::<_, Option<i32>>(i)?),
    )
}

fn sqlite_aggregate(row: &sqlx::sqlite::SqliteRow) -> Result<BarAggregate, DbError> {
    aggregate_from(
        |i| Ok(row.try_get::<Option<i64>, _>(i)?),
        |i| Ok(row.try_get::<Option<f64>, _>(i)?),
        |i| Ok(row.try_get::<Option<i32>, _>(i)?),
    )
}

/// Builds an aggregate from the columns of [`aggregate_sql!`], read by position.
fn aggregate_from(
    int: impl Fn(usize) -> Result<Option<i64>, DbError>,
    real: impl Fn(usize) -> Result<Option<f64>, DbError>,
    seq: impl Fn(usize) -> Result<Option<i32>, DbError>,
) -> Result<BarAggregate, DbError> {
    let required = |v: Option<f64>, name: &str| {
        v.ok_or_else(|| DbError::Decode(format!("warm-start bar without {name}")))
    };
    let keyed = |ts: Option<i64>, s: Option<i32>, v: Option<i64>| match (ts, s, v) {
        (Some(ts), Some(s), Some(v)) => Some(((ts, s), v)),
        _ => None,
    };
    let bucket = int(0)?.ok_or_else(|| DbError::Decode("warm-start bar without bucket".into()))?;
    Ok(BarAggregate {
        bucket,
        high: required(real(1)?, "high")?,
        low: required(real(2)?, "low")?,
        close: required(real(3)?, "close")?,
        close_key: (int(4)?.unwrap_or(bucket), seq(5)?.unwrap_or(0)),
        first_volume: keyed(int(7)?, seq(8)?, int(6)?),
        last_volume: keyed(int(10)?, seq(11)?, int(9)?),
    })
}
