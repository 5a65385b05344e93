//! Candle backfill: the one-minute candles of the equity chart symbols (`CHART_SYMBOLS`) that a
//! stream gap cost, and those missed while the service was stopped, fetched from REST
//! `pricehistory` ([`fetch`]) and stored in `equity_bars` marked `backfilled`.
//!
//! - **When**: each closed gap (the gap recorder forwards it after recording the `stream_gaps`
//!   row) and once at startup, from the newest stored candle of each symbol to now. Windows are
//!   clipped to Schwab's 48 days of one-minute history. Only in live and simulated modes, and
//!   only with `BACKFILL=on`.
//! - **Never delays streaming**: its own task, fed through a bounded channel
//!   ([`BACKFILL_CHANNEL_CAPACITY`]) with `try_send`; when it is full the window is logged and
//!   dropped (its `stream_gaps` row stays, so the hole is still known), the stream never waits.
//! - **Shares the REST budget**: every call goes through the service's one [`SchwabRest`] (its
//!   limiter keeps all REST calls together under Schwab's 120 a minute, and a 429 waits for
//!   `Retry-After`). A failed call is tried [`ATTEMPTS`] times with a growing pause, then the
//!   window is given up for that symbol (counted, and the error shown in `/health`): it never
//!   retries forever.
//! - **Where the rows go**: straight to the database ([`Database::insert_backfilled_bars`], an
//!   `INSERT … ON CONFLICT DO NOTHING` of its own, SQL in `crate::db::backfill`), not through
//!   the writer. The writer keeps sole ownership of its buffer and its exactly-once ledger of
//!   streamed batches; backfilled rows are idempotent (inserting them twice changes nothing), so
//!   they need neither, and a big refill never pushes streamed rows out of the buffer. A stored
//!   candle is never overwritten; a streamed candle arriving later for the same minute replaces
//!   a backfilled one through the writer's upsert and clears the mark.
//! - **Options and futures** have no price history at Schwab: they are never asked for; the
//!   skipped symbols are logged once at startup and listed in `/health`.

pub mod fetch;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::counters::PipelineStats;
use crate::db::Database;
use crate::schwab::rest::SchwabRest;
use crate::schwab::session::gaps::StreamGap;
use crate::schwab::token_manager::{TokenHandle, Want};
use fetch::FetchError;

/// Windows waiting to be refilled. Gaps are rare; if this fills (Schwab unreachable for long
/// while the connection flaps), further windows are logged and dropped, never blocking.
pub const BACKFILL_CHANNEL_CAPACITY: usize = 64;

/// Schwab keeps about 48 days of one-minute candles: older minutes are not asked for.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(48 * 24 * 3600);

/// Tries of one symbol's window before it is given up.
pub const ATTEMPTS: u32 = 4;

/// What to refill: every chart symbol's candles starting in `[from, to]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Per-symbol start instead of `from` (the startup refill: from each newest candle).
    pub from_per_symbol: Vec<(String, DateTime<Utc>)>,
    /// `gap` or `startup`, for logs.
    pub cause: &'static str,
}

impl Window {
    /// The window of a closed gap: from the start of the minute before the last frame (its
    /// candle may not have arrived yet) to the reconnect.
    pub fn of_gap(gap: &StreamGap) -> Self {
        let start = gap.start.timestamp_millis().div_euclid(60_000) * 60_000 - 60_000;
        Self {
            from: DateTime::from_timestamp_millis(start).unwrap_or(gap.start),
            to: gap.end.max(gap.start),
            from_per_symbol: Vec::new(),
            cause: "gap",
        }
    }
}

