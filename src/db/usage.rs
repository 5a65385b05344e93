//! What the tick tables hold (for the storage budget, `crate::storage_budget`): their bytes,
//! their rows and the rows of the last complete UTC day, on either engine.

use chrono::{Days, NaiveDate};
use tokio_postgres::types::Type;

use super::postgres::partitions::TICK_TABLES;
use super::{CANDLE_TABLES, Database, SinkError, tick_count_sql};

/// What the tick tables hold, as measured by the database.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickUsage {
    /// The whole database.
    pub database_bytes: u64,
    /// The tick tables (data and indexes).
    pub tick_bytes: u64,
    /// Rows in the tick tables.
    pub tick_rows: u64,
    /// Rows of the last complete UTC day (the day before `today`); 0 when there were none.
    pub rows_last_day: u64,
}

/// Measures the tick tables; `today` is the current UTC day.
pub async fn tick_usage(db: &Database, today: NaiveDate) -> Result<TickUsage, SinkError> {
    let yesterday = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    let read = |what: &'static str| move |e| SinkError::new(what, e);
    match db {
        Database::Postgres(pg) => {
            let conn = pg.shared_conn().await?;
            // Row counts from the planner's statistics (cheap on big partitions); a count
            // where they are missing (partitions never analysed, which are small).
            let row = conn
                .query_typed_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8, \
                            coalesce(sum(greatest(c.reltuples, 0)), 0)::int8, \
                            pg_database_size(current_database())::int8 \
                     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     WHERE i.inhparent = ANY($1::text[]::regclass[])",
                    &[(&TICK_TABLES.as_slice(), Type::TEXT_ARRAY)],
                )
                .await
                .map_err(read("measure the tick tables"))?;
            let tick_bytes: i64 = row.try_get(0).map_err(read("read the tick bytes"))?;
            let mut tick_rows: i64 = row.try_get(1).map_err(read("read the tick rows"))?;
            let database_bytes: i64 = row.try_get(2).map_err(read("read the database size"))?;
            if tick_rows == 0 && tick_bytes > 0 {
                tick_rows = conn
                    .query_typed_one(&format!("SELECT {}", tick_count_sql("")), &[])
                    .await
                    .and_then(|r| r.try_get(0))
                    .map_err(read("count the tick rows"))?;
            }
            let last_day: i64 = conn
                .query_typed_one(
                    &format!("SELECT {}", tick_count_sql(
                        "\"timestamp\" >= $1::date::timestamp AT TIME ZONE 'UTC' AND \"timestamp\" < $2::date::timestamp AT TIME ZONE 'UTC'",
                    )),
                    &[(&yesterday, Type::DATE), (&today, Type::DATE)],
                )
                .await
                .and_then(|r| r.try_get(0))
                .map_err(read("count yesterday's tick rows"))?;
            Ok(TickUsage {
                database_bytes: database_bytes.max(0) as u64,
                tick_bytes: tick_bytes.max(0) as u64,
                tick_rows: tick_rows.max(0) as u64,
                rows_last_day: last_day.max(0) as u64,
            })
        }
        Database::Sqlite(lite) => {
            // SQLite has no per-table size without the optional dbstat table: the used
            // pages are shared out over every row of the market tables (an estimate).
            let used = lite.used_bytes().await?;
            let ticks_sql = tick_count_sql("");
            let candles_sql: Vec<String> = CANDLE_TABLES
                .iter()
                .map(|t| format!("(SELECT count(*) FROM {t})"))
                .collect();
            let sql = format!(
                "SELECT {ticks_sql}, {ticks_sql} + {}, {}",
                candles_sql.join(" + "),
                tick_count_sql("\"timestamp\" >= ?1 AND \"timestamp\" < ?2"),
            );
            let (ticks, all, last_day): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(format!("{yesterday}T00:00:00.000Z"))
                .bind(format!("{today}T00:00:00.000Z"))
                .fetch_one(lite.pool())
                .await
                .map_err(|e| SinkError::new("count the tick rows", e))?;
            let tick_bytes = if all > 0 {
                (u128::from(used) * ticks.max(0) as u128 / all as u128) as u64
            } else {
                0
            };
            Ok(TickUsage {
                database_bytes: used,
                tick_bytes,
                tick_rows: ticks.max(0) as u64,
                rows_last_day: last_day.max(0) as u64,
            })
        }
    }
}
