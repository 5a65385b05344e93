//! The `/health` JSON body. `health_check --url` reads `status`, `stream.state`,
//! `stream.last_frame_age_secs`, `writer.last_commit_age_secs`, `writer.buffered_rows` and
//! `reasons`; every other field is for people and monitors. No token, secret or password is
//! ever part of it (token *expiry times* are).

use chrono::{DateTime, Utc};
use serde::Serialize;

use market_calendar::MarketStatus;

use crate::realtime::Budget;

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Streaming and writing as expected (or quiet because the market is closed).
    Ok,
    /// Working, but something needs attention soon (HTTP 200).
    Degraded,
    /// Data is not reaching the database, or will not (HTTP 503).
    Down,
}

impl Status {
    /// `ok`, `degraded` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    /// The HTTP status code of `/health`: 200 for ok and degraded, 503 for down.
    pub fn http_code(self) -> u16 {
        match self {
            Self::Ok | Self::Degraded => 200,
            Self::Down => 503,
        }
    }
}

/// The whole `/health` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub status: Status,
    /// One sentence per problem, worst first, each saying what to do; empty when `ok`.
    pub reasons: Vec<String>,
    pub checked_at: DateTime<Utc>,
    pub service: ServiceSection,
    pub stream: StreamSection,
    pub writer: WriterSection,
    pub market: MarketSection,
    pub tokens: TokensSection,
    pub database: DatabaseSection,
    pub spool: SpoolSection,
    pub realtime: RealtimeSection,
    pub backfill: BackfillSection,
}

/// The candle backfill: one-minute candles refilled from REST `pricehistory` after gaps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillSection {
    /// `off` (BACKFILL=off), `idle`, `running`, or `failing` (the newest finished window gave
    /// up on a symbol: some minutes could not be refilled; a later complete window clears it).
    pub state: &'static str,
    /// Gaps (and the startup refill) waiting or being refilled.
    pub gaps_pending: u64,
    /// Gaps refilled for every symbol.
    pub gaps_filled: u64,
    /// Gaps given up for at least one symbol (every try failed, or the queue was full).
    pub gaps_given_up: u64,
    /// Candles inserted into `equity_bars` marked `backfilled`.
    pub candles_written: u64,
    /// `pricehistory` calls made, and how many failed.
    pub requests: u64,
    pub failures: u64,
    /// The error of the newest window that gave up (cleared by a later complete window).
    pub last_error: Option<String>,
    /// Configured options and futures: Schwab has no price history for them, they are never
    /// asked for.
    pub skipped_no_history: Vec<String>,
}

/// The process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSection {
    pub version: &'static str,
    pub started_at: DateTime<Utc>,
    pub uptime_secs: f64,
}

/// The Schwab stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamSection {
    /// `starting`, `logging_in`, `connected`, `backing_off`, `kicked` (code 12: another
    /// login took the streamer), `needs_login`, `stopped`.
    pub state: &'static str,
    /// The supervisor's own name of the state (`streaming`, `reconnecting`, …).
    pub session_state: &'static str,
    /// Since when the state holds.
    pub since: DateTime<Utc>,
    /// Why, and what to do, in one sentence.
    pub detail: String,
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Seconds since the last Schwab frame (data, response or heartbeat); `null` before the first.
    pub last_frame_age_secs: Option<f64>,
    pub last_update_at: Option<DateTime<Utc>>,
    /// Seconds since the last market-data update (quote or candle).
    pub last_update_age_secs: Option<f64>,
    /// Frame age past which the stream counts as stalled while the market is open
    /// (2 × `STALL_TIMEOUT`).
    pub stall_after_secs: f64,
    pub frames: u64,
    pub updates: u64,
    pub malformed_frames: u64,
    /// Stream items refused by the sanity limits (bad key or implausible time; by reason in
    /// `market_streamer_items_refused_total`).
    pub items_refused: u64,
    /// Stream items ignored because their service did not subscribe their key (by service in
    /// `market_streamer_items_unsubscribed_total`); nothing is stored for them.
    pub items_unsubscribed: u64,
    /// Stream items whose times lay more than `CLOCK_SKEW_TOLERANCE` ahead of the receive
    /// time and were clamped to it (`market_streamer_times_clamped_total`).
    pub times_clamped: u64,
    /// Once a time was clamped: Schwab's clock and ours disagree, by how much, and what to do.
    pub clock_skew: Option<ClockSkewSection>,
    /// Connections opened since the start.
    pub connects: u64,
    /// Interruptions recorded in `stream_gaps`.
    pub gaps: u64,
    /// How the last connection ended.
    pub last_close: Option<String>,
    /// Every subscription: state, keys, Schwab's code, last data.
    pub subscriptions: Vec<super::subscriptions::SubscriptionReport>,
    /// Silent services that delivered again after being subscribed again.
    pub silences: u64,
}

