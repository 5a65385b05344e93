//! [`DatabaseTarget`]: a parsed `DATABASE_URL`, and password redaction for URLs.

use std::fmt;
use std::path::PathBuf;

/// Where rows go: the embedded SQLite default or a PostgreSQL (e.g. Supabase) server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// `sqlite://PATH`: a file, created (with its folder) if missing.
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/db?...`, passed to tokio-postgres as is (`sslmode`
    /// and `sslrootcert` read the libpq way by the `pg-connect` crate).
    Postgres(String),
}

impl DatabaseTarget {
    /// The default target: `sqlite://data/market.db`, relative to the working directory.
    pub const DEFAULT_URL: &'static str = "sqlite://data/market.db";

    /// Parses a `DATABASE_URL` value. The error says what to write instead (and holds no
    /// password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("a sqlite URL needs a file path, e.g. sqlite://data/market.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let after_scheme = url.split_once("://").map(|x| x.1).unwrap_or_default();
            let Some((userinfo, _)) = after_scheme.split_once('@') else {
                return Err(
                    "put the user name in the URL, e.g. postgres://postgres:PASSWORD@HOST:5432/postgres"
                        .into(),
                );
            };
            if userinfo.split(':').next().unwrap_or_default().is_empty() {
                return Err("the user name before '@' is empty".into());
            }
            if postgres_port(url) == Some(6543) {
                return Err(
                    "port 6543 is Supabase's transaction pooler, which does not keep the prepared statements this service uses; \
                     use the session pooler (same host, port 5432, user postgres.<project-ref>) or the direct connection \
                     (db.<project-ref>.supabase.co:5432, IPv6), with ?sslmode=require"
                        .into(),
                );
            }
            return Ok(Self::Postgres(url.to_string()));
        }
        Err("must start with sqlite:// or postgres://".into())
    }

    /// The URL with any password replaced by `***`, safe for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_url_password(url),
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The port of a `postgres://user@host:port/db` URL, if one is given.
fn postgres_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let host_port = rest.rsplit_once('@').map_or(rest, |x| x.1);
    let host_port = host_port.split(['/', '?']).next()?;
    let port = match host_port.rsplit_once(']') {
        Some((_, after)) => after.strip_prefix(':')?,
        None => host_port.rsplit_once(':')?.1,
    };
    port.parse().ok()
}

/// Query parameters whose values are secrets (libpq names; compared ignoring case).
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// Replaces the password of `scheme://user:password@host` and the value of every secret
/// query parameter (`password=`, `sslpassword=`) with `***`.
pub fn redact_url_password(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    if let Some(q) = out.find('?') {
        let query: Vec<String> = out[q + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _))
                    if SECRET_PARAMETERS
                        .iter()
                        .any(|secret| key.eq_ignore_ascii_case(secret)) =>
                {
                    format!("{key}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{}?{}", &out[..q], query.join("&"));
    }
    out
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_url_password;

    #[test]
    fn passwords_in_the_userinfo_and_the_query_are_hidden() {
        for (url, shown) in [
            (
                "postgres://u:s3cret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            (
                "postgres://u@h/db?password=s3cret&sslmode=require",
                "postgres://u@h/db?password=***&sslmode=require",
            ),
            (
                "postgres://u@h/db?PASSWORD=p@ss",
                "postgres://u@h/db?PASSWORD=***",
            ),
            (
                "postgres://u:a@h/db?sslpassword=k3y&sslmode=verify-full",
                "postgres://u:***@h/db?sslpassword=***&sslmode=verify-full",
            ),
        ] {
            assert_eq!(redact_url_password(url), shown);
        }
    }
}
