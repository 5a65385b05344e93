//! One streamer connection's life (spec §8.2): connect to `streamerSocketUrl`, LOGIN with the
//! raw access token and wait (with a deadline) for its ack, then send the subscriptions one
//! at a time, each awaited (matching `requestid`, `service` and `command`) with a deadline,
//! then read until the connection ends. Every frame is parsed once here: its responses and
//! notices drive the session, and the parsed frame goes downstream to the
//! [`FrameConsumer`] (and the raw text to the recorder). A watchdog ends the connection when no Schwab frame (data, response or
//! heartbeat) has arrived for `STALL_TIMEOUT`; our own sends and WebSocket pings never reset it.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};

use super::changes::{KeysAnswer, SubscriptionChange};
use super::protocol::{Request, RequestBuilder, Subscription, codes, is_success};
use super::recorder::FrameRecorder;
use super::subscriptions::{
    Board, SilenceAction, SilenceEnded, SilenceSettings, SubState, SubscriptionStatus,
};
use crate::schwab::downstream::FrameConsumer;
use crate::schwab::preferences::StreamerInfo;
use crate::schwab::secret::Secret;
use crate::schwab::wire::{Notice, Service, parse_frame};

/// How long a polite goodbye (LOGOUT, close frame) may take.
const GOODBYE: Duration = Duration::from_secs(1);

/// Deadlines of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// WebSocket connect (TCP + TLS + upgrade).
    pub connect_timeout: Duration,
    /// The LOGIN ack and each subscription ack.
    pub response_timeout: Duration,
    /// No Schwab frame for this long ends the connection.
    pub stall_timeout: Duration,
    /// `MAX_FRAME_BYTES`: a larger WebSocket message is refused before it is buffered whole
    /// (the connection ends and is made again).
    pub max_frame_bytes: usize,
    /// The per-service silence rule ([`super::subscriptions`]).
    pub silence: SilenceSettings,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The server closed the WebSocket (close frame or a clean end).
    ServerClose { code: Option<u16>, reason: String },
    /// No frame for `STALL_TIMEOUT`.
    Stall { silent_for: Duration },
    /// Code 3: the access token was refused.
    LoginDenied { message: String },
    /// Another LOGIN failure code.
    LoginFailed { code: i64, message: String },
    /// Code 12: another login took Schwab's single streamer slot.
    Kicked { message: String },
    /// Code 30: the server stopped streaming.
    StopStreaming { message: String },
    /// Connect failure, reset, TLS or I/O error.
    NetworkError { detail: String },
    /// A message larger than `MAX_FRAME_BYTES` was refused.
    FrameTooLarge { limit: usize },
    /// A LOGIN ack did not come within `STREAM_RESPONSE_TIMEOUT` (or no subscription got
    /// an answer after every attempt).
    ResponseTimeout { what: String },
    /// A service stayed silent after being subscribed again (its market open).
    ServiceSilent {
        service: &'static str,
        /// Its last data (the gap's start).
        since: DateTime<Utc>,
    },
    /// The writer stopped (its error is reported by the app).
    WriterStopped,
    /// The service is stopping.
    Shutdown,
}

impl CloseReason {
    /// The `stream_gaps.reason` value.
    pub fn gap_reason(&self) -> &'static str {
        match self {
            Self::ServerClose { .. } => "server_close",
            Self::Stall { .. } => "stall",
            Self::LoginDenied { .. } | Self::LoginFailed { .. } => "login_denied",
            Self::Kicked { .. } => "kicked",
            Self::StopStreaming { .. } => "stop_streaming",
            Self::NetworkError { .. } => "network_error",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::ResponseTimeout { .. } => "response_timeout",
            Self::ServiceSilent { .. } => "service_silent",
            Self::WriterStopped => "writer_stopped",
            Self::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServerClose { code, reason } => match code {
                Some(c) => write!(
                    f,
                    "the server closed the connection (close code {c} {reason:?})"
                ),
                None => write!(f, "the server closed the connection"),
            },
            Self::Stall { silent_for } => {
                write!(f, "no frame (data or heartbeat) for {silent_for:?}")
            }
            Self::LoginDenied { message } => write!(f, "LOGIN denied (code 3: {message})"),
            Self::LoginFailed { code, message } => {
                write!(f, "LOGIN failed (code {code}: {message})")
            }
            Self::Kicked { message } => write!(
                f,
                "code 12: another login took the single streamer connection of this Schwab user ({message})"
            ),
            Self::StopStreaming { message } => {
                write!(f, "code 30: the server stopped streaming ({message})")
            }
            Self::NetworkError { detail } => write!(f, "network error: {detail}"),
            Self::FrameTooLarge { limit } => write!(
                f,
                "a message larger than MAX_FRAME_BYTES ({limit} bytes) was refused before parsing; raise MAX_FRAME_BYTES if the subscriptions really need such messages"
            ),
            Self::ResponseTimeout { what } => write!(f, "no answer to {what} in time"),
            Self::ServiceSilent { service, since } => write!(
                f,
                "{service} delivered no data since {since} while its market is open, even after being subscribed again"
            ),
            Self::WriterStopped => write!(f, "the database writer stopped"),
            Self::Shutdown => write!(f, "the service is stopping"),
        }
    }
}

