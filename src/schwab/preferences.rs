//! `GET /trader/v1/userPreference` (spec §2): the streamer's WebSocket URL and the ids every
//! streamer request carries. Fetched again before every (re)connect.

use serde::Deserialize;

use super::rest::{RestError, SchwabRest};
use super::secret::Secret;

/// `streamerInfo[0]` of the answer.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamerInfo {
    /// `streamerSocketUrl`, e.g. `wss://streamer-api.schwab.com/ws`.
    pub socket_url: String,
    /// `schwabClientCustomerId` → `SchwabClientCustomerId` on every request.
    pub customer_id: String,
    /// `schwabClientCorrelId` → `SchwabClientCorrelId` on every request.
    pub correl_id: String,
    /// `schwabClientChannel` → LOGIN `SchwabClientChannel`.
    pub channel: String,
    /// `schwabClientFunctionId` → LOGIN `SchwabClientFunctionId`.
    pub function_id: String,
}

impl std::fmt::Debug for StreamerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The customer id identifies the account holder: keep it out of logs.
        f.debug_struct("StreamerInfo")
            .field("socket_url", &self.socket_url)
            .field("channel", &self.channel)
            .field("function_id", &self.function_id)
            .finish_non_exhaustive()
    }
}

/// Why the streamer info could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PreferenceError {
    #[error(transparent)]
    Rest(#[from] RestError),
    /// 401: the access token was refused (expired early, or a missing API product).
    #[error(
        "userPreference answered 401 ({detail}); refreshing the token. If it persists, add the 'Accounts and Trading Production' product to the app"
    )]
    Unauthorized { detail: String },
    #[error("userPreference answered HTTP {status} ({detail}); retrying later")]
    Http { status: u16, detail: String },
    #[error(
        "userPreference has no usable streamerInfo ({0}); check that the app has the 'Accounts and Trading Production' product"
    )]
    NoStreamerInfo(String),
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "streamerInfo", default)]
    streamer_info: Vec<WireInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInfo {
    streamer_socket_url: Option<String>,
    schwab_client_customer_id: Option<String>,
    schwab_client_correl_id: Option<String>,
    schwab_client_channel: Option<String>,
    schwab_client_function_id: Option<String>,
}

/// Fetches the streamer connection info with `access_token`.
pub async fn fetch_streamer_info(
    rest: &SchwabRest,
    access_token: &Secret,
) -> Result<StreamerInfo, PreferenceError> {
    let url = rest.api_url("/trader/v1/userPreference");
    let response = rest
        .send("GET /trader/v1/userPreference", |http| {
            http.get(&url).bearer_auth(access_token.expose())
        })
        .await?;
    let detail = || super::secret::scrub(&response.excerpt(), &[access_token]);
    if response.status == 401 {
        return Err(PreferenceError::Unauthorized { detail: detail() });
    }
    if !response.is_success() {
        return Err(PreferenceError::Http {
            status: response.status,
            detail: detail(),
        });
    }
    parse(&response.body)
}

/// Parses a `userPreference` body.
pub fn parse(body: &str) -> Result<StreamerInfo, PreferenceError> {
    let wire: Wire =
        serde_json::from_str(body).map_err(|e| PreferenceError::NoStreamerInfo(e.to_string()))?;
    let info = wire
        .streamer_info
        .into_iter()
        .next()
        .ok_or_else(|| PreferenceError::NoStreamerInfo("streamerInfo is empty".into()))?;
    let need = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| PreferenceError::NoStreamerInfo(format!("{name} is missing")))
    };
    Ok(StreamerInfo {
        socket_url: need(info.streamer_socket_url, "streamerSocketUrl")?,
        customer_id: need(info.schwab_client_customer_id, "schwabClientCustomerId")?,
        correl_id: need(info.schwab_client_correl_id, "schwabClientCorrelId")?,
        channel: need(info.schwab_client_channel, "schwabClientChannel")?,
        function_id: need(info.schwab_client_function_id, "schwabClientFunctionId")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_streamer_info() {
        let body = r#"{"accounts":[{"accountNumber":"1","primaryAccount":true}],
            "streamerInfo":[{"streamerSocketUrl":"wss://streamer-api.schwab.com/ws",
              "schwabClientCustomerId":"abc123","schwabClientCorrelId":"60b4c643-ca26",
              "schwabClientChannel":"N9","schwabClientFunctionId":"APIAPP"}],
            "offers":[{"level2Permissions":true,"mktDataPermission":"NP"}]}"#;
        let info = parse(body).expect("info");
        assert_eq!(info.socket_url, "wss://streamer-api.schwab.com/ws");
        assert_eq!(
            (info.channel.as_str(), info.function_id.as_str()),
            ("N9", "APIAPP")
        );
        assert!(
            !format!("{info:?}").contains("abc123"),
            "customer id kept out of Debug"
        );
        assert!(matches!(
            parse(r#"{"streamerInfo":[]}"#),
            Err(PreferenceError::NoStreamerInfo(_))
        ));
        assert!(matches!(
            parse(r#"{"streamerInfo":[{"streamerSocketUrl":"wss://x"}]}"#),
            Err(PreferenceError::NoStreamerInfo(_))
        ));
    }
}
