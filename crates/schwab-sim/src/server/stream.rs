//! The fake streamer WebSocket (`/ws`, spec §3): one task per connection that answers
//! commands one at a time and, once logged in, sends the frames the shared
//! [`MarketSimulator`](crate::MarketSimulator) produces. Only one connection is logged
//! in at a time: a new LOGIN kicks the previous one with code 12.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

use super::{Control, ReceivedCommand, Shared, Switches, lock};
use crate::subscription::Service;
use crate::{MarketSimulator, SimError};

/// Control messages a connection can queue (a switch sends one at a time).
const CONTROL_CAPACITY: usize = 8;

/// Names of every data service the fake streams.
fn data_services() -> impl Iterator<Item = &'static str> {
    Service::ALL.into_iter().map(Service::name)
}

/// `GET /ws`: the WebSocket upgrade.
pub(super) async fn upgrade(State(shared): State<Arc<Shared>>, mut req: Request) -> Response {
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if lock(&shared.switches).refuse_connections {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the streamer is unavailable (simulated outage)",
        )
            .into_response();
    }
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response();
    };
    if !is_upgrade {
        return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response();
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                serve(shared, ws).await;
            }
            Err(e) => tracing::debug!(error = %e, "simulator: WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One connection's state.
struct Conn {
    id: u64,
    /// The LOGIN was accepted (its answer may still be held back).
    logged_in: bool,
    /// The LOGIN answer went out: commands and data may flow.
    login_acked: bool,
    silent: bool,
    /// Answers held back for `command_latency`, when they go out, and what follows them.
    held: Vec<String>,
    held_until: Option<Instant>,
    held_after: After,
    held_login: bool,
    /// Keys per service, as the commands left them (for the code 30 rule).
    subscribed: HashMap<&'static str, BTreeSet<String>>,
    /// Code 30 is sent at this time unless something gets subscribed.
    no_subs_deadline: Option<Instant>,
}

/// What handling a frame asks the loop to do after sending the replies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Continue,
    Close,
}

async fn serve(shared: Arc<Shared>, mut ws: Socket) {
    let (ctl_tx, mut ctl_rx) = mpsc::channel(CONTROL_CAPACITY);
    let id = {
        let mut conns = lock(&shared.conns);
        conns.next_id += 1;
        let id = conns.next_id;
        conns.live.insert(id, ctl_tx);
        id
    };
    let mut conn = Conn {
        id,
        logged_in: false,
        login_acked: false,
        silent: false,
        held: Vec::new(),
        held_until: None,
        held_after: After::Continue,
        held_login: false,
        subscribed: HashMap::new(),
        no_subs_deadline: None,
    };
    let mut tick = tokio::time::interval(shared.settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let deadline = conn.no_subs_deadline.filter(|_| !conn.silent);
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if conn.silent {
                        record_unanswered(&shared, id, text.as_str());
                        continue;
                    }
                    let busy = conn.held_until.is_some();
                    let (replies, after) = conn.on_text(&shared, text.as_str(), busy);
                    conn.hold(replies, after, shared.settings.command_latency);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = sleep_until_some(conn.held_until), if !conn.silent => {
                let replies = std::mem::take(&mut conn.held);
                conn.held_until = None;
                if std::mem::take(&mut conn.held_login) {
                    conn.login_acked = true;
                }
                if send_all(&mut ws, replies).await.is_err() {
                    break;
                }
                if conn.held_after == After::Close {
                    let _ = ws.close(None).await;
                    break;
                }
            }
            _ = tick.tick(), if conn.login_acked && !conn.silent && conn.held_until.is_none() => {
                let frames = {
                    let logged_in = lock(&shared.conns).logged_in == Some(id);
                    if logged_in {
                        let frames = lock(&shared.market).advance_to(now_ms());
                        mute(&lock(&shared.switches).muted, frames)
                    } else {
                        Vec::new()
                    }
                };
                if send_all(&mut ws, frames).await.is_err() {
                    break;
                }
            }
            control = ctl_rx.recv() => match control {
                Some(Control::Drop) | None => break,
                Some(Control::Silence) => conn.silent = true,
                Some(Control::Close) => {
                    let frame = CloseFrame { code: CloseCode::Away, reason: "server closing".into() };
                    let _ = ws.close(Some(frame)).await;
                    break;
                }
                Some(Control::Kick) => {
                    let _ = ws.send(Message::text(notify_code(12, "Closing connection: another streamer connection was opened for this user (maximum 1)"))).await;
                    let _ = ws.close(None).await;
                    break;
                }
                Some(Control::Raw(text)) => {
                    if ws.send(Message::text(text.to_string())).await.is_err() {
                        break;
                    }
                }
                Some(Control::StopStreaming) => {
                    let _ = ws.send(Message::text(notify_code(30, "Stop streaming due to empty subscription or administrative action"))).await;
                    let _ = ws.close(None).await;
                    break;
                }
            },
            _ = sleep_until_some(deadline) => {
                let _ = ws.send(Message::text(notify_code(30, "Stop streaming due to empty subscription"))).await;
                let _ = ws.close(None).await;
                break;
            }
        }
    }
    let mut conns = lock(&shared.conns);
    conns.live.remove(&id);
    if conns.logged_in == Some(id) {
        conns.logged_in = None;
    }
}

