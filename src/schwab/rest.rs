//! The REST client shared by OAuth and `userPreference`: reqwest over rustls, a timeout on
//! every call, a client-side rate limiter under Schwab's 120 requests per minute, and
//! `429 Too Many Requests` answered by waiting for `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Calls per minute the limiter allows on average (Schwab's limit is 120).
const REQUESTS_PER_MINUTE: u32 = 100;
/// Calls allowed at once after a quiet period; with the rate above, no 60-second window
/// ever holds more than 110 calls.
const BURST: u32 = 10;
/// How often a 429 is retried before giving up.
const MAX_THROTTLE_RETRIES: u32 = 3;
/// Longest `Retry-After` honoured; longer values are capped (a stuck header must not park
/// the service for hours).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Bytes of an error body kept for messages.
const BODY_EXCERPT: usize = 300;

/// Where and how to call Schwab.
#[derive(Debug, Clone)]
pub struct RestSettings {
    /// Base of the REST API, e.g. `https://api.schwabapi.com`.
    pub api_base: String,
    /// Base of the OAuth endpoints, e.g. `https://api.schwabapi.com/v1/oauth`.
    pub auth_base: String,
    /// Deadline of one call (connect + answer).
    pub timeout: Duration,
}

/// Why a call got no usable HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestError {
    #[error("{what}: no answer within {timeout:?}; Schwab is slow or unreachable, retrying later")]
    Timeout { what: String, timeout: Duration },
    #[error(
        "{what}: cannot reach Schwab ({detail}); check the network, DNS and SCHWAB_API_BASE / SCHWAB_AUTH_BASE"
    )]
    Network { what: String, detail: String },
    #[error(
        "{what}: Schwab answered 429 Too Many Requests {tries} times; another program may share this app's rate limit"
    )]
    Throttled { what: String, tries: u32 },
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
}

/// An HTTP answer: status and body text.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
    /// `Content-Type`, lower-cased.
    pub content_type: String,
}

impl RawResponse {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// True when the body is JSON (by content type or by its first character).
    pub fn is_json(&self) -> bool {
        self.content_type.contains("json") || self.body.trim_start().starts_with('{')
    }

    /// The start of the body, for error messages (callers scrub secrets from it).
    pub fn excerpt(&self) -> String {
        let body = self.body.trim();
        match body.char_indices().nth(BODY_EXCERPT) {
            Some((i, _)) => format!("{}…", &body[..i]),
            None => body.to_string(),
        }
    }
}

/// The Schwab REST client. Cheap to share behind an `Arc`.
pub struct SchwabRest {
    http: reqwest::Client,
    limiter: DefaultDirectRateLimiter,
    settings: RestSettings,
}

impl std::fmt::Debug for SchwabRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchwabRest")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SchwabRest {
    /// A client with the given bases and timeout.
    pub fn new(settings: RestSettings) -> Result<Self, RestError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("market-streamer/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RestError::Client(e.to_string()))?;
        let quota = Quota::per_minute(nonzero(REQUESTS_PER_MINUTE)).allow_burst(nonzero(BURST));
        Ok(Self {
            http,
            limiter: RateLimiter::direct(quota),
            settings,
        })
    }

    /// `SCHWAB_API_BASE` + `path`.
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_base)
    }

    /// `SCHWAB_AUTH_BASE` + `path`.
    pub fn auth_url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.auth_base)
    }

    /// Sends the request built by `build` (called again for each retry) through the rate
    /// limiter; on 429 waits for `Retry-After` (or 1, 2, 4 s) and tries again, up to 3 times.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<RawResponse, RestError> {
        let mut throttled = 0;
        loop {
            self.limiter.until_ready().await;
            let response = build(&self.http)
                .send()
                .await
                .map_err(|e| self.error(what, e))?;
            let status = response.status().as_u16();
            if status == 429 {
                throttled += 1;
                if throttled > MAX_THROTTLE_RETRIES {
                    return Err(RestError::Throttled {
                        what: what.to_string(),
                        tries: throttled,
                    });
                }
                let wait = retry_after(response.headers(), chrono::Utc::now())
                    .unwrap_or(Duration::from_secs(1 << (throttled - 1)))
                    .min(MAX_RETRY_AFTER);
                tracing::warn!(call = what, wait = ?wait, "Schwab answered 429 Too Many Requests; waiting as asked");
                tokio::time::sleep(wait).await;
                continue;
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let body = response.text().await.map_err(|e| self.error(what, e))?;
            return Ok(RawResponse {
                status,
                body,
                content_type,
            });
        }
    }

    fn error(&self, what: &str, e: reqwest::Error) -> RestError {
        if e.is_timeout() {
            RestError::Timeout {
                what: what.to_string(),
                timeout: self.settings.timeout,
            }
        } else {
            // reqwest's text names the URL (no secret in our URLs) and the cause.
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail.push_str(": ");
                detail.push_str(&s.to_string());
                source = s.source();
            }
            RestError::Network {
                what: what.to_string(),
                detail,
            }
        }
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Reads `Retry-After`: whole seconds, or an HTTP date (then the time until it from `now`).
pub fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .expect("date")
            .with_timezone(&chrono::Utc);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn body_excerpts_are_short() {
        let r = RawResponse {
            status: 500,
            body: "x".repeat(1000),
            content_type: "text/html".into(),
        };
        assert!(r.excerpt().chars().count() <= BODY_EXCERPT + 1);
        assert!(!r.is_json());
    }
}