/// What a connection did.
#[derive(Debug, Clone)]
pub struct ConnectionReport {
    pub end: CloseReason,
    /// The LOGIN was acknowledged.
    pub logged_in: bool,
    /// When the first subscription was acknowledged (the session was streaming).
    pub streaming_at: Option<DateTime<Utc>>,
    /// How long it streamed (from `streaming_at` to the end).
    pub streamed_for: Duration,
    /// The last Schwab frame received.
    pub last_frame_at: Option<DateTime<Utc>>,
    /// What is subscribed at the end (the plan plus changes made while running); the plan's
    /// own list when the connection never got that far.
    pub subscriptions: Vec<Subscription>,
}

/// Where frames go: downstream (the pipeline), and the optional recorder.
pub struct FrameSink<'a, C: FrameConsumer> {
    pub consumer: &'a mut C,
    pub recorder: Option<&'a mut FrameRecorder>,
}

/// Everything one connection needs.
pub struct ConnectionPlan<'a> {
    pub info: &'a StreamerInfo,
    pub access_token: &'a Secret,
    pub subscriptions: &'a [Subscription],
    /// The subscriptions' statuses at the end of the previous connection (their last data
    /// ages carry over).
    pub previous: &'a [SubscriptionStatus],
    pub settings: &'a ConnectionSettings,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub use crate::shutdown::stopped;

/// Runs one connection until it ends, telling `events` what happens (streaming, the
/// subscriptions' states, a silent service's hole).
pub async fn run_connection(
    plan: ConnectionPlan<'_>,
    sink: &mut FrameSink<'_, impl FrameConsumer>,
    stop: &mut watch::Receiver<bool>,
    events: &mut Events<'_>,
    changes: &mut Option<mpsc::Receiver<SubscriptionChange>>,
) -> ConnectionReport {
    let mut report = ConnectionReport {
        end: CloseReason::Shutdown,
        logged_in: false,
        streaming_at: None,
        streamed_for: Duration::ZERO,
        last_frame_at: None,
        subscriptions: plan.subscriptions.to_vec(),
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(plan.settings.max_frame_bytes))
        .max_frame_size(Some(plan.settings.max_frame_bytes));
    let connect = tokio_tungstenite::connect_async_with_config(
        plan.info.socket_url.as_str(),
        Some(config),
        true,
    );
    let mut ws = tokio::select! {
        r = tokio::time::timeout(plan.settings.connect_timeout, connect) => match r {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(e)) => {
                report.end = CloseReason::NetworkError { detail: format!("cannot connect to {}: {e}", plan.info.socket_url) };
                return report;
            }
            Err(_) => {
                report.end = CloseReason::NetworkError {
                    detail: format!("connecting to {} took over {:?}", plan.info.socket_url, plan.settings.connect_timeout),
                };
                return report;
            }
        },
        _ = stopped(stop) => return report,
    };
    tracing::debug!(url = %plan.info.socket_url, "streamer socket connected");

    let mut session = Session::new(&plan);
    let end = session.drive(&mut ws, sink, stop, events, changes).await;
    report.subscriptions = std::mem::take(&mut session.subscriptions);
    report.logged_in = session.logged_in;
    report.streaming_at = session.streaming_at;
    report.streamed_for = session
        .streaming_since
        .map(|s| s.elapsed())
        .unwrap_or_default();
    report.last_frame_at = session.last_frame_wall;
    goodbye(&mut ws, &end, &mut session.builder).await;
    report.end = end;
    report
}

