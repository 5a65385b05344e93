//! The health judgement: a pure function of a [`Snapshot`], the market at the judged instant
//! and the [`HealthRules`], so every rule is unit-tested without servers or clocks.
//!
//! **down** (HTTP 503) when data is not reaching the database or will not:
//! - the writer stopped on a permanent database error;
//! - database writes have failed for longer than `HEALTH_DB_DOWN_AFTER` while rows wait;
//! - during the regular session, no Schwab frame for more than 2 × `STALL_TIMEOUT`;
//! - during the regular session, the stream needs a browser login;
//! - the service is stopping.
//!
//! **degraded** (HTTP 200) when it works but needs attention: database writes failing (for
//! less than that), the stream connecting or backing off, kicked by another login (code 12),
//! a login needed outside market hours (the next open would fail), tokens whose refresh
//! failed or is failing, the refresh token within 24 h of its end, the database at
//! `DB_SIZE_WARN_PERCENT` of its limit, rows dropped in the last 15 minutes, rows in the
//! disk spool, a configured spool that cannot be used, the write buffer over half full,
//! no frame for more than `STALL_TIMEOUT` or no market data for 10 minutes of open market.
//!
//! **ok** otherwise. Outside the regular session (nights, weekends, NYSE holidays, after an
//! early close; America/New_York) a silent stream is not an error.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::report::{
    BackfillSection, ClockSkewSection, DatabaseSection, HealthReport, MarketSection,
    RealtimeSection, ServiceSection, SpoolSection, Status, StreamSection, TokensSection,
    WriterSection,
};
use super::snapshot::Snapshot;
use crate::schwab::session::SessionState;
use crate::schwab::token_manager::TokenState;
use market_calendar::{MarketStatus, session_today};

/// The thresholds of the judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRules {
    /// `STALL_TIMEOUT`: a frame older than this while the market is open is `degraded`.
    pub stall_timeout: Duration,
    /// 2 × `STALL_TIMEOUT`: older than this while the market is open is `down`.
    pub stall_after: Duration,
    /// `HEALTH_DB_DOWN_AFTER`: failing writes turn `down` after this long.
    pub db_down_after: Duration,
    /// The refresh token's end is this close: `degraded` (24 h, as the token task warns).
    pub refresh_warning: Duration,
    /// Dropped rows count as recent for this long.
    pub drop_window: Duration,
    /// No market data for this long while the market has been open this long: `degraded`.
    pub no_updates_after: Duration,
}

impl HealthRules {
    /// The rules for the session's `STALL_TIMEOUT` and `HEALTH_DB_DOWN_AFTER`, with the fixed
    /// windows.
    pub fn new(stall_timeout: Duration, db_down_after: Duration) -> Self {
        Self {
            stall_timeout,
            stall_after: stall_timeout.saturating_mul(2),
            db_down_after,
            refresh_warning: Duration::from_secs(24 * 3600),
            drop_window: Duration::from_secs(15 * 60),
            no_updates_after: Duration::from_secs(10 * 60),
        }
    }
}

/// Collects reasons by severity.
#[derive(Default)]
pub(super) struct Verdict {
    pub(super) down: Vec<String>,
    pub(super) degraded: Vec<String>,
}

impl Verdict {
    fn status(&self) -> Status {
        if !self.down.is_empty() {
            Status::Down
        } else if !self.degraded.is_empty() {
            Status::Degraded
        } else {
            Status::Ok
        }
    }
}

/// Judges `snap` with the market as `market` describes it (normally `MarketStatus::at(snap.now)`).
pub fn judge(snap: &Snapshot, market: &MarketStatus, rules: &HealthRules) -> HealthReport {
    let mut v = Verdict::default();
    judge_writer(snap, rules, &mut v);
    judge_stream(snap, market, rules, &mut v);
    super::subscriptions::judge(snap, market, rules, &mut v);
    judge_tokens(snap, rules, &mut v);
    judge_storage(snap, &mut v);
    judge_realtime(snap, &mut v);
    let status = v.status();
    let mut reasons = v.down;
    reasons.extend(v.degraded);
    report(snap, market, rules, status, reasons)
}

