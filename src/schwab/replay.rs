//! `market-streamer replay FILE`: recorded server frames, one per line (JSON Lines), parsed
//! and handed to a [`FrameConsumer`] exactly as the live session does.
//!
//! Blank lines are ignored; a line that is not valid UTF-8 or not a frame is counted and
//! skipped. A frame without a data `timestamp` takes the previous frame's event time.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::downstream::FrameConsumer;
use super::wire::parse_frame;

/// What a replay read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayCounts {
    pub lines: u64,
    pub blank_lines: u64,
    /// Lines skipped whole (not UTF-8, not a JSON object).
    pub malformed_lines: u64,
}

/// Why a replay could not read its file.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source} (check the path and permissions)")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the writer stopped before the replay finished (see its error)")]
    WriterStopped,
}

/// Reads `path` line by line into `consumer`.
pub async fn replay_file(
    path: &Path,
    consumer: &mut impl FrameConsumer,
) -> Result<ReplayCounts, ReplayError> {
    let io_err = |source| ReplayError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut counts = ReplayCounts::default();
    let mut line = Vec::with_capacity(64 * 1024);
    let mut last_event_ms = chrono::Utc::now().timestamp_millis();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await.map_err(io_err)? == 0 {
            break;
        }
        counts.lines += 1;
        let Ok(text) = std::str::from_utf8(&line) else {
            counts.malformed_lines += 1;
            tracing::warn!(line = counts.lines, "skipped a line that is not UTF-8");
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            counts.blank_lines += 1;
            continue;
        }
        let frame = parse_frame(text, last_event_ms);
        consumer
            .consume(frame.as_ref(), last_event_ms)
            .await
            .map_err(|_| ReplayError::WriterStopped)?;
        match frame {
            Ok(frame) => {
                if let Some(ts) = frame.updates.iter().map(|u| u.event_ms).max() {
                    last_event_ms = ts;
                }
            }
            Err(_) => {
                counts.malformed_lines += 1;
                tracing::warn!(
                    line = counts.lines,
                    "skipped a line that is not a Schwab frame (JSON object)"
                );
            }
        }
    }
    Ok(counts)
}
