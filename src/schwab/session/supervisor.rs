//! The reconnect loop: keeps one streamer session alive until the service stops.
//!
//! Every (re)connect asks the token task for a token (a newly refreshed one on reconnects),
//! fetches `userPreference` again, and replays every subscription. Between attempts:
//!
//! - capped exponential backoff with full jitter (`RECONNECT_BACKOFF_MIN/MAX`), reset once a
//!   connection has streamed for a healthy minute;
//! - code 3 (LOGIN denied): a newer token and a retry, at most `login_denied_retries` times in
//!   a row, then `needs_login`;
//! - code 12 (another login took the single streamer slot): no fight; `KICKED_BACKOFF`
//!   (minutes) and state `kicked`;
//! - no usable tokens: state `needs_login` until the token task has new ones (a `login`).
//!
//! Each interruption of a streaming session becomes one `stream_gaps` row (last frame →
//! streaming again), sent to the gap recorder. The state is published in a `watch` of
//! [`SessionHealth`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::changes::{KeysAnswer, SubscriptionChange};
use super::connection::ConnectionEvent;
use super::connection::{
    CloseReason, ConnectionPlan, ConnectionSettings, FrameSink, run_connection, stopped,
};
use super::gaps::{StreamGap, send_gap};
use super::protocol::Subscription;
use super::recorder::FrameRecorder;
use super::subscriptions::SubscriptionStatus;
use crate::backoff::Backoff;
use crate::schwab::downstream::FrameConsumer;
use crate::schwab::preferences::{PreferenceError, fetch_streamer_info};
use crate::schwab::rest::SchwabRest;
use crate::schwab::token_manager::{TokenError, TokenHandle, TokenState, Want};

/// Timings of the reconnect loop.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    pub connection: ConnectionSettings,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Wait after code 12.
    pub kicked_backoff: Duration,
    /// Longest wait for a new login before trying again anyway.
    pub needs_login_retry: Duration,
    /// A connection that streamed this long resets the backoff.
    pub healthy_after: Duration,
    /// Code 3 answers in a row (each with a newer token) before `needs_login`.
    pub login_denied_retries: u32,
}

impl SupervisorSettings {
    /// The configurable timings (`connection`, the reconnect backoff `[min, max]`,
    /// `KICKED_BACKOFF`, `NEEDS_LOGIN_RETRY`), with the fixed ones of the spec: a minute of
    /// streaming resets the backoff, three LOGIN denials in a row mean `needs_login`.
    pub fn new(
        connection: ConnectionSettings,
        [backoff_min, backoff_max]: [Duration; 2],
        kicked_backoff: Duration,
        needs_login_retry: Duration,
    ) -> Self {
        Self {
            connection,
            backoff_min,
            backoff_max,
            kicked_backoff,
            needs_login_retry,
            healthy_after: Duration::from_secs(60),
            login_denied_retries: 3,
        }
    }
}

/// What the session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Starting,
    /// Getting a token and `userPreference`, connecting, logging in, subscribing.
    Connecting,
    /// Subscribed and receiving frames.
    Streaming,
    /// Waiting (backoff) before the next connect.
    Reconnecting,
    /// Code 12: another login holds the single streamer slot; waiting `KICKED_BACKOFF`.
    Kicked,
    /// A browser login is needed (`market-streamer login`).
    NeedsLogin,
    Stopped,
}

impl SessionState {
    /// The state's name for health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Connecting => "connecting",
            Self::Streaming => "streaming",
            Self::Reconnecting => "reconnecting",
            Self::Kicked => "kicked",
            Self::NeedsLogin => "needs_login",
            Self::Stopped => "stopped",
        }
    }
}

/// The session health others read (the /health endpoint, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHealth {
    pub state: SessionState,
    pub since: DateTime<Utc>,
    /// Why, and what to do, in one sentence.
    pub detail: String,
    /// Connections opened so far.
    pub connects: u64,
    /// Times a session reached the streaming state.
    pub sessions_streamed: u64,
    /// Gaps handed to the recorder.
    pub gaps: u64,
    /// How the last connection ended.
    pub last_close: Option<String>,
    /// Reconnects (waits before another connect) by reason: a `stream_gaps` reason of the
    /// connection that ended (`stall`, `network_error`, `kicked`, …), or `needs_login`,
    /// `token_unavailable`, `streamer_info` when no connection could be opened.
    pub reconnects: BTreeMap<&'static str, u64>,
    /// Every subscription of the current (or last) connection, in the order sent.
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Services made silent-then-active again by a resubscribe (each also a gap row).
    pub silences: u64,
}

