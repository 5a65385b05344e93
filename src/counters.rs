//! Shared counters of the pipeline: written by their owning task, read by the status line,
//! the `/health` endpoint and `/metrics` (which mirrors them at scrape time).
//!
//! Plain relaxed atomics: each counter has one writer, and readers only need a recent value.
//! The write histograms are `metrics` handles (no-ops unless the health endpoint is on).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use metrics::Histogram;

use crate::rows::Table;
use crate::schwab::wire::Service;

/// Number of data services ([`Service::ALL`]).
pub const SERVICES: usize = Service::ALL.len();
/// Number of tables rows go to ([`Table::ALL`]).
pub const TABLES: usize = Table::ALL.len();

/// Counters of one running pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Server frames received (any kind).
    pub frames: AtomicU64,
    /// Frames that were not a JSON object (skipped whole).
    pub malformed_frames: AtomicU64,
    /// Items skipped because of a bad type or missing key, or unusable updates.
    pub skipped_items: AtomicU64,
    /// Items refused by the sanity limits, by [`crate::market::sanity::Refusal::index`].
    pub items_refused: [AtomicU64; 6],
    /// Data items whose key their service did not subscribe, by [`Service::index`]: ignored.
    pub items_unsubscribed: [AtomicU64; SERVICES],
    /// Items with a time more than `CLOCK_SKEW_TOLERANCE` ahead of the receive time, clamped
    /// to it (see [`crate::market::clock`]); the last and largest skew seen (ms, 0 = none) and
    /// Unix ms of the last clamp (0 = never).
    pub times_clamped: AtomicU64,
    pub clock_skew_last_ms: AtomicI64,
    pub clock_skew_max_ms: AtomicI64,
    pub last_clamp_unix_ms: AtomicI64,
    /// Typed updates merged (every service).
    pub updates: AtomicU64,
    /// Updates that made rows, by [`Service::index`] (a book snapshot kept in memory counts
    /// too).
    pub service_updates: [AtomicU64; SERVICES],
    pub heartbeats: AtomicU64,
    /// Frames by the data service they carried, by [`Service::index`] (a frame with items of
    /// two services counts once for each); `other_frames`: frames without stored data
    /// (responses, heartbeats, notices, other services).
    pub service_frames: [AtomicU64; SERVICES],
    pub other_frames: AtomicU64,
    /// Unix ms when the last Schwab frame (of any kind) arrived, and the last typed update
    /// (0 = none yet).
    pub last_frame_unix_ms: AtomicI64,
    pub last_update_unix_ms: AtomicI64,
    /// Rows waiting in the writer (buffer + a batch waiting for retry).
    pub rows_buffered: AtomicU64,
    /// Rows committed, by [`Table::index`].
    pub rows_written_by_table: [AtomicU64; TABLES],
    /// Rows dropped because the buffer was full (`BUFFER_MAX_ROWS`) without a usable spool,
    /// or by the spool's size cap; and Unix ms of the last drop (0 = never).
    pub rows_dropped: AtomicU64,
    pub last_drop_unix_ms: AtomicI64,
    /// Committed writes and failed attempts.
    pub flushes: AtomicU64,
    pub write_retries: AtomicU64,
    /// Batches found in `batch_ledger` (committed by an earlier attempt) and not written again.
    pub batches_already_committed: AtomicU64,
    /// Rows the database rejected, kept in the quarantine (`rejected_rows` or its file).
    pub rows_quarantined: AtomicU64,
    /// While the database refuses writes (read-only, disk full): the error, for `/health`.
    pub write_refused: std::sync::Mutex<Option<String>>,
    /// The storage budget of the last maintenance pass.
    pub storage_budget: std::sync::Mutex<Option<crate::storage_budget::StorageBudget>>,
    /// Unix ms of the last commit (0 = none yet) and its size.
    pub last_flush_unix_ms: AtomicI64,
    pub last_flush_rows: AtomicU64,
    /// Unix ms of the first failed write of the current database outage (0 = writes work).
    pub write_failing_since_unix_ms: AtomicI64,
    /// The writer stopped on a permanent database error (the service is going down).
    pub writer_failed: AtomicBool,
    /// Rows written to the disk spool (total), rows in it now, spool write errors, and
    /// bytes of torn spool tails cut off at startup.
    pub rows_spooled: AtomicU64,
    pub spool_rows: AtomicU64,
    pub spool_errors: AtomicU64,
    /// The disk spool is open and usable, and the bytes it holds now.
    pub spool_usable: AtomicBool,
    pub spool_bytes: AtomicU64,
    pub spool_bytes_dropped: AtomicU64,
    /// Database size at the last retention pass, and whether it is near `DB_SIZE_LIMIT_MB`.
    pub database_bytes: AtomicU64,
    pub database_near_limit: AtomicBool,
    /// Unix ms of that measurement (0 = not measured yet).
    pub database_measured_unix_ms: AtomicI64,
    /// The live cadence (Supabase Realtime, PostgreSQL): transactions sent, `realtime.send`
    /// messages in them, ticker quotes they carried, failed attempts, tickers waiting, and
    /// Unix ms of the last send (0 = none yet).
    pub realtime_sends: AtomicU64,
    pub realtime_messages: AtomicU64,
    pub realtime_quotes: AtomicU64,
    pub realtime_failures: AtomicU64,
    pub realtime_pending: AtomicU64,
    pub realtime_last_send_unix_ms: AtomicI64,
    /// The candle backfill (`crate::backfill`): `pricehistory` calls (each try), failed
    /// calls, candles inserted, windows (gaps or the startup refill) waiting and done, windows
    /// given up, 1 while a window is being refilled, and the last error.
    pub backfill_requests: AtomicU64,
    pub backfill_failures: AtomicU64,
    pub backfill_candles: AtomicU64,
    pub backfill_pending: AtomicU64,
    pub backfill_filled: AtomicU64,
    pub backfill_given_up: AtomicU64,
    pub backfill_running: AtomicU64,
    pub backfill_last_error: std::sync::Mutex<Option<String>>,
    /// Latency and size histograms of the writer.
    pub histograms: WriteHistograms,
}

