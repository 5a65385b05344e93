//! The quarantine: rows the database rejected, isolated from their batch (see
//! `crate::writer::isolate`), stored in `rejected_rows` as JSON text with the error, so that
//! nothing received is silently lost and an operator can look at them (SCHEMA.md).

use tokio_postgres::types::Type;

use super::{Database, SinkError};
use crate::rows::{BatchId, Row};

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectedRow {
    /// The table it was meant for.
    pub table_name: &'static str,
    /// The row as JSON (control characters escaped, so any row fits a text column).
    pub row_json: String,
    /// The database's error, as shown to the operator.
    pub error: String,
    pub sqlstate: Option<String>,
    /// The batch it came from.
    pub batch_id: i64,
}

impl RejectedRow {
    /// `row` of `batch`, rejected with `error`.
    pub fn new(row: &Row, batch: BatchId, error: &SinkError) -> Self {
        Self {
            table_name: row.table().name(),
            // A row always serialises (plain data); an empty object would still say which
            // table and error it was.
            row_json: serde_json::to_string(row).unwrap_or_else(|_| "{}".into()),
            error: error.to_string(),
            sqlstate: error.code(),
            batch_id: batch.get(),
        }
    }
}

const INSERT_PG: &str = "INSERT INTO rejected_rows (table_name, row_json, error, sqlstate, batch_id) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])";

const INSERT_SQLITE: &str = "INSERT INTO rejected_rows (table_name, row_json, error, sqlstate, batch_id) \
     VALUES (?, ?, ?, ?, ?)";

/// Stores `rows` in `rejected_rows`, in one transaction.
pub async fn store(db: &Database, rows: &[RejectedRow]) -> Result<(), SinkError> {
    if rows.is_empty() {
        return Ok(());
    }
    match db {
        Database::Postgres(pg) => {
            let conn = pg.shared_conn().await?;
            let col = |f: fn(&RejectedRow) -> Option<&str>| -> Vec<Option<&str>> {
                rows.iter().map(f).collect()
            };
            let tables = col(|r| Some(r.table_name));
            let json = col(|r| Some(&r.row_json));
            let errors = col(|r| Some(&r.error));
            let codes = col(|r| r.sqlstate.as_deref());
            let batches: Vec<i64> = rows.iter().map(|r| r.batch_id).collect();
            conn.execute_typed(
                INSERT_PG,
                &[
                    (&tables, Type::TEXT_ARRAY),
                    (&json, Type::TEXT_ARRAY),
                    (&errors, Type::TEXT_ARRAY),
                    (&codes, Type::TEXT_ARRAY),
                    (&batches, Type::INT8_ARRAY),
                ],
            )
            .await
            .map_err(|e| SinkError::new("store rejected rows in rejected_rows", e))?;
            Ok(())
        }
        Database::Sqlite(lite) => {
            let mut tx = lite
                .pool()
                .begin()
                .await
                .map_err(|e| SinkError::new("begin transaction", e))?;
            for r in rows {
                sqlx::query(INSERT_SQLITE)
                    .bind(r.table_name)
                    .bind(&r.row_json)
                    .bind(&r.error)
                    .bind(r.sqlstate.as_deref())
                    .bind(r.batch_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| SinkError::new("store rejected rows in rejected_rows", e))?;
            }
            tx.commit()
                .await
                .map_err(|e| SinkError::new("commit rejected rows", e))
        }
    }
}