/// A polite end where the socket is still usable: LOGOUT when stopping, then a close frame.
async fn goodbye(ws: &mut Socket, end: &CloseReason, builder: &mut RequestBuilder<'_>) {
    let usable = matches!(
        end,
        CloseReason::Shutdown
            | CloseReason::Stall { .. }
            | CloseReason::ResponseTimeout { .. }
            | CloseReason::WriterStopped
    );
    if !usable {
        return;
    }
    let _ = tokio::time::timeout(GOODBYE, async {
        if matches!(end, CloseReason::Shutdown) {
            ws.send(Message::text(builder.logout().text().to_owned()))
                .await?;
        }
        ws.close(None).await
    })
    .await;
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Login,
    /// The `SUBS` of subscription `i`.
    Subscribe(usize),
    /// An `ADD` of `keys` to subscription `i` (a change while running).
    Add {
        sub: usize,
        keys: Vec<String>,
    },
    /// An `UNSUBS` of keys already taken out of subscription `i`'s list.
    Unsubscribe,
}

struct Session<'p> {
    builder: RequestBuilder<'p>,
    /// What is subscribed (changes while running are applied here, and handed back in the
    /// report for the next connection).
    subscriptions: Vec<Subscription>,
    /// Requests to send, each with what it is for.
    queue: VecDeque<(Request, Purpose)>,
    /// Keys of every subscription of the plan, and of those Schwab accepted so far (with
    /// the per-service counts), for the code-19 report.
    keys_planned: usize,
    keys_accepted: usize,
    accepted_by_service: Vec<String>,
    /// The request awaiting its answer, what it is for and its deadline.
    pending: Option<(Request, Purpose, Instant)>,
    board: Board,
    logged_in: bool,
    streaming_at: Option<DateTime<Utc>>,
    streaming_since: Option<Instant>,
    last_frame: Instant,
    last_frame_wall: Option<DateTime<Utc>>,
    response_timeout: Duration,
    stall_timeout: Duration,
    max_frame_bytes: usize,
}

enum Step {
    Continue,
    End(CloseReason),
}

/// SUBS sent for one subscription on one connection before it counts as unanswered.
pub const SUBS_ATTEMPTS: u32 = 3;

/// How often the silence rule runs and the board's data ages are published.
const BOARD_TICK: Duration = Duration::from_secs(1);

impl<'p> Session<'p> {
    fn new(plan: &ConnectionPlan<'p>) -> Self {
        let mut builder = RequestBuilder::new(plan.info);
        let mut queue = VecDeque::with_capacity(plan.subscriptions.len() + 1);
        queue.push_back((builder.login(plan.access_token), Purpose::Login));
        for (i, sub) in plan.subscriptions.iter().enumerate() {
            queue.push_back((builder.subscribe(sub), Purpose::Subscribe(i)));
        }
        let subs: Vec<_> = plan
            .subscriptions
            .iter()
            .map(|s| (s.service, s.keys.len()))
            .collect();
        Self {
            builder,
            subscriptions: plan.subscriptions.to_vec(),
            queue,
            keys_planned: plan.subscriptions.iter().map(|s| s.keys.len()).sum(),
            keys_accepted: 0,
            accepted_by_service: Vec::new(),
            pending: None,
            board: Board::new(&subs, plan.previous, plan.settings.silence, Utc::now()),
            logged_in: false,
            streaming_at: None,
            streaming_since: None,
            last_frame: Instant::now(),
            last_frame_wall: None,
            response_timeout: plan.settings.response_timeout,
            stall_timeout: plan.settings.stall_timeout,
            max_frame_bytes: plan.settings.max_frame_bytes,
        }
    }

    /// Publishes the board when a state changed (or `always`, for the data ages).
    fn publish(&mut self, events: &mut Events<'_>, always: bool) {
        if self.board.take_changed() || always {
            events(ConnectionEvent::Subscriptions(self.board.statuses()));
        }
    }