/// Drops the data elements of muted services from `frames` (a frame left with nothing is
/// dropped; heartbeats and responses pass).
fn mute(muted: &std::collections::BTreeSet<String>, frames: Vec<String>) -> Vec<String> {
    if muted.is_empty() {
        return frames;
    }
    frames
        .into_iter()
        .filter_map(|text| {
            let Ok(mut v) = serde_json::from_str::<Value>(&text) else {
                return Some(text);
            };
            let Some(data) = v.get_mut("data").and_then(Value::as_array_mut) else {
                return Some(text);
            };
            data.retain(|d| !muted.contains(str_field(d, "service")));
            if data.is_empty() && v.as_object().is_some_and(|o| o.len() == 1) {
                None
            } else {
                Some(v.to_string())
            }
        })
        .collect()
}

async fn send_all(ws: &mut Socket, frames: Vec<String>) -> Result<(), ()> {
    for frame in frames {
        ws.send(Message::text(frame)).await.map_err(|_| ())?;
    }
    Ok(())
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A server notice with a code, in the `notify` shape (spec §3.3).
fn notify_code(code: i64, msg: &str) -> String {
    json!({"notify": [{"service": "ADMIN", "timestamp": now_ms(), "content": {"code": code, "msg": msg}}]})
        .to_string()
}

/// The text of `requestid` (a string as is, a number in decimal).
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn record_unanswered(shared: &Shared, id: u64, text: &str) {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        for r in v["requests"].as_array().into_iter().flatten() {
            record(shared, id, r, -1);
        }
    }
}

fn record(shared: &Shared, id: u64, r: &Value, code: i64) {
    let params = &r["parameters"];
    lock(&shared.journal).commands.push(ReceivedCommand {
        connection: id,
        service: str_field(r, "service").to_string(),
        command: str_field(r, "command").to_string(),
        request_id: id_text(&r["requestid"]),
        keys: params.get("keys").and_then(Value::as_str).map(String::from),
        fields: params
            .get("fields")
            .and_then(Value::as_str)
            .map(String::from),
        authorization: params
            .get("Authorization")
            .and_then(Value::as_str)
            .map(String::from),
        response_code: code,
    });
}

impl Conn {
    /// Answers every request of a client frame, in order.
    /// Keeps `replies` for `latency` (added to what is already held).
    fn hold(&mut self, replies: Vec<String>, after: After, latency: std::time::Duration) {
        self.held.extend(replies);
        if after == After::Close {
            self.held_after = After::Close;
        }
        if self.held_until.is_none() {
            self.held_until = Some(Instant::now() + latency);
        }
    }

