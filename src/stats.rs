//! Shared counters of the pipeline: written by their owning task, read by the status line.
//!
//! Plain relaxed atomics: each counter has one writer, and readers only need a recent value.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// Counters of one running pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Server frames received (any kind).
    pub frames: AtomicU64,
    /// Frames that were not a JSON object (skipped whole).
    pub malformed_frames: AtomicU64,
    /// Items skipped because of a bad type or missing key, or unusable updates.
    pub skipped_items: AtomicU64,
    /// Typed updates merged (LEVELONE + CHART).
    pub updates: AtomicU64,
    pub equity_updates: AtomicU64,
    pub option_updates: AtomicU64,
    pub chart_updates: AtomicU64,
    pub heartbeats: AtomicU64,
    /// Rows waiting in the writer (buffer + a batch waiting for retry).
    pub rows_buffered: AtomicU64,
    /// Rows committed, by table.
    pub equity_rows_written: AtomicU64,
    pub option_rows_written: AtomicU64,
    pub bar_rows_written: AtomicU64,
    /// Rows dropped because the buffer was full (`BUFFER_MAX_ROWS`).
    pub rows_dropped: AtomicU64,
    /// Committed writes and failed attempts.
    pub flushes: AtomicU64,
    pub write_retries: AtomicU64,
    /// Unix ms of the last commit (0 = none yet) and its size.
    pub last_flush_unix_ms: AtomicI64,
    pub last_flush_rows: AtomicU64,
    /// Rows written to the disk spool (total), rows in it now, spool write errors, and
    /// bytes of torn spool tails cut off at startup.
    pub rows_spooled: AtomicU64,
    pub spool_rows: AtomicU64,
    pub spool_errors: AtomicU64,
    pub spool_bytes_dropped: AtomicU64,
    /// Database size at the last retention pass, and whether it is near `DB_SIZE_LIMIT_MB`.
    pub database_bytes: AtomicU64,
    pub database_near_limit: AtomicBool,
}

impl PipelineStats {
    /// Rows committed in all tables.
    pub fn rows_written(&self) -> u64 {
        self.equity_rows_written.load(Relaxed)
            + self.option_rows_written.load(Relaxed)
            + self.bar_rows_written.load(Relaxed)
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}
