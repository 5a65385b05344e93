//! The token lifecycle task: the one owner of the tokens in memory.
//!
//! - Refreshes the access token when less than `refresh_margin` (5 min) remains, and at once
//!   when asked for a fresh one (every reconnect, a REST 401, a streamer LOGIN code 3).
//! - Every refresh runs under the store's exclusive lock and re-reads the store first, so a
//!   token written by another process or by a new `login` is picked up instead of refreshed.
//! - Warns from 24 h before the refresh token's 7 days end (log + [`TokenState::ExpiringSoon`]).
//! - A refused refresh (any 4xx) or a missing login gives [`TokenState::NeedsLogin`]: the task
//!   keeps running and retries the refresh only every `needs_login_retry`.
//! - The store is read every `store_poll` (`TOKEN_STORE_POLL`), so tokens written by a new
//!   `login` (on this box, or on a laptop with `TOKEN_STORE=database`) are picked up by
//!   themselves, also while a login is needed.
//! - Transient failures (network, 5xx) are retried with capped backoff.
//!
//! Others read the state from a `watch` of [`TokenStatus`] and ask for tokens through
//! [`TokenHandle::access`]. No token ever reaches a log line.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::oauth::{self, OAuthApp, OAuthError};
use super::rest::SchwabRest;
use super::secret::Secret;
use super::tokens::{TokenSet, TokenStore};
use crate::backoff::Backoff;

/// Requests waiting for the task. Callers wait when it is full (there are only a handful
/// of callers, each with at most one request in flight).
const REQUEST_CHANNEL_CAPACITY: usize = 16;

/// Timings of the token lifecycle.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Refresh when less than this remains of the access token (5 min).
    pub refresh_margin: Duration,
    /// Warn this long before the refresh token's 7 days end (24 h).
    pub expiry_warning: Duration,
    /// How often a refused refresh is tried again (`NEEDS_LOGIN_RETRY`).
    pub needs_login_retry: Duration,
    /// How often the store is read for a new login while one is needed (`TOKEN_STORE_POLL`).
    pub store_poll: Duration,
    /// Backoff of transient refresh failures.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl TokenSettings {
    /// The fixed margins of the spec with the given `NEEDS_LOGIN_RETRY` and
    /// `TOKEN_STORE_POLL`.
    pub fn new(needs_login_retry: Duration, store_poll: Duration) -> Self {
        Self {
            refresh_margin: Duration::from_secs(300),
            expiry_warning: Duration::from_secs(24 * 3600),
            needs_login_retry,
            store_poll,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// The token health other parts read (the /health endpoint, the session supervisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Not loaded yet.
    Starting,
    /// Tokens present and refreshing normally.
    Valid,
    /// Less than `expiry_warning` remains of the refresh token: log in again soon.
    ExpiringSoon,
    /// The last refresh failed for a transient reason; retrying.
    RefreshFailing,
    /// No tokens, the refresh token's 7 days are over, or Schwab refused the refresh:
    /// run `market-streamer login`.
    NeedsLogin,
}

impl TokenState {
    /// The state's name for health output: `valid`, `expiring_soon`, `needs_login`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Valid => "valid",
            Self::ExpiringSoon => "expiring_soon",
            Self::RefreshFailing => "refresh_failing",
            Self::NeedsLogin => "needs_login",
        }
    }
}

/// What the token task reports (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub state: TokenState,
    /// One sentence: why, and what to do.
    pub detail: String,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    /// Grows by one with every new access token (refresh, login, or another process's refresh).
    pub generation: u64,
}

impl TokenStatus {
    /// The state before the tokens are loaded.
    pub fn starting() -> Self {
        Self {
            state: TokenState::Starting,
            detail: "loading tokens".into(),
            access_expires_at: None,
            refresh_expires_at: None,
            last_refresh_at: None,
            generation: 0,
        }
    }
}

/// An access token handed out, with the generation it belongs to.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub generation: u64,
    pub expires_at: DateTime<Utc>,
}

/// What the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Any token with more than the refresh margin left (refreshing first if needed).
    Valid,
    /// A newly refreshed token (a reconnect).
    Fresh,
    /// The token of this generation was refused (REST 401, LOGIN code 3): a newer one.
    NewerThan(u64),
}

/// Why no token can be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a browser login is needed: {0}")]
    NeedsLogin(String),
    #[error("no access token right now: {0}")]
    Unavailable(String),
    #[error("the token task has stopped")]
    Stopped,
}

struct Request {
    want: Want,
    reply: oneshot::Sender<Result<AccessToken, TokenError>>,
}