impl SessionHealth {
    /// The initial health.
    pub fn starting() -> Self {
        Self {
            state: SessionState::Starting,
            since: Utc::now(),
            detail: "starting".into(),
            connects: 0,
            sessions_streamed: 0,
            gaps: 0,
            last_close: None,
            reconnects: BTreeMap::new(),
            subscriptions: Vec::new(),
            silences: 0,
        }
    }
}

/// What the session loop works with.
pub struct SessionParts {
    pub tokens: TokenHandle,
    pub rest: Arc<SchwabRest>,
    pub subscriptions: Vec<Subscription>,
    pub settings: SupervisorSettings,
    pub gaps: mpsc::Sender<StreamGap>,
    pub health: watch::Sender<SessionHealth>,
    /// Subscription changes while running (the watchlist), and where Schwab's answers for
    /// keys go; `None` without a watchlist.
    pub changes: Option<SubscriptionControl>,
}

/// The watchlist's two channels into and out of the session.
#[derive(Debug)]
pub struct SubscriptionControl {
    pub changes: mpsc::Receiver<SubscriptionChange>,
    /// Full: the answer is dropped with a warning (the watchlist re-reads and asks again).
    pub answers: mpsc::Sender<KeysAnswer>,
}

/// Where the frames go: downstream, and the optional recorder.
pub struct SessionOutput<'a, C: FrameConsumer> {
    pub consumer: &'a mut C,
    pub recorder: Option<&'a mut FrameRecorder>,
}

/// Data missing since `start`, not yet closed by a streaming session.
struct OpenGap {
    start: DateTime<Utc>,
    reason: &'static str,
    detail: String,
}

