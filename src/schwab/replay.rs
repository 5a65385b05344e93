//! `market-streamer replay FILE`: recorded server frames, one per line (JSON Lines), parsed
//! and handed to a [`FrameConsumer`] exactly as the live session does.
//!
//! Blank lines are ignored; a line that is not valid UTF-8 or not a frame is counted and
//! skipped, and a line longer than `MAX_FRAME_BYTES` is skipped without being held in memory
//! (it is read through in chunks). A frame without a data `timestamp` takes the previous
//! frame's event time.

use std::path::Path;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::downstream::FrameConsumer;
use super::wire::parse_frame;

/// What a replay read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayCounts {
    pub lines: u64,
    pub blank_lines: u64,
    /// Lines skipped whole (not UTF-8, not a JSON object).
    pub malformed_lines: u64,
    /// Lines longer than `MAX_FRAME_BYTES`, skipped unread.
    pub oversized_lines: u64,
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

/// How reading one line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineRead {
    Eof,
    Line,
    /// Longer than the limit: read through and dropped; its length.
    TooLong(u64),
}

/// Reads one line (without holding more than `max` bytes of it) into `line`.
async fn read_line_bounded(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    line.clear();
    let mut dropped: u64 = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (dropped, line.is_empty()) {
                (0, true) => LineRead::Eof,
                (0, false) => LineRead::Line,
                (n, _) => LineRead::TooLong(n),
            });
        }
        let (chunk, found_end) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if dropped > 0 || line.len() + n > max.saturating_add(1) {
            // Over the limit: count, keep nothing.
            dropped += (line.len() + n) as u64;
            line.clear();
        } else {
            line.extend_from_slice(chunk);
        }
        reader.consume(n);
        if found_end {
            return Ok(if dropped > 0 {
                LineRead::TooLong(dropped)
            } else {
                LineRead::Line
            });
        }
    }
}

/// Reads `path` line by line into `consumer`; lines over `max_line_bytes` are skipped.
pub async fn replay_file(
    path: &Path,
    consumer: &mut impl FrameConsumer,
    max_line_bytes: usize,
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
        match read_line_bounded(&mut reader, &mut line, max_line_bytes)
            .await
            .map_err(io_err)?
        {
            LineRead::Eof => break,
            LineRead::Line => counts.lines += 1,
            LineRead::TooLong(bytes) => {
                counts.lines += 1;
                counts.oversized_lines += 1;
                tracing::warn!(
                    line = counts.lines,
                    bytes,
                    max_line_bytes,
                    "skipped a line longer than MAX_FRAME_BYTES (raise it if the recording really holds such frames)"
                );
                continue;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(LineRead, String)> {
        let mut reader = BufReader::with_capacity(8, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        loop {
            let read = read_line_bounded(&mut reader, &mut line, max)
                .await
                .expect("read");
            if read == LineRead::Eof {
                return out;
            }
            out.push((read, String::from_utf8_lossy(&line).into_owned()));
        }
    }

    #[tokio::test]
    async fn long_lines_are_skipped_whole_and_short_ones_kept() {
        let long = "y".repeat(100);
        let input = format!("short\n{long}\nok\nlast-without-newline");
        let got = lines(input.as_bytes(), 20).await;
        assert_eq!(
            got,
            vec![
                (LineRead::Line, "short\n".into()),
                (LineRead::TooLong(101), String::new()),
                (LineRead::Line, "ok\n".into()),
                (LineRead::Line, "last-without-newline".into()),
            ]
        );
        let tail = lines(format!("a\n{long}").as_bytes(), 20).await;
        assert_eq!(tail[1], (LineRead::TooLong(100), String::new()));
    }
}
