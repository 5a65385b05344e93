//! How market-streamer and health_check reach PostgreSQL: a `DATABASE_URL` (URL or
//! key=value form) with libpq's `sslmode` and `sslrootcert` becomes tokio-postgres settings
//! plus a rustls connector (ring provider, whatever the process default). One copy of the TLS
//! rules for both binaries; timeouts and keepalive are each caller's business.
//!
//! `sslmode`: `disable`; `prefer` (the default, TLS if the server offers it, like libpq; also
//! `allow`); `require` (TLS, the certificate is not checked, like libpq); `verify-ca` (the chain
//! is checked against `sslrootcert`, or the Mozilla roots when it is not given); `verify-full`
//! (chain and host name). Supabase's certificates chain to Supabase's own CA: download it from
//! the dashboard and pass `sslrootcert=/path/prod-ca-2021.crt` for `verify-full`.

use std::str::FromStr;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
pub use tokio_postgres_rustls::MakeRustlsConnect;

/// Why a `DATABASE_URL` cannot be used. Each message says what to fix; none holds the password.
#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    /// `sslmode` has a value libpq does not know.
    #[error(
        "sslmode={0} is not one of disable, prefer, require, verify-ca, verify-full: fix DATABASE_URL"
    )]
    SslMode(String),
    /// tokio-postgres refused the rest of the URL.
    #[error("{}", url_text(.0))]
    Url(#[source] tokio_postgres::Error),
    /// The `sslrootcert` file cannot be read.
    #[error(
        "cannot read sslrootcert {path}: {source}; point sslrootcert in DATABASE_URL at a readable PEM file"
    )]
    RootCertUnreadable {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    /// The `sslrootcert` file is not PEM.
    #[error("sslrootcert {path} is not valid PEM: {source}; download the CA certificate again")]
    RootCertPem {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate in the `sslrootcert` file cannot be a trust anchor.
    #[error(
        "sslrootcert {path} holds an unusable certificate: {source}; download the CA certificate again"
    )]
    RootCertUnusable { path: String, source: rustls::Error },
    /// The `sslrootcert` file holds no certificate.
    #[error(
        "sslrootcert {path} holds no certificate; point it at the server's CA certificate (PEM)"
    )]
    RootCertEmpty { path: String },
    /// rustls refused the configuration (a bug or an unusable crypto provider).
    #[error("TLS setup failed: {0}; please report this with the log")]
    Tls(String),
}

/// tokio-postgres' own text says only "invalid connection string": add its cause.
fn url_text(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!(
            "DATABASE_URL is not a valid PostgreSQL URL ({e}: {cause}): fix it (postgres://USER:PASSWORD@HOST:PORT/DB)"
        ),
        None => format!(
            "DATABASE_URL is not a valid PostgreSQL URL ({e}): fix it (postgres://USER:PASSWORD@HOST:PORT/DB)"
        ),
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

/// A parsed `DATABASE_URL`: the tokio-postgres settings (without `sslmode` and `sslrootcert`,
/// which tokio-postgres does not understand the libpq way) and the connector for its `sslmode`.
/// Connect with `target.config.connect(target.tls.clone())`.
#[derive(Clone)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub tls_mode: TlsMode,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config's Debug redacts the password; the connector holds no secret.
        f.debug_struct("PgTarget")
            .field("config", &self.config)
            .field("tls_mode", &self.tls_mode)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Parses a `postgres://` URL (or a key=value string), applying `sslmode` and
    /// `sslrootcert` as libpq does.
    pub fn parse(url: &str) -> Result<Self, PgConnectError> {
        let (rest, tls_mode, root_cert) = split_tls_params(url)?;
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(PgConnectError::Url)?;
        config.ssl_mode(match tls_mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = MakeRustlsConnect::new(client_config(tls_mode, root_cert.as_deref())?);
        Ok(Self {
            config,
            tls,
            tls_mode,
        })
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (or a key=value string) and
/// returns the rest for tokio-postgres.
fn split_tls_params(url: &str) -> Result<(String, TlsMode, Option<String>), PgConnectError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| -> Result<bool, PgConnectError> {
        match key {
            "sslmode" => {
                mode = Some(match value.as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(PgConnectError::SslMode(other.to_string())),
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
fn client_config(mode: TlsMode, root_cert: Option<&str>) -> Result<ClientConfig, PgConnectError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PgConnectError::Tls(e.to_string()))?;
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
                    .map_err(|e| PgConnectError::Tls(e.to_string()))?;
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

fn root_store(root_cert: Option<&str>) -> Result<RootCertStore, PgConnectError> {
    let Some(path) = root_cert else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|source| {
        PgConnectError::RootCertUnreadable {
            path: path.to_string(),
            source,
        }
    })?;
    for cert in certs {
        let cert = cert.map_err(|source| PgConnectError::RootCertPem {
            path: path.to_string(),
            source,
        })?;
        store
            .add(cert)
            .map_err(|source| PgConnectError::RootCertUnusable {
                path: path.to_string(),
                source,
            })?;
    }
    if store.is_empty() {
        return Err(PgConnectError::RootCertEmpty {
            path: path.to_string(),
        });
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
        assert!(err.to_string().contains("fix DATABASE_URL"), "{err}");
    }

    #[test]
    fn sslmode_maps_to_what_tokio_postgres_knows() {
        let t = PgTarget::parse("postgres://u@h/db?sslmode=verify-ca").expect("parses");
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(t.tls_mode, TlsMode::VerifyCa);
        let t = PgTarget::parse("postgres://u@h/db?sslmode=disable").expect("parses");
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
        let t = PgTarget::parse("postgres://u@h/db").expect("parses");
        assert_eq!(t.config.get_ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn bad_urls_and_root_certificates_say_what_to_fix_without_the_password() {
        let err = PgTarget::parse("postgres://u:secret@h:notaport/db").expect_err("bad port");
        let text = err.to_string();
        assert!(text.contains("fix it"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let err = PgTarget::parse(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
        )
        .expect_err("no file");
        assert!(
            matches!(err, PgConnectError::RootCertUnreadable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("sslrootcert"), "{err}");
    }
}
