//! A fake Schwab that follows `schwab-protocol.md`: the OAuth endpoints, `userPreference`
//! and the streamer WebSocket, serving frames from the [`MarketSimulator`]. Used by
//! `market-streamer simulate --listen ADDR`, by the zero-configuration `run` (in process on
//! loopback), and by the tests.
//!
//! Rules it enforces (spec §1, §3): Basic client auth on the token endpoint; single-use
//! authorization codes that expire; a new login supersedes the previous refresh token
//! (400 `unsupported_token_type`); access tokens that expire (`access_token_lifetime`);
//! LOGIN first (anything else before its ack gets code 20); LOGIN with an invalid or expired
//! token → code 3 and close; a second LOGIN kicks the first connection with code 12; field
//! lists must be ascending; one command at a time (a command sent before the previous one
//! was answered fails with 22–25); no subscription for `no_subscription_timeout` → code 30 and close;
//! `requestid` echoed as a string; heartbeats as strings; LEVELONE snapshot then deltas;
//! CHART_EQUITY once a minute in the real field order; every other streamer service (see
//! [`MarketSimulator`]); unknown services get code 11; a refused SUBS/ADD/UNSUBS/VIEW gets
//! 22/24/23/25 (ACCT_ACTIVITY refuses ADD and VIEW that way); a SUBS/ADD past the symbol limit
//! gets code 19 (REACHED_SYMBOL_LIMIT) and adds nothing.
//!
//! Switches for tests ([`SimServer`] methods): drop the sockets, close them, go silent, deny
//! the next logins, kick with code 12, stop streaming with code 30, revoke (refuse) the
//! refresh tokens, answer 429, set the symbol limit, send ACCT_ACTIVITY's "Feature not
//! supported" text item now, refuse a service's SUBS with a code, leave them unanswered, mute
//! one service's data (heartbeats go on), answer LOGIN with a code (12). [`SimServer::subscription_counts`] counts the accepted SUBS/ADD
//! per service (to check what a client re-subscribed after a reconnect).
//!
//! `GET /marketdata/v1/pricehistory` answers the equity candles the market made (the same
//! values CHART_EQUITY streams; the market keeps trading the last session's symbols while no
//! client is connected, so a gap can be refilled); switches: refuse reconnects
//! ([`SimServer::refuse_connections`]), 429 on pricehistory
//! ([`SimServer::set_pricehistory_429`]), and a call counter.
//!
//! Files: `auth` (token endpoint, authorize, userPreference), `history` (pricehistory),
//! `stream` (the WebSocket).

mod auth;
mod history;
mod stream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{MarketSimulator, SimConfig};

/// Settings of the fake Schwab.
#[derive(Debug, Clone)]
pub struct SimServerSettings {
    /// The only app key the token endpoint accepts.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The simulated market (seed, update rate, heartbeat interval).
    pub market: SimConfig,
    /// Lifetime of access tokens (Schwab: 30 min).
    pub access_token_lifetime: Duration,
    /// Lifetime of refresh tokens from the login (Schwab: 7 days).
    pub refresh_token_lifetime: Duration,
    /// Lifetime of an authorization code (Schwab: about 30 s).
    pub auth_code_lifetime: Duration,
    /// A logged-in connection without any subscription for this long gets code 30.
    pub no_subscription_timeout: Duration,
    /// How often a logged-in connection sends the frames that became due.
    pub tick: Duration,
    /// How long the fake takes to process a command before answering. A command that
    /// arrives meanwhile fails (codes 22–25, or 20 before the LOGIN ack), as commands sent
    /// in parallel do on Schwab.
    pub command_latency: Duration,
}

impl Default for SimServerSettings {
    fn default() -> Self {
        Self {
            client_id: "SIMULATED-APP-KEY".into(),
            client_secret: "simulated-app-secret".into(),
            market: SimConfig::default(),
            access_token_lifetime: Duration::from_secs(1800),
            refresh_token_lifetime: Duration::from_secs(7 * 24 * 3600),
            auth_code_lifetime: Duration::from_secs(30),
            no_subscription_timeout: Duration::from_secs(30),
            tick: Duration::from_millis(100),
            command_latency: Duration::from_millis(10),
        }
    }
}

