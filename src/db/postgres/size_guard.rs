//! The size guard's statements on PostgreSQL: which days the tick tables hold, dropping the
//! oldest one, deleting the oldest day of candles, and the read-write override a maintenance
//! connection may use on a read-only database (Supabase's documented recovery) to remove old
//! data — never to insert.

use chrono::{Days, NaiveDate};
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::partitions::{TICK_TABLES, drop_before};
use crate::db::{CANDLE_TABLES, SinkError};

/// The days that have a tick partition (any tick table), oldest first.
pub async fn tick_days(client: &Client) -> Result<Vec<NaiveDate>, SinkError> {
    let rows = client
        .query_typed(
            "SELECT DISTINCT to_date(right(c.relname, 8), 'YYYYMMDD') AS day \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = ANY($1::text[]::regclass[]) AND c.relname ~ '_p[0-9]{8}$' \
             ORDER BY day",
            &[(&TICK_TABLES.as_slice(), Type::TEXT_ARRAY)],
        )
        .await
        .map_err(|e| SinkError::new("list the tick partitions", e))?;
    rows.iter()
        .map(|r| {
            r.try_get::<_, NaiveDate>(0)
                .map_err(|e| SinkError::new("read a partition day", e))
        })
        .collect()
}

/// Drops every tick partition of `day` and before; returns the partitions dropped.
pub async fn drop_through(client: &Client, day: NaiveDate) -> Result<u32, SinkError> {
    let cutoff = day.checked_add_days(Days::new(1)).unwrap_or(day);
    let mut dropped = 0;
    for table in TICK_TABLES {
        dropped += drop_before(client, table, cutoff).await?.max(0) as u32;
    }
    Ok(dropped)
}

/// Deletes the oldest UTC day of candles of each candle table, if it is before `keep_from`;
/// returns the rows.
pub async fn delete_oldest_candle_day(
    client: &Client,
    keep_from: NaiveDate,
) -> Result<u64, SinkError> {
    let mut deleted = 0;
    for table in CANDLE_TABLES {
        deleted += client
            .execute_typed(
                &format!(
                    "DELETE FROM {table} WHERE bar_start < LEAST( \
                         (SELECT date_trunc('day', min(bar_start) AT TIME ZONE 'UTC') + interval '1 day' FROM {table}), \
                         $1::date::timestamp) AT TIME ZONE 'UTC'"
                ),
                &[(&keep_from, Type::DATE)],
            )
            .await
            .map_err(|e| SinkError::new(format!("delete the oldest day of {table}"), e))?;
    }
    Ok(deleted)
}

/// The database's size in bytes.
pub async fn database_bytes(client: &Client) -> Result<u64, SinkError> {
    let bytes: i64 = client
        .query_typed_one("SELECT pg_database_size(current_database())", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| SinkError::new("measure the database size", e))?;
    Ok(bytes.max(0) as u64)
}

/// On a read-only database (`default_transaction_read_only`, Supabase's read-only mode):
/// lets this session's transactions write, so old data can be removed. Returns whether the
/// database was read-only.
pub async fn allow_removal_when_read_only(client: &Client) -> Result<bool, SinkError> {
    let read_only: String = client
        .query_typed_one("SHOW default_transaction_read_only", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| SinkError::new("check whether the database is read-only", e))?;
    if read_only != "on" {
        return Ok(false);
    }
    client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        .await
        .map_err(|e| SinkError::new("allow this maintenance session to remove old data", e))?;
    Ok(true)
}