    async fn drive(
        &mut self,
        ws: &mut Socket,
        sink: &mut FrameSink<'_, impl FrameConsumer>,
        stop: &mut watch::Receiver<bool>,
        events: &mut Events<'_>,
        changes: &mut Option<mpsc::Receiver<SubscriptionChange>>,
    ) -> CloseReason {
        self.publish(events, true);
        if let Step::End(e) = self.send_next(ws).await {
            return e;
        }
        let mut board_tick = tokio::time::interval(BOARD_TICK);
        board_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stall_at = self.last_frame + self.stall_timeout;
            let response_at = self.pending.as_ref().map(|(_, _, at)| *at);
            let step = tokio::select! {
                biased;
                _ = stopped(stop) => Step::End(CloseReason::Shutdown),
                msg = ws.next() => self.on_message(msg, ws, sink, events).await,
                _ = tokio::time::sleep_until(stall_at) => Step::End(CloseReason::Stall {
                    silent_for: self.last_frame.elapsed(),
                }),
                _ = sleep_until_some(response_at) => self.on_response_timeout(ws, events).await,
                _ = board_tick.tick(), if self.logged_in => self.on_board_tick(ws, events).await,
                change = recv_change(changes), if self.logged_in => match change {
                    Some(change) => self.on_change(change, ws, sink).await,
                    None => {
                        // The watchlist task ended: no more changes.
                        *changes = None;
                        Step::Continue
                    }
                },
            };
            if let Step::End(reason) = step {
                self.publish(events, true);
                return reason;
            }
        }
    }

    /// Sends the next queued request (if none is awaiting its answer). With nothing left to
    /// send and no subscription acknowledged, a connection whose subscriptions all went
    /// unanswered is made again (refused ones would only be refused again).
    async fn send_next(&mut self, ws: &mut Socket) -> Step {
        if self.pending.is_some() {
            return Step::Continue;
        }
        let Some((request, purpose)) = self.queue.pop_front() else {
            if self.logged_in && !self.board.any_acknowledged() {
                let unanswered = self
                    .board
                    .statuses()
                    .iter()
                    .any(|s| matches!(s.state, SubState::Unanswered { .. }));
                if unanswered {
                    return Step::End(CloseReason::ResponseTimeout {
                        what: "every subscription".into(),
                    });
                }
            }
            return Step::Continue;
        };
        if let Purpose::Subscribe(i) = purpose {
            self.board.sent(i);
        }
        tracing::debug!(service = request.service, command = request.command, requestid = %request.request_id, "sending");
        if let Err(e) = ws.send(Message::text(request.text().to_owned())).await {
            return Step::End(network_error(e));
        }
        self.pending = Some((request, purpose, Instant::now() + self.response_timeout));
        Step::Continue
    }

    /// A change while running: keys removed go out with `UNSUBS` (and are no longer
    /// expected at once); keys added are announced downstream, then `ADD`ed (or a new
    /// service `SUBS`cribed). Schwab's answers come back as [`ConnectionEvent::Keys`].
    async fn on_change(
        &mut self,
        change: SubscriptionChange,
        ws: &mut Socket,
        sink: &mut FrameSink<'_, impl FrameConsumer>,
    ) -> Step {
        let found = self
            .subscriptions
            .iter()
            .position(|s| s.service == change.service);
        if let Some(i) = found {
            let removed: Vec<String> = change
                .remove
                .iter()
                .filter(|k| self.subscriptions[i].keys.contains(k))
                .cloned()
                .collect();
            if !removed.is_empty() {
                self.subscriptions[i].keys.retain(|k| !removed.contains(k));
                self.board.set_keys(i, self.subscriptions[i].keys.len());
                sink.consumer.keys_changed(change.service, &removed, false);
                let request = self.builder.unsubscribe(change.service, &removed);
                self.queue.push_back((request, Purpose::Unsubscribe));
            }
            let added: Vec<String> = change
                .add
                .iter()
                .filter(|k| !self.subscriptions[i].keys.contains(k))
                .cloned()
                .collect();
            if !added.is_empty() {
                sink.consumer.keys_changed(change.service, &added, true);
                let request = self.builder.add(&self.subscriptions[i], &added);
                self.queue.push_back((
                    request,
                    Purpose::Add {
                        sub: i,
                        keys: added,
                    },
                ));
            }
        } else if !change.add.is_empty() {
            let sub = Subscription {
                service: change.service,
                keys: change.add.clone(),
                fields: super::protocol::with_field_zero(&change.fields),
            };
            sink.consumer.keys_changed(change.service, &sub.keys, true);
            let request = self.builder.subscribe(&sub);
            self.board.push(sub.service, sub.keys.len(), Utc::now());
            self.subscriptions.push(sub);
            let i = self.subscriptions.len() - 1;
            self.queue.push_back((request, Purpose::Subscribe(i)));
        }
        self.send_next(ws).await
    }

    /// The awaited answer did not come: LOGIN ends the connection; a SUBS is sent again up
    /// to [`SUBS_ATTEMPTS`] times, then counts as unanswered while the other services stream
    /// on.
    async fn on_response_timeout(&mut self, ws: &mut Socket, events: &mut Events<'_>) -> Step {
        let Some((request, purpose, _)) = self.pending.take() else {
            return Step::Continue;
        };
        let what = format!(
            "{} {} (requestid {})",
            request.service, request.command, request.request_id
        );
        let i = match purpose {
            Purpose::Login => return Step::End(CloseReason::ResponseTimeout { what }),
            Purpose::Subscribe(i) => i,
            Purpose::Add { sub, keys } => {
                tracing::warn!(
                    service = request.service,
                    "no answer to {what} in time; the keys are not added (the watchlist shows them rejected)"
                );
                let service = self.subscriptions[sub].service;
                events(ConnectionEvent::Keys(KeysAnswer {
                    service,
                    keys,
                    result: Err((-1, "no answer from Schwab in time".into())),
                }));
                return self.send_next(ws).await;
            }
            Purpose::Unsubscribe => {
                tracing::warn!(
                    service = request.service,
                    "no answer to {what} in time; the keys are no longer expected"
                );
                return self.send_next(ws).await;
            }
        };
        let attempts = self.board.attempts(i);
        if attempts < SUBS_ATTEMPTS {
            tracing::warn!(
                service = request.service,
                attempt = attempts,
                "no answer to {what} in time; sending it again on this connection"
            );
            let again = self.builder.subscribe(&self.subscriptions[i]);
            self.queue.push_front((again, Purpose::Subscribe(i)));
        } else {
            tracing::error!(
                service = request.service,
                attempts,
                "no answer to {} after {attempts} attempts; the other services stream on, this one is tried again on the next connection",
                request.service
            );
            self.board.unanswered(i, Utc::now());
            self.publish(events, false);
        }
        self.send_next(ws).await
    }

    /// The silence rule, and the data ages for `/health`.
    async fn on_board_tick(&mut self, ws: &mut Socket, events: &mut Events<'_>) -> Step {
        let action = self.board.check_silence(Utc::now());
        self.publish(events, true);
        match action {
            None => Step::Continue,
            Some(SilenceAction::Resubscribe(i)) => {
                let sub = &self.subscriptions[i];
                tracing::warn!(
                    service = sub.service.wire_name(),
                    "{} delivered no data for longer than its silence limit while its market is open; subscribing it again on this connection",
                    sub.service.wire_name()
                );
                let again = self.builder.subscribe(sub);
                self.queue.push_front((again, Purpose::Subscribe(i)));
                self.send_next(ws).await
            }
            Some(SilenceAction::Reconnect { service, since }) => {
                Step::End(CloseReason::ServiceSilent {
                    service: service.wire_name(),
                    since,
                })
            }
        }
    }

    async fn on_message(
        &mut self,
        msg: Option<Result<Message, tungstenite::Error>>,
        ws: &mut Socket,
        sink: &mut FrameSink<'_, impl FrameConsumer>,
        events: &mut Events<'_>,
    ) -> Step {
        let text = match msg {
            None => {
                return Step::End(CloseReason::ServerClose {
                    code: None,
                    reason: String::new(),
                });
            }
            Some(Err(tungstenite::Error::Capacity(_))) => {
                return Step::End(CloseReason::FrameTooLarge {
                    limit: self.max_frame_bytes,
                });
            }
            Some(Err(e)) => return Step::End(network_error(e)),
            Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
            Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                Ok(t) => t,
                Err(_) => return Step::Continue,
            },
            Some(Ok(Message::Close(frame))) => {
                return Step::End(CloseReason::ServerClose {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame
                        .map(|f| f.reason.as_str().to_owned())
                        .unwrap_or_default(),
                });
            }
            // Pings are answered by the library; they are not Schwab frames.
            Some(Ok(_)) => return Step::Continue,
        };
        let now = Utc::now();
        self.last_frame = Instant::now();
        self.last_frame_wall = Some(now);
        if let Some(recorder) = sink.recorder.as_deref_mut() {
            recorder.record(&text).await;
        }
        let received_ms = now.timestamp_millis();
        let frame = parse_frame(&text, received_ms);
        if sink
            .consumer
            .consume(frame.as_ref(), received_ms)
            .await
            .is_err()
        {
            return Step::End(CloseReason::WriterStopped);
        }
        let Ok(frame) = frame else {
            return Step::Continue;
        };
        if !frame.updates.is_empty() {
            let mut services = [false; Service::ALL.len()];
            for u in &frame.updates {
                services[u.body.service().index()] = true;
            }
            for ended in self.board.data(&services, now) {
                tracing::info!(service = ended.service.wire_name(), silent_from = %ended.start, "data again after a silence; gap recorded");
                events(ConnectionEvent::ServiceGap(ended));
            }
            self.publish(events, false);
        }
        for notice in &frame.notices {
            if let Notice::Code {
                service,
                code,
                message,
            } = notice
                && let Some(end) = closing_code(*code, message)
            {
                tracing::debug!(service = %service, code, "server notice");
                return Step::End(end);
            }
        }
        for response in &frame.responses {
            let matches = self.pending.as_ref().is_some_and(|(p, _, _)| {
                response.request_id.as_deref() == Some(p.request_id.as_str())
                    && response.service == p.service
                    && response.command == p.command
            });
            if !matches {
                if let Some(end) = closing_code(response.code, &response.message) {
                    return Step::End(end);
                }
                if !is_success(response.code) {
                    tracing::warn!(service = %response.service, command = %response.command, code = response.code, message = %response.message, "Schwab reported an error");
                }
                continue;
            }
            let Some((request, purpose, _)) = self.pending.take() else {
                continue;
            };
            let step = match purpose {
                Purpose::Login => self.on_login_answer(response),
                Purpose::Subscribe(i) => self.on_subscription_answer(&request, i, response, events),
                Purpose::Add { sub, keys } => {
                    self.on_add_answer(&request, sub, keys, response, sink, events)
                }
                Purpose::Unsubscribe => {
                    if let Some(end) = closing_code(response.code, &response.message) {
                        Step::End(end)
                    } else {
                        if !is_success(response.code) {
                            tracing::warn!(service = request.service, code = response.code, message = %response.message, "Schwab refused an UNSUBS; the keys are no longer expected anyway");
                        }
                        Step::Continue
                    }
                }
            };
            if let Step::End(e) = step {
                return Step::End(e);
            }
            self.publish(events, false);
            if let Step::End(e) = self.send_next(ws).await {
                return Step::End(e);
            }
        }
        Step::Continue
    }

    /// The LOGIN answer: a closing code (3, 12, 30) follows its rule wherever it arrives.
    fn on_login_answer(&mut self, response: &crate::schwab::wire::Response) -> Step {
        if is_success(response.code) {
            self.logged_in = true;
            tracing::info!(response = %response.message, "logged in to the Schwab streamer");
            return Step::Continue;
        }
        if let Some(end) = closing_code(response.code, &response.message) {
            return Step::End(end);
        }
        Step::End(CloseReason::LoginFailed {
            code: response.code,
            message: response.message.clone(),
        })
    }

    /// A subscription's answer: acknowledged (the first makes the session streaming), or
    /// refused (kept refused on this connection, logged with what to do).
    fn on_subscription_answer(
        &mut self,
        request: &Request,
        i: usize,
        response: &crate::schwab::wire::Response,
        events: &mut Events<'_>,
    ) -> Step {
        let now = Utc::now();
        if is_success(response.code) {
            let first = !self.board.any_acknowledged();
            let silent_again = self
                .board
                .statuses()
                .get(i)
                .is_some_and(|s| s.state == SubState::Silent);
            self.board.acknowledged(i, now);
            if !silent_again && request.keys > 0 {
                self.keys_accepted += request.keys;
                self.accepted_by_service
                    .push(format!("{} {}", request.service, request.keys));
            }
            tracing::info!(service = request.service, keys = request.keys, "subscribed");
            events(ConnectionEvent::Keys(KeysAnswer {
                service: self.subscriptions[i].service,
                keys: self.subscriptions[i].keys.clone(),
                result: Ok(()),
            }));
            if first && self.streaming_at.is_none() {
                self.streaming_at = Some(now);
                self.streaming_since = Some(Instant::now());
                events(ConnectionEvent::Streaming(now));
            }
            return Step::Continue;
        }
        if let Some(end) = closing_code(response.code, &response.message) {
            return Step::End(end);
        }
        self.board.refused(i, response.code, &response.message, now);
        events(ConnectionEvent::Keys(KeysAnswer {
            service: self.subscriptions[i].service,
            keys: self.subscriptions[i].keys.clone(),
            result: Err((response.code, response.message.clone())),
        }));
        if response.code == codes::SYMBOL_LIMIT {
            // Not retried on this connection (it would be refused again): the other services
            // stream on; the next connection asks for the same keys once.
            tracing::error!(
                service = request.service,
                keys_refused = request.keys,
                keys_accepted_before = self.keys_accepted,
                keys_accepted_by_service = %self.accepted_by_service.join(", "),
                keys_configured = self.keys_planned,
                message = %response.message,
                "Schwab refused the {} subscription of {} key(s): symbol limit reached (code 19) after {} key(s) were accepted ({} configured in all); this service streams nothing until keys are removed: shorten its symbol list (or others) in .env and restart",
                request.service,
                request.keys,
                self.keys_accepted,
                self.keys_planned,
            );
        } else {
            tracing::error!(
                service = request.service,
                command = request.command,
                code = response.code,
                message = %response.message,
                "Schwab refused a subscription; check the symbols and field numbers of this service (the other services stream on; it is asked again on the next connection)"
            );
        }
        Step::Continue
    }
}