    fn on_text(&mut self, shared: &Shared, text: &str, busy: bool) -> (Vec<String>, After) {
        let parsed: Option<Vec<Value>> = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("requests").and_then(Value::as_array).cloned());
        let Some(requests) = parsed else {
            return (
                vec![response(
                    shared,
                    "",
                    "",
                    "",
                    21,
                    "Bad command formatting: expected {\"requests\":[...]}",
                )],
                After::Continue,
            );
        };
        let mut replies = Vec::new();
        let mut busy = busy;
        for r in &requests {
            // A request after the first of a frame was sent before the first was answered.
            let (reply, after) = self.on_request(shared, r, busy);
            busy = true;
            replies.extend(reply);
            if let After::Close = after {
                return (replies, After::Close);
            }
        }
        (replies, After::Continue)
    }

    /// Answers one request. `busy`: an earlier command is still being processed.
    fn on_request(&mut self, shared: &Shared, r: &Value, busy: bool) -> (Vec<String>, After) {
        let service = str_field(r, "service");
        let command = str_field(r, "command");
        let request_id = id_text(&r["requestid"]);
        let ids_ok = str_field(r, "SchwabClientCustomerId") == shared.customer_id
            && str_field(r, "SchwabClientCorrelId") == shared.correl_id;
        let id = self.id;
        let reply = |code: i64, msg: &str| {
            record(shared, id, r, code);
            response(shared, service, command, &request_id, code, msg)
        };
        if service == "ADMIN" && command == "LOGIN" {
            if self.logged_in {
                return (vec![reply(0, "already logged in")], After::Continue);
            }
            return self.login(shared, r, ids_ok, reply);
        }
        if !self.login_acked || !ids_ok {
            let msg = "Stream connection not found: send LOGIN and wait for its response first, with the ids from userPreference";
            return (vec![reply(20, msg)], After::Continue);
        }
        if service == "ADMIN" && command == "LOGOUT" {
            return (vec![reply(0, "SUCCESS")], After::Close);
        }
        let Some(service_name) = data_services().find(|s| *s == service) else {
            return (
                vec![reply(11, &format!("Service not available: {service}"))],
                After::Continue,
            );
        };
        let failure_code = match command {
            "SUBS" => 22,
            "UNSUBS" => 23,
            "ADD" => 24,
            "VIEW" => 25,
            _ => {
                return (
                    vec![reply(
                        21,
                        &format!("Bad command formatting: unknown command {command}"),
                    )],
                    After::Continue,
                );
            }
        };
        if busy {
            let msg = format!(
                "{command} command failed: the previous command is still being processed (send one command at a time)"
            );
            return (vec![reply(failure_code, &msg)], After::Continue);
        }
        if matches!(command, "SUBS" | "ADD") {
            let mut s = lock(&shared.switches);
            if Switches::take(&mut s.ignore_subs, service).is_some() {
                drop(s);
                record(shared, id, r, -1);
                return (Vec::new(), After::Continue);
            }
            if let Some(code) = Switches::take(&mut s.refuse_subs, service) {
                drop(s);
                let msg = match code {
                    19 => "Reached symbol limit".to_string(),
                    11 => format!("Service not available: {service}"),
                    _ => format!("{command} command failed (simulated refusal)"),
                };
                return (vec![reply(code, &msg)], After::Continue);
            }
        }
        let params = &r["parameters"];
        let keys: Vec<String> = str_field(params, "keys")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        let raw_fields = str_field(params, "fields");
        let fields: Result<Vec<u32>, _> = raw_fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::parse::<u32>)
            .collect();
        let Ok(fields) = fields else {
            return (
                vec![reply(
                    21,
                    &format!("Bad command formatting: fields {raw_fields:?}"),
                )],
                After::Continue,
            );
        };
        if fields.windows(2).any(|w| w[0] >= w[1]) {
            return (
                vec![reply(
                    failure_code,
                    &format!("{command} command failed: fields must be in ascending order"),
                )],
                After::Continue,
            );
        }
        let applied = lock(&shared.market).apply_command(service_name, command, &keys, &fields);
        if let Err(e) = applied {
            // Code 19 for the symbol limit, the command's failure code for anything else.
            let (code, msg) = match e {
                SimError::SymbolLimit { .. } => (19, e.to_string()),
                e => (failure_code, format!("{command} command failed: {e}")),
            };
            return (vec![reply(code, &msg)], After::Continue);
        }
        let entry = self.subscribed.entry(service_name).or_default();
        match command {
            "SUBS" => *entry = keys.into_iter().collect(),
            "ADD" => entry.extend(keys),
            "UNSUBS" => keys.iter().for_each(|k| {
                entry.remove(k);
            }),
            _ => {}
        }
        self.arm_no_subscription_rule(shared);
        (
            vec![reply(0, &format!("{command} command succeeded"))],
            After::Continue,
        )
    }

    fn login(
        &mut self,
        shared: &Shared,
        r: &Value,
        ids_ok: bool,
        reply: impl Fn(i64, &str) -> String,
    ) -> (Vec<String>, After) {
        let token = str_field(&r["parameters"], "Authorization");
        let forced = Switches::take_login_code(&mut lock(&shared.switches));
        if let Some(code) = forced {
            let msg = match code {
                12 => {
                    "Closing connection: another streamer connection is open for this user (maximum 1)"
                }
                _ => "LOGIN failed (simulated)",
            };
            return (vec![reply(code, msg)], After::Close);
        }
        let denied_by_switch = {
            let mut s = lock(&shared.switches);
            let deny = s.deny_logins > 0;
            s.deny_logins = s.deny_logins.saturating_sub(1);
            deny
        };
        let token_ok = lock(&shared.auth).access_valid(token);
        if denied_by_switch || !token_ok || !ids_ok {
            let msg = "Login Denied.: token is invalid or has expired.";
            return (vec![reply(3, msg)], After::Close);
        }
        self.logged_in = true;
        self.held_login = true;
        let previous = {
            let mut conns = lock(&shared.conns);
            let previous = conns.logged_in.replace(self.id);
            previous.and_then(|p| conns.live.get(&p).cloned())
        };
        if let Some(tx) = previous {
            // One streamer connection per user: the older one is kicked (code 12).
            let _ = tx.try_send(Control::Kick);
        }
        {
            // The market went on while nobody was connected (the previous session's symbols
            // kept trading, so `pricehistory` can answer for the gap); what was due until now
            // is not sent. A new session then starts with no subscriptions.
            let mut market = lock(&shared.market);
            market.advance_to(now_ms());
            clear_subscriptions(&mut market);
        }
        self.arm_no_subscription_rule(shared);
        let ok = reply(0, "server=simulator-1;status=NP");
        (
            vec![ok, MarketSimulator::heartbeat_frame(now_ms())],
            After::Continue,
        )
    }

    fn arm_no_subscription_rule(&mut self, shared: &Shared) {
        let any = self.subscribed.values().any(|keys| !keys.is_empty());
        if any {
            self.no_subs_deadline = None;
        } else if self.no_subs_deadline.is_none() {
            self.no_subs_deadline = Some(Instant::now() + shared.settings.no_subscription_timeout);
        }
    }
}

