//! OAuth 2.0 with Schwab (spec §1): the authorize URL a person opens in a browser, the code
//! taken from the pasted redirect URL, and the two token grants (authorization code and
//! refresh), both with HTTP Basic auth of `client_id:client_secret` and a form body.

use serde::Deserialize;

use super::rest::{RawResponse, RestError, SchwabRest};
use super::secret::{Secret, scrub};

/// The developer app's credentials and its registered callback.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: Secret,
    pub callback_url: String,
}

/// The token endpoint's answer (`id_token`, `token_type` and `scope` are not needed).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    /// Present after a login; after a refresh usually the same value again, or absent.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Seconds the access token lives (1800).
    #[serde(default)]
    pub expires_in: Option<i64>,
}

/// Which grant a token request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    AuthorizationCode,
    RefreshToken,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AuthorizationCode => "authorization code",
            Self::RefreshToken => "refresh token",
        })
    }
}

/// Why a token request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// A 4xx with a JSON error: the code or refresh token (or the app credentials) was
    /// refused. Retrying the same request will not help; a browser login will.
    #[error("Schwab refused the {grant} (HTTP {status}, {error}: {description})")]
    Refused {
        grant: Grant,
        status: u16,
        error: String,
        description: String,
    },
    /// No usable answer: network, timeout, 429s, 5xx or an HTML error page (Schwab's edge
    /// sometimes blocks the endpoint for a while). Worth retrying later.
    #[error("the Schwab token endpoint is unavailable for the {grant}: {detail}")]
    Unavailable { grant: Grant, detail: String },
    /// A 2xx whose body is not a token answer.
    #[error("the Schwab token endpoint answered the {grant} with something unexpected ({detail})")]
    BadResponse { grant: Grant, detail: String },
}

impl OAuthError {
    /// True when a person has to log in again (any 4xx refusal).
    pub fn needs_login(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

/// The browser URL: `<auth base>/authorize?client_id=…&redirect_uri=…`.
pub fn authorize_url(rest: &SchwabRest, app: &OAuthApp) -> String {
    let base = rest.auth_url("/authorize");
    let params = [
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", app.callback_url.as_str()),
    ];
    match reqwest::Url::parse_with_params(&base, &params) {
        Ok(url) => url.to_string(),
        // SCHWAB_AUTH_BASE was validated as a URL at startup, so this is not reached.
        Err(_) => format!(
            "{base}?client_id={}&redirect_uri={}",
            app.client_id, app.callback_url
        ),
    }
}

/// Why a pasted redirect URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error(
        "that is not a URL; copy the whole address from the browser's address bar after approving (it starts with {callback})"
    )]
    NotAUrl { callback: String },
    #[error(
        "the pasted URL goes to {got}, but SCHWAB_CALLBACK_URL is {callback}; they must be identical (scheme, host, port, path, trailing '/'): set SCHWAB_CALLBACK_URL to the callback registered for the app"
    )]
    CallbackMismatch { got: String, callback: String },
    #[error(
        "Schwab sent the browser back with error {error:?} ({description}); approve the access on the Schwab page, and check that the app is 'Ready For Use' on developer.schwab.com"
    )]
    Denied { error: String, description: String },
    #[error(
        "the pasted URL has no code=… parameter; paste the address of the page the browser was sent to after approving (it may show a connection error, that is expected). An 'Access Denied' page before that means SCHWAB_CALLBACK_URL differs from the registered callback"
    )]
    NoCode,
}

/// Takes the authorization code out of the pasted redirect URL
/// (`<callback>?code=C0.…%40&session=…`), decoding it once (`%40` becomes `@`).
pub fn code_from_redirect(pasted: &str, callback: &str) -> Result<Secret, RedirectError> {
    let pasted = pasted.trim().trim_matches(|c| c == '"' || c == '\'');
    let url = reqwest::Url::parse(pasted).map_err(|_| RedirectError::NotAUrl {
        callback: callback.to_string(),
    })?;
    if let Ok(expected) = reqwest::Url::parse(callback) {
        let target = |u: &reqwest::Url| {
            (
                u.scheme().to_string(),
                u.host_str().map(str::to_ascii_lowercase),
                u.port_or_known_default(),
                u.path().to_string(),
            )
        };
        if target(&url) != target(&expected) {
            let mut got = url.clone();
            got.set_query(None);
            got.set_fragment(None);
            return Err(RedirectError::CallbackMismatch {
                got: got.to_string(),
                callback: callback.to_string(),
            });
        }
    }
    let mut code = None;
    let mut error = None;
    let mut description = String::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "code" if !v.is_empty() => code = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = v.into_owned(),
            _ => {}
        }
    }
    match (code, error) {
        (Some(code), _) => Ok(Secret::new(code)),
        (None, Some(error)) => Err(RedirectError::Denied { error, description }),
        (None, None) => Err(RedirectError::NoCode),
    }
}

/// Exchanges an authorization code for tokens.
pub async fn exchange_code(
    rest: &SchwabRest,
    app: &OAuthApp,
    code: &Secret,
) -> Result<TokenResponse, OAuthError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", app.callback_url.as_str()),
    ];
    token_request(rest, app, Grant::AuthorizationCode, &form, &[code]).await
}

/// Gets a new access token with the refresh token.
pub async fn refresh(
    rest: &SchwabRest,
    app: &OAuthApp,
    refresh_token: &Secret,
) -> Result<TokenResponse, OAuthError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    token_request(rest, app, Grant::RefreshToken, &form, &[refresh_token]).await
}