/// The writer's histograms (`metrics` handles; no-ops by default).
#[derive(Clone)]
pub struct WriteHistograms {
    /// Seconds one committed database write took.
    pub flush_seconds: Histogram,
    /// Rows per committed write.
    pub flush_rows: Histogram,
    /// Seconds from a row's arrival (its frame received) to its commit.
    pub tick_to_commit_seconds: Histogram,
}

impl Default for WriteHistograms {
    fn default() -> Self {
        Self {
            flush_seconds: Histogram::noop(),
            flush_rows: Histogram::noop(),
            tick_to_commit_seconds: Histogram::noop(),
        }
    }
}

impl std::fmt::Debug for WriteHistograms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHistograms")
    }
}

impl PipelineStats {
    /// The database's refusal, while it refuses writes.
    pub fn write_refused(&self) -> Option<String> {
        self.write_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The backfill's last error (`None`: none so far).
    pub fn backfill_last_error(&self) -> Option<String> {
        self.backfill_last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records the backfill's last error, or clears it (`None`: a later window was refilled
    /// for every symbol, so `/health` no longer says `failing`).
    pub fn set_backfill_last_error(&self, error: Option<String>) {
        *self
            .backfill_last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = error;
    }

    /// Sets (or clears, `None`) the database's refusal.
    pub fn set_write_refused(&self, refusal: Option<String>) {
        *self
            .write_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = refusal;
    }

    /// The storage budget of the last maintenance pass.
    pub fn storage_budget(&self) -> Option<crate::storage_budget::StorageBudget> {
        *self
            .storage_budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes a new storage budget.
    pub fn set_storage_budget(&self, budget: crate::storage_budget::StorageBudget) {
        *self
            .storage_budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(budget);
    }

    /// Rows committed in all tables.
    pub fn rows_written(&self) -> u64 {
        self.rows_written_by_table.iter().map(Self::get).sum()
    }

    /// Rows committed in `table`.
    pub fn table_rows(&self, table: Table) -> u64 {
        Self::get(&self.rows_written_by_table[table.index()])
    }

    /// Updates of `service` that made rows.
    pub fn service_updates(&self, service: Service) -> u64 {
        Self::get(&self.service_updates[service.index()])
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Reads a Unix-ms time stamp (`None` for 0, "never").
    pub fn time(stamp: &AtomicI64) -> Option<chrono::DateTime<chrono::Utc>> {
        match stamp.load(Relaxed) {
            0 => None,
            ms => chrono::DateTime::from_timestamp_millis(ms),
        }
    }

    /// Sets a Unix-ms time stamp to now.
    pub fn stamp_now(stamp: &AtomicI64) {
        stamp.store(chrono::Utc::now().timestamp_millis(), Relaxed);
    }
}
