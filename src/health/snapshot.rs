//! What `/health` and `/metrics` read, copied out of the watches and counters at one instant:
//! plain data, so the judgement is a pure function of it (see [`super::judge`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::counters::PipelineStats;
use crate::realtime::Budget;
use crate::schwab::session::SessionHealth;
use crate::schwab::token_manager::TokenStatus;

/// Everything the health judgement looks at, read at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was read (wall clock).
    pub now: DateTime<Utc>,
    /// When the service started.
    pub started_at: DateTime<Utc>,
    /// The streamer session (owned by the supervisor).
    pub session: SessionHealth,
    /// The tokens (owned by the token task; never a token itself).
    pub tokens: TokenStatus,
    pub stream: StreamFacts,
    pub writer: WriterFacts,
    pub database: DatabaseFacts,
    pub spool: SpoolFacts,
    pub realtime: RealtimeFacts,
    pub backfill: BackfillFacts,
}

/// The candle backfill (`crate::backfill`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillFacts {
    /// `BACKFILL=on` (and a live or simulated stream).
    pub enabled: bool,
    pub running: bool,
    /// Windows (gaps, the startup refill) waiting or being refilled.
    pub pending: u64,
    pub filled: u64,
    /// Windows given up (some symbol failed every try, or the queue was full).
    pub given_up: u64,
    pub candles: u64,
    pub requests: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// Configured symbols without price history (options, futures): never asked for.
    pub skipped_no_history: Vec<String>,
}

/// Frames and updates received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFacts {
    /// The last Schwab frame of any kind (data, response, heartbeat).
    pub last_frame_at: Option<DateTime<Utc>>,
    /// The last frame with a typed update (quote, option quote, candle).
    pub last_update_at: Option<DateTime<Utc>>,
    pub frames: u64,
    pub updates: u64,
    pub malformed_frames: u64,
    /// Items refused by the sanity limits (all reasons).
    pub items_refused: u64,
    /// Items ignored because their service did not subscribe their key (all services).
    pub items_unsubscribed: u64,
    /// Items whose times were clamped to the receive time, the last and largest skew (ms; 0
    /// before the first) and when the last clamp happened.
    pub times_clamped: u64,
    pub clock_skew_last_ms: i64,
    pub clock_skew_max_ms: i64,
    pub last_clamp_at: Option<DateTime<Utc>>,
}

/// The writer's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterFacts {
    pub last_commit_at: Option<DateTime<Utc>>,
    pub last_commit_rows: u64,
    /// Rows in memory waiting for a write (buffer + a batch kept for retry).
    pub buffered_rows: u64,
    /// `BUFFER_MAX_ROWS`.
    pub buffer_max_rows: u64,
    pub rows_written: u64,
    pub rows_dropped: u64,
    pub last_drop_at: Option<DateTime<Utc>>,
    pub write_retries: u64,
    /// The first failed write of the current outage (`None`: writes work).
    pub failing_since: Option<DateTime<Utc>>,
    /// The writer stopped on a permanent error.
    pub failed: bool,
    /// While the database refuses writes (read-only, disk full): its error.
    pub refused: Option<String>,
    /// Rows the database rejected, kept in the quarantine.
    pub rows_quarantined: u64,
}

/// The database's size against its limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseFacts {
    /// `postgres` or `sqlite`.
    pub kind: &'static str,
    /// Size at the last retention pass (`None`: not measured yet).
    pub size_bytes: Option<u64>,
    pub measured_at: Option<DateTime<Utc>>,
    /// `DB_SIZE_LIMIT_MB` in bytes.
    pub limit_bytes: u64,
    /// `DB_SIZE_WARN_PERCENT`.
    pub warn_percent: u8,
    /// The storage budget of the last maintenance pass.
    pub budget: Option<crate::storage_budget::StorageBudget>,
}

/// The disk spool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolFacts {
    /// `SPOOL_DIR` is set (not `off`).
    pub configured: bool,
    /// The writer opened it and can use it.
    pub usable: bool,
    pub rows: u64,
    pub bytes: u64,
    /// `SPOOL_MAX_BYTES`.
    pub max_bytes: u64,
}

/// Supabase Realtime: the message budget of the configuration and what the live cadence sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealtimeFacts {
    /// The estimate for the configured mode, cadence, symbols and plan (`None`: not computed,
    /// e.g. in tests).
    pub budget: Option<Budget>,
    pub sends: u64,
    pub messages: u64,
    pub quotes: u64,
    pub failures: u64,
    pub pending: u64,
    pub last_send_at: Option<DateTime<Utc>>,
}

