//! The SQL of the candle backfill (`crate::backfill`): where each equity's stored one-minute
//! candles end, and the insert of refilled candles into `equity_bars` marked `backfilled`
//! (`ON CONFLICT DO NOTHING`: a stored candle, streamed or refilled before, always stays; a
//! streamed candle arriving later replaces a refilled one through the writer's upsert, which
//! sets `backfilled` back to false).
//!
//! These writes go straight to the database, not through the writer's buffer: the rows are
//! idempotent (re-inserting them changes nothing), so they need neither the batch ledger nor
//! the buffer's overflow policy, and a large refill never pushes streamed rows out of the
//! buffer. The writer stays the only owner of its buffer.

use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::columns::EQUITY_BARS_BACKFILL;
use super::postgres::insert::{array_type, column_arrays, unnest_sql};
use super::sqlite::write_rows;
use super::{Database, SinkError};
use crate::rows::BarRow;

/// SQLite rows per statement (10 columns each: far below the parameter limit).
const SQLITE_CHUNK: usize = 500;

impl Database {
    /// Inserts refilled candles (`backfilled` true); stored candles are left as they are.
    /// Returns the rows actually inserted.
    pub async fn insert_backfilled_bars(&self, rows: &[BarRow]) -> Result<u64, SinkError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let action = "insert backfilled candles into equity_bars";
        match self {
            Self::Postgres(s) => {
                let sql = unnest_sql(&EQUITY_BARS_BACKFILL);
                let arrays = column_arrays(&EQUITY_BARS_BACKFILL, rows.iter());
                let params: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> = arrays
                    .iter()
                    .zip(&EQUITY_BARS_BACKFILL.columns)
                    .map(|(p, c)| {
                        (
                            p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync),
                            array_type(c.ty),
                        )
                    })
                    .collect();
                s.shared_conn()
                    .await?
                    .execute_typed(&sql, &params)
                    .await
                    .map_err(|e| SinkError::new(action, e))
            }
            Self::Sqlite(s) => {
                let mut tx = s
                    .pool()
                    .begin()
                    .await
                    .map_err(|e| SinkError::new(action, e))?;
                let mut inserted = 0;
                for chunk in rows.chunks(SQLITE_CHUNK) {
                    inserted += write_rows(&mut tx, &EQUITY_BARS_BACKFILL, chunk, action).await?;
                }
                tx.commit().await.map_err(|e| SinkError::new(action, e))?;
                Ok(inserted)
            }
        }
    }

    /// The start of the newest stored candle of each of `tickers` (streamed or refilled);
    /// tickers without any candle are left out.
    pub async fn newest_bar_starts(
        &self,
        tickers: &[String],
    ) -> Result<Vec<(String, DateTime<Utc>)>, SinkError> {
        let action = "read the newest candle per ticker from equity_bars";
        let mut out = Vec::new();
        for ticker in tickers {
            let newest: Option<DateTime<Utc>> = match self {
                Self::Postgres(s) => s
                    .shared_conn()
                    .await?
                    .query_typed(
                        "SELECT max(bar_start) FROM equity_bars WHERE ticker = $1",
                        &[(ticker, Type::TEXT)],
                    )
                    .await
                    .map_err(|e| SinkError::new(action, e))?
                    .first()
                    .and_then(|r| r.get::<_, Option<DateTime<Utc>>>(0)),
                Self::Sqlite(s) => {
                    let text: Option<String> = sqlx::query_scalar(
                        "SELECT max(bar_start) FROM equity_bars WHERE ticker = ?1",
                    )
                    .bind(ticker)
                    .fetch_one(s.pool())
                    .await
                    .map_err(|e| SinkError::new(action, e))?;
                    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.with_timezone(&Utc))
                }
            };
            if let Some(t) = newest {
                out.push((ticker.clone(), t));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlite::sqlite_time;

    /// `sqlite_time` is the stored form [`Database::newest_bar_starts`] parses back.
    #[test]
    fn sqlite_times_parse_back() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T15:04:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let back = DateTime::parse_from_rfc3339(&sqlite_time(t)).expect("parse");
        assert_eq!(back, t);
    }
}
