//! The HTTP side of the health endpoint: an axum router (HTTP/1.1) on `HEALTH_ADDR` with
//! `GET /health`, `GET /metrics` and the live page (`GET /`, its event stream `GET /live`, see
//! [`super::page`]), stopped gracefully by the service's stop signal. Connections are
//! accepted by [`super::accept`] (header-read timeout, connection cap).
//!
//! Binding happens first, at startup, so a taken port fails the start at once with what to
//! do, before anything connects to Schwab or the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Health;
use super::live::LiveView;
use super::metrics::Metrics;
use super::page;

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// How long in-flight requests may take once the service stops.
const DRAIN: Duration = Duration::from_secs(2);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthServerError {
    #[error(
        "cannot listen on HEALTH_ADDR {addr}: the port is already in use (another market-streamer or another program listens there); set HEALTH_ADDR to a free address, e.g. HEALTH_ADDR=127.0.0.1:8081, or HEALTH_ADDR=off to run without the health endpoint"
    )]
    InUse { addr: SocketAddr },
    #[error(
        "cannot listen on HEALTH_ADDR {addr}: {source}; set HEALTH_ADDR to an address of this machine and a port above 1023 (e.g. 127.0.0.1:8080, or 0.0.0.0:8080 in a container), or HEALTH_ADDR=off"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` (port 0: a free port, see [`TcpListener::local_addr`]).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HealthServerError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            HealthServerError::InUse { addr }
        } else {
            HealthServerError::Bind { addr, source }
        }
    })
}

/// What the routes read.
struct AppState {
    health: Health,
    metrics: Arc<Metrics>,
    /// The live page's view (see [`super::live::LivePage`]); `None`: `/live` answers 404.
    live: Option<watch::Receiver<Arc<LiveView>>>,
}

/// The running endpoint; dropping it aborts the tasks (use [`HealthServer::finish`] for a
/// graceful end).
pub struct HealthServer {
    addr: SocketAddr,
    serve: JoinHandle<()>,
    upkeep: JoinHandle<()>,
    stop: watch::Receiver<bool>,
}

impl HealthServer {
    /// Serves on `listener` until `stop` is set; the live page reads `live`.
    pub fn start(
        listener: TcpListener,
        health: Health,
        metrics: Arc<Metrics>,
        live: Option<watch::Receiver<Arc<LiveView>>>,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let serve_stop = stop.clone();
        let upkeep_metrics = metrics.clone();
        let upkeep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                upkeep_metrics.run_upkeep();
            }
        });
        let app = router(Arc::new(AppState {
            health,
            metrics,
            live,
        }));
        let serve = tokio::spawn(super::accept::serve(listener, app, serve_stop));
        if addr.ip().is_loopback() {
            tracing::info!(address = %addr, "health endpoint listening: GET /health, GET /metrics, live page at GET /");
        } else {
            tracing::warn!(address = %addr, "health endpoint listening on a non-loopback address: GET /health, GET /metrics and the live page are reachable from the network (they hold no secrets); keep the port behind a firewall or an SSH tunnel");
        }
        Ok(Self {
            addr,
            serve,
            upkeep,
            stop,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// After the stop signal: waits (briefly) for open requests to end, then stops
    /// everything. Without a stop signal (the stream ended by itself): stops at once.
    pub async fn finish(mut self) {
        if !*self.stop.borrow() {
            return;
        }
        if tokio::time::timeout(DRAIN, &mut self.serve).await.is_err() {
            tracing::debug!("health endpoint requests still open at shutdown; closing them");
        }
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.serve.abort();
        self.upkeep.abort();
    }
}

fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/", get(page::index))
        .route("/live", get(live))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let report = state.health.report();
    let code = StatusCode::from_u16(report.status.http_code())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(report),
    )
        .into_response()
}

async fn live(State(state): State<Arc<AppState>>) -> Response {
    match &state.live {
        Some(view) => page::events(view.clone()),
        None => not_found().await,
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let snap = state.health.sources.snapshot(Utc::now());
    let verdict = state.health.report_at(&snap);
    let body = state
        .metrics
        .render(&state.health.sources.stats, &snap, &verdict);
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "not found: this is market-streamer's health endpoint, with GET /health and GET /metrics, and the live page at GET /"
        })),
    )
        .into_response()
}
