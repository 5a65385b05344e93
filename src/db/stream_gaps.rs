//! `stream_gaps`: one row per interruption of the stream (from, to, reason), so users know
//! where data is missing. The session supervisor queues each [`StreamGap`]; the recorder task
//! here writes them apart from the row writer, retrying for as long as the database is down or
//! refuses writes.

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

/// Pause between tries while the database is down (transient errors): first, cap.
const TRANSIENT_RETRY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// How often a waiting retry looks whether the service is stopping.
const STOP_CHECK: Duration = Duration::from_millis(250);

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
///
/// A gap waits, retried, for as long as the database is down or refuses writes (read-only,
/// disk full): transient errors every 0.2 s → 5 s, refusals every 5 s → 60 s, like the row
/// writer. Gaps that come meanwhile queue in the channel (when it is full, [`send_gap`]
/// logs them). Once the service stops (every sender dropped), each gap still waiting gets one
/// last try, and is otherwise logged at error with its times, so the hole stays known.
/// A gap the database rejects as data, or a configuration error, is logged and skipped.
///
/// [`send_gap`]: crate::schwab::session::gaps::send_gap
pub fn spawn_gap_recorder_with(
    db: Arc<Database>,
    on_gap: impl Fn(&StreamGap) + Send + 'static,
) -> GapRecorder {
    let (tx, mut rx) = mpsc::channel::<StreamGap>(GAP_CHANNEL_CAPACITY);
    let task = tokio::spawn(async move {
        let mut written = 0;
        while let Some(gap) = rx.recv().await {
            if record(&db, &gap, &rx).await {
                written += 1;
            }
            on_gap(&gap);
        }
        written
    });
    GapRecorder { tx, task }
}

/// Writes one gap, retrying while the error may pass; true once it is written.
async fn record(db: &Database, gap: &StreamGap, rx: &mpsc::Receiver<StreamGap>) -> bool {
    let mut transient = Backoff::new(TRANSIENT_RETRY.0, TRANSIENT_RETRY.1);
    let mut refused = Backoff::new(super::error::REFUSED_RETRY.0, super::error::REFUSED_RETRY.1);
    let mut warned = false;
    loop {
        let e = match db.insert_gap(gap).await {
            Ok(()) => {
                if warned {
                    tracing::info!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, "stream gap recorded after the database came back");
                }
                return true;
            }
            Err(e) => e,
        };
        let delay = match e.kind {
            ErrorKind::Transient => transient.next_delay(),
            ErrorKind::Refused => refused.next_delay(),
            ErrorKind::Rejected | ErrorKind::Permanent => {
                tracing::error!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, error = %e, "could not record a stream gap (not retried)");
                return false;
            }
        };
        if rx.is_closed() {
            tracing::error!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, error = %e, "stream gap not recorded: the service stopped while the database could not take it");
            return false;
        }
        if !warned {
            warned = true;
            tracing::warn!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, error = %e, "stream gap waits for the database; retrying until it is written");
        }
        wait_unless_stopping(delay, rx).await;
    }
}

/// Sleeps `delay`, cut short when the service stops (the channel closed): the caller's
/// last try then comes at once, within the shutdown grace.
async fn wait_unless_stopping(delay: Duration, rx: &mpsc::Receiver<StreamGap>) {
    let until = tokio::time::Instant::now() + delay;
    while tokio::time::Instant::now() < until && !rx.is_closed() {
        tokio::time::sleep(STOP_CHECK.min(until - tokio::time::Instant::now())).await;
    }
}
