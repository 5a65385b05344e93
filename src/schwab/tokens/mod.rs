//! The token store: where the OAuth tokens live between runs, chosen by `TOKEN_STORE`.
//!
//! - [`file`]: a JSON file (default `data/schwab-tokens.json`), written atomically with mode
//!   0600; refreshes are serialised by an exclusive lock on a sidecar `.lock` file.
//! - a [`TokenTable`]: the `schwab_tokens` table of `DATABASE_URL` (one row per app), so that
//!   `market-streamer login` on a laptop hands new tokens to a server without a redeploy;
//!   refreshes are serialised by a PostgreSQL advisory lock (a lock file for SQLite). The
//!   database implements it (`crate::db::tokens`, which also opens the configured store): the
//!   session sees only this seam.
//!
//! Every refresh goes through [`TokenStore::lock`]: take the lock, re-read the stored tokens
//! (another process or a new login may have replaced them), refresh only if still needed,
//! save, release. So exactly one refresher runs at a time per app.

pub mod file;

use std::path::Path;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use futures::future::BoxFuture;

use super::oauth::TokenResponse;
use super::secret::Secret;

/// Which store `TOKEN_STORE` chose (the leaf settings crate defines it, as it parses it).
pub use streamer_config::TokenStoreKind;

/// How long a refresh token lasts from the browser login (refreshing does not extend it).
pub const REFRESH_TOKEN_LIFETIME: ChronoDuration = ChronoDuration::days(7);

/// Access token lifetime assumed when Schwab's answer has no `expires_in`.
const DEFAULT_ACCESS_LIFETIME_SECS: i64 = 1800;

/// The tokens of one app (`client_id`), as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The app key the tokens belong to.
    pub client_id: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// When the access token stops working (issue time + `expires_in`).
    pub access_expires_at: DateTime<Utc>,
    /// When the browser login issued the refresh token; a refresh never changes it.
    pub refresh_issued_at: DateTime<Utc>,
    /// Last write (login or refresh).
    pub updated_at: DateTime<Utc>,
}

impl TokenSet {
    /// Tokens from the authorization-code grant of a browser login at `now`.
    pub fn from_login(
        client_id: &str,
        response: TokenResponse,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        let now = to_millis(now);
        let refresh_token = response.refresh_token.clone().ok_or_else(|| {
            "Schwab's answer to the login has no refresh_token; run `market-streamer login` again"
                .to_string()
        })?;
        Ok(Self {
            client_id: client_id.to_string(),
            access_expires_at: now + access_lifetime(&response),
            access_token: response.access_token,
            refresh_token,
            refresh_issued_at: now,
            updated_at: now,
        })
    }

    /// The tokens after a refresh at `now`: a new access token; the refresh token Schwab
    /// returned (usually the same value) or the old one; the login time kept.
    pub fn after_refresh(&self, response: TokenResponse, now: DateTime<Utc>) -> Self {
        let now = to_millis(now);
        Self {
            client_id: self.client_id.clone(),
            access_expires_at: now + access_lifetime(&response),
            access_token: response.access_token,
            refresh_token: response
                .refresh_token
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| self.refresh_token.clone()),
            refresh_issued_at: self.refresh_issued_at,
            updated_at: now,
        }
    }

    /// When the refresh token stops working: 7 days after the browser login.
    pub fn refresh_expires_at(&self) -> DateTime<Utc> {
        self.refresh_issued_at + REFRESH_TOKEN_LIFETIME
    }

    /// How long the access token still works at `now` (negative once expired).
    pub fn access_remaining(&self, now: DateTime<Utc>) -> ChronoDuration {
        self.access_expires_at - now
    }
}

/// Times are kept to the millisecond, so they survive every store unchanged.
fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn access_lifetime(response: &TokenResponse) -> ChronoDuration {
    ChronoDuration::seconds(
        response
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_ACCESS_LIFETIME_SECS),
    )
}

/// Why the token store could not be used. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    #[error("cannot read the token file {path}: {source}; check its permissions")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot write the token file {path}: {source}; check that its folder is writable (TOKEN_FILE)"
    )]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the token file {path} is not valid ({detail}); run `market-streamer login` to write a new one"
    )]
    Corrupt { path: String, detail: String },
    #[error(
        "waited {secs} s for the token lock {what}: another market-streamer (or login) is refreshing; if none runs, retry (a crashed holder releases the lock)"
    )]
    LockTimeout { what: String, secs: u64 },
    #[error("token store database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the row of app {client_id} in schwab_tokens is not valid ({detail}); run `market-streamer login` again"
    )]
    CorruptRow { client_id: String, detail: String },
}

