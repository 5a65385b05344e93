//! The Charles Schwab session (see `schwab-protocol.md`): OAuth login and refresh
//! ([`oauth`], [`login`]), the token store ([`tokens`]) and its lifecycle task
//! ([`token_manager`]), the REST client ([`rest`], [`preferences`]) and the streamer
//! session ([`session`]), each with its own settings struct (filled in by `crate::settings`);
//! [`secret`] holds the type that keeps tokens out of logs.

pub mod downstream;
pub mod login;
pub mod oauth;
pub mod preferences;
pub mod replay;
pub mod rest;
/// [`Secret`](secret::Secret): lives in the leaf `streamer-config`, which needs it for `SCHWAB_CLIENT_SECRET`.
pub mod secret {
    pub use streamer_config::{Secret, scrub};
}
pub mod session;
pub mod token_manager;
pub mod tokens;
pub mod wire;

pub use secret::Secret;

/// Installs rustls' `ring` crypto provider as the process default (needed before the first
/// `wss://` connect). Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
