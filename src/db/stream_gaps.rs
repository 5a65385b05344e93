//! `stream_gaps`: one row per interruption of the stream (from, to, reason), so users know
//! where data is missing. The session supervisor queues each [`StreamGap`]; the recorder task
//! here writes them, retrying transient database errors, apart from the row writer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;

use super::sqlite::sqlite_time;
use super::{Database, ErrorKind, SinkError};
use crate::backoff::Backoff;
use crate::schwab::session::gaps::{GAP_CHANNEL_CAPACITY, StreamGap};

impl Database {
    /// Inserts one gap row.
    pub async fn insert_gap(&self, gap: &StreamGap) -> Result<(), SinkError> {
        let end = gap.end.max(gap.start);
        match self {
            Self::Postgres(s) => s
                .shared_conn()
                .await?
                .execute_typed(
                    "INSERT INTO stream_gaps (gap_start, gap_end, reason, detail) VALUES ($1, $2, $3, $4)",
                    &[
                        (&gap.start, Type::TIMESTAMPTZ),
                        (&end, Type::TIMESTAMPTZ),
                        (&gap.reason, Type::TEXT),
                        (&gap.detail, Type::TEXT),
                    ],
                )
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

/// Attempts per gap before it is given up (logged with its times).
const ATTEMPTS: u32 = 8;

/// The recorder's input and task.
pub struct GapRecorder {
    pub tx: mpsc::Sender<StreamGap>,
    pub task: JoinHandle<u64>,
}

/// Starts the recorder; the task ends (returning the number of rows written) when every
/// sender is dropped and the queue is written.
pub fn spawn_gap_recorder(db: Arc<Database>) -> GapRecorder {
    spawn_gap_recorder_with(db, |_| {})
}

/// [`spawn_gap_recorder`] that also hands every gap, once its row is written (or given up),
/// to `on_gap` (the candle backfill's queue; `on_gap` must not wait).
pub fn spawn_gap_recorder_with(
    db: Arc<Database>,
    on_gap: impl Fn(&StreamGap) + Send + 'static,
) -> GapRecorder {
    let (tx, mut rx) = mpsc::channel::<StreamGap>(GAP_CHANNEL_CAPACITY);
    let task = tokio::spawn(async move {
        let mut written = 0;
        while let Some(gap) = rx.recv().await {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            for attempt in 1..=ATTEMPTS {
                match db.insert_gap(&gap).await {
                    Ok(()) => {
                        written += 1;
                        break;
                    }
                    Err(e) if e.kind == ErrorKind::Transient && attempt < ATTEMPTS => {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(e) => {
                        tracing::error!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, error = %e, "could not record a stream gap");
                        break;
                    }
                }
            }
            on_gap(&gap);
        }
        written
    });
    GapRecorder { tx, task }
}
