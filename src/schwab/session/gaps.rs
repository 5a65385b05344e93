//! The gap recorder task: writes [`StreamGap`] rows into `stream_gaps`, retrying transient
//! database errors, so the session supervisor never waits on the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::batch::Backoff;
use crate::sink::{Database, ErrorKind, StreamGap};

/// Gaps waiting to be written. Disconnects are rare; if the database is down long enough for
/// this to fill, further gaps are logged (with their times) and dropped, never blocking the stream.
pub const GAP_CHANNEL_CAPACITY: usize = 256;
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
        }
        written
    });
    GapRecorder { tx, task }
}

/// Queues `gap` without waiting; a full queue logs the gap instead.
pub fn send_gap(tx: &mpsc::Sender<StreamGap>, gap: StreamGap) {
    if let Err(e) = tx.try_send(gap) {
        let gap = match e {
            mpsc::error::TrySendError::Full(g) | mpsc::error::TrySendError::Closed(g) => g,
        };
        tracing::error!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, "stream gap not recorded (recorder busy or stopped)");
    }
}