impl Session<'_> {
    /// An `ADD`'s answer: the keys join the subscription (and every later connection's), or
    /// are refused (no longer expected downstream; reported for the watchlist).
    fn on_add_answer(
        &mut self,
        request: &Request,
        i: usize,
        keys: Vec<String>,
        response: &crate::schwab::wire::Response,
        sink: &mut FrameSink<'_, impl FrameConsumer>,
        events: &mut Events<'_>,
    ) -> Step {
        let service = self.subscriptions[i].service;
        if is_success(response.code) {
            tracing::info!(service = request.service, keys = keys.len(), "keys added");
            self.keys_accepted += keys.len();
            self.subscriptions[i].keys.extend(keys.iter().cloned());
            self.board.set_keys(i, self.subscriptions[i].keys.len());
            events(ConnectionEvent::Keys(KeysAnswer {
                service,
                keys,
                result: Ok(()),
            }));
            return Step::Continue;
        }
        if let Some(end) = closing_code(response.code, &response.message) {
            return Step::End(end);
        }
        tracing::warn!(
            service = request.service,
            keys = keys.len(),
            code = response.code,
            message = %response.message,
            "Schwab refused to add keys; they are not subscribed (the watchlist shows them rejected with the reason)"
        );
        sink.consumer.keys_changed(service, &keys, false);
        events(ConnectionEvent::Keys(KeysAnswer {
            service,
            keys,
            result: Err((response.code, response.message.clone())),
        }));
        Step::Continue
    }
}