/// The way to the token task. Cheap to clone; the task stops when every handle is dropped.
#[derive(Clone)]
pub struct TokenHandle {
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<TokenStatus>,
}

impl TokenHandle {
    /// Asks for an access token.
    pub async fn access(&self, want: Want) -> Result<AccessToken, TokenError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { want, reply })
            .await
            .map_err(|_| TokenError::Stopped)?;
        rx.await.map_err(|_| TokenError::Stopped)?
    }

    /// A receiver of the token status.
    pub fn status(&self) -> watch::Receiver<TokenStatus> {
        self.status.clone()
    }
}

/// Starts the token task; it publishes its state in `status_tx` (create it with
/// [`TokenStatus::starting`]).
pub fn spawn_token_manager(
    store: TokenStore,
    rest: Arc<SchwabRest>,
    app: OAuthApp,
    settings: TokenSettings,
    status_tx: watch::Sender<TokenStatus>,
) -> (TokenHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(REQUEST_CHANNEL_CAPACITY);
    let status = status_tx.subscribe();
    let manager = Manager {
        retry: Backoff::new(settings.retry_min, settings.retry_max),
        store: Arc::new(store),
        rest,
        app,
        settings,
        tokens: None,
        generation: 0,
        refused: None,
        failing: None,
        next_attempt: None,
        next_poll: Instant::now(),
        last_refresh_at: None,
        load_error: None,
        warned_for: None,
        status_tx,
    };
    let task = tokio::spawn(manager.run(rx));
    (TokenHandle { tx, status }, task)
}

enum RefreshError {
    Refused(String),
    Transient(String),
}

struct Manager {
    store: Arc<TokenStore>,
    rest: Arc<SchwabRest>,
    app: OAuthApp,
    settings: TokenSettings,
    tokens: Option<TokenSet>,
    generation: u64,
    /// Set when Schwab refused the current refresh token (4xx): a login is needed.
    refused: Option<String>,
    /// Set while refreshing fails for a transient reason.
    failing: Option<String>,
    retry: Backoff,
    /// Earliest next refresh attempt after a failure (backoff, or the rare retry after a refusal).
    next_attempt: Option<Instant>,
    /// Next read of the store while a login is needed.
    next_poll: Instant,
    last_refresh_at: Option<DateTime<Utc>>,
    /// The store could not be read (shown in the status).
    load_error: Option<String>,
    /// The refresh-token issue time already warned about.
    warned_for: Option<DateTime<Utc>>,
    status_tx: watch::Sender<TokenStatus>,
}

