//! `--url`: asks the service's `/health` endpoint and maps its status: `ok` → OK,
//! `degraded` → WARNING, `down` → CRITICAL; unreachable or no answer in time → CRITICAL; an
//! answer that is not health JSON → UNKNOWN.
//!
//! Parsing is lenient: only `status` is required. Whatever else the body has that this
//! binary knows (`stream.state`, `stream.last_frame_age_secs`, `writer.last_commit_age_secs`,
//! `writer.buffered_rows`, `reasons`) is added to the report line; the whole body is kept in
//! the JSON output.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;
use streamer_config::redact_url_password;

use crate::level::Level;
use crate::report::{CheckKind, CheckResult, human};

/// How to reach a private `HEALTH_ADDR`, said when the service cannot be reached.
const TUNNEL_HINT: &str = "is the service running, and is the URL its HEALTH_ADDR? \
A port bound to 127.0.0.1 on a server needs a tunnel first: \
ssh -N -L 8080:127.0.0.1:8080 user@host, then --url http://127.0.0.1:8080";

/// Runs the check against `url`.
pub async fn check(client: &reqwest::Client, url: &str, timeout: Duration) -> CheckResult {
    let shown = redact_url_password(url);
    let url = match health_url(url) {
        Ok(u) => u,
        Err(e) => return CheckResult::new(CheckKind::Service, shown, Level::Unknown, e),
    };
    let shown = redact_url_password(url.as_str());
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            let message = if e.is_timeout() {
                format!("no answer within {}: {TUNNEL_HINT}", human(timeout))
            } else {
                format!("unreachable ({}): {TUNNEL_HINT}", crate::root_cause(&e))
            };
            return CheckResult::new(CheckKind::Service, shown, Level::Critical, message);
        }
    };
    let code = response.status().as_u16();
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => {
            let message = format!(
                "HTTP {code}, but the body could not be read ({})",
                crate::root_cause(&e)
            );
            return CheckResult::new(CheckKind::Service, shown, Level::Critical, message);
        }
    };
    let (level, message, json) = judge_body(code, &body);
    let mut result = CheckResult::new(CheckKind::Service, shown, level, message);
    result.response = json;
    result
}

/// `url` with `/health` appended when it has no path.
pub fn health_url(url: &str) -> Result<Url, String> {
    let mut parsed = Url::parse(url.trim()).map_err(|e| {
        format!(
            "--url ({}) is not a URL ({e}); e.g. http://127.0.0.1:8080",
            redact_url_password(url)
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "--url must be http:// or https://, not {}://",
            parsed.scheme()
        ));
    }
    if parsed.path().is_empty() || parsed.path() == "/" {
        parsed.set_path("/health");
    }
    Ok(parsed)
}

/// Maps an HTTP status and body to a level and a one-line message.
pub fn judge_body(code: u16, body: &str) -> (Level, String, Option<Value>) {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let status = json
        .as_ref()
        .and_then(|j| j.get("status"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let level = match status.as_deref() {
        Some("ok") => Level::Ok,
        Some("degraded") => Level::Warning,
        Some("down") => Level::Critical,
        Some(other) => {
            let message = format!(
                "HTTP {code}, unknown status {other:?} (expected ok, degraded or down): is this binary older than the service?"
            );
            return (Level::Unknown, message, json);
        }
        None if code >= 500 => {
            let message = format!("HTTP {code} without a health status: {}", snippet(body));
            return (Level::Critical, message, json);
        }
        None => {
            let message = format!(
                "HTTP {code}, not a health answer (no \"status\" in a JSON body: {}); is the URL the service's HEALTH_ADDR?",
                snippet(body)
            );
            return (Level::Unknown, message, json);
        }
    };
    let mut parts = vec![format!("status {}", status.unwrap_or_default())];
    if let Some(j) = &json {
        if let Some(state) = j.pointer("/stream/state").and_then(Value::as_str) {
            parts.push(format!("stream {state}"));
        }
        let age = |ptr: &str, what: &str| {
            j.pointer(ptr)
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| format!("{what} {} ago", human(Duration::from_secs_f64(s))))
        };
        parts.extend(age("/stream/last_frame_age_secs", "last frame"));
        parts.extend(age("/writer/last_commit_age_secs", "last commit"));
        if let Some(rows) = j.pointer("/writer/buffered_rows").and_then(Value::as_u64) {
            parts.push(format!("{rows} rows buffered"));
        }
        if let Some(reasons) = j.get("reasons").and_then(Value::as_array) {
            parts.extend(reasons.iter().filter_map(Value::as_str).map(String::from));
        }
    }
    (level, parts.join(", "), json)
}

/// The start of a body, for messages.
fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".into();
    }
    let cut: String = trimmed.chars().take(80).collect();
    if cut.len() < trimmed.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_path_is_added_only_when_missing() {
        let u = |s| health_url(s).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080/health".into())
        );
        assert_eq!(u("http://h:1/"), Ok("http://h:1/health".into()));
        assert_eq!(
            u("https://h/custom/health"),
            Ok("https://h/custom/health".into())
        );
        assert!(u("127.0.0.1:8080").is_err());
        assert!(u("ftp://h/").is_err());
    }

    #[test]
    fn statuses_map_to_levels_and_details_are_read_leniently() {
        let body = r#"{"status":"degraded","stream":{"state":"backing_off","last_frame_age_secs":42.5},
            "writer":{"last_commit_age_secs":3,"buffered_rows":17},"reasons":["stream backing off after a disconnect"],
            "market":{"open":true,"phase":"regular"},"extra":{"anything":1}}"#;
        let (level, message, json) = judge_body(200, body);
        assert_eq!(level, Level::Warning);
        assert_eq!(
            message,
            "status degraded, stream backing_off, last frame 42.5 s ago, last commit 3.0 s ago, 17 rows buffered, stream backing off after a disconnect"
        );
        assert!(json.is_some());
        assert_eq!(judge_body(200, r#"{"status":"ok"}"#).0, Level::Ok);
        assert_eq!(judge_body(503, r#"{"status":"down"}"#).0, Level::Critical);
        assert_eq!(judge_body(200, r#"{"status":"OK"}"#).0, Level::Ok);
        assert_eq!(
            judge_body(200, r#"{"status":"sideways"}"#).0,
            Level::Unknown
        );
        assert_eq!(judge_body(200, "<html>hello</html>").0, Level::Unknown);
        assert_eq!(judge_body(404, "").0, Level::Unknown);
        assert_eq!(judge_body(502, "Bad Gateway").0, Level::Critical);
        assert_eq!(judge_body(200, r#"{"stream":{}}"#).0, Level::Unknown);
    }
}
