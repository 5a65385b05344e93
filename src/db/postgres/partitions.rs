//! Daily range partitions of the tick tables ([`TICK_TABLES`]).
//!
//! Before a batch is inserted, the UTC days it touches get their partition if this process has
//! not seen them yet (`market_admin.ensure_day_partition`, idempotent and safe between
//! processes). A DEFAULT partition catches anything else; its rows move into the day's
//! partition when that is created. Maintenance creates partitions ahead and drops old ones.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::NaiveDate;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::db::SinkError;
use crate::rows::Batch;

/// The partitioned tables.
pub use crate::db::TICK_TABLES;

/// Days known to have a partition, per table.
#[derive(Debug, Default)]
pub struct PartitionCache {
    known: Mutex<HashSet<(&'static str, NaiveDate)>>,
}

impl PartitionCache {
    /// The (table, day) partitions the batch needs that are not known yet.
    pub fn missing_for(&self, batch: &Batch) -> Vec<(&'static str, NaiveDate)> {
        let mut wanted: Vec<(&'static str, NaiveDate)> = Vec::new();
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let mut add = |table: &'static str, day: NaiveDate| {
            if !known.contains(&(table, day)) && !wanted.contains(&(table, day)) {
                wanted.push((table, day));
            }
        };
        let days = |table: &'static str, times: &mut dyn Iterator<Item = NaiveDate>| {
            times.for_each(|d| add(table, d));
        };
        let mut days = days;
        days(
            "equity_data",
            &mut batch.equities.iter().map(|r| r.timestamp.date_naive()),
        );
        days(
            "option_data",
            &mut batch.options.iter().map(|r| r.timestamp.date_naive()),
        );
        days(
            "futures_data",
            &mut batch.futures.iter().map(|r| r.timestamp.date_naive()),
        );
        days(
            "futures_option_data",
            &mut batch
                .futures_options
                .iter()
                .map(|r| r.timestamp.date_naive()),
        );
        days(
            "forex_data",
            &mut batch.forex.iter().map(|r| r.timestamp.date_naive()),
        );
        days(
            "book_snapshots",
            &mut batch.books.iter().map(|r| r.snapshot_time.date_naive()),
        );
        days(
            "screener_snapshots",
            &mut batch.screeners.iter().map(|r| r.timestamp.date_naive()),
        );
        wanted
    }

    /// Creates one day's partition (if missing) and remembers it.
    pub async fn ensure(
        &self,
        client: &Client,
        table: &'static str,
        day: NaiveDate,
    ) -> Result<bool, SinkError> {
        let created: bool = client
            .query_typed_one(
                "SELECT market_admin.ensure_day_partition($1::regclass, $2)",
                &[(&table, Type::TEXT), (&day, Type::DATE)],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| SinkError::new(format!("create the {day} partition of {table}"), e))?;
        if created {
            tracing::info!(table, %day, "created daily partition");
        }
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((table, day));
        Ok(created)
    }

    /// Forgets everything (after partitions were dropped).
    pub fn clear(&self) {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Drops day partitions entirely before `cutoff` (and DEFAULT-partition rows before it).
pub async fn drop_before(
    client: &Client,
    table: &str,
    cutoff: NaiveDate,
) -> Result<i32, SinkError> {
    client
        .query_typed_one(
            "SELECT market_admin.drop_partitions_before($1::regclass, $2)",
            &[(&table, Type::TEXT), (&cutoff, Type::DATE)],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| SinkError::new(format!("drop partitions of {table} before {cutoff}"), e))
}
