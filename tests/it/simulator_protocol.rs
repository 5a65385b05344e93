//! The fake Schwab follows the protocol specification: checked with a raw HTTP and WebSocket
//! client, not with our own session code.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use schwab_sim::server::{SimServer, SimServerSettings};
use serde_json::{Value, json};
use testkit::service::{fast_sim, start_sim};
use tokio_tungstenite::tungstenite::Message;

const CALLBACK: &str = "https://127.0.0.1:8182";

struct Tokens {
    access: String,
    refresh: String,
}

async fn token_call(sim: &SimServer, form: &[(&str, &str)], secret: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/token", sim.auth_base()))
        .basic_auth(sim.client_id(), Some(secret))
        .form(form)
        .send()
        .await
        .expect("token call");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn login(sim: &SimServer) -> Tokens {
    let redirect = sim.approve(CALLBACK).expect("approve");
    let url = reqwest::Url::parse(&redirect).expect("url");
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    assert!(
        redirect.contains("%40"),
        "the code ends in an encoded @: {redirect}"
    );
    let (status, body) = token_call(
        sim,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
        sim.client_secret(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    Tokens {
        access: body["access_token"].as_str().expect("access").to_string(),
        refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
    }
}

async fn preferences(sim: &SimServer, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/trader/v1/userPreference", sim.api_base()))
        .bearer_auth(token)
        .send()
        .await
        .expect("userPreference");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    ws: Ws,
    info: Value,
}

impl Client {
    async fn connect(sim: &SimServer, token: &str) -> Self {
        let (status, prefs) = preferences(sim, token).await;
        assert_eq!(status, 200);
        let info = prefs["streamerInfo"][0].clone();
        let (ws, _) =
            tokio_tungstenite::connect_async(info["streamerSocketUrl"].as_str().expect("url"))
                .await
                .expect("connect");
        Self { ws, info }
    }

    fn request(&self, id: Value, service: &str, command: &str, parameters: Value) -> Value {
        json!({"requestid": id, "service": service, "command": command,
               "SchwabClientCustomerId": self.info["schwabClientCustomerId"],
               "SchwabClientCorrelId": self.info["schwabClientCorrelId"],
               "parameters": parameters})
    }

    async fn send(&mut self, requests: Vec<Value>) {
        self.ws
            .send(Message::text(json!({"requests": requests}).to_string()))
            .await
            .expect("send");
    }

    fn login_request(&self, id: Value, token: &str) -> Value {
        self.request(id, "ADMIN", "LOGIN", json!({"Authorization": token, "SchwabClientChannel": "N9", "SchwabClientFunctionId": "APIAPP"}))
    }

    /// The next frame (any kind); `None` when the socket closed.
    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s")
            {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("frame is JSON"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next `response` item, skipping data and heartbeats.
    async fn response(&mut self) -> Option<Value> {
        loop {
            let frame = self.next().await?;
            if let Some(r) = frame.get("response") {
                return Some(r[0].clone());
            }
        }
    }

    /// Frames until the next `notify` item with a code; `None` when the socket closed first.
    async fn notice_code(&mut self) -> Option<i64> {
        loop {
            let frame = self.next().await?;
            if let Some(code) = frame["notify"][0]["content"]["code"].as_i64() {
                return Some(code);
            }
        }
    }
}

fn code(response: &Value) -> i64 {
    response["content"]["code"].as_i64().expect("code")
}

#[tokio::test]
async fn token_endpoint_follows_the_oauth_rules() {
    let sim = start_sim(SimServerSettings::default()).await;
    let (status, body) = token_call(
        &sim,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        "wrong-secret",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "Basic auth is checked"
    );

    let first = login(&sim).await;
    let (status, body) = token_call(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first.refresh),
        ],
        sim.client_secret(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        body["access_token"],
        first.access.as_str(),
        "a new access token"
    );
    assert_eq!(body["expires_in"], 1800, "30 minutes by default");

    // A code works once.
    let redirect = sim.approve(CALLBACK).expect("approve");
    let code = reqwest::Url::parse(&redirect)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    assert_eq!(token_call(&sim, &form, sim.client_secret()).await.0, 200);
    assert_eq!(
        token_call(&sim, &form, sim.client_secret()).await.0,
        400,
        "a used code is refused"
    );

    // That second login superseded the first refresh token.
    let (status, body) = token_call(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first.refresh),
        ],
        sim.client_secret(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_token_type"))
    );
}

#[tokio::test]
async fn authorize_redirects_to_the_callback_with_an_encoded_code() {
    let sim = start_sim(SimServerSettings::default()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = reqwest::Url::parse_with_params(
        &format!("{}/authorize", sim.auth_base()),
        &[("client_id", sim.client_id()), ("redirect_uri", CALLBACK)],
    )
    .expect("url");
    let r = client.get(url).send().await.expect("authorize");
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().expect("location");
    assert!(
        location.starts_with("https://127.0.0.1:8182/?code=C0."),
        "{location}"
    );
    assert!(location.contains("%40&session="), "{location}");
}

#[tokio::test]
async fn streamer_enforces_login_first_one_command_at_a_time_and_ascending_fields() {
    let sim = start_sim(fast_sim()).await;
    let tokens = login(&sim).await;
    let (status, body) = preferences(&sim, "not-a-token").await;
    assert_eq!(
        (status, body["errors"][0]["detail"].as_str()),
        (401, Some("Client not authorized"))
    );

    let mut c = Client::connect(&sim, &tokens.access).await;
    // Before LOGIN: code 20, the socket stays open.
    let subs = c.request(
        json!("9"),
        "LEVELONE_EQUITIES",
        "SUBS",
        json!({"keys": "AAPL", "fields": "0,1,2,3"}),
    );
    c.send(vec![subs.clone()]).await;
    let r = c.response().await.expect("answer");
    assert_eq!((code(&r), r["requestid"].as_str()), (20, Some("9")));

    // LOGIN with an int request id: echoed as a string; a heartbeat (string) follows.
    c.send(vec![c.login_request(json!(1), &tokens.access)])
        .await;
    let r = c.response().await.expect("login answer");
    assert_eq!((code(&r), r["requestid"].clone()), (0, json!("1")));
    assert!(
        r["content"]["msg"]
            .as_str()
            .expect("msg")
            .contains("status=NP")
    );
    let hb = c.next().await.expect("heartbeat");
    assert!(hb["notify"][0]["heartbeat"].is_string(), "{hb}");

    // Fields not ascending: the subscription fails.
    let bad = c.request(
        json!("2"),
        "LEVELONE_EQUITIES",
        "SUBS",
        json!({"keys": "AAPL", "fields": "0,3,1"}),
    );
    c.send(vec![bad]).await;
    assert_eq!(code(&c.response().await.expect("answer")), 22);

    // Two commands in one go: the second was sent before the first was answered.
    let a = c.request(
        json!("3"),
        "LEVELONE_EQUITIES",
        "SUBS",
        json!({"keys": "AAPL", "fields": "0,1,2,3,8"}),
    );
    let b = c.request(
        json!("4"),
        "CHART_EQUITY",
        "SUBS",
        json!({"keys": "AAPL", "fields": "0,1,2,3,4,5,6,7,8"}),
    );
    c.send(vec![a, b]).await;
    let ra = c.response().await.expect("a");
    let rb = c.response().await.expect("b");
    assert_eq!((code(&ra), code(&rb)), (0, 22), "{ra} {rb}");

    // Data: a first full snapshot (with the extra keys), then deltas with string keys.
    let mut snapshot = None;
    let mut delta = None;
    while delta.is_none() {
        let frame = c.next().await.expect("data");
        for item in frame["data"][0]["content"].as_array().into_iter().flatten() {
            if snapshot.is_none() {
                snapshot = Some(item.clone());
            } else if item["key"] == "AAPL" {
                delta = Some(item.clone());
            }
        }
    }
    let snapshot = snapshot.expect("snapshot");
    assert_eq!(snapshot["assetMainType"], "EQUITY");
    for f in ["1", "2", "3", "8"] {
        assert!(
            snapshot.get(f).is_some(),
            "snapshot has field {f}: {snapshot}"
        );
    }
    assert!(
        delta.expect("delta").get("assetMainType").is_none(),
        "deltas carry no header"
    );
}

#[tokio::test]
async fn login_rules_code_3_code_12_and_code_30() {
    let settings = SimServerSettings {
        access_token_lifetime: Duration::from_secs(2),
        no_subscription_timeout: Duration::from_millis(500),
        ..fast_sim()
    };
    let sim = start_sim(settings).await;
    let tokens = login(&sim).await;

    // "Bearer <token>" is not the raw token: code 3, then the socket is closed.
    let mut c = Client::connect(&sim, &tokens.access).await;
    c.send(vec![c.login_request(
        json!("1"),
        &format!("Bearer {}", tokens.access),
    )])
    .await;
    assert_eq!(code(&c.response().await.expect("answer")), 3);
    assert!(c.next().await.is_none(), "closed after code 3");

    // No subscription: code 30 and close.
    let mut first = Client::connect(&sim, &tokens.access).await;
    first
        .send(vec![first.login_request(json!("1"), &tokens.access)])
        .await;
    assert_eq!(code(&first.response().await.expect("answer")), 0);
    assert_eq!(first.notice_code().await, Some(30));
    assert!(first.next().await.is_none(), "closed after code 30");

    // A second LOGIN kicks the first connection with code 12.
    let mut first = Client::connect(&sim, &tokens.access).await;
    first
        .send(vec![first.login_request(json!("1"), &tokens.access)])
        .await;
    assert_eq!(code(&first.response().await.expect("answer")), 0);
    let mut second = Client::connect(&sim, &tokens.access).await;
    second
        .send(vec![second.login_request(json!("1"), &tokens.access)])
        .await;
    assert_eq!(code(&second.response().await.expect("answer")), 0);
    assert_eq!(first.notice_code().await, Some(12));

    // The access token expires (2 s here): LOGIN is then denied.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!sim.is_access_token_valid(&tokens.access));
    let mut late = Client::connect_with_info(second.info.clone()).await;
    late.send(vec![late.login_request(json!("1"), &tokens.access)])
        .await;
    assert_eq!(code(&late.response().await.expect("answer")), 3);
}

impl Client {
    async fn connect_with_info(info: Value) -> Self {
        let (ws, _) =
            tokio_tungstenite::connect_async(info["streamerSocketUrl"].as_str().expect("url"))
                .await
                .expect("connect");
        Self { ws, info }
    }
}