fn judge_writer(snap: &Snapshot, rules: &HealthRules, v: &mut Verdict) {
    let w = &snap.writer;
    if w.failed {
        v.down.push(
            "the database writer stopped on a permanent error (see the log): fix the database or its schema, then start the service again"
                .into(),
        );
    }
    let waiting = w.buffered_rows + snap.spool.rows;
    if let Some(refusal) = &w.refused {
        // Not a network blip: nothing is written until the database accepts writes again.
        v.down.push(format!(
            "the database refuses writes; {waiting} row(s) kept ({} in memory, {} in the disk spool) and written once it accepts them again: {refusal}",
            w.buffered_rows, snap.spool.rows
        ));
    } else if let Some(since) = w.failing_since {
        let failing_for = age(snap.now, since);
        let text = format!(
            "database writes failing for {}, retrying; {waiting} row(s) waiting ({} in memory, {} in the disk spool): check that the database is up and reachable (the log has the error)",
            human(failing_for),
            w.buffered_rows,
            snap.spool.rows
        );
        if failing_for > rules.db_down_after && waiting > 0 {
            v.down.push(format!(
                "{text}; down after HEALTH_DB_DOWN_AFTER ({})",
                human(rules.db_down_after)
            ));
        } else {
            v.degraded.push(text);
        }
    }
    if let Some(at) = w.last_drop_at
        && age(snap.now, at) <= rules.drop_window
    {
        v.degraded.push(format!(
            "{} row(s) dropped in all, the last {} ago (write buffer full without a usable spool, or the spool at SPOOL_MAX_BYTES): get the database writing, fix SPOOL_DIR, or raise BUFFER_MAX_ROWS / SPOOL_MAX_BYTES",
            w.rows_dropped,
            human(age(snap.now, at))
        ));
    }
    if w.buffer_max_rows > 0 && w.buffered_rows * 2 > w.buffer_max_rows {
        v.degraded.push(format!(
            "write buffer {}% full ({} of BUFFER_MAX_ROWS {}): the database is not keeping up",
            w.buffered_rows * 100 / w.buffer_max_rows,
            w.buffered_rows,
            w.buffer_max_rows
        ));
    }
}

fn judge_stream(snap: &Snapshot, market: &MarketStatus, rules: &HealthRules, v: &mut Verdict) {
    let s = &snap.session;
    let open = market.open;
    match s.state {
        SessionState::Streaming => {}
        SessionState::Starting | SessionState::Connecting => v.degraded.push(format!(
            "stream {}: {}",
            stream_state(s.state),
            s.detail
        )),
        SessionState::Reconnecting => v
            .degraded
            .push(format!("stream backing off before reconnecting: {}", s.detail)),
        SessionState::Kicked => v.degraded.push(format!(
            "stream kicked by another login (code 12): {}; run only one streaming app per Schwab user",
            s.detail
        )),
        SessionState::NeedsLogin if open => v.down.push(format!(
            "a browser login is needed (run `market-streamer login`), no data while the market is open: {}",
            s.detail
        )),
        SessionState::NeedsLogin => v.degraded.push(format!(
            "a browser login is needed before the next open{} (run `market-streamer login`): {}",
            market
                .next_open
                .map(|t| format!(" ({})", instant(t)))
                .unwrap_or_default(),
            s.detail
        )),
        SessionState::Stopped => v.down.push(format!("the service is stopping: {}", s.detail)),
    }
    if !open {
        return; // silence is not an error outside the regular session
    }
    // Before the first frame, the service's start is the reference.
    let frame_ref = snap.stream.last_frame_at.unwrap_or(snap.started_at);
    let silent = age(snap.now, frame_ref);
    let what = if snap.stream.last_frame_at.is_some() {
        "no frame from Schwab for"
    } else {
        "no frame from Schwab since the start,"
    };
    if silent > rules.stall_after && s.state != SessionState::NeedsLogin {
        v.down.push(format!(
            "{what} {} during the regular session (down after 2 x STALL_TIMEOUT = {}); stream {}",
            human(silent),
            human(rules.stall_after),
            stream_state(s.state)
        ));
    } else if silent > rules.stall_timeout && s.state == SessionState::Streaming {
        v.degraded.push(format!(
            "{what} {} during the regular session (STALL_TIMEOUT {})",
            human(silent),
            human(rules.stall_timeout)
        ));
    }
    let open_for = session_today(market.at)
        .map(|t| age(market.at, t.open))
        .unwrap_or_default();
    let update_ref = snap.stream.last_update_at.unwrap_or(snap.started_at);
    let quiet = age(snap.now, update_ref);
    if s.state == SessionState::Streaming
        && open_for > rules.no_updates_after
        && quiet > rules.no_updates_after
    {
        v.degraded.push(format!(
            "no market data for {} while the market is open (frames do arrive): check SYMBOLS and the subscription answers in the log",
            human(quiet)
        ));
    }
}

fn judge_tokens(snap: &Snapshot, rules: &HealthRules, v: &mut Verdict) {
    let t = &snap.tokens;
    let session_needs_login = snap.session.state == SessionState::NeedsLogin;
    match t.state {
        TokenState::NeedsLogin if !session_needs_login => v.degraded.push(format!(
            "the tokens need a browser login; the stream keeps going until its connection ends: {}",
            t.detail
        )),
        TokenState::RefreshFailing => v
            .degraded
            .push(format!("token refresh failing, retrying: {}", t.detail)),
        _ => {}
    }
    if t.state != TokenState::NeedsLogin
        && let Some(end) = t.refresh_expires_at
        && end > snap.now
        && age(end, snap.now) <= rules.refresh_warning
    {
        v.degraded.push(format!(
            "the refresh token ends in {} ({}): run `market-streamer login` before then",
            human(age(end, snap.now)),
            instant(end)
        ));
    }
    if matches!(t.state, TokenState::Valid | TokenState::ExpiringSoon)
        && let Some(end) = t.access_expires_at
        && end <= snap.now
    {
        v.degraded.push(format!(
            "the access token expired {} ago and has not been refreshed yet",
            human(age(snap.now, end))
        ));
    }
}