/// Queues `window` without waiting; a full queue logs and drops it (counted as given up).
pub fn request(tx: &mpsc::Sender<Window>, stats: &PipelineStats, window: Window) {
    match tx.try_send(window) {
        Ok(()) => {
            stats.backfill_pending.fetch_add(1, Relaxed);
        }
        Err(e) => {
            let w = match e {
                mpsc::error::TrySendError::Full(w) | mpsc::error::TrySendError::Closed(w) => w,
            };
            stats.backfill_given_up.fetch_add(1, Relaxed);
            tracing::warn!(from = %w.from, to = %w.to, cause = w.cause, "candle backfill queue full or stopped; these minutes stay missing (their stream_gaps row remains)");
        }
    }
}

/// Symbols `pricehistory` cannot serve among the configured ones: options, futures and
/// futures options (and any chart symbol shaped like one).
pub fn no_history_symbols(cfg: &crate::settings::Config) -> Vec<String> {
    let s = &cfg.symbols;
    s.options
        .iter()
        .chain(&s.futures)
        .chain(&s.futures_charts)
        .chain(&s.futures_options)
        .chain(s.charts.iter().filter(|c| !has_history(c)))
        .fold(Vec::new(), |mut all, sym| {
            if !all.contains(sym) {
                all.push(sym.clone());
            }
            all
        })
}

/// True for an equity or ETF symbol (no option's spaces, no futures `/` or `./` prefix).
pub fn has_history(symbol: &str) -> bool {
    !symbol.is_empty()
        && !symbol.contains(' ')
        && !symbol.starts_with('/')
        && !symbol.starts_with("./")
}

/// What the task works with.
pub struct BackfillParts {
    pub db: Arc<Database>,
    pub rest: Arc<SchwabRest>,
    pub tokens: TokenHandle,
    pub stats: Arc<PipelineStats>,
    /// The equity chart symbols (options and futures already left out).
    pub symbols: Vec<String>,
    /// Pause before the second try; doubled each time (capped at 30 s).
    pub retry_min: Duration,
}

/// The task's input and handle.
pub struct Backfill {
    pub tx: mpsc::Sender<Window>,
    pub task: JoinHandle<()>,
}

/// Starts the task; it ends when every sender is dropped (the service stopping: it is then
/// aborted, a half-done refill is harmless).
pub fn spawn(parts: BackfillParts) -> Backfill {
    let (tx, mut rx) = mpsc::channel::<Window>(BACKFILL_CHANNEL_CAPACITY);
    let task = tokio::spawn(async move {
        while let Some(window) = rx.recv().await {
            parts.stats.backfill_running.store(1, Relaxed);
            let ok = refill(&parts, &window).await;
            parts.stats.backfill_running.store(0, Relaxed);
            parts.stats.backfill_pending.fetch_sub(1, Relaxed);
            if ok {
                parts.stats.backfill_filled.fetch_add(1, Relaxed);
                // A complete window after a failed one: the backfill works again.
                parts.stats.set_backfill_last_error(None);
            } else {
                parts.stats.backfill_given_up.fetch_add(1, Relaxed);
            }
        }
    });
    Backfill { tx, task }
}

/// The startup window: from each symbol's newest stored candle to now (within 48 days);
/// `None` when no symbol has a stored candle (nothing to continue from).
pub async fn startup_window(db: &Database, symbols: &[String]) -> Option<Window> {
    let now = Utc::now();
    let oldest = now - chrono::Duration::from_std(HISTORY_WINDOW).ok()?;
    let newest = match db.newest_bar_starts(symbols).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the newest candles; no startup backfill");
            return None;
        }
    };
    if newest.is_empty() {
        return None;
    }
    let from_per_symbol: Vec<(String, DateTime<Utc>)> = newest
        .into_iter()
        .map(|(s, t)| (s, t.max(oldest)))
        .collect();
    let from = from_per_symbol.iter().map(|(_, t)| *t).min()?;
    Some(Window {
        from,
        to: now,
        from_per_symbol,
        cause: "startup",
    })
}

