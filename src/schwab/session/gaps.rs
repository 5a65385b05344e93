//! Interruptions of the stream: the supervisor turns each into a [`StreamGap`] and queues it
//! (without waiting) on a bounded channel; downstream, the gap recorder
//! (`crate::db::stream_gaps`) stores it in `stream_gaps`. The session never waits on the database.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// Gaps waiting to be written. Disconnects are rare; if the database is down long enough for
/// this to fill, further gaps are logged (with their times) and dropped, never blocking the stream.
pub const GAP_CHANNEL_CAPACITY: usize = 256;

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

/// Queues `gap` without waiting; a full queue logs the gap instead.
pub fn send_gap(tx: &mpsc::Sender<StreamGap>, gap: StreamGap) {
    if let Err(e) = tx.try_send(gap) {
        let gap = match e {
            mpsc::error::TrySendError::Full(g) | mpsc::error::TrySendError::Closed(g) => g,
        };
        tracing::error!(gap_start = %gap.start, gap_end = %gap.end, reason = %gap.reason, "stream gap not recorded (recorder busy or stopped)");
    }
}