/// One streamer command as the fake received it (for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCommand {
    /// Connection number, 1, 2, … in connect order.
    pub connection: u64,
    pub service: String,
    pub command: String,
    /// As sent, in text (strings unquoted).
    pub request_id: String,
    pub keys: Option<String>,
    pub fields: Option<String>,
    /// LOGIN's `Authorization` parameter.
    pub authorization: Option<String>,
    /// The code the fake answered with (-1 when it did not answer: silent socket).
    pub response_code: i64,
}

/// One token endpoint call (for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// `authorization_code` or `refresh_token` (or what was sent).
    pub grant_type: String,
    /// The HTTP status answered.
    pub status: u16,
}

/// What a connection is told to do by a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Control {
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Close with a WebSocket close frame.
    Close,
    /// Stop sending anything (and answering), keep the socket open.
    Silence,
    /// Code 12 (another login took the slot), then close.
    Kick,
    /// Code 30 (stop streaming), then close.
    StopStreaming,
    /// Send this text as one message (poison, oversized frames), then carry on.
    Raw(std::sync::Arc<str>),
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    live: BTreeMap<u64, mpsc::Sender<Control>>,
    logged_in: Option<u64>,
}

#[derive(Default)]
struct Journal {
    commands: Vec<ReceivedCommand>,
    grants: Vec<TokenGrant>,
}

#[derive(Default)]
struct Switches {
    deny_logins: u32,
    throttle_requests: u32,
    /// Service → (code, how many more SUBS/ADD to refuse with it).
    refuse_subs: BTreeMap<String, (i64, u32)>,
    /// Service → how many more SUBS/ADD to leave unanswered (and not apply).
    ignore_subs: BTreeMap<String, ((), u32)>,
    /// Services whose data items are not sent (heartbeats and other services go on).
    muted: std::collections::BTreeSet<String>,
    /// (code, how many more LOGINs to answer with it, then close).
    login_code: Option<(i64, u32)>,
    /// WebSocket upgrades answered 503 while set (an outage: reconnects fail).
    refuse_connections: bool,
    /// The next this many `pricehistory` calls get 429 with `Retry-After: 1`.
    throttle_pricehistory: u32,
    /// The next this many `pricehistory` calls get 500 (a server error; not throttling).
    fail_pricehistory: u32,
    /// `pricehistory` calls received (throttled ones included).
    pricehistory_calls: u64,
}

impl Switches {
    /// Takes one use of the LOGIN-code switch.
    fn take_login_code(&mut self) -> Option<i64> {
        let (code, left) = self.login_code.as_mut()?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*code)
    }

    /// Takes one use of a counted switch of `service` from `map`.
    fn take<T: Copy>(map: &mut BTreeMap<String, (T, u32)>, service: &str) -> Option<T> {
        let (value, left) = map.get_mut(service)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*value)
    }
}

/// State shared by the HTTP handlers and the socket tasks. Every lock is held only for a
/// few statements, never across an await.
struct Shared {
    settings: SimServerSettings,
    addr: SocketAddr,
    customer_id: String,
    correl_id: String,
    auth: Mutex<auth::AuthState>,
    market: Mutex<MarketSimulator>,
    conns: Mutex<Connections>,
    journal: Mutex<Journal>,
    switches: Mutex<Switches>,
}

/// Locks a mutex; a poisoned one (a panic elsewhere) is used as is: the fake's state stays
/// consistent statement by statement.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn send_control(&self, control: Control, only_logged_in: bool) {
        let conns = lock(&self.conns);
        for (id, tx) in &conns.live {
            if !only_logged_in || conns.logged_in == Some(*id) {
                // A full control queue means the connection is already being told something.
                let _ = tx.try_send(control.clone());
            }
        }
    }

    /// Takes one 429 from the throttle switch.
    fn take_throttle(&self) -> bool {
        let mut s = lock(&self.switches);
        if s.throttle_requests > 0 {
            s.throttle_requests -= 1;
            true
        } else {
            false
        }
    }
}