/// Schwab's clock against ours, once a stream time had to be clamped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockSkewSection {
    /// How far ahead the last clamped time lay (seconds).
    pub last_skew_secs: f64,
    /// The largest skew seen since the start (seconds).
    pub largest_skew_secs: f64,
    pub last_clamped_at: Option<DateTime<Utc>>,
    /// One sentence: the disagreement and what to do.
    pub note: String,
}

impl ClockSkewSection {
    /// The section for `clamped` items with these skews (ms); `None` before the first clamp.
    pub fn new(
        clamped: u64,
        last_ms: i64,
        largest_ms: i64,
        at: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        if clamped == 0 {
            return None;
        }
        let (last, largest) = (last_ms as f64 / 1000.0, largest_ms as f64 / 1000.0);
        Some(Self {
            last_skew_secs: last,
            largest_skew_secs: largest,
            last_clamped_at: at,
            note: format!(
                "Schwab's clock and ours disagree: {clamped} stream time(s) lay more than CLOCK_SKEW_TOLERANCE ahead of the receive time (last {last:.1} s, largest {largest:.1} s ahead) and were clamped to it; check NTP on the box (timedatectl status, chronyc tracking)"
            ),
        })
    }
}

/// The database writer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriterSection {
    pub last_commit_at: Option<DateTime<Utc>>,
    /// Seconds since the last committed write; `null` before the first.
    pub last_commit_age_secs: Option<f64>,
    pub last_commit_rows: u64,
    /// Rows in memory not yet written.
    pub buffered_rows: u64,
    pub buffer_max_rows: u64,
    /// Rows not yet written, in memory and in the disk spool.
    pub unwritten_rows: u64,
    pub rows_written: u64,
    pub rows_dropped: u64,
    pub last_drop_at: Option<DateTime<Utc>>,
    pub write_retries: u64,
    /// Since when writes fail (`null`: they work).
    pub failing_since: Option<DateTime<Utc>>,
    pub failing_for_secs: Option<f64>,
    /// The writer stopped on a permanent error.
    pub failed: bool,
    /// While the database refuses writes (read-only mode, disk full): why, and what to do.
    pub refusing_writes: Option<String>,
    /// Rows the database rejected for their data, kept in the quarantine (`rejected_rows`,
    /// or `rejected_rows.jsonl` next to the spool folder).
    pub rows_quarantined: u64,
}

/// The US equity market at the judged instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketSection {
    /// `at`, `phase`, `open`, `new_york_date`, `closed_reason`, `early_close`, `closes_at`,
    /// `next_open`, `last_close`.
    #[serde(flatten)]
    pub status: MarketStatus,
    /// One line, e.g. `market open, regular session until 16:00 ET`.
    pub summary: String,
}

/// Token expiry (never the tokens).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokensSection {
    /// `starting`, `valid`, `expiring_soon`, `refresh_failing`, `needs_login`.
    pub state: &'static str,
    pub detail: String,
    pub access_expires_at: Option<DateTime<Utc>>,
    /// Negative once expired.
    pub access_expires_in_secs: Option<f64>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Negative once expired; a new browser login is needed before it reaches 0.
    pub refresh_expires_in_secs: Option<f64>,
    pub last_refresh_at: Option<DateTime<Utc>>,
}

/// The database's size against `DB_SIZE_LIMIT_MB`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseSection {
    /// `postgres` or `sqlite`.
    pub kind: &'static str,
    /// At the last retention pass (`MAINTENANCE_INTERVAL`); `null` before the first.
    pub size_bytes: Option<u64>,
    pub measured_at: Option<DateTime<Utc>>,
    pub limit_bytes: u64,
    pub used_percent: Option<f64>,
    pub warn_percent: u8,
    /// At or over `DB_SIZE_WARN_PERCENT` of the limit.
    pub near_limit: bool,
    /// Writes are failing right now.
    pub writes_failing: bool,
    /// Days of ticks that fit under the size guard at the measured rate, against
    /// `TICK_RETENTION_DAYS`; `null` before the first maintenance pass.
    pub budget: Option<crate::storage_budget::StorageBudget>,
}

/// The disk spool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpoolSection {
    /// `SPOOL_DIR` is set.
    pub enabled: bool,
    /// Opened and usable.
    pub usable: bool,
    pub rows: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

/// Supabase Realtime: the message budget and what the live cadence sent (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealtimeSection {
    /// The estimated messages per month per viewer for `REALTIME_MODE`, `REALTIME_INTERVAL`
    /// and `SYMBOLS` against `REALTIME_PLAN`, how many viewers fit, and what to change when few
    /// do (`warning`). `null` when not computed.
    pub budget: Option<Budget>,
    /// Realtime transactions sent by the live cadence (at most one per `REALTIME_INTERVAL`).
    pub sends: u64,
    /// `realtime.send` messages in them (more than one per send when a payload was split).
    pub messages_sent: u64,
    /// Ticker quotes they carried.
    pub quotes_sent: u64,
    /// Failed attempts (retried at the next tick).
    pub failures: u64,
    /// Tickers with a committed row not yet sent.
    pub pending_tickers: u64,
    pub last_send_at: Option<DateTime<Utc>>,
    pub last_send_age_secs: Option<f64>,
}
