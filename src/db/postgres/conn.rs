//! The service's PostgreSQL connections on tokio-postgres: connection settings that notice a
//! dead WAN socket in seconds, TLS per `sslmode`, and the notice/driver task. The writer keeps
//! one connection; migrations, maintenance, Realtime setup, stream gaps and the token table
//! use others made with the same settings ([`super::PostgresSink`]).
//!
//! - `TCP_NODELAY` is set by tokio-postgres; TCP keepalive ([`KEEPALIVE_IDLE`], every
//!   [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_RETRIES`] probes) and `tcp_user_timeout`
//!   ([`TCP_USER_TIMEOUT`]) close a connection whose peer vanished; [`CONNECT_TIMEOUT`]
//!   bounds each connect attempt; `statement_timeout` ([`STATEMENT_TIMEOUT`]) is set on the
//!   session. Values given in DATABASE_URL (`connect_timeout`, `keepalives_idle`, …) win.
//! - `sslmode` and `sslrootcert` are read by the `pg-connect` crate (shared with
//!   health_check): `disable`; `prefer` (the default); `require` (TLS, the certificate is not
//!   checked, like libpq); `verify-ca`; `verify-full`. Supabase's certificates chain to
//!   Supabase's own CA: download it from the dashboard and pass
//!   `sslrootcert=/path/prod-ca-2021.crt` for `verify-full`.

use std::time::Duration;

use pg_connect::{MakeRustlsConnect, PgConnectError, PgTarget};
use tokio_postgres::error::Severity;

use crate::db::SinkError;
use crate::db::error::DbError;

/// Bound on one connect attempt (TCP, TLS and startup).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Time between keepalive probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes before the kernel drops the connection (idle death noticed in ~20 s).
pub const KEEPALIVE_RETRIES: u32 = 2;
/// Unacknowledged data older than this closes the connection (a dead peer mid-write).
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);
/// `statement_timeout` of the writer session.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// How to reach the server: tokio-postgres settings plus the TLS connector for `sslmode`.
#[derive(Clone)]
pub struct ConnectSettings {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    statement_timeout: Duration,
}

impl std::fmt::Debug for ConnectSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config's Debug redacts the password; the connector holds no secret.
        f.debug_struct("ConnectSettings")
            .field("config", &self.config)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

impl ConnectSettings {
    /// Parses a `postgres://` URL (or key=value string) and applies the writer's defaults.
    pub fn from_url(url: &str) -> Result<Self, SinkError> {
        let PgTarget {
            mut config, tls, ..
        } = PgTarget::parse(url).map_err(|e| match e {
            PgConnectError::Url(e) => SinkError::new("parse DATABASE_URL", e),
            other => SinkError::new("parse DATABASE_URL", DbError::Config(other.to_string())),
        })?;
        if config.get_application_name().is_none() {
            config.application_name("market-streamer");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        // tokio-postgres' defaults are 2 h idle and no interval: too slow for a WAN writer.
        config.keepalives(true);
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        Ok(Self {
            config,
            tls,
            statement_timeout: STATEMENT_TIMEOUT,
        })
    }

    /// The session's `statement_timeout`.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// Overrides the session's `statement_timeout` (tests, tuning; zero leaves the server's).
    pub fn set_statement_timeout(&mut self, timeout: Duration) {
        self.statement_timeout = timeout;
    }

    /// Opens a connection, starts its driver task and sets the session's statement timeout.
    /// Abort the returned handle to close the socket at once (dropping the client alone
    /// leaves the driver waiting for answers a dead peer never sends).
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, tokio::task::AbortHandle), SinkError> {
        self.connect_notified(None).await
    }

    /// Like [`Self::connect`]; each `NOTIFY` the connection receives (after a `LISTEN`) wakes
    /// `wake` (its capacity is how many wake-ups may wait; a full channel already holds one).
    pub async fn connect_notified(
        &self,
        wake: Option<tokio::sync::mpsc::Sender<()>>,
    ) -> Result<(tokio_postgres::Client, tokio::task::AbortHandle), SinkError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| SinkError::new("connect to PostgreSQL", e))?;
        let driver = tokio::spawn(drive(connection, wake)).abort_handle();
        // Zero keeps the server's (or the role's) setting: migrations and maintenance on a
        // large database.
        if self.statement_timeout.is_zero() {
            return Ok((client, driver));
        }
        let ms = self.statement_timeout.as_millis().max(1);
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            client.batch_execute(&format!("SET statement_timeout = {ms}")),
        )
        .await
        .map_err(|_| SinkError::new("set statement_timeout", DbError::Timeout(CONNECT_TIMEOUT)))?
        .map_err(|e| SinkError::new("set statement_timeout", e))?;
        Ok((client, driver))
    }
}

/// Drives one connection until it ends, logging the server's notices (`realtime.send`
/// reports its failures as warnings).
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    wake: Option<tokio::sync::mpsc::Sender<()>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = futures::StreamExt::next(&mut messages).await {
        match message {
            // Warnings (`realtime.send` reports its failures so) are shown; plain notices
            // ("relation already exists, skipping") only at debug level.
            Ok(tokio_postgres::AsyncMessage::Notice(n))
                if n.parsed_severity().is_none_or(|s| {
                    !matches!(
                        s,
                        Severity::Notice | Severity::Info | Severity::Debug | Severity::Log
                    )
                }) =>
            {
                tracing::warn!(
                    severity = n.severity(),
                    code = n.code().code(),
                    message = n.message(),
                    "PostgreSQL warning"
                );
            }
            Ok(tokio_postgres::AsyncMessage::Notice(n)) => {
                tracing::debug!(
                    code = n.code().code(),
                    message = n.message(),
                    "PostgreSQL notice"
                );
            }
            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                if let Some(wake) = &wake {
                    // Full: a wake-up is already waiting, which covers this one too.
                    let _ = wake.try_send(());
                }
            }
            Ok(_) => {}
            Err(e) => {
                // The next write sees the closed client, reports it and reconnects.
                tracing::debug!(error = %DbError::from(e), "PostgreSQL connection ended");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_defaults_notice_a_dead_peer_within_seconds() {
        let s = ConnectSettings::from_url("postgres://u@h/db?sslmode=require").expect("parses");
        assert_eq!(s.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(s.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert!(s.config.get_keepalives());
        assert_eq!(s.config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(
            s.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let s = ConnectSettings::from_url("postgres://u@h/db?connect_timeout=2").expect("parses");
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(
            s.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
    }

    #[test]
    fn a_missing_root_certificate_says_what_to_fix() {
        let err = ConnectSettings::from_url(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
        )
        .expect_err("no file");
        assert!(err.to_string().contains("sslrootcert"), "{err}");
    }
}