/// A running fake Schwab. Dropping it stops the server and drops its sockets.
pub struct SimServer {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SimServer {
    /// Starts serving on `addr` (use port 0 for a free port).
    pub async fn start(settings: SimServerSettings, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let market = MarketSimulator::new(settings.market, chrono::Utc::now().timestamp_millis());
        let shared = Arc::new(Shared {
            customer_id: random_hex(64),
            correl_id: random_uuid(),
            auth: Mutex::new(auth::AuthState::default()),
            market: Mutex::new(market),
            conns: Mutex::new(Connections::default()),
            journal: Mutex::new(Journal::default()),
            switches: Mutex::new(Switches::default()),
            settings,
            addr,
        });
        let app = axum::Router::new()
            .route("/v1/oauth/authorize", axum::routing::get(auth::authorize))
            .route("/v1/oauth/token", axum::routing::post(auth::token))
            .route(
                "/trader/v1/userPreference",
                axum::routing::get(auth::user_preference),
            )
            .route(
                "/marketdata/v1/pricehistory",
                axum::routing::get(history::price_history),
            )
            .route("/ws", axum::routing::get(stream::upgrade))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Schwab simulator stopped serving");
            }
        });
        tracing::info!(address = %addr, "Schwab simulator listening");
        Ok(Self { shared, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://ADDR`: the value for `SCHWAB_API_BASE`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `http://ADDR/v1/oauth`: the value for `SCHWAB_AUTH_BASE`.
    pub fn auth_base(&self) -> String {
        format!("http://{}/v1/oauth", self.shared.addr)
    }

    /// The accepted app key.
    pub fn client_id(&self) -> &str {
        &self.shared.settings.client_id
    }

    /// The accepted app secret.
    pub fn client_secret(&self) -> &str {
        &self.shared.settings.client_secret
    }

    /// What a browser approval gives: the redirect URL with a fresh code, as the authorize
    /// endpoint would send (there is no brokerage login page to click through).
    pub fn approve(&self, redirect_uri: &str) -> Result<String, String> {
        auth::approve(&self.shared, redirect_uri)
    }

    /// Every streamer command received so far, in order.
    pub fn received(&self) -> Vec<ReceivedCommand> {
        lock(&self.shared.journal).commands.clone()
    }

    /// Every token endpoint call so far, in order.
    pub fn token_grants(&self) -> Vec<TokenGrant> {
        lock(&self.shared.journal).grants.clone()
    }

    /// Every secret the fake ever handed out (codes, access and refresh tokens) plus the app
    /// secret and the account id: none of them may appear in a log or on a page.
    pub fn issued_secrets(&self) -> Vec<String> {
        let mut all = lock(&self.shared.auth).issued.clone();
        all.push(self.shared.settings.client_secret.clone());
        // The account identifier is not a secret to Schwab, but it is never shown either.
        all.push(self.shared.customer_id.clone());
        all
    }

    /// True while `token` is an access token that has not expired.
    pub fn is_access_token_valid(&self, token: &str) -> bool {
        lock(&self.shared.auth).access_valid(token)
    }

    /// Open WebSocket connections.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.conns).live.len()
    }

    /// Switch: drop every socket without a close frame (a network failure).
    pub fn drop_connections(&self) {
        self.shared.send_control(Control::Drop, false);
    }

    /// Switch: close every socket with a WebSocket close frame (a server close).
    pub fn close_connections(&self) {
        self.shared.send_control(Control::Close, false);
    }

    /// Switch: the open sockets stop sending anything, heartbeats included (a stall).
    pub fn silence_connections(&self) {
        self.shared.send_control(Control::Silence, false);
    }

    /// Switch: code 12 to the logged-in connection (another login took the slot), then close.
    pub fn kick(&self) {
        self.shared.send_control(Control::Kick, true);
    }

    /// Switch: code 30 to the logged-in connection (stop streaming), then close.
    pub fn stop_streaming(&self) {
        self.shared.send_control(Control::StopStreaming, true);
    }

    /// Switch: the logged-in connection sends `text` as one message (anything: an oversized
    /// frame, poison items), then streams on.
    pub fn send_raw(&self, text: &str) {
        self.shared
            .send_control(Control::Raw(std::sync::Arc::from(text)), true);
    }

    /// Switch: the next `n` LOGINs are denied with code 3.
    pub fn deny_next_logins(&self, n: u32) {
        lock(&self.shared.switches).deny_logins = n;
    }

    /// Switch: every refresh token issued so far is refused from now on (400
    /// `unsupported_token_type`, as after a login elsewhere). A new login works again.
    pub fn revoke_refresh_tokens(&self) {
        lock(&self.shared.auth).revoke_refresh_tokens();
    }

    /// Switch: the most keys that may be subscribed at once over all services (`None`: no
    /// limit); a SUBS or ADD past it is answered with code 19 and adds nothing. Starts as
    /// `settings.market.symbol_limit`; keys already subscribed stay.
    pub fn set_symbol_limit(&self, limit: Option<usize>) {
        lock(&self.shared.market).set_symbol_limit(limit);
    }

    /// Switch: the logged-in connection sends ACCT_ACTIVITY's trap item
    /// `{"seq":N,"key":"<key>","1":"<account>","2":"","3":"Feature not supported"}` in its next
    /// frame slot. False (nothing sent) when ACCT_ACTIVITY has no key subscribed.
    pub fn send_account_text_frame(&self) -> bool {
        lock(&self.shared.market).queue_account_text_frame()
    }

    /// Accepted SUBS and ADD commands (code 0) per service name, over all connections so far.
    pub fn subscription_counts(&self) -> BTreeMap<String, u64> {
        subscription_counts(&lock(&self.shared.journal).commands)
    }

    /// Switch: the next `times` SUBS/ADD of `service` are answered with `code` (e.g. 19, 21,
    /// 11) and not applied.
    pub fn refuse_subscriptions(&self, service: &str, code: i64, times: u32) {
        lock(&self.shared.switches)
            .refuse_subs
            .insert(service.to_string(), (code, times));
    }

    /// Switch: the next `times` SUBS/ADD of `service` get no answer at all (and are not
    /// applied); the connection otherwise works on.
    pub fn ignore_subscriptions(&self, service: &str, times: u32) {
        lock(&self.shared.switches)
            .ignore_subs
            .insert(service.to_string(), ((), times));
    }

    /// Switch: `service`'s data items stop (`true`) or flow again (`false`); heartbeats and
    /// the other services go on.
    pub fn mute_service(&self, service: &str, muted: bool) {
        let mut s = lock(&self.shared.switches);
        if muted {
            s.muted.insert(service.to_string());
        } else {
            s.muted.remove(service);
        }
    }

    /// Switch: the next `times` LOGINs are answered with `code` (e.g. 12: the single streamer
    /// slot is taken) and the socket is closed.
    pub fn answer_logins_with(&self, code: i64, times: u32) {
        lock(&self.shared.switches).login_code = Some((code, times));
    }

    /// Switch: while `true`, every WebSocket upgrade is answered 503 (Schwab unreachable), so
    /// a dropped client cannot reconnect; `false` lets it back in.
    pub fn refuse_connections(&self, refuse: bool) {
        lock(&self.shared.switches).refuse_connections = refuse;
    }

    /// Switch: the next `n` `pricehistory` calls get 429 with `Retry-After: 1`.
    pub fn set_pricehistory_429(&self, n: u32) {
        lock(&self.shared.switches).throttle_pricehistory = n;
    }

    /// Switch: the next `n` `pricehistory` calls get 500 with Schwab's error body.
    pub fn fail_pricehistory(&self, n: u32) {
        lock(&self.shared.switches).fail_pricehistory = n;
    }

    /// `GET /marketdata/v1/pricehistory` calls received so far (429-answered ones included).
    pub fn pricehistory_calls(&self) -> u64 {
        lock(&self.shared.switches).pricehistory_calls
    }

    /// The candles `pricehistory` would answer for `symbol` with start in `[from_ms, to_ms]`:
    /// `(start_ms, open, high, low, close, volume)` (the streamed CHART_EQUITY values).
    pub fn candle_history(
        &self,
        symbol: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<crate::HistoryCandle> {
        lock(&self.shared.market)
            .candle_history(symbol, from_ms, to_ms)
            .unwrap_or_default()
    }

    /// Switch: the next `n` HTTP calls get 429 with `Retry-After: 1`.
    pub fn throttle_next_requests(&self, n: u32) {
        lock(&self.shared.switches).throttle_requests = n;
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shared.send_control(Control::Drop, false);
        self.task.abort();
    }
}

/// Accepted SUBS and ADD commands per service.
fn subscription_counts(commands: &[ReceivedCommand]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for c in commands {
        if c.response_code == 0 && matches!(c.command.as_str(), "SUBS" | "ADD") {
            *counts.entry(c.service.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// `n` random lower-case hex digits.
fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect()
}

/// A random UUID-shaped string.
fn random_uuid() -> String {
    let h = random_hex(32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `prefix` + `n` random letters and digits.
fn random_token(prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    s.extend((0..n).map(|_| fastrand::alphanumeric()));
    s
}