/// The next change, or never when there is no change channel.
async fn recv_change(
    changes: &mut Option<mpsc::Receiver<SubscriptionChange>>,
) -> Option<SubscriptionChange> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a connection tells its supervisor as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The first subscription was acknowledged: the session streams (this closes the
    /// previous gap).
    Streaming(DateTime<Utc>),
    /// The subscriptions' states (on every change, and each second for the data ages).
    Subscriptions(Vec<SubscriptionStatus>),
    /// A silent service delivers again after being subscribed again on this connection.
    ServiceGap(SilenceEnded),
    /// Schwab's answer for a set of keys (a `SUBS` or an `ADD`), for the watchlist.
    Keys(KeysAnswer),
}

/// The supervisor's handler of [`ConnectionEvent`]s.
pub type Events<'a> = dyn FnMut(ConnectionEvent) + Send + 'a;

/// Codes that end the connection (spec §3.5).
fn closing_code(code: i64, message: &str) -> Option<CloseReason> {
    let message = message.to_string();
    match code {
        codes::LOGIN_DENIED => Some(CloseReason::LoginDenied { message }),
        codes::CLOSE_CONNECTION => Some(CloseReason::Kicked { message }),
        codes::STOP_STREAMING => Some(CloseReason::StopStreaming { message }),
        _ => None,
    }
}

fn network_error(e: tungstenite::Error) -> CloseReason {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            CloseReason::ServerClose {
                code: None,
                reason: String::new(),
            }
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => CloseReason::NetworkError {
            detail: "the connection was reset without a close frame".into(),
        },
        other => CloseReason::NetworkError {
            detail: other.to_string(),
        },
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