fn clear_subscriptions(market: &mut MarketSimulator) {
    for service in data_services() {
        // SUBS with no keys and no fields empties a service; it cannot fail.
        let _ = market.apply_command(service, "SUBS", &[], &[]);
    }
}

/// A `response` frame; `requestid` is always echoed as a string.
fn response(
    shared: &Shared,
    service: &str,
    command: &str,
    request_id: &str,
    code: i64,
    msg: &str,
) -> String {
    json!({"response": [{
        "service": service,
        "command": command,
        "requestid": request_id,
        "SchwabClientCorrelId": shared.correl_id,
        "timestamp": now_ms(),
        "content": {"code": code, "msg": msg}
    }]})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;
    use crate::server::{Connections, Journal, SimServerSettings, Switches, subscription_counts};
    use std::sync::Mutex;

    fn shared(limit: Option<usize>) -> Shared {
        let settings = SimServerSettings {
            market: SimConfig {
                symbol_limit: limit,
                ..SimConfig::default()
            },
            ..SimServerSettings::default()
        };
        Shared {
            customer_id: "c".into(),
            correl_id: "r".into(),
            auth: Mutex::new(super::super::auth::AuthState::default()),
            market: Mutex::new(MarketSimulator::new(settings.market, 1_765_306_800_000)),
            conns: Mutex::new(Connections::default()),
            journal: Mutex::new(Journal::default()),
            switches: Mutex::new(Switches::default()),
            settings,
            addr: ([127, 0, 0, 1], 0).into(),
        }
    }

    fn conn() -> Conn {
        Conn {
            id: 1,
            logged_in: true,
            login_acked: true,
            silent: false,
            held: Vec::new(),
            held_until: None,
            held_after: After::Continue,
            held_login: false,
            subscribed: HashMap::new(),
            no_subs_deadline: None,
        }
    }

    /// Sends one command, returns (code, msg).
    fn send(
        conn: &mut Conn,
        shared: &Shared,
        service: &str,
        command: &str,
        keys: &str,
    ) -> (i64, String) {
        let request = json!({"requests": [{"requestid": "1", "service": service, "command": command,
            "SchwabClientCustomerId": "c", "SchwabClientCorrelId": "r",
            "parameters": {"keys": keys, "fields": "0,1,2,3"}}]});
        let (replies, _) = conn.on_text(shared, &request.to_string(), false);
        let v: Value = serde_json::from_str(&replies[0]).unwrap_or_default();
        let content = &v["response"][0]["content"];
        (
            content["code"].as_i64().unwrap_or(-1),
            content["msg"].as_str().unwrap_or_default().to_string(),
        )
    }

    #[test]
    fn the_symbol_limit_answers_19_and_account_activity_refuses_add_and_view() {
        let shared = shared(Some(3));
        let mut c = conn();
        assert_eq!(
            send(&mut c, &shared, "LEVELONE_EQUITIES", "SUBS", "AAPL,MSFT").0,
            0
        );
        assert_eq!(
            send(&mut c, &shared, "LEVELONE_FUTURES", "SUBS", "/ES").0,
            0
        );
        let (code, msg) = send(&mut c, &shared, "LEVELONE_FOREX", "ADD", "EUR/USD");
        assert_eq!(code, 19, "{msg}");
        assert!(msg.contains("symbol limit"), "{msg}");
        assert_eq!(lock(&shared.market).subscribed_keys(), 3);
        assert_eq!(
            send(&mut c, &shared, "LEVELONE_EQUITIES", "ADD", "AAPL").0,
            0,
            "already subscribed"
        );
        lock(&shared.market).set_symbol_limit(Some(5));
        assert_eq!(
            send(&mut c, &shared, "ACCT_ACTIVITY", "SUBS", "Account Activity").0,
            0
        );
        assert_eq!(send(&mut c, &shared, "ACCT_ACTIVITY", "ADD", "Other").0, 24);
        assert_eq!(send(&mut c, &shared, "ACCT_ACTIVITY", "VIEW", "").0, 25);
        assert_eq!(
            send(&mut c, &shared, "LEVELONE_FUTURES", "SUBS", "ES").0,
            22
        );
        assert_eq!(send(&mut c, &shared, "FOREX_BOOK", "SUBS", "EUR/USD").0, 11);
        let counts = subscription_counts(&lock(&shared.journal).commands);
        assert_eq!(counts.get("LEVELONE_EQUITIES"), Some(&2));
        assert_eq!(counts.get("ACCT_ACTIVITY"), Some(&1));
        assert_eq!(counts.get("LEVELONE_FOREX"), None);
        for service in data_services() {
            let keys = match service {
                "LEVELONE_OPTIONS" | "OPTIONS_BOOK" => "AAPL  251219C00230000",
                "LEVELONE_FUTURES" | "CHART_FUTURES" => "/NQ",
                "LEVELONE_FUTURES_OPTIONS" => "./OZCZ27C565",
                "LEVELONE_FOREX" => "USD/JPY",
                "SCREENER_EQUITY" => "NASDAQ_VOLUME_5",
                "SCREENER_OPTION" => "OPTION_CALL_VOLUME_5",
                "ACCT_ACTIVITY" => "Account Activity",
                _ => "SPY",
            };
            lock(&shared.market).set_symbol_limit(None);
            let (code, msg) = send(&mut c, &shared, service, "SUBS", keys);
            assert_eq!(code, 0, "{service}: {msg}");
        }
        let counts = subscription_counts(&lock(&shared.journal).commands);
        assert_eq!(counts.len(), 13, "{counts:?}");
    }
}
