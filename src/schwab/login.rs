//! `market-streamer login`: the one-time browser authorisation (spec §1.2–1.3), usable over
//! SSH on a headless box: print the authorize URL, take the redirect URL the person pastes
//! back, exchange its code for tokens and save them in the token store. The terminal side
//! (printing, reading stdin) is in `main.rs`; this module does the work and the messages.

use chrono::Utc;

use super::oauth::{self, OAuthApp, OAuthError, RedirectError};
use super::rest::{RestError, RestSettings, SchwabRest};
use super::tokens::{TokenSet, TokenStore, TokenStoreError};

/// Why a login did not save tokens. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "login needs SCHWAB_CLIENT_ID and SCHWAB_CLIENT_SECRET: set them (in the environment or .env) to the App Key and Secret shown for your app on developer.schwab.com"
    )]
    NoApp,
    #[error("no redirect URL was pasted (input ended); run `market-streamer login` again")]
    NoInput,
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    #[error(
        "Schwab rejected the authorization code ({detail}). A code works once and expires about 30 seconds after the redirect: run `market-streamer login` again and paste the URL right away. If it keeps failing, check that SCHWAB_CALLBACK_URL is exactly the app's registered callback and that the app status is 'Ready For Use'"
    )]
    CodeRejected { detail: String },
    #[error(
        "Schwab rejected the app credentials ({detail}): check SCHWAB_CLIENT_ID and SCHWAB_CLIENT_SECRET against the app's page on developer.schwab.com, and that the app status is 'Ready For Use' (a new app stays 'Approved - Pending' for a few days)"
    )]
    ClientRejected { detail: String },
    #[error(
        "the Schwab token endpoint gave no usable answer ({detail}). An error page usually means the app is not 'Ready For Use' yet ('Approved - Pending'); otherwise Schwab is having trouble: try again later"
    )]
    Unavailable { detail: String },
    #[error("the tokens could not be saved: {0}")]
    Store(#[from] TokenStoreError),
    #[error(transparent)]
    Rest(#[from] RestError),
}

/// A login in progress: the app, the REST client and the opened store.
#[derive(Debug)]
pub struct Login {
    rest: SchwabRest,
    app: OAuthApp,
    store: TokenStore,
}

impl Login {
    /// Checks the credentials (`app` is `None` when the id or the secret is not set);
    /// `open_store` opens the token store (before the person opens the browser, so a store
    /// problem shows up first; `crate::app::prepare_login` passes the configured one).
    pub async fn prepare<F>(
        app: Option<OAuthApp>,
        rest: RestSettings,
        open_store: F,
    ) -> Result<Self, LoginError>
    where
        F: Future<Output = Result<TokenStore, TokenStoreError>>,
    {
        let app = app.ok_or(LoginError::NoApp)?;
        let rest = SchwabRest::new(rest)?;
        let store = open_store.await?;
        Ok(Self { rest, app, store })
    }

    /// A login with explicit parts (the in-process simulator uses it).
    pub fn with(rest: SchwabRest, app: OAuthApp, store: TokenStore) -> Self {
        Self { rest, app, store }
    }

    /// The URL to open in a browser.
    pub fn authorize_url(&self) -> String {
        oauth::authorize_url(&self.rest, &self.app)
    }

    /// The registered callback the browser will be sent to.
    pub fn callback_url(&self) -> &str {
        &self.app.callback_url
    }

    /// Where the tokens go.
    pub fn store_description(&self) -> String {
        self.store.describe()
    }

    /// Takes the code from the pasted redirect URL, exchanges it and saves the tokens.
    pub async fn complete(&self, pasted: &str) -> Result<TokenSet, LoginError> {
        let code = oauth::code_from_redirect(pasted, &self.app.callback_url)?;
        let response = oauth::exchange_code(&self.rest, &self.app, &code)
            .await
            .map_err(|e| match e {
                OAuthError::Refused {
                    status,
                    ref error,
                    ref description,
                    ..
                } => {
                    let detail = format!("HTTP {status}, {error}: {description}");
                    if status == 401 || error == "invalid_client" {
                        LoginError::ClientRejected { detail }
                    } else {
                        LoginError::CodeRejected { detail }
                    }
                }
                OAuthError::Unavailable { detail, .. } | OAuthError::BadResponse { detail, .. } => {
                    LoginError::Unavailable { detail }
                }
            })?;
        let tokens = TokenSet::from_login(&self.app.client_id, response, Utc::now())
            .map_err(|detail| LoginError::Unavailable { detail })?;
        self.store.save(&tokens).await?;
        Ok(tokens)
    }

    /// Closes the store's database pool, if any.
    pub async fn close(&self) {
        self.store.close().await;
    }
}
