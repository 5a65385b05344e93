//! The watchlist's SQL (issue 16): read every row, write a row's outcome. PostgreSQL also
//! listens for `watchlist_changed` (the table's trigger) on a connection of its own; SQLite is
//! polled.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::{Database, SinkError};

/// One row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRow {
    pub service: String,
    pub symbol: String,
    pub status: String,
    pub reason: Option<String>,
}

/// What the service decided for a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub service: String,
    pub symbol: String,
    /// `active`, `rejected` or `pending`.
    pub status: &'static str,
    pub reason: Option<String>,
}

const SELECT_SQL: &str =
    "SELECT service, symbol, status, reason FROM watchlist ORDER BY added_at, service, symbol";
const PG_UPDATE_SQL: &str = "UPDATE watchlist SET status = $3, reason = $4, status_at = now() \
     WHERE service = $1 AND symbol = $2 AND (status IS DISTINCT FROM $3 OR reason IS DISTINCT FROM $4)";
const SQLITE_UPDATE_SQL: &str = "UPDATE watchlist SET status = ?3, reason = ?4, \
     status_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
     WHERE service = ?1 AND symbol = ?2 AND (status IS NOT ?3 OR reason IS NOT ?4)";

/// Every watchlist row, oldest first.
pub async fn read(db: &Database) -> Result<Vec<WatchRow>, SinkError> {
    let what = "read the watchlist";
    match db {
        Database::Postgres(pg) => {
            let conn = pg.shared_conn().await?;
            let rows = conn
                .query_typed(SELECT_SQL, &[])
                .await
                .map_err(|e| SinkError::new(what, e))?;
            rows.iter()
                .map(|r| {
                    Ok(WatchRow {
                        service: r.try_get(0).map_err(|e| SinkError::new(what, e))?,
                        symbol: r.try_get(1).map_err(|e| SinkError::new(what, e))?,
                        status: r.try_get(2).map_err(|e| SinkError::new(what, e))?,
                        reason: r.try_get(3).map_err(|e| SinkError::new(what, e))?,
                    })
                })
                .collect()
        }
        Database::Sqlite(lite) => {
            let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(SELECT_SQL)
                .fetch_all(lite.pool())
                .await
                .map_err(|e| SinkError::new(what, e))?;
            Ok(rows
                .into_iter()
                .map(|(service, symbol, status, reason)| WatchRow {
                    service,
                    symbol,
                    status,
                    reason,
                })
                .collect())
        }
    }
}

/// Writes the outcomes (only rows whose status or reason changed are touched).
pub async fn write(db: &Database, outcomes: &[Outcome]) -> Result<(), SinkError> {
    let what = "write the watchlist status";
    for o in outcomes {
        match db {
            Database::Postgres(pg) => {
                let conn = pg.shared_conn().await?;
                conn.execute_typed(
                    PG_UPDATE_SQL,
                    &[
                        (&o.service, Type::TEXT),
                        (&o.symbol, Type::TEXT),
                        (&o.status, Type::TEXT),
                        (&o.reason, Type::TEXT),
                    ],
                )
                .await
                .map_err(|e| SinkError::new(what, e))?;
            }
            Database::Sqlite(lite) => {
                sqlx::query(SQLITE_UPDATE_SQL)
                    .bind(&o.service)
                    .bind(&o.symbol)
                    .bind(o.status)
                    .bind(&o.reason)
                    .execute(lite.pool())
                    .await
                    .map_err(|e| SinkError::new(what, e))?;
            }
        }
    }
    Ok(())
}

/// The notification channel of the table's trigger.
pub const CHANNEL: &str = "watchlist_changed";

/// `LISTEN watchlist_changed`, for the listener's own connection.
pub const LISTEN_SQL: &str = "LISTEN watchlist_changed";

/// A time for log lines.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}