fn judge_storage(snap: &Snapshot, v: &mut Verdict) {
    let d = &snap.database;
    if near_limit(snap) {
        v.degraded.push(format!(
            "database size {} MB is at least DB_SIZE_WARN_PERCENT ({}%) of DB_SIZE_LIMIT_MB ({} MB): lower TICK_RETENTION_DAYS, trim SYMBOLS, or raise the limit (upgrade the plan)",
            d.size_bytes.unwrap_or_default() / (1024 * 1024),
            d.warn_percent,
            d.limit_bytes / (1024 * 1024)
        ));
    }
    if let Some(b) = d.budget.filter(|b| !b.fits) {
        v.degraded.push(format!(
            "TICK_RETENTION_DAYS ({}) does not fit: at {} rows a day of about {} bytes, {} days fit under DB_SIZE_GUARD_PERCENT of DB_SIZE_LIMIT_MB, so the size guard will remove the oldest days: lower TICK_RETENTION_DAYS, trim SYMBOLS, or raise DB_SIZE_LIMIT_MB (a bigger plan)",
            b.retention_days,
            b.rows_per_day,
            b.bytes_per_row,
            b.days_that_fit.unwrap_or_default()
        ));
    }
    let sp = &snap.spool;
    if sp.rows > 0 && snap.writer.failing_since.is_none() {
        v.degraded.push(format!(
            "{} row(s) in the disk spool are being written to the database",
            sp.rows
        ));
    }
    if sp.configured && !sp.usable && snap.session.state != SessionState::Starting {
        v.degraded.push(
            "the disk spool (SPOOL_DIR) cannot be used (see the log): during a database outage rows are kept in memory only"
                .into(),
        );
    }
}

/// Not a single viewer fits the plan's Realtime quota: the front end would be cut off. (A few
/// viewers fitting is only the budget's `warning`.)
fn judge_realtime(snap: &Snapshot, v: &mut Verdict) {
    if let Some(b) = &snap.realtime.budget
        && b.viewers_fit == 0
        && let Some(warning) = &b.warning
    {
        v.degraded
            .push(format!("Realtime message budget exceeded: {warning}"));
    }
}

fn near_limit(snap: &Snapshot) -> bool {
    let d = &snap.database;
    d.size_bytes.is_some_and(|size| {
        d.limit_bytes > 0 && size >= d.limit_bytes / 100 * u64::from(d.warn_percent)
    })
}