async fn token_request(
    rest: &SchwabRest,
    app: &OAuthApp,
    grant: Grant,
    form: &[(&str, &str)],
    sent: &[&Secret],
) -> Result<TokenResponse, OAuthError> {
    let url = rest.auth_url("/token");
    let response = rest
        .send("POST /v1/oauth/token", |http| {
            http.post(&url)
                .basic_auth(&app.client_id, Some(app.client_secret.expose()))
                .form(form)
        })
        .await
        .map_err(|e: RestError| OAuthError::Unavailable {
            grant,
            detail: e.to_string(),
        })?;
    let mut secrets: Vec<&Secret> = sent.to_vec();
    secrets.push(&app.client_secret);
    classify(grant, &response, &secrets)
}

/// Turns a token endpoint answer into tokens or an [`OAuthError`], scrubbing what was sent
/// from any text that goes into the error.
fn classify(
    grant: Grant,
    response: &RawResponse,
    sent: &[&Secret],
) -> Result<TokenResponse, OAuthError> {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        error: String,
        #[serde(default)]
        error_description: String,
    }
    if response.is_success() {
        return serde_json::from_str::<TokenResponse>(&response.body)
            .ok()
            .filter(|t| !t.access_token.is_empty())
            .ok_or_else(|| OAuthError::BadResponse {
                grant,
                detail: format!("HTTP {} without an access_token", response.status),
            });
    }
    let excerpt = scrub(&response.excerpt(), sent);
    if (400..500).contains(&response.status) && response.is_json() {
        let body: ErrorBody = serde_json::from_str(&response.body).unwrap_or(ErrorBody {
            error: String::new(),
            error_description: excerpt.clone(),
        });
        return Err(OAuthError::Refused {
            grant,
            status: response.status,
            error: if body.error.is_empty() {
                "error".into()
            } else {
                scrub(&body.error, sent)
            },
            description: scrub(&body.error_description, sent),
        });
    }
    Err(OAuthError::Unavailable {
        grant,
        detail: format!(
            "HTTP {} {}",
            response.status,
            if response.is_json() {
                excerpt
            } else {
                "with an HTML/text page (Schwab's edge may be blocking requests for a while, or the app is not 'Ready For Use')".to_string()
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLBACK: &str = "https://127.0.0.1:8182";

    #[test]
    fn the_code_is_decoded_once() {
        let code = code_from_redirect(
            "https://127.0.0.1:8182/?code=C0.b2F1dGgyLmJkYy5zY2h3YWIuY29t.abc%40&session=5d1e-0a",
            CALLBACK,
        )
        .expect("code");
        assert_eq!(code.expose(), "C0.b2F1dGgyLmJkYy5zY2h3YWIuY29t.abc@");
        let code =
            code_from_redirect(" 'https://127.0.0.1:8182?code=X%2540' ", CALLBACK).expect("code");
        assert_eq!(code.expose(), "X%40", "decoded exactly once");
    }

    #[test]
    fn a_different_callback_is_named() {
        let err = code_from_redirect("https://127.0.0.1:8182/cb?code=abc", CALLBACK)
            .expect_err("path differs");
        assert!(
            matches!(err, RedirectError::CallbackMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("SCHWAB_CALLBACK_URL"), "{err}");
        let err = code_from_redirect("https://localhost:8182/?code=abc", CALLBACK)
            .expect_err("host differs");
        assert!(
            matches!(err, RedirectError::CallbackMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_codes_and_denials_say_what_to_do() {
        assert_eq!(
            code_from_redirect("https://127.0.0.1:8182/?session=1", CALLBACK),
            Err(RedirectError::NoCode)
        );
        let err = code_from_redirect("https://127.0.0.1:8182/?error=access_denied", CALLBACK)
            .expect_err("denied");
        assert!(err.to_string().contains("Ready For Use"), "{err}");
        assert!(matches!(
            code_from_redirect("C0.abc", CALLBACK),
            Err(RedirectError::NotAUrl { .. })
        ));
    }

    fn raw(status: u16, body: &str, content_type: &str) -> RawResponse {
        RawResponse {
            status,
            body: body.into(),
            content_type: content_type.into(),
        }
    }

    #[test]
    fn answers_are_classified_and_scrubbed() {
        let sent = Secret::new("R0.the-refresh-token");
        let ok = classify(
            Grant::RefreshToken,
            &raw(200, r#"{"access_token":"I0.x","refresh_token":"R0.y","expires_in":1800,"token_type":"Bearer","scope":"api","id_token":"e.y.j"}"#, "application/json"),
            &[&sent],
        )
        .expect("ok");
        assert_eq!(ok.expires_in, Some(1800));

        let refused = classify(
            Grant::RefreshToken,
            &raw(400, r#"{"error":"unsupported_token_type","error_description":"400 Bad Request: refresh token R0.the-refresh-token invalid"}"#, "application/json"),
            &[&sent],
        )
        .expect_err("refused");
        assert!(refused.needs_login());
        let text = refused.to_string();
        assert!(
            text.contains("unsupported_token_type") && !text.contains("the-refresh-token"),
            "{text}"
        );

        let html = classify(
            Grant::RefreshToken,
            &raw(403, "<html>Access Denied</html>", "text/html"),
            &[&sent],
        )
        .expect_err("blocked");
        assert!(!html.needs_login(), "an edge block is transient");
        let server = classify(
            Grant::RefreshToken,
            &raw(502, "{}", "application/json"),
            &[&sent],
        )
        .expect_err("5xx");
        assert!(!server.needs_login());
        let empty = classify(
            Grant::RefreshToken,
            &raw(200, "{}", "application/json"),
            &[&sent],
        )
        .expect_err("no token");
        assert!(matches!(empty, OAuthError::BadResponse { .. }));
    }
}
