//! The writer's PostgreSQL connection on tokio-postgres: connection settings that notice a
//! dead WAN socket in seconds, TLS per `sslmode`, and the notice/driver task.
//!
//! - `TCP_NODELAY` is set by tokio-postgres; TCP keepalive ([`KEEPALIVE_IDLE`], every
//!   [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_RETRIES`] probes) and `tcp_user_timeout`
//!   ([`TCP_USER_TIMEOUT`]) close a connection whose peer vanished; [`CONNECT_TIMEOUT`]
//!   bounds each connect attempt; `statement_timeout` ([`STATEMENT_TIMEOUT`]) is set on the
//!   session. Values given in DATABASE_URL (`connect_timeout`, `keepalives_idle`, …) win.
//! - `sslmode`: `disable`; `prefer` (the default, TLS if the server offers it); `require`
//!   (TLS, the certificate is not checked, like libpq); `verify-ca` (the chain is checked
//!   against `sslrootcert`, or the Mozilla roots when it is not given); `verify-full` (chain
//!   and host name). Supabase's certificates chain to Supabase's own CA: download it from the
//!   dashboard and pass `sslrootcert=/path/prod-ca-2021.crt` for `verify-full`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

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

/// `sslmode` as libpq spells it (tokio-postgres knows only the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl ConnectSettings {
    /// Parses a `postgres://` URL (or key=value string) and applies the writer's defaults.
    pub fn from_url(url: &str) -> Result<Self, SinkError> {
        let bad = |msg: String| SinkError::new("parse DATABASE_URL", DbError::Config(msg));
        let (rest, mode, root_cert) = split_tls_params(url).map_err(bad)?;
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| SinkError::new("parse DATABASE_URL", e))?;
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
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = MakeRustlsConnect::new(client_config(mode, root_cert.as_deref()).map_err(bad)?);
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

    /// Overrides the session's `statement_timeout` (tests, tuning).
    pub fn set_statement_timeout(&mut self, timeout: Duration) {
        self.statement_timeout = timeout;
    }

    /// Opens a connection, starts its driver task and sets the session's statement timeout.
    /// Abort the returned handle to close the socket at once (dropping the client alone
    /// leaves the driver waiting for answers a dead peer never sends).
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, tokio::task::AbortHandle), SinkError> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| SinkError::new("connect to PostgreSQL", e))?;
        let driver = tokio::spawn(drive(connection)).abort_handle();
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
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = futures::StreamExt::next(&mut messages).await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notice(n)) => {
                tracing::warn!(
                    severity = n.severity(),
                    code = n.code().code(),
                    message = n.message(),
                    "PostgreSQL notice on the writer connection"
                );
            }
            Ok(_) => {}
            Err(e) => {
                // The next write sees the closed client, reports it and reconnects.
                tracing::debug!(error = %DbError::from(e), "PostgreSQL writer connection ended");
                return;
            }
        }
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (or a key=value string) and
/// returns the rest for tokio-postgres.
fn split_tls_params(url: &str) -> Result<(String, TlsMode, Option<String>), String> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => {
                mode = Some(match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full: fix DATABASE_URL"
                        ));
                    }
                });
                Ok(true)
            }
            "sslrootcert" => {
                root = Some(value);
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, percent_decode_str(v).decode_utf8_lossy().into_owned())? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        // key=value form (values without spaces or quotes for these two keys).
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            if !take(k.trim(), v.trim_matches('\'').to_string())? {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rest, mode.unwrap_or(TlsMode::Prefer), root))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for `mode` (ring provider, whatever the process default).
fn client_config(mode: TlsMode, root_cert: Option<&str>) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let config = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth(),
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = Arc::new(root_store(root_cert)?);
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| format!("TLS setup failed: {e}"))?;
            if mode == TlsMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(config)
}

fn root_store(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let Some(path) = root_cert else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
        format!("cannot read sslrootcert {path}: {e}; point sslrootcert in DATABASE_URL at a readable PEM file")
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            format!("sslrootcert {path} is not valid PEM: {e}; download the CA certificate again")
        })?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert {path} holds an unusable certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert {path} holds no certificate; point it at the server's CA certificate (PEM)"
        ));
    }
    Ok(store)
}

/// `sslmode=require`: encrypted, the certificate is not checked (libpq's meaning), but the
/// handshake signatures are.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url_and_the_rest_is_kept() {
        let (rest, mode, root) = split_tls_params(
            "postgres://u:p%40ss@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.crt",
        )
        .expect("parses");
        assert_eq!(rest, "postgres://u:p%40ss@h:5432/db?application_name=x");
        assert_eq!(mode, TlsMode::VerifyFull);
        assert_eq!(root.as_deref(), Some("/tmp/ca.crt"));
        let (rest, mode, _) = split_tls_params("postgres://h/db").expect("parses");
        assert_eq!((rest.as_str(), mode), ("postgres://h/db", TlsMode::Prefer));
        let (rest, mode, _) = split_tls_params("host=h dbname=d sslmode=require").expect("parses");
        assert_eq!((rest.as_str(), mode), ("host=h dbname=d", TlsMode::Require));
        let err = split_tls_params("postgres://h/db?sslmode=maybe").expect_err("refused");
        assert!(err.contains("fix DATABASE_URL"), "{err}");
    }

    #[test]
    fn the_writer_defaults_notice_a_dead_peer_within_seconds() {
        let s = ConnectSettings::from_url("postgres://u@h/db?sslmode=require").expect("parses");
        assert_eq!(s.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(s.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert!(s.config.get_keepalives());
        assert_eq!(s.config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(s.config.get_ssl_mode(), SslMode::Require);
        let s = ConnectSettings::from_url("postgres://u@h/db?connect_timeout=2").expect("parses");
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(s.config.get_ssl_mode(), SslMode::Prefer);
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
