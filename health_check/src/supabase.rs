//! `--supabase-url` + `--supabase-key`: each symbol's newest quote through Supabase's REST API
//! (PostgREST), read-only: `GET {url}/rest/v1/latest_quotes?select=ticker,timestamp` with the
//! `apikey` header. A legacy JWT key (anon) also goes in `Authorization: Bearer`; the new
//! `sb_publishable_…` / `sb_secret_…` keys are not JWTs and go in `apikey` only.
//!
//! Why plain `reqwest` and not the `postgrest` crate the issue names: `postgrest` 1.6.0 (its
//! latest release) is built on reqwest 0.11, which brings hyper 0.14, http 0.2, rustls 0.21,
//! rustls-webpki 0.101 and webpki-roots 0.25: a second, older HTTP and TLS stack beside the
//! rustls 0.23 that tokio-postgres-rustls already links. One GET with two headers does not
//! justify that in a binary meant to be small; reqwest 0.12 on rustls with ring shares the
//! database connection's TLS stack. The
//! request is exactly the one `postgrest` would send (`Postgrest::new(url).insert_header
//! ("apikey", key).from("latest_quotes").select("ticker,timestamp").in_("ticker", symbols)`).

use chrono::{DateTime, Utc};
use market_calendar::FreshnessThresholds;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::SupabaseTarget;
use crate::freshness::{Newest, judge_symbols, summarize};
use crate::level::Level;
use crate::report::{CheckKind, CheckResult};

/// One row as PostgREST returns it.
#[derive(Debug, Deserialize)]
struct LatestRow {
    ticker: String,
    timestamp: String,
}

/// True for the legacy JWT keys (anon, service_role) that also go in `Authorization`.
pub fn is_legacy_jwt_key(key: &str) -> bool {
    !(key.starts_with("sb_publishable_") || key.starts_with("sb_secret_"))
}

/// The request URL: `{base}/rest/v1/latest_quotes?select=ticker,timestamp[&ticker=in.(…)]`.
pub fn request_url(base: &str, symbols: Option<&[String]>) -> Result<Url, String> {
    let base = base.trim().trim_end_matches('/');
    let base = base.strip_suffix("/rest/v1").unwrap_or(base);
    let mut url = Url::parse(&format!("{base}/rest/v1/latest_quotes")).map_err(|e| {
        format!("--supabase-url ({base}) is not a URL ({e}); e.g. https://REF.supabase.co")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("--supabase-url must be https://REF.supabase.co".into());
    }
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("select", "ticker,timestamp");
        if let Some(list) = symbols {
            // Double quotes keep tickers with '.' or ',' (BRK.B) one value.
            let quoted: Vec<String> = list.iter().map(|s| format!("\"{s}\"")).collect();
            q.append_pair("ticker", &format!("in.({})", quoted.join(",")));
        }
        q.append_pair("order", "ticker.asc");
    }
    Ok(url)
}