/// Runs sessions until `stop` is set or the writer stops. Returns how the last one ended.
pub async fn run_session(
    parts: SessionParts,
    out: SessionOutput<'_, impl FrameConsumer>,
    mut stop: watch::Receiver<bool>,
) -> CloseReason {
    let SessionParts {
        tokens,
        rest,
        mut subscriptions,
        settings,
        gaps,
        health,
        changes,
    } = parts;
    let (mut changes, answers) = match changes {
        Some(c) => (Some(c.changes), Some(c.answers)),
        None => (None, None),
    };
    let SessionOutput {
        consumer,
        mut recorder,
    } = out;
    let count_reconnect = |reason: &'static str| {
        health.send_modify(|h| *h.reconnects.entry(reason).or_insert(0) += 1);
    };
    let set = |state: SessionState, detail: String| {
        health.send_modify(|h| {
            if h.state != state {
                h.since = Utc::now();
            }
            h.state = state;
            h.detail = detail;
        });
    };
    let mut backoff = Backoff::full_jitter(settings.backoff_min, settings.backoff_max);
    let mut open_gap: Option<OpenGap> = None;
    let mut denied = 0u32;
    let mut want = Want::Valid;
    let mut status = tokens.status();

    let end = loop {
        if *stop.borrow() {
            break CloseReason::Shutdown;
        }
        set(
            SessionState::Connecting,
            "getting a token and userPreference, connecting".into(),
        );
        let token = tokio::select! {
            r = tokens.access(want) => r,
            _ = stopped(&mut stop) => break CloseReason::Shutdown,
        };
        let token = match token {
            Ok(t) => t,
            Err(TokenError::NeedsLogin(reason)) => {
                let reason = if reason.contains("market-streamer login") {
                    reason
                } else {
                    format!("{reason}; run `market-streamer login`")
                };
                tracing::error!(reason = %reason, "streaming paused until `market-streamer login` writes new tokens");
                count_reconnect("needs_login");
                set(SessionState::NeedsLogin, reason);
                wait_for_new_tokens(&mut status, settings.needs_login_retry, &mut stop).await;
                want = Want::Valid;
                continue;
            }
            Err(TokenError::Unavailable(reason)) => {
                let wait = backoff.next_delay();
                tracing::warn!(reason = %reason, retry_in = ?wait, "no access token for the streamer yet");
                count_reconnect("token_unavailable");
                set(SessionState::Reconnecting, reason);
                if sleep_or_stop(wait, &mut stop).await {
                    break CloseReason::Shutdown;
                }
                continue;
            }
            Err(TokenError::Stopped) => break CloseReason::Shutdown,
        };
        let info = tokio::select! {
            r = fetch_streamer_info(&rest, &token.token) => r,
            _ = stopped(&mut stop) => break CloseReason::Shutdown,
        };
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                if matches!(e, PreferenceError::Unauthorized { .. }) {
                    want = Want::NewerThan(token.generation);
                }
                let wait = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?wait, "cannot get the streamer info");
                count_reconnect("streamer_info");
                set(SessionState::Reconnecting, e.to_string());
                if sleep_or_stop(wait, &mut stop).await {
                    break CloseReason::Shutdown;
                }
                continue;
            }
        };

        health.send_modify(|h| h.connects += 1);
        let previous = health.borrow().subscriptions.clone();
        let report = {
            let mut on_streaming = |at: DateTime<Utc>| {
                if let Some(gap) = open_gap.take() {
                    tracing::info!(gap_start = %gap.start, gap_end = %at, reason = gap.reason, "stream resumed; gap recorded");
                    send_gap(
                        &gaps,
                        StreamGap {
                            start: gap.start,
                            end: at,
                            reason: gap.reason.to_string(),
                            detail: gap.detail,
                        },
                    );
                    health.send_modify(|h| h.gaps += 1);
                }
                health.send_modify(|h| {
                    h.sessions_streamed += 1;
                    h.state = SessionState::Streaming;
                    h.since = at;
                    h.detail = streaming_detail(&h.subscriptions);
                });
                tracing::info!(subscriptions = subscriptions.len(), "streaming");
            };
            let mut events = |event: ConnectionEvent| match event {
                ConnectionEvent::Streaming(at) => on_streaming(at),
                ConnectionEvent::Subscriptions(statuses) => health.send_modify(|h| {
                    h.subscriptions = statuses;
                    if h.state == SessionState::Streaming {
                        h.detail = streaming_detail(&h.subscriptions);
                    }
                }),
                ConnectionEvent::ServiceGap(ended) => {
                    send_gap(
                        &gaps,
                        StreamGap {
                            start: ended.start,
                            end: ended.end,
                            reason: "service_silent".into(),
                            detail: format!(
                                "{} delivered no data while its market was open; subscribed again on the same connection",
                                ended.service.wire_name()
                            ),
                        },
                    );
                    health.send_modify(|h| {
                        h.gaps += 1;
                        h.silences += 1;
                    });
                }
                ConnectionEvent::Keys(answer) => {
                    if let Some(tx) = &answers
                        && tx.try_send(answer).is_err()
                    {
                        tracing::warn!(
                            "the watchlist is behind; a subscription answer was dropped (it re-reads the table and asks again)"
                        );
                    }
                }
            };
            let mut sink = FrameSink {
                consumer: &mut *consumer,
                recorder: recorder.as_deref_mut(),
            };
            let plan = ConnectionPlan {
                info: &info,
                access_token: &token.token,
                subscriptions: &subscriptions,
                previous: &previous,
                settings: &settings.connection,
            };
            run_connection(plan, &mut sink, &mut stop, &mut events, &mut changes).await
        };
        // Changes made while it ran are kept for the next connection's SUBS.
        subscriptions = report.subscriptions.clone();
        // Every reconnect gets a newly refreshed token, except after code 12: another login
        // holds the slot, and refreshing would not help (nor be wanted while we wait).
        want = if matches!(report.end, CloseReason::Kicked { .. }) {
            Want::Valid
        } else {
            Want::Fresh
        };
        let stopping = matches!(
            report.end,
            CloseReason::Shutdown | CloseReason::WriterStopped
        );
        health.send_modify(|h| {
            h.last_close = Some(report.end.to_string());
            if !stopping {
                *h.reconnects.entry(report.end.gap_reason()).or_insert(0) += 1;
            }
        });
        if report.streaming_at.is_some() && open_gap.is_none() && !stopping {
            // A silent service's gap starts at its last data, any other at the last frame.
            let start = match &report.end {
                CloseReason::ServiceSilent { since, .. } => Some(*since),
                _ => report.last_frame_at,
            };
            open_gap = Some(OpenGap {
                start: start.unwrap_or_else(Utc::now),
                reason: report.end.gap_reason(),
                detail: report.end.to_string(),
            });
        }
        if report.streamed_for >= settings.healthy_after {
            backoff.reset();
        }
        if report.logged_in {
            denied = 0;
        }
        let wait = match &report.end {
            CloseReason::Shutdown | CloseReason::WriterStopped => break report.end,
            CloseReason::Kicked { .. } => {
                tracing::error!(
                    backoff = ?settings.kicked_backoff,
                    "{}; not fighting for it: waiting before reconnecting. Run only one market-streamer (or other streaming app) per Schwab user",
                    report.end
                );
                set(
                    SessionState::Kicked,
                    format!(
                        "{}; reconnecting in {:?}",
                        report.end, settings.kicked_backoff
                    ),
                );
                settings.kicked_backoff
            }
            CloseReason::LoginDenied { .. } => {
                denied += 1;
                want = Want::NewerThan(token.generation);
                if denied > settings.login_denied_retries {
                    let reason = format!(
                        "Schwab denied the streamer LOGIN {denied} times in a row with fresh tokens; run `market-streamer login` (and check that the app has the Market Data Production product)"
                    );
                    tracing::error!("{reason}");
                    set(SessionState::NeedsLogin, reason);
                    wait_for_new_tokens(&mut status, settings.needs_login_retry, &mut stop).await;
                    denied = 0;
                    want = Want::Valid;
                    continue;
                }
                let wait = backoff.next_delay();
                tracing::warn!(attempt = denied, retry_in = ?wait, "{}; retrying with a new token", report.end);
                wait
            }
            _ => {
                let wait = backoff.next_delay();
                tracing::warn!(retry_in = ?wait, "stream interrupted: {}; reconnecting", report.end);
                wait
            }
        };
        if !matches!(report.end, CloseReason::Kicked { .. }) {
            set(
                SessionState::Reconnecting,
                format!("{}; reconnecting in {wait:?}", report.end),
            );
        }
        if sleep_or_stop(wait, &mut stop).await {
            break CloseReason::Shutdown;
        }
    };

    if let Some(gap) = open_gap.take() {
        send_gap(
            &gaps,
            StreamGap {
                start: gap.start,
                end: Utc::now(),
                reason: gap.reason.to_string(),
                detail: format!(
                    "{}; the service stopped before the stream resumed",
                    gap.detail
                ),
            },
        );
        health.send_modify(|h| h.gaps += 1);
    }
    set(SessionState::Stopped, end.to_string());
    end
}