/// Refills one window for every symbol; true when no symbol was given up.
async fn refill(parts: &BackfillParts, window: &Window) -> bool {
    let oldest = window.to - chrono::Duration::from_std(HISTORY_WINDOW).unwrap_or_default();
    let mut all_ok = true;
    let mut written = 0;
    for symbol in &parts.symbols {
        let from = match &window.from_per_symbol[..] {
            [] => window.from,
            per => match per.iter().find(|(s, _)| s == symbol) {
                Some((_, t)) => *t,
                // No stored candle: nothing to continue from at startup.
                None => continue,
            },
        }
        .max(oldest);
        if from >= window.to {
            continue;
        }
        match refill_symbol(parts, symbol, from, window.to).await {
            Ok(n) => written += n,
            Err(e) => {
                all_ok = false;
                tracing::error!(symbol = %symbol, from = %from, to = %window.to, cause = window.cause, error = %e, "candle backfill gave up on this window; the minutes stay missing");
                parts
                    .stats
                    .set_backfill_last_error(Some(format!("{symbol}: {e}")));
            }
        }
    }
    tracing::info!(from = %window.from, to = %window.to, cause = window.cause, candles = written, symbols = parts.symbols.len(), "candle backfill done");
    all_ok
}

/// One symbol's window, tried up to [`ATTEMPTS`] times; the rows inserted.
async fn refill_symbol(
    parts: &BackfillParts,
    symbol: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, String> {
    let mut backoff = Backoff::new(parts.retry_min, Duration::from_secs(30));
    let mut want = Want::Valid;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(backoff.next_delay()).await;
        }
        let token = match parts.tokens.access(want).await {
            Ok(t) => t,
            Err(e) => {
                last = format!("no access token: {e}");
                continue;
            }
        };
        parts.stats.backfill_requests.fetch_add(1, Relaxed);
        let rows = match fetch::fetch(&parts.rest, &token.token, symbol, from, to).await {
            Ok(rows) => rows,
            Err(e) => {
                parts.stats.backfill_failures.fetch_add(1, Relaxed);
                if let FetchError::Unauthorized { .. } = e {
                    want = Want::NewerThan(token.generation);
                }
                last = e.to_string();
                tracing::warn!(symbol, attempt, error = %e, "pricehistory call failed");
                if e.retryable() {
                    continue;
                }
                return Err(last);
            }
        };
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| r.bar_start >= from && r.bar_start <= to)
            .collect();
        match parts.db.insert_backfilled_bars(&rows).await {
            Ok(n) => {
                parts.stats.backfill_candles.fetch_add(n, Relaxed);
                return Ok(n);
            }
            Err(e) => {
                last = e.to_string();
                tracing::warn!(symbol, attempt, error = %e, "cannot store backfilled candles");
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_equities_have_history() {
        assert!(has_history("AAPL"));
        assert!(has_history("BRK.B"));
        assert!(!has_history("MSFT  251219C00480000"));
        assert!(!has_history("/ES"));
        assert!(!has_history("./OZCZ27C565"));
        assert!(!has_history(""));
    }

    #[test]
    fn a_gap_window_starts_a_minute_before_the_last_frame() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        let gap = StreamGap {
            start: t("2026-01-05T15:04:30Z"),
            end: t("2026-01-05T15:09:10Z"),
            reason: "network_error".into(),
            detail: String::new(),
        };
        let w = Window::of_gap(&gap);
        assert_eq!(w.from, t("2026-01-05T15:03:00Z"));
        assert_eq!(w.to, gap.end);
    }

    #[test]
    fn a_full_queue_drops_without_waiting() {
        let (tx, _rx) = mpsc::channel(1);
        let stats = PipelineStats::default();
        let w = Window {
            from: Utc::now(),
            to: Utc::now(),
            from_per_symbol: Vec::new(),
            cause: "gap",
        };
        request(&tx, &stats, w.clone());
        request(&tx, &stats, w);
        assert_eq!(PipelineStats::get(&stats.backfill_pending), 1);
        assert_eq!(PipelineStats::get(&stats.backfill_given_up), 1);
    }
}
