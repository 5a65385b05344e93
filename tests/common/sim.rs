//! A running service against an in-process fake Schwab: the real `app::run` with its
//! session, token task and writer, pointed at a [`SimServer`] on 127.0.0.1:0.

use std::net::SocketAddr;
use std::time::Duration;

use market_streamer::app::{self, AppError, RunOptions, RunSummary};
use market_streamer::schwab::session::SessionHealth;
use market_streamer::schwab::token_manager::TokenStatus;
use market_streamer::schwab::tokens::TokenSet;
use market_streamer::settings::{self, Config};
use market_streamer::sim::SimConfig;
use market_streamer::sim::server::{ReceivedCommand, SimServer, SimServerSettings};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How long a test waits for a state before failing with what it saw.
pub const WAIT: Duration = Duration::from_secs(40);

/// Fast settings: many updates, a heartbeat every 200 ms, a 20 ms tick.
pub fn fast_sim() -> SimServerSettings {
    SimServerSettings {
        market: SimConfig {
            seed: 7,
            updates_per_symbol_per_sec: 5.0,
            heartbeat_interval_ms: 200,
        },
        tick: Duration::from_millis(20),
        ..SimServerSettings::default()
    }
}

/// Starts a fake Schwab on a free loopback port.
pub async fn start_sim(settings: SimServerSettings) -> SimServer {
    market_streamer::schwab::install_crypto_provider();
    SimServer::start(settings, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("start the simulator")
}

/// The variables that point the client at `sim`, plus fast timings and `extra` (which win).
pub fn live_vars(
    sim: &SimServer,
    dir: &std::path::Path,
    database_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    market_streamer::testkit::service::live_vars(
        sim,
        &dir.join("tokens.json").display().to_string(),
        database_url,
        extra,
    )
}

/// A validated config from `vars`.
pub fn config_from(vars: &[(String, String)]) -> Config {
    settings::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("test config is valid")
}

/// A browser login against `sim`, through the real code exchange, into the configured store.
pub async fn login(cfg: &Config, sim: &SimServer) -> TokenSet {
    let login = market_streamer::app::prepare_login(cfg)
        .await
        .expect("prepare the login");
    let redirect = sim.approve(&cfg.schwab.callback_url).expect("approve");
    let tokens = login.complete(&redirect).await.expect("login");
    login.close().await;
    tokens
}

/// The service running against a fake Schwab.
pub struct Running {
    pub sim: SimServer,
    pub cfg: Config,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    pub health: watch::Receiver<SessionHealth>,
    pub tokens: watch::Receiver<TokenStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<RunSummary, AppError>>>,
}

impl Running {
    /// Starts a fake Schwab with `settings`, logs in (token file) and starts the service
    /// writing to a SQLite file in a temporary folder.
    pub async fn start(settings: SimServerSettings, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("market.db").display());
        Self::start_with_database(settings, extra, dir, url, None).await
    }

    /// Like [`start`](Self::start) with a given database and optional record file.
    pub async fn start_with_database(
        settings: SimServerSettings,
        extra: &[(&str, &str)],
        dir: tempfile::TempDir,
        database_url: String,
        record: Option<std::path::PathBuf>,
    ) -> Self {
        let sim = start_sim(settings).await;
        let cfg = config_from(&live_vars(&sim, dir.path(), &database_url, extra));
        login(&cfg, &sim).await;
        let (health_tx, health) = watch::channel(SessionHealth::starting());
        let (token_tx, tokens) = watch::channel(TokenStatus::starting());
        let (stop, stop_rx) = oneshot::channel::<()>();
        let run_cfg = cfg.clone();
        let task = tokio::spawn(async move {
            app::run(
                &run_cfg,
                RunOptions {
                    record,
                    health: Some(health_tx),
                    token_status: Some(token_tx),
                    ..RunOptions::default()
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        Self {
            sim,
            cfg,
            database_url,
            dir,
            health,
            tokens,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits until `pred` holds for the session health; fails after [`WAIT`] with the last one.
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&SessionHealth) -> bool,
    ) -> SessionHealth {
        let result = tokio::time::timeout(WAIT, self.health.wait_for(|h| pred(h)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|h| h.clone());
        match result {
            Some(h) => h,
            None => panic!(
                "timed out waiting for {what}; last health: {:?}; commands: {:#?}",
                *self.health.borrow(),
                self.sim.received()
            ),
        }
    }

    /// Waits until the session has reached the streaming state `n` times in all.
    pub async fn wait_streamed(&mut self, n: u64) -> SessionHealth {
        self.wait_for(&format!("streaming session #{n}"), |h| {
            h.sessions_streamed >= n
                && h.state == market_streamer::schwab::session::SessionState::Streaming
        })
        .await
    }

    /// Successful LOGIN commands, in order.
    pub fn accepted_logins(&self) -> Vec<ReceivedCommand> {
        self.sim
            .received()
            .into_iter()
            .filter(|c| c.command == "LOGIN" && c.response_code == 0)
            .collect()
    }

    /// Stops the service (as SIGINT would) and returns its summary.
    pub async fn stop(&mut self) -> RunSummary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("stops in time")
            .expect("task")
            .expect("run succeeded")
    }

    /// `stream_gaps` rows as (reason, gap_start, gap_end), oldest first.
    pub async fn gaps(&self) -> Vec<(String, String, String)> {
        let pool = sqlx::SqlitePool::connect(&self.database_url)
            .await
            .expect("open db");
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT reason, gap_start, gap_end FROM stream_gaps ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("gaps");
        pool.close().await;
        rows
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = sqlx::SqlitePool::connect(&self.database_url)
            .await
            .expect("open db");
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .expect("count");
        pool.close().await;
        n
    }
}