/// Runs the check.
pub async fn check(
    client: &reqwest::Client,
    target: &SupabaseTarget,
    symbols: Option<&[String]>,
    now: DateTime<Utc>,
    thresholds: &FreshnessThresholds,
) -> CheckResult {
    let shown = target.url.trim().trim_end_matches('/').to_string();
    let fail =
        |level, message| CheckResult::new(CheckKind::Supabase, shown.clone(), level, message);
    let url = match request_url(&target.url, symbols) {
        Ok(u) => u,
        Err(e) => return fail(Level::Unknown, e),
    };
    let mut request = client
        .get(url)
        .header("apikey", &target.key)
        .header("Accept", "application/json");
    if is_legacy_jwt_key(&target.key) {
        request = request.bearer_auth(&target.key);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return fail(
                Level::Critical,
                "no answer in time from the REST API".into(),
            );
        }
        Err(e) => {
            return fail(
                Level::Critical,
                format!(
                    "REST API unreachable ({}): is --supabase-url the project URL https://REF.supabase.co, and is the project not paused?",
                    crate::root_cause(&e)
                ),
            );
        }
    };
    let code = response.status().as_u16();
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => {
            return fail(
                Level::Critical,
                format!("HTTP {code}, body unreadable ({})", crate::root_cause(&e)),
            );
        }
    };
    if !(200..300).contains(&code) {
        let (level, message) = http_error(code, &body);
        return fail(level, message);
    }
    let rows: Vec<LatestRow> = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                Level::Unknown,
                format!("the answer is not PostgREST rows of latest_quotes ({e})"),
            );
        }
    };
    let mut latest = Vec::with_capacity(rows.len());
    for row in rows {
        match DateTime::parse_from_rfc3339(&row.timestamp) {
            Ok(t) => latest.push((row.ticker, t.with_timezone(&Utc))),
            Err(_) => {
                return fail(
                    Level::Unknown,
                    format!(
                        "unreadable timestamp {:?} for {}",
                        row.timestamp, row.ticker
                    ),
                );
            }
        }
    }
    let found: Vec<(String, Option<Newest>)> = match symbols {
        Some(list) => list
            .iter()
            .map(|s| {
                let newest = latest
                    .iter()
                    .filter(|(t, _)| t == s)
                    .map(|(_, at)| *at)
                    .max()
                    .map(|at| Newest {
                        at,
                        source: "latest_quotes",
                    });
                (s.clone(), newest)
            })
            .collect(),
        None if latest.is_empty() => {
            return fail(
                Level::Critical,
                "latest_quotes is empty (or hidden from this key by row-level security): the service has written no quote yet".into(),
            );
        }
        None => latest
            .into_iter()
            .map(|(t, at)| {
                let newest = Newest {
                    at,
                    source: "latest_quotes",
                };
                (t, Some(newest))
            })
            .collect(),
    };
    let judged = judge_symbols(found, now, thresholds);
    let (level, message) = summarize(&judged);
    let mut result = CheckResult::new(CheckKind::Supabase, shown, level, message);
    result.symbols = judged;
    result
}

/// A level and message for a non-2xx answer; PostgREST's JSON error message is quoted.
fn http_error(code: u16, body: &str) -> (Level, String) {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|j| {
            j.get("message")
                .or_else(|| j.get("msg"))
                .or_else(|| j.get("error"))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| body.chars().take(120).collect());
    match code {
        401 | 403 => (
            Level::Unknown,
            format!(
                "key rejected (HTTP {code}: {detail}): pass the project's publishable or anon key (Project Settings > API Keys)"
            ),
        ),
        404 => (
            Level::Critical,
            format!(
                "latest_quotes not found (HTTP 404: {detail}): has the service run its migrations on this project, and is --supabase-url the project URL?"
            ),
        ),
        _ => (Level::Critical, format!("HTTP {code}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_url_selects_and_filters() {
        let url = request_url(
            "https://abc.supabase.co/",
            Some(&["AAPL".into(), "BRK.B".into()]),
        )
        .expect("url");
        assert_eq!(
            url.as_str(),
            "https://abc.supabase.co/rest/v1/latest_quotes?select=ticker%2Ctimestamp&ticker=in.%28%22AAPL%22%2C%22BRK.B%22%29&order=ticker.asc"
        );
        let all = request_url("https://abc.supabase.co/rest/v1", None).expect("url");
        assert_eq!(
            all.as_str(),
            "https://abc.supabase.co/rest/v1/latest_quotes?select=ticker%2Ctimestamp&order=ticker.asc"
        );
        assert!(request_url("abc.supabase.co", None).is_err());
    }

    #[test]
    fn only_legacy_keys_are_bearer_tokens() {
        assert!(is_legacy_jwt_key("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(!is_legacy_jwt_key("sb_publishable_abc"));
        assert!(!is_legacy_jwt_key("sb_secret_abc"));
    }

    #[test]
    fn http_errors_say_what_to_fix() {
        let (level, message) = http_error(401, r#"{"message":"Invalid API key"}"#);
        assert_eq!(level, Level::Unknown);
        assert!(message.contains("Invalid API key"));
        assert_eq!(
            http_error(
                404,
                r#"{"code":"PGRST205","message":"Could not find the table"}"#
            )
            .0,
            Level::Critical
        );
        assert_eq!(
            http_error(503, "upstream down").1,
            "HTTP 503: upstream down"
        );
    }
}