impl Manager {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        self.poll_store().await;
        self.publish();
        loop {
            let wake = self.next_wake();
            tokio::select! {
                req = rx.recv() => match req {
                    Some(req) => {
                        let result = self.handle(req.want).await;
                        // The caller may have given up waiting; nothing to do then.
                        let _ = req.reply.send(result);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => self.on_timer().await,
            }
            self.publish();
        }
        self.store.close().await;
    }

    fn needs_login(&self) -> bool {
        self.tokens.is_none() || self.refused.is_some()
    }

    /// Refresh when less than this remains: `refresh_margin` (5 min), but at most a quarter
    /// of the token's lifetime (so short-lived tokens, e.g. a simulator's, are not refreshed
    /// in a loop).
    fn margin(&self) -> chrono::Duration {
        let margin = chrono::Duration::from_std(self.settings.refresh_margin).unwrap_or_default();
        match &self.tokens {
            Some(t) => margin.min((t.access_expires_at - t.updated_at) / 4),
            None => margin,
        }
    }

    /// When the loop must wake up by itself.
    fn next_wake(&self) -> Instant {
        let now_wall = Utc::now();
        let at = |t: DateTime<Utc>| Instant::now() + (t - now_wall).to_std().unwrap_or_default();
        let mut wake = self.next_poll;
        if let Some(t) = &self.tokens {
            let warn_at = t.refresh_expires_at()
                - chrono::Duration::from_std(self.settings.expiry_warning).unwrap_or_default();
            for moment in [warn_at, t.refresh_expires_at()] {
                if moment > now_wall {
                    wake = wake.min(at(moment));
                }
            }
            let due = at(t.access_expires_at - self.margin());
            wake = wake.min(match self.next_attempt {
                Some(next) => next.max(due),
                None => due,
            });
        }
        wake
    }

    async fn on_timer(&mut self) {
        if Instant::now() >= self.next_poll {
            self.poll_store().await;
        }
        let Some(t) = &self.tokens else { return };
        let due = t.access_remaining(Utc::now()) <= self.margin();
        let allowed = self.next_attempt.is_none_or(|n| Instant::now() >= n);
        if due && allowed {
            let _ = self.refresh().await;
        }
    }

    /// Reads the store without the lock; adopts tokens that differ from ours (a new login
    /// or another process's refresh).
    async fn poll_store(&mut self) {
        self.next_poll = Instant::now() + self.settings.store_poll;
        match self.store.load(&self.app.client_id).await {
            Ok(Some(stored)) => {
                self.load_error = None;
                self.adopt_if_newer(stored);
            }
            Ok(None) => self.load_error = None,
            Err(e) => {
                tracing::warn!(store = %self.store.describe(), error = %e, "cannot read the token store");
                self.load_error = Some(e.to_string());
            }
        }
    }

    /// Takes `stored` when it is not what we hold. Returns true when it was taken.
    fn adopt_if_newer(&mut self, stored: TokenSet) -> bool {
        let differs = match &self.tokens {
            None => true,
            Some(ours) => {
                stored.access_token != ours.access_token
                    || stored.refresh_token != ours.refresh_token
            }
        };
        if !differs {
            return false;
        }
        let new_login = self
            .tokens
            .as_ref()
            .is_none_or(|ours| ours.refresh_token != stored.refresh_token);
        if new_login {
            tracing::info!(
                store = %self.store.describe(),
                refresh_expires_at = %stored.refresh_expires_at(),
                "{}",
                if self.tokens.is_none() {
                    "tokens loaded"
                } else {
                    "using the tokens of a new login"
                }
            );
            self.refused = None;
            self.next_attempt = None;
        }
        self.failing = None;
        self.tokens = Some(stored);
        self.generation += 1;
        true
    }

    async fn handle(&mut self, want: Want) -> Result<AccessToken, TokenError> {
        if self.needs_login() {
            // A login may have just written the store.
            self.poll_store().await;
        }
        let Some(t) = &self.tokens else {
            return Err(TokenError::NeedsLogin(self.no_tokens_reason()));
        };
        let remaining = t.access_remaining(Utc::now());
        let needs_refresh = match want {
            Want::Valid => remaining <= self.margin(),
            Want::Fresh => true,
            Want::NewerThan(g) => g >= self.generation,
        };
        if !needs_refresh {
            return Ok(self.current());
        }
        if let Some(reason) = &self.refused {
            return Err(TokenError::NeedsLogin(reason.clone()));
        }
        let waiting = self.next_attempt.is_some_and(|n| Instant::now() < n);
        let result = if waiting {
            Err(RefreshError::Transient(
                self.failing.clone().unwrap_or_default(),
            ))
        } else {
            self.refresh().await
        };
        match result {
            Ok(()) => Ok(self.current()),
            Err(RefreshError::Refused(reason)) => Err(TokenError::NeedsLogin(reason)),
            Err(RefreshError::Transient(reason)) => {
                // A reconnect can still log in with a token that has a minute left.
                let still_good = self.tokens.as_ref().is_some_and(|t| {
                    t.access_remaining(Utc::now()) > chrono::Duration::seconds(60)
                });
                if still_good && !matches!(want, Want::NewerThan(_)) {
                    Ok(self.current())
                } else {
                    Err(TokenError::Unavailable(reason))
                }
            }
        }
    }

    fn current(&self) -> AccessToken {
        let t = self
            .tokens
            .as_ref()
            .map(|t| (t.access_token.clone(), t.access_expires_at));
        let (token, expires_at) = t.unwrap_or_else(|| (Secret::new(""), Utc::now()));
        AccessToken {
            token,
            generation: self.generation,
            expires_at,
        }
    }

    fn no_tokens_reason(&self) -> String {
        match &self.load_error {
            Some(e) => format!("the token store cannot be read: {e}"),
            None => format!(
                "no tokens for app {} in the {}; run `market-streamer login`",
                self.app.client_id,
                self.store.describe()
            ),
        }
    }

    /// One refresh under the store lock.
    async fn refresh(&mut self) -> Result<(), RefreshError> {
        let result = self.refresh_locked().await;
        match &result {
            Ok(()) => {
                self.failing = None;
                self.next_attempt = None;
                self.retry.reset();
            }
            Err(RefreshError::Refused(reason)) => {
                if self.refused.is_none() {
                    tracing::error!(
                        reason = %reason,
                        retry_every = ?self.settings.needs_login_retry,
                        "Schwab refused the token refresh: run `market-streamer login` (the stream keeps running until its session ends; it resumes by itself after the login)"
                    );
                }
                self.refused = Some(reason.clone());
                self.next_attempt = Some(Instant::now() + self.settings.needs_login_retry);
                self.next_poll = Instant::now() + self.settings.store_poll;
            }
            Err(RefreshError::Transient(reason)) => {
                let wait = self.retry.next_delay();
                tracing::warn!(reason = %reason, retry_in = ?wait, "token refresh failed; retrying");
                self.failing = Some(reason.clone());
                self.next_attempt = Some(Instant::now() + wait);
            }
        }
        result
    }

    async fn refresh_locked(&mut self) -> Result<(), RefreshError> {
        let store_err = |e: super::tokens::TokenStoreError| RefreshError::Transient(e.to_string());
        let store = Arc::clone(&self.store);
        let mut lock = store.lock(&self.app.client_id).await.map_err(store_err)?;
        match lock.load().await.map_err(store_err)? {
            Some(stored) => {
                let before = self.generation;
                if self.adopt_if_newer(stored) {
                    let fresh = self
                        .tokens
                        .as_ref()
                        .is_some_and(|t| t.access_remaining(Utc::now()) > self.margin());
                    if fresh && self.generation > before {
                        // Another process refreshed (or a login happened): use its token.
                        return lock.release().await.map_err(store_err);
                    }
                }
            }
            None => {
                if self.tokens.is_some() {
                    tracing::warn!(store = %self.store.describe(), "the stored tokens were removed; refreshing with the ones in memory");
                }
            }
        }
        let Some(current) = self.tokens.clone() else {
            return Err(RefreshError::Refused(self.no_tokens_reason()));
        };
        let response = match oauth::refresh(&self.rest, &self.app, &current.refresh_token).await {
            Ok(r) => r,
            Err(e @ OAuthError::Refused { .. }) => {
                let expired = Utc::now() >= current.refresh_expires_at();
                return Err(RefreshError::Refused(if expired {
                    format!(
                        "{e}; the refresh token's 7 days ended at {}",
                        current.refresh_expires_at()
                    )
                } else {
                    format!(
                        "{e}; the refresh token was replaced by a newer login elsewhere or revoked"
                    )
                }));
            }
            Err(e) => return Err(RefreshError::Transient(e.to_string())),
        };
        let now = Utc::now();
        let new = current.after_refresh(response, now);
        if let Err(e) = lock.save(&new).await {
            // The new token works in memory; the next refresh tries to save again.
            tracing::error!(store = %self.store.describe(), error = %e, "refreshed the access token but could not store it");
        }
        if let Err(e) = lock.release().await {
            tracing::error!(store = %self.store.describe(), error = %e, "could not commit the refreshed token");
        }
        tracing::info!(
            access_expires_at = %new.access_expires_at,
            refresh_expires_at = %new.refresh_expires_at(),
            "access token refreshed"
        );
        self.tokens = Some(new);
        self.generation += 1;
        self.last_refresh_at = Some(now);
        Ok(())
    }

    fn publish(&mut self) {
        let now = Utc::now();
        let (state, detail) = match (&self.tokens, &self.refused, &self.failing) {
            (None, _, _) => (TokenState::NeedsLogin, self.no_tokens_reason()),
            (Some(_), Some(reason), _) => (
                TokenState::NeedsLogin,
                format!("{reason}; run `market-streamer login`"),
            ),
            (Some(t), None, _) if now >= t.refresh_expires_at() => (
                TokenState::NeedsLogin,
                format!(
                    "the refresh token's 7 days ended at {}; run `market-streamer login`",
                    t.refresh_expires_at()
                ),
            ),
            (Some(_), None, Some(reason)) => (TokenState::RefreshFailing, reason.clone()),
            (Some(t), None, None)
                if (t.refresh_expires_at() - now).to_std().unwrap_or_default()
                    <= self.settings.expiry_warning =>
            {
                (
                    TokenState::ExpiringSoon,
                    format!(
                        "the refresh token ends at {} (7 days after the browser login); run `market-streamer login` before then",
                        t.refresh_expires_at()
                    ),
                )
            }
            (Some(_), None, None) => (TokenState::Valid, "tokens valid".to_string()),
        };
        if let Some(t) = &self.tokens
            && matches!(state, TokenState::ExpiringSoon | TokenState::NeedsLogin)
            && self.warned_for != Some(t.refresh_issued_at)
        {
            self.warned_for = Some(t.refresh_issued_at);
            tracing::warn!(refresh_expires_at = %t.refresh_expires_at(), "{detail}");
        }
        let status = TokenStatus {
            state,
            detail,
            access_expires_at: self.tokens.as_ref().map(|t| t.access_expires_at),
            refresh_expires_at: self.tokens.as_ref().map(TokenSet::refresh_expires_at),
            last_refresh_at: self.last_refresh_at,
            generation: self.generation,
        };
        self.status_tx.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }
}