/// Where a snapshot is read from: the watches and counters their owners publish. Reading
/// never blocks an owner (a watch borrow is a short read lock, counters are atomics).
#[derive(Debug, Clone)]
pub struct HealthSources {
    pub session: watch::Receiver<SessionHealth>,
    pub tokens: watch::Receiver<TokenStatus>,
    pub stats: Arc<PipelineStats>,
    pub started_at: DateTime<Utc>,
    /// Settings the snapshot reports (database kind, limits, spool).
    pub fixed: FixedFacts,
}

/// The parts of a snapshot that come from the configuration (the app wiring fills them in).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixedFacts {
    /// `postgres` or `sqlite`.
    pub database_kind: &'static str,
    pub db_limit_bytes: u64,
    pub db_warn_percent: u8,
    pub buffer_max_rows: u64,
    pub spool_configured: bool,
    pub spool_max_bytes: u64,
    /// The Realtime message budget (computed once at startup).
    pub realtime_budget: Option<Budget>,
    /// `BACKFILL=on`.
    pub backfill_enabled: bool,
    /// Configured options and futures: no price history, not backfilled.
    pub backfill_skipped: Vec<String>,
}

impl HealthSources {
    /// Reads everything at `now`.
    pub fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        let s = &*self.stats;
        let get = PipelineStats::get;
        let time = PipelineStats::time;
        let measured_at = time(&s.database_measured_unix_ms);
        Snapshot {
            now,
            started_at: self.started_at,
            session: self.session.borrow().clone(),
            tokens: self.tokens.borrow().clone(),
            stream: StreamFacts {
                last_frame_at: time(&s.last_frame_unix_ms),
                last_update_at: time(&s.last_update_unix_ms),
                frames: get(&s.frames),
                updates: get(&s.updates),
                malformed_frames: get(&s.malformed_frames),
                items_refused: s.items_refused.iter().map(get).sum(),
                items_unsubscribed: s.items_unsubscribed.iter().map(get).sum(),
                times_clamped: get(&s.times_clamped),
                clock_skew_last_ms: s.clock_skew_last_ms.load(Relaxed),
                clock_skew_max_ms: s.clock_skew_max_ms.load(Relaxed),
                last_clamp_at: time(&s.last_clamp_unix_ms),
            },
            writer: WriterFacts {
                last_commit_at: time(&s.last_flush_unix_ms),
                last_commit_rows: get(&s.last_flush_rows),
                buffered_rows: get(&s.rows_buffered),
                buffer_max_rows: self.fixed.buffer_max_rows,
                rows_written: s.rows_written(),
                rows_dropped: get(&s.rows_dropped),
                last_drop_at: time(&s.last_drop_unix_ms),
                write_retries: get(&s.write_retries),
                failing_since: time(&s.write_failing_since_unix_ms),
                failed: s.writer_failed.load(Relaxed),
                refused: s.write_refused(),
                rows_quarantined: get(&s.rows_quarantined),
            },
            database: DatabaseFacts {
                kind: self.fixed.database_kind,
                size_bytes: measured_at.map(|_| get(&s.database_bytes)),
                budget: s.storage_budget(),
                measured_at,
                limit_bytes: self.fixed.db_limit_bytes,
                warn_percent: self.fixed.db_warn_percent,
            },
            spool: SpoolFacts {
                configured: self.fixed.spool_configured,
                usable: s.spool_usable.load(Relaxed),
                rows: get(&s.spool_rows),
                bytes: get(&s.spool_bytes),
                max_bytes: self.fixed.spool_max_bytes,
            },
            realtime: RealtimeFacts {
                budget: self.fixed.realtime_budget.clone(),
                sends: get(&s.realtime_sends),
                messages: get(&s.realtime_messages),
                quotes: get(&s.realtime_quotes),
                failures: get(&s.realtime_failures),
                pending: get(&s.realtime_pending),
                last_send_at: time(&s.realtime_last_send_unix_ms),
            },
            backfill: BackfillFacts {
                enabled: self.fixed.backfill_enabled,
                running: get(&s.backfill_running) > 0,
                pending: get(&s.backfill_pending),
                filled: get(&s.backfill_filled),
                given_up: get(&s.backfill_given_up),
                candles: get(&s.backfill_candles),
                requests: get(&s.backfill_requests),
                failures: get(&s.backfill_failures),
                last_error: s.backfill_last_error(),
                skipped_no_history: self.fixed.backfill_skipped.clone(),
            },
        }
    }
}
