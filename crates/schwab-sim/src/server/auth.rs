//! The fake's HTTP side: `GET /v1/oauth/authorize` (auto-approved), `POST /v1/oauth/token`
//! (both grants, Basic client auth, spec §1.3–1.6) and `GET /trader/v1/userPreference` (§2).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;
use tokio::time::Instant;

use super::{Shared, TokenGrant, lock, random_hex, random_token, random_uuid};

/// Tokens and codes handed out.
#[derive(Default)]
pub(super) struct AuthState {
    /// code → (redirect_uri, expiry). Removed when used.
    codes: HashMap<String, (String, Instant)>,
    /// access token → expiry.
    access: HashMap<String, Instant>,
    /// refresh token → issue time.
    refresh: HashMap<String, Instant>,
    /// Refresh tokens that were superseded by a later login or revoked by the switch.
    revoked: HashSet<String>,
    /// Every secret ever issued.
    pub(super) issued: Vec<String>,
}

impl AuthState {
    pub(super) fn access_valid(&self, token: &str) -> bool {
        self.access
            .get(token)
            .is_some_and(|exp| Instant::now() < *exp)
    }

    pub(super) fn revoke_refresh_tokens(&mut self) {
        self.revoked.extend(self.refresh.keys().cloned());
    }

    fn issue_access(&mut self, lifetime: std::time::Duration) -> String {
        let token = random_token("I0.", 48);
        self.access.insert(token.clone(), Instant::now() + lifetime);
        self.issued.push(token.clone());
        token
    }
}

/// Issues a code for `redirect_uri` and returns the URL the browser is sent to.
pub(super) fn approve(shared: &Shared, redirect_uri: &str) -> Result<String, String> {
    let code = format!("{}@", random_token("C0.", 40));
    let mut url = url::Url::parse(redirect_uri)
        .map_err(|e| format!("redirect_uri {redirect_uri:?} is not a URL: {e}"))?;
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("session", &random_uuid());
    let mut auth = lock(&shared.auth);
    auth.codes.insert(
        code.clone(),
        (
            redirect_uri.to_string(),
            Instant::now() + shared.settings.auth_code_lifetime,
        ),
    );
    auth.issued.push(code);
    Ok(url.to_string())
}

/// `GET /v1/oauth/authorize?client_id=…&redirect_uri=…`: approves at once (a simulator has
/// no brokerage login) and redirects to the callback with `code` and `session`.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id") != Some(&shared.settings.client_id) {
        return (
            StatusCode::BAD_REQUEST,
            "We are unable to complete your request: unknown client_id",
        )
            .into_response();
    }
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is missing").into_response();
    };
    match approve(&shared, redirect_uri) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(super) fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "1")],
        "Too Many Requests",
    )
        .into_response()
}

/// `POST /v1/oauth/token` with `grant_type=authorization_code` or `refresh_token`.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if shared.take_throttle() {
        return throttled();
    }
    let form: HashMap<String, String> = form_pairs(&body);
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let response = grant(&shared, &headers, &form, &grant_type);
    lock(&shared.journal).grants.push(TokenGrant {
        grant_type,
        status: response.status().as_u16(),
    });
    response
}

fn form_pairs(body: &str) -> HashMap<String, String> {
    url::Url::parse(&format!("http://x/?{body}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn basic_auth_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        shared.settings.client_id, shared.settings.client_secret
    ));
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v.trim() == expected)
}

fn grant(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    grant_type: &str,
) -> Response {
    if !basic_auth_ok(shared, headers) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let settings = &shared.settings;
    let mut auth = lock(&shared.auth);
    let refresh_token = match grant_type {
        "authorization_code" => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((redirect_uri, expires)) = auth.codes.remove(&code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Bad authorization code: the code is unknown or was already used",
                );
            };
            if Instant::now() >= expires {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Bad authorization code: the code has expired",
                );
            }
            if form.get("redirect_uri") != Some(&redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri does not match the authorization request",
                );
            }
            // A new authorization supersedes every earlier refresh token (spec §1.5).
            auth.revoke_refresh_tokens();
            let token = random_token("R0.", 48);
            auth.refresh.insert(token.clone(), Instant::now());
            auth.issued.push(token.clone());
            token
        }
        "refresh_token" => {
            let token = form.get("refresh_token").cloned().unwrap_or_default();
            let issued = auth.refresh.get(&token).copied();
            match issued {
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "unsupported_token_type",
                        "400 Bad Request: \"{\"error_description\":\"Exception while authenticating refresh token\",\"error\":\"refresh_token_authentication_error\"}\"",
                    );
                }
                Some(_) if auth.revoked.contains(&token) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "unsupported_token_type",
                        "400 Bad Request: \"{\"error_description\":\"Exception while authenticating refresh token\",\"error\":\"refresh_token_authentication_error\"}\"",
                    );
                }
                Some(at) if at.elapsed() >= settings.refresh_token_lifetime => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_client",
                        "refresh token invalid",
                    );
                }
                Some(_) => token,
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    let access_token = auth.issue_access(settings.access_token_lifetime);
    let expires_in = settings.access_token_lifetime.as_secs().max(1);
    let id_token = format!("eyJ.{}.sig", random_hex(24));
    (
        StatusCode::OK,
        axum::Json(json!({
            "expires_in": expires_in,
            "token_type": "Bearer",
            "scope": "api",
            "refresh_token": refresh_token,
            "access_token": access_token,
            "id_token": id_token,
        })),
    )
        .into_response()
}

/// `None` when the request carries `Authorization: Bearer <valid access token>`, else the
/// 401 Schwab answers.
pub(super) fn refuse_unless_bearer(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if lock(&shared.auth).access_valid(token) {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": [{
                "id": random_uuid(), "status": 401, "title": "Unauthorized",
                "detail": "Client not authorized"
            }]})),
        )
            .into_response(),
    )
}

/// `GET /trader/v1/userPreference` with `Authorization: Bearer <access token>`.
pub(super) async fn user_preference(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    if shared.take_throttle() {
        return throttled();
    }
    if let Some(refused) = refuse_unless_bearer(&shared, &headers) {
        return refused;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| shared.addr.to_string());
    axum::Json(json!({
        "accounts": [{
            "accountNumber": "12345678", "primaryAccount": true, "type": "BROKERAGE",
            "nickName": "Individual", "displayAcctId": "...678",
            "autoPositionEffect": false, "accountColor": "Green"
        }],
        "streamerInfo": [{
            "streamerSocketUrl": format!("ws://{host}/ws"),
            "schwabClientCustomerId": shared.customer_id,
            "schwabClientCorrelId": shared.correl_id,
            "schwabClientChannel": "N9",
            "schwabClientFunctionId": "APIAPP"
        }],
        "offers": [{"level2Permissions": true, "mktDataPermission": "NP"}]
    }))
    .into_response()
}
