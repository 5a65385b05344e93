//! The Schwab session settings (`SCHWAB_*`, `TOKEN_*`, field sets, reconnect timings), kept in
//! one struct, [`SchwabConfig`], that lives in [`Config::schwab`](crate::config::Config).
//!
//! Parsed by [`parse`], called from [`Config::from_lookup`](crate::config::Config::from_lookup)
//! so every bad value is reported together with the others.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{parse_seconds, redact_url_password};
use crate::schwab::wire::{ChartFields, EquityFields, OptionFields};

use super::secret::Secret;

/// Where the stream comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchwabMode {
    /// The built-in Schwab simulator, started in process on loopback (zero-configuration demo).
    Simulated,
    /// The real Schwab API (or any server at `SCHWAB_API_BASE` / `SCHWAB_AUTH_BASE`).
    Live,
}

/// Where the OAuth tokens are kept (`TOKEN_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStoreKind {
    /// A JSON file (`TOKEN_FILE`), written atomically with mode 0600.
    File,
    /// The `schwab_tokens` table of `DATABASE_URL`.
    Database,
}

/// Highest field number of LEVELONE_EQUITIES, LEVELONE_OPTIONS and CHART_EQUITY.
const MAX_EQUITY_FIELD: u32 = 51;
const MAX_OPTION_FIELD: u32 = 55;
const MAX_CHART_FIELD: u32 = 8;

/// Everything the Schwab session needs besides the symbols.
#[derive(Clone)]
pub struct SchwabConfig {
    /// `SCHWAB_MODE` (`simulated` | `live`); default: `live` when `SCHWAB_CLIENT_ID` is set.
    pub mode: SchwabMode,
    /// `SCHWAB_CLIENT_ID`: the app key of the developer app.
    pub client_id: Option<String>,
    /// `SCHWAB_CLIENT_SECRET`: the app secret (redacted from `Debug`).
    pub client_secret: Option<Secret>,
    /// `SCHWAB_CALLBACK_URL`: the callback registered for the app (https, exact match).
    pub callback_url: String,
    /// `SCHWAB_API_BASE`: base of the REST API (`/trader/v1/userPreference` is below it).
    pub api_base: String,
    /// `SCHWAB_AUTH_BASE`: base of the OAuth endpoints (`/authorize`, `/token`).
    pub auth_base: String,
    /// `TOKEN_STORE`.
    pub token_store: TokenStoreKind,
    /// `TOKEN_FILE`: the token file when `TOKEN_STORE=file`.
    pub token_file: PathBuf,
    /// `EQUITY_FIELDS`: LEVELONE_EQUITIES fields, ascending, with 0.
    pub equity_fields: Vec<u32>,
    /// `OPTION_FIELDS`: LEVELONE_OPTIONS fields, ascending, with 0.
    pub option_fields: Vec<u32>,
    /// `CHART_FIELDS`: CHART_EQUITY fields, ascending, with 0.
    pub chart_fields: Vec<u32>,
    /// `STALL_TIMEOUT`: reconnect when no frame (data or heartbeat) arrived for this long.
    pub stall_timeout: Duration,
    /// `STREAM_RESPONSE_TIMEOUT`: deadline for the LOGIN ack and each subscription ack.
    pub response_timeout: Duration,
    /// `SCHWAB_HTTP_TIMEOUT`: deadline of every REST call and of the WebSocket connect.
    pub http_timeout: Duration,
    /// `RECONNECT_BACKOFF_MIN`: first reconnect delay ceiling (full jitter below it).
    pub reconnect_backoff_min: Duration,
    /// `RECONNECT_BACKOFF_MAX`: cap of the reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// `KICKED_BACKOFF`: wait after code 12 (another login took the single streamer slot).
    pub kicked_backoff: Duration,
    /// `NEEDS_LOGIN_RETRY`: how often a refused refresh (or denied login) is tried again.
    pub needs_login_retry: Duration,
    /// `TOKEN_STORE_POLL`: how often the store is read for tokens of a new `login`.
    pub token_store_poll: Duration,
}