/// A token table kept by a database (implemented downstream by `crate::db::tokens`).
pub trait TokenTable: Send + Sync {
    /// Where the tokens are, for messages (no secret in it).
    fn describe(&self) -> String;
    /// Reads the tokens of `client_id` without locking.
    fn load<'a>(
        &'a self,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TokenSet>, TokenStoreError>>;
    /// Takes the exclusive refresh lock of `client_id` (waits up to 30 s for another holder).
    fn lock<'a>(
        &'a self,
        client_id: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn TokenTableLock>, TokenStoreError>>;
    /// Closes its connections.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// A held refresh lock of a [`TokenTable`]; dropped unreleased, what it saved is undone.
pub trait TokenTableLock: Send {
    /// Reads the current tokens while holding the lock.
    fn load(&mut self) -> BoxFuture<'_, Result<Option<TokenSet>, TokenStoreError>>;
    /// Writes `tokens` while holding the lock.
    fn save<'a>(&'a mut self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), TokenStoreError>>;
    /// Commits what was saved and releases the lock.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), TokenStoreError>>;
}

/// The configured token store (`crate::db::tokens::open_token_store` opens it from the config).
pub enum TokenStore {
    File(file::FileStore),
    Table(Box<dyn TokenTable>),
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl TokenStore {
    /// A file store at `path`.
    pub fn file(path: &Path) -> Self {
        Self::File(file::FileStore::new(path))
    }

    /// Where the tokens are, for messages (no secret in it).
    pub fn describe(&self) -> String {
        match self {
            Self::File(f) => format!("file {}", f.path().display()),
            Self::Table(t) => t.describe(),
        }
    }

    /// Reads the tokens of `client_id` without locking (`None`: no login yet for this app).
    pub async fn load(&self, client_id: &str) -> Result<Option<TokenSet>, TokenStoreError> {
        match self {
            Self::File(f) => f.load(client_id).await,
            Self::Table(t) => t.load(client_id).await,
        }
    }

    /// Takes the exclusive refresh lock of `client_id` (waits up to 30 s for another holder).
    pub async fn lock(&self, client_id: &str) -> Result<StoreLock<'_>, TokenStoreError> {
        let inner = match self {
            Self::File(f) => LockInner::File {
                store: f,
                _lock: f.lock().await?,
            },
            Self::Table(t) => LockInner::Table(t.lock(client_id).await?),
        };
        Ok(StoreLock {
            inner,
            client_id: client_id.to_string(),
        })
    }

    /// Saves tokens under the lock (used by `login`).
    pub async fn save(&self, tokens: &TokenSet) -> Result<(), TokenStoreError> {
        let mut lock = self.lock(&tokens.client_id).await?;
        lock.save(tokens).await?;
        lock.release().await
    }

    /// Closes a database pool, if any.
    pub async fn close(&self) {
        if let Self::Table(t) = self {
            t.close().await;
        }
    }
}

/// The exclusive refresh lock, held until [`release`](StoreLock::release) or drop (a dropped
/// database lock rolls its transaction back; a dropped file lock closes its file).
pub struct StoreLock<'a> {
    inner: LockInner<'a>,
    client_id: String,
}

enum LockInner<'a> {
    File {
        store: &'a file::FileStore,
        _lock: file::FileLock,
    },
    Table(Box<dyn TokenTableLock>),
}

impl StoreLock<'_> {
    /// Reads the current tokens while holding the lock.
    pub async fn load(&mut self) -> Result<Option<TokenSet>, TokenStoreError> {
        match &mut self.inner {
            LockInner::File { store, .. } => store.load(&self.client_id).await,
            LockInner::Table(lock) => lock.load().await,
        }
    }

    /// Writes `tokens` while holding the lock.
    pub async fn save(&mut self, tokens: &TokenSet) -> Result<(), TokenStoreError> {
        match &mut self.inner {
            LockInner::File { store, .. } => store.save(tokens).await,
            LockInner::Table(lock) => lock.save(tokens).await,
        }
    }

    /// Commits what was saved and releases the lock.
    pub async fn release(self) -> Result<(), TokenStoreError> {
        match self.inner {
            LockInner::Table(lock) => lock.release().await,
            LockInner::File { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(access: &str, refresh: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            expires_in: Some(1800),
        }
    }

    #[test]
    fn a_refresh_keeps_the_login_time_and_the_refresh_token_if_none_comes_back() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time");
        let login = TokenSet::from_login("app", response("a1", Some("r1")), t0).expect("login");
        assert_eq!(login.refresh_expires_at(), t0 + ChronoDuration::days(7));
        assert_eq!(login.access_expires_at, t0 + ChronoDuration::minutes(30));

        let t1 = t0 + ChronoDuration::hours(3);
        let refreshed = login.after_refresh(response("a2", None), t1);
        assert_eq!(refreshed.access_token.expose(), "a2");
        assert_eq!(refreshed.refresh_token.expose(), "r1", "kept");
        assert_eq!(
            refreshed.refresh_issued_at, t0,
            "refreshing does not extend the 7 days"
        );
        assert_eq!(refreshed.access_remaining(t1), ChronoDuration::minutes(30));

        let again = refreshed.after_refresh(response("a3", Some("r2")), t1);
        assert_eq!(
            again.refresh_token.expose(),
            "r2",
            "a returned refresh token is stored"
        );
        assert_eq!(again.refresh_issued_at, t0);
    }

    #[test]
    fn a_login_answer_without_refresh_token_is_an_error() {
        let now = Utc::now();
        assert!(TokenSet::from_login("app", response("a", None), now).is_err());
    }
}
