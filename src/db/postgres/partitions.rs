//! Daily range partitions of the tick tables (`equity_data`, `option_data`).
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
pub const TICK_TABLES: [&str; 2] = ["equity_data", "option_data"];

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
        batch
            .equities
            .iter()
            .for_each(|r| add("equity_data", r.timestamp.date_naive()));
        batch
            .options
            .iter()
            .for_each(|r| add("option_data", r.timestamp.date_naive()));
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