impl Default for SchwabConfig {
    fn default() -> Self {
        Self {
            mode: SchwabMode::Simulated,
            client_id: None,
            client_secret: None,
            callback_url: "https://127.0.0.1:8182".to_string(),
            api_base: "https://api.schwabapi.com".to_string(),
            auth_base: "https://api.schwabapi.com/v1/oauth".to_string(),
            token_store: TokenStoreKind::File,
            token_file: PathBuf::from("data/schwab-tokens.json"),
            equity_fields: with_field_zero(EquityFields::FIELD_NUMBERS),
            option_fields: with_field_zero(OptionFields::FIELD_NUMBERS),
            chart_fields: with_field_zero(ChartFields::FIELD_NUMBERS),
            stall_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(15),
            reconnect_backoff_min: Duration::from_secs(1),
            reconnect_backoff_max: Duration::from_secs(120),
            kicked_backoff: Duration::from_secs(300),
            needs_login_retry: Duration::from_secs(1800),
            token_store_poll: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for SchwabConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchwabConfig")
            .field("mode", &self.mode)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("callback_url", &self.callback_url)
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("token_store", &self.token_store)
            .field("token_file", &self.token_file)
            .field("equity_fields", &self.equity_fields)
            .field("option_fields", &self.option_fields)
            .field("chart_fields", &self.chart_fields)
            .field("stall_timeout", &self.stall_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("http_timeout", &self.http_timeout)
            .field("reconnect_backoff_min", &self.reconnect_backoff_min)
            .field("reconnect_backoff_max", &self.reconnect_backoff_max)
            .field("kicked_backoff", &self.kicked_backoff)
            .field("needs_login_retry", &self.needs_login_retry)
            .field("token_store_poll", &self.token_store_poll)
            .finish()
    }
}

/// Field list for a subscription: field 0 plus `fields`, ascending, without duplicates.
pub fn with_field_zero(fields: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(fields.len() + 1);
    out.push(0);
    out.extend_from_slice(fields);
    out.sort_unstable();
    out.dedup();
    out
}

/// Reads every Schwab setting into `cfg`, pushing one line per bad value onto `problems`.
pub fn parse(
    get: &impl Fn(&str) -> Option<String>,
    cfg: &mut SchwabConfig,
    problems: &mut Vec<String>,
) {
    cfg.client_id = get("SCHWAB_CLIENT_ID").map(|v| v.trim().to_string());
    cfg.client_secret = get("SCHWAB_CLIENT_SECRET").map(|v| Secret::new(v.trim()));
    cfg.mode = match get("SCHWAB_MODE").map(|v| v.trim().to_ascii_lowercase()) {
        None if cfg.client_id.is_some() => SchwabMode::Live,
        None => SchwabMode::Simulated,
        Some(v) if v == "live" => SchwabMode::Live,
        Some(v) if v == "simulated" => SchwabMode::Simulated,
        Some(v) => {
            problems.push(format!(
                "SCHWAB_MODE ({v:?}) is not valid; allowed: simulated or live (unset: live when SCHWAB_CLIENT_ID is set)"
            ));
            cfg.mode
        }
    };
    if cfg.mode == SchwabMode::Live {
        if cfg.client_id.is_none() {
            problems.push(
                "SCHWAB_CLIENT_ID is missing; allowed: the App Key from your app's page on developer.schwab.com (or SCHWAB_MODE=simulated)"
                    .to_string(),
            );
        }
        if cfg.client_secret.is_none() {
            problems.push(
                "SCHWAB_CLIENT_SECRET is missing; allowed: the Secret from your app's page on developer.schwab.com"
                    .to_string(),
            );
        }
    }
    if let Some(v) = get("SCHWAB_CALLBACK_URL") {
        match check_url(&v, true) {
            Ok(url) => cfg.callback_url = url,
            Err(e) => problems.push(format!(
                "SCHWAB_CALLBACK_URL ({v:?}): {e}; allowed: the exact https callback URL registered for the app, e.g. https://127.0.0.1:8182"
            )),
        }
    }
    for (name, slot) in [
        ("SCHWAB_API_BASE", &mut cfg.api_base),
        ("SCHWAB_AUTH_BASE", &mut cfg.auth_base),
    ] {
        if let Some(v) = get(name) {
            match check_url(&v, false) {
                Ok(url) => *slot = url.trim_end_matches('/').to_string(),
                Err(e) => problems.push(format!(
                    "{name} ({}): {e}; allowed: an http(s) URL, e.g. https://api.schwabapi.com",
                    redact_url_password(&v)
                )),
            }
        }
    }
    if let Some(v) = get("TOKEN_STORE") {
        match v.trim().to_ascii_lowercase().as_str() {
            "file" => cfg.token_store = TokenStoreKind::File,
            "database" => cfg.token_store = TokenStoreKind::Database,
            _ => problems.push(format!(
                "TOKEN_STORE ({v:?}) is not valid; allowed: file (TOKEN_FILE) or database (table schwab_tokens in DATABASE_URL)"
            )),
        }
    }
    if let Some(v) = get("TOKEN_FILE") {
        cfg.token_file = PathBuf::from(v.trim());
    }
    for (name, slot, max) in [
        ("EQUITY_FIELDS", &mut cfg.equity_fields, MAX_EQUITY_FIELD),
        ("OPTION_FIELDS", &mut cfg.option_fields, MAX_OPTION_FIELD),
        ("CHART_FIELDS", &mut cfg.chart_fields, MAX_CHART_FIELD),
    ] {
        if let Some(v) = get(name) {
            match parse_fields(&v, max) {
                Ok(list) => *slot = list,
                Err(e) => problems.push(format!("{name} ({v:?}): {e}")),
            }
        }
    }
    let seconds = [
        ("STALL_TIMEOUT", &mut cfg.stall_timeout, 0.1, 3600.0),
        (
            "STREAM_RESPONSE_TIMEOUT",
            &mut cfg.response_timeout,
            0.1,
            300.0,
        ),
        ("SCHWAB_HTTP_TIMEOUT", &mut cfg.http_timeout, 0.1, 300.0),
        (
            "RECONNECT_BACKOFF_MIN",
            &mut cfg.reconnect_backoff_min,
            0.01,
            600.0,
        ),
        (
            "RECONNECT_BACKOFF_MAX",
            &mut cfg.reconnect_backoff_max,
            0.01,
            3600.0,
        ),
        ("KICKED_BACKOFF", &mut cfg.kicked_backoff, 0.01, 86_400.0),
        (
            "NEEDS_LOGIN_RETRY",
            &mut cfg.needs_login_retry,
            0.01,
            86_400.0,
        ),
        ("TOKEN_STORE_POLL", &mut cfg.token_store_poll, 0.01, 3600.0),
    ];
    for (name, slot, min, max) in seconds {
        parse_seconds(get, name, slot, problems, min, max);
    }
    if cfg.reconnect_backoff_max < cfg.reconnect_backoff_min {
        problems.push(format!(
            "RECONNECT_BACKOFF_MAX ({:?}) is below RECONNECT_BACKOFF_MIN ({:?}); allowed: at least RECONNECT_BACKOFF_MIN",
            cfg.reconnect_backoff_max, cfg.reconnect_backoff_min
        ));
    }
}

/// Checks an http(s) URL (`https_only` for the callback) and returns it trimmed.
fn check_url(raw: &str, https_only: bool) -> Result<String, String> {
    let raw = raw.trim();
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if !https_only => {}
        other => {
            return Err(format!(
                "scheme {other}:// is not allowed{}",
                if https_only {
                    " (Schwab requires https)"
                } else {
                    ""
                }
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(raw.to_string())
}

/// Parses a comma list of field numbers up to `max` into an ascending list with field 0.
pub fn parse_fields(raw: &str, max: u32) -> Result<Vec<u32>, String> {
    let mut fields = Vec::new();
    let mut bad = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(n) if n <= max => fields.push(n),
            _ => bad.push(part.to_string()),
        }
    }
    if !bad.is_empty() {
        return Err(format!(
            "{} not valid; allowed: comma-separated field numbers from 0 to {max} (sorted and field 0 added for you)",
            bad.join(", ")
        ));
    }
    Ok(with_field_zero(&fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn from(vars: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_are_the_simulated_mode_with_the_stored_fields() {
        let cfg = from(&[]).expect("defaults are valid").schwab;
        assert_eq!(cfg.mode, SchwabMode::Simulated);
        assert_eq!(cfg.token_store, TokenStoreKind::File);
        assert_eq!(cfg.callback_url, "https://127.0.0.1:8182");
        assert_eq!(cfg.stall_timeout, Duration::from_secs(30));
        assert_eq!(cfg.equity_fields[0], 0);
        assert!(cfg.equity_fields.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(cfg.chart_fields, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_client_id_switches_to_live_and_needs_the_secret() {
        let err = from(&[("SCHWAB_CLIENT_ID", "abc")]).expect_err("secret missing");
        assert!(err.to_string().contains("SCHWAB_CLIENT_SECRET"), "{err}");
        let cfg = from(&[
            ("SCHWAB_CLIENT_ID", "abc"),
            ("SCHWAB_CLIENT_SECRET", "shh-very-secret"),
        ])
        .expect("valid")
        .schwab;
        assert_eq!(cfg.mode, SchwabMode::Live);
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("shh-very-secret"), "{debug}");
        let cfg = from(&[("SCHWAB_CLIENT_ID", "abc"), ("SCHWAB_MODE", "simulated")])
            .expect("simulated needs no secret")
            .schwab;
        assert_eq!(cfg.mode, SchwabMode::Simulated);
    }

    #[test]
    fn fields_are_sorted_with_zero_and_checked_against_the_service() {
        let cfg = from(&[("EQUITY_FIELDS", "8, 3,1,3"), ("CHART_FIELDS", "0,7,1")])
            .expect("valid")
            .schwab;
        assert_eq!(cfg.equity_fields, [0, 1, 3, 8]);
        assert_eq!(cfg.chart_fields, [0, 1, 7]);
        let err = from(&[("OPTION_FIELDS", "2,56,x"), ("CHART_FIELDS", "9")]).expect_err("bad");
        let text = err.to_string();
        assert!(
            text.contains("OPTION_FIELDS") && text.contains("56, x"),
            "{text}"
        );
        assert!(text.contains("from 0 to 8"), "{text}");
    }

    #[test]
    fn bad_urls_store_and_timings_are_reported_together() {
        let err = from(&[
            ("SCHWAB_CALLBACK_URL", "http://127.0.0.1:8182"),
            ("SCHWAB_API_BASE", "ftp://x"),
            ("TOKEN_STORE", "vault"),
            ("STALL_TIMEOUT", "0"),
            ("RECONNECT_BACKOFF_MIN", "10"),
            ("RECONNECT_BACKOFF_MAX", "5"),
            ("SCHWAB_MODE", "paper"),
        ])
        .expect_err("bad");
        assert_eq!(err.problems.len(), 6, "{err}");
        for name in [
            "SCHWAB_CALLBACK_URL",
            "SCHWAB_API_BASE",
            "TOKEN_STORE",
            "STALL_TIMEOUT",
            "RECONNECT_BACKOFF_MAX",
            "SCHWAB_MODE",
        ] {
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn base_urls_lose_their_trailing_slash() {
        let cfg = from(&[
            ("SCHWAB_API_BASE", "http://127.0.0.1:9000/"),
            ("SCHWAB_AUTH_BASE", "http://127.0.0.1:9000/v1/oauth/"),
            ("TOKEN_STORE", "database"),
        ])
        .expect("valid")
        .schwab;
        assert_eq!(cfg.api_base, "http://127.0.0.1:9000");
        assert_eq!(cfg.auth_base, "http://127.0.0.1:9000/v1/oauth");
        assert_eq!(cfg.token_store, TokenStoreKind::Database);
    }
}