/// The streaming state's detail: how many subscriptions are active, and which are not.
fn streaming_detail(subs: &[SubscriptionStatus]) -> String {
    let active = subs
        .iter()
        .filter(|s| s.state == super::subscriptions::SubState::Active)
        .count();
    let others: Vec<String> = subs
        .iter()
        .filter(|s| s.state != super::subscriptions::SubState::Active)
        .map(|s| format!("{} {}", s.service.wire_name(), s.state.as_str()))
        .collect();
    if others.is_empty() {
        format!("streaming {active} subscription(s)")
    } else {
        format!(
            "streaming {active} of {} subscription(s); {}",
            subs.len(),
            others.join(", ")
        )
    }
}

/// Sleeps `wait`; true when `stop` was set meanwhile.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => *stop.borrow(),
        _ = stopped(stop) => true,
    }
}

/// Waits until the token task has new usable tokens (a login), `max` passed, or stop.
async fn wait_for_new_tokens(
    status: &mut watch::Receiver<crate::schwab::token_manager::TokenStatus>,
    max: Duration,
    stop: &mut watch::Receiver<bool>,
) {
    let generation = status.borrow_and_update().generation;
    tokio::select! {
        _ = status.wait_for(|s| s.generation != generation && s.state != TokenState::NeedsLogin) => {}
        _ = tokio::time::sleep(max) => {}
        _ = stopped(stop) => {}
    }
}