fn report(
    snap: &Snapshot,
    market: &MarketStatus,
    rules: &HealthRules,
    status: Status,
    reasons: Vec<String>,
) -> HealthReport {
    let now = snap.now;
    let secs_since = |t: Option<DateTime<Utc>>| t.map(|t| signed_secs(now, t));
    let secs_until = |t: Option<DateTime<Utc>>| t.map(|t| signed_secs(t, now));
    let s = &snap.session;
    let w = &snap.writer;
    let d = &snap.database;
    let t = &snap.tokens;
    HealthReport {
        status,
        reasons,
        checked_at: now,
        service: ServiceSection {
            version: env!("CARGO_PKG_VERSION"),
            started_at: snap.started_at,
            uptime_secs: signed_secs(now, snap.started_at).max(0.0),
        },
        stream: StreamSection {
            state: stream_state(s.state),
            session_state: s.state.as_str(),
            since: s.since,
            detail: s.detail.clone(),
            last_frame_at: snap.stream.last_frame_at,
            last_frame_age_secs: secs_since(snap.stream.last_frame_at).map(|x| x.max(0.0)),
            last_update_at: snap.stream.last_update_at,
            last_update_age_secs: secs_since(snap.stream.last_update_at).map(|x| x.max(0.0)),
            stall_after_secs: rules.stall_after.as_secs_f64(),
            frames: snap.stream.frames,
            updates: snap.stream.updates,
            malformed_frames: snap.stream.malformed_frames,
            items_refused: snap.stream.items_refused,
            items_unsubscribed: snap.stream.items_unsubscribed,
            times_clamped: snap.stream.times_clamped,
            clock_skew: ClockSkewSection::new(
                snap.stream.times_clamped,
                snap.stream.clock_skew_last_ms,
                snap.stream.clock_skew_max_ms,
                snap.stream.last_clamp_at,
            ),
            connects: s.connects,
            gaps: s.gaps,
            last_close: s.last_close.clone(),
            subscriptions: super::subscriptions::reports(snap),
            silences: s.silences,
        },
        writer: WriterSection {
            last_commit_at: w.last_commit_at,
            last_commit_age_secs: secs_since(w.last_commit_at).map(|x| x.max(0.0)),
            last_commit_rows: w.last_commit_rows,
            buffered_rows: w.buffered_rows,
            buffer_max_rows: w.buffer_max_rows,
            unwritten_rows: w.buffered_rows + snap.spool.rows,
            rows_written: w.rows_written,
            rows_dropped: w.rows_dropped,
            last_drop_at: w.last_drop_at,
            write_retries: w.write_retries,
            failing_since: w.failing_since,
            failing_for_secs: secs_since(w.failing_since).map(|x| x.max(0.0)),
            failed: w.failed,
            refusing_writes: w.refused.clone(),
            rows_quarantined: w.rows_quarantined,
        },
        market: MarketSection {
            summary: market.summary(),
            status: market.clone(),
        },
        tokens: TokensSection {
            state: t.state.as_str(),
            detail: t.detail.clone(),
            access_expires_at: t.access_expires_at,
            access_expires_in_secs: secs_until(t.access_expires_at),
            refresh_expires_at: t.refresh_expires_at,
            refresh_expires_in_secs: secs_until(t.refresh_expires_at),
            last_refresh_at: t.last_refresh_at,
        },
        database: DatabaseSection {
            kind: d.kind,
            size_bytes: d.size_bytes,
            measured_at: d.measured_at,
            limit_bytes: d.limit_bytes,
            used_percent: d
                .size_bytes
                .filter(|_| d.limit_bytes > 0)
                .map(|b| (b as f64 * 1000.0 / d.limit_bytes as f64).round() / 10.0),
            warn_percent: d.warn_percent,
            near_limit: near_limit(snap),
            writes_failing: w.failing_since.is_some(),
            budget: d.budget,
        },
        spool: SpoolSection {
            enabled: snap.spool.configured,
            usable: snap.spool.usable,
            rows: snap.spool.rows,
            bytes: snap.spool.bytes,
            max_bytes: snap.spool.max_bytes,
        },
        realtime: RealtimeSection {
            budget: snap.realtime.budget.clone(),
            sends: snap.realtime.sends,
            messages_sent: snap.realtime.messages,
            quotes_sent: snap.realtime.quotes,
            failures: snap.realtime.failures,
            pending_tickers: snap.realtime.pending,
            last_send_at: snap.realtime.last_send_at,
            last_send_age_secs: secs_since(snap.realtime.last_send_at).map(|x| x.max(0.0)),
        },
        backfill: backfill_section(&snap.backfill),
    }
}

/// The backfill section (informational: it does not change the verdict, the gaps are in
/// `stream_gaps` either way).
fn backfill_section(b: &crate::health::BackfillFacts) -> BackfillSection {
    let state = if !b.enabled {
        "off"
    } else if b.running || b.pending > 0 {
        "running"
    } else if b.given_up > 0 && b.last_error.is_some() {
        "failing"
    } else {
        "idle"
    };
    BackfillSection {
        state,
        gaps_pending: b.pending,
        gaps_filled: b.filled,
        gaps_given_up: b.given_up,
        candles_written: b.candles,
        requests: b.requests,
        failures: b.failures,
        last_error: b.last_error.clone(),
        skipped_no_history: b.skipped_no_history.clone(),
    }
}

/// The stream state in the words of the health API.
pub fn stream_state(state: SessionState) -> &'static str {
    match state {
        SessionState::Starting => "starting",
        SessionState::Connecting => "logging_in",
        SessionState::Streaming => "connected",
        SessionState::Reconnecting => "backing_off",
        SessionState::Kicked => "kicked",
        SessionState::NeedsLogin => "needs_login",
        SessionState::Stopped => "stopped",
    }
}

/// `later - earlier`, zero when negative.
pub(super) fn age(later: DateTime<Utc>, earlier: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}

/// `later - earlier` in seconds (negative when `later` is earlier), to the millisecond.
pub(super) fn signed_secs(later: DateTime<Utc>, earlier: DateTime<Utc>) -> f64 {
    (later - earlier).num_milliseconds() as f64 / 1000.0
}

/// An instant as `2025-01-08T14:59:30Z`.
fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration for people: `4.2 s`, `3 min 5 s`, `2 h 10 min`, `1 d 4 h`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match s {
        0..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => pair(s / 60, "min", s % 60, "s"),
        3600..86_400 => pair(s / 3600, "h", s % 3600 / 60, "min"),
        _ => pair(s / 86_400, "d", s % 86_400 / 3600, "h"),
    }
}
