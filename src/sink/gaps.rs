//! `stream_gaps`: one row per interruption of the stream (from, to, reason), so users know
//! where data is missing. Written by the session supervisor through a small task of its own
//! (see `schwab::session::gaps`), not through the row writer.

use chrono::{DateTime, Utc};

use super::sqlite::sqlite_time;
use super::{Database, SinkError};

/// A period without data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGap {
    /// The last frame received before the disconnect.
    pub start: DateTime<Utc>,
    /// When the new session was streaming again (or the service stopped).
    pub end: DateTime<Utc>,
    /// Short machine-readable cause: `server_close`, `stall`, `login_denied`, `kicked`,
    /// `stop_streaming`, `network_error`, `response_timeout`.
    pub reason: String,
    /// Human-readable details (close code, error text, "service stopped").
    pub detail: String,
}

impl Database {
    /// Inserts one gap row.
    pub async fn insert_gap(&self, gap: &StreamGap) -> Result<(), SinkError> {
        let end = gap.end.max(gap.start);
        match self {
            Self::Postgres(s) => sqlx::query(
                "INSERT INTO stream_gaps (gap_start, gap_end, reason, detail) VALUES ($1, $2, $3, $4)",
            )
            .bind(gap.start)
            .bind(end)
            .bind(&gap.reason)
            .bind(&gap.detail)
            .execute(s.pool())
            .await
            .map(|_| ())
            .map_err(|e| SinkError::new("insert into stream_gaps", e)),
            Self::Sqlite(s) => sqlx::query(
                "INSERT INTO stream_gaps (gap_start, gap_end, reason, detail) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(sqlite_time(gap.start))
            .bind(sqlite_time(end))
            .bind(&gap.reason)
            .bind(&gap.detail)
            .execute(s.pool())
            .await
            .map(|_| ())
            .map_err(|e| SinkError::new("insert into stream_gaps", e)),
        }
    }
}
