//! `run --record FILE`: every raw server frame appended to a JSON Lines file, one frame per
//! line, in the format `market-streamer replay FILE` reads. Only server frames are written
//! (they never carry a token). Owned by the task that reads the socket.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Why the record file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open the record file {path}: {source}; check the path and that its folder exists and is writable"
)]
pub struct RecordError {
    pub path: String,
    pub source: std::io::Error,
}

/// An open record file.
#[derive(Debug)]
pub struct FrameRecorder {
    file: tokio::io::BufWriter<tokio::fs::File>,
    path: PathBuf,
    lines: u64,
    failed: bool,
}

impl FrameRecorder {
    /// Opens `path` for appending (created if missing).
    pub async fn open(path: &Path) -> Result<Self, RecordError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| RecordError {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self {
            file: tokio::io::BufWriter::new(file),
            path: path.to_path_buf(),
            lines: 0,
            failed: false,
        })
    }

    /// Appends one frame as one line and flushes it. A write error is logged once and
    /// recording stops (the stream itself goes on).
    pub async fn record(&mut self, frame: &str) {
        if self.failed {
            return;
        }
        // Valid JSON has no raw line breaks inside strings, so turning them into spaces keeps
        // the frame identical in meaning and on one line.
        let line = if frame.contains(['\n', '\r']) {
            frame.replace(['\n', '\r'], " ")
        } else {
            frame.to_string()
        };
        let result = async {
            self.file.write_all(line.as_bytes()).await?;
            self.file.write_all(b"\n").await?;
            self.file.flush().await
        }
        .await;
        match result {
            Ok(()) => self.lines += 1,
            Err(e) => {
                self.failed = true;
                tracing::error!(file = %self.path.display(), error = %e, "cannot write the record file; recording stopped");
            }
        }
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_appended_one_per_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rec.jsonl");
        let mut r = FrameRecorder::open(&path).await.expect("open");
        r.record(r#"{"notify":[{"heartbeat":"1"}]}"#).await;
        r.record("{\"data\":\n[]}").await;
        drop(r);
        let mut r = FrameRecorder::open(&path).await.expect("reopen appends");
        r.record(r#"{"notify":[{"heartbeat":"2"}]}"#).await;
        assert_eq!(r.lines(), 1);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "{\"data\": []}");
    }
}
