//! The one fake-Schwab harness: a running service for end-to-end tests. The real
//! [`app::run`] (session, token task, writer, health endpoint) against an in-process fake
//! Schwab ([`SimServer`]) on 127.0.0.1:0, logged in through the real code exchange, with its
//! health endpoint on a free loopback port and the session health and token status watched.
//! The simulator stays reachable for its switches (silence, kick, revoke, …) and can be
//! stopped to make the stream stall. [`fast_sim`], [`start_sim`], [`live_vars`] and [`login`]
//! serve tests that drive the pieces themselves.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use market_streamer::app::{self, AppError, RunOptions, RunSummary};
use market_streamer::health::MarketClock;
use market_streamer::schwab::login::LoginError;
use market_streamer::schwab::session::{SessionHealth, SessionState};
use market_streamer::schwab::token_manager::TokenStatus;
use market_streamer::schwab::tokens::{TokenSet, TokenStoreError};
use market_streamer::settings::{self, Config, ConfigError};
use schwab_sim::SimConfig;
use schwab_sim::server::{ReceivedCommand, SimServer, SimServerSettings};
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
            ..SimConfig::default()
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

/// How long [`TestService::start`] waits for the health endpoint to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(30);

/// Why a test service could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestServiceError {
    #[error("cannot start the Schwab simulator: {0}")]
    Simulator(#[from] std::io::Error),
    #[error("cannot create the temporary folder: {0}")]
    TempDir(std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the login against the simulator failed: {0}")]
    Login(#[from] LoginError),
    #[error("the simulator refused the approval: {0}")]
    Approve(String),
    #[error("the service stopped before its health endpoint listened: {0}")]
    Run(String),
    #[error("the health endpoint did not listen within {0:?}")]
    NotListening(Duration),
    #[error(transparent)]
    TokenStore(#[from] TokenStoreError),
}

/// How the test service starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceOptions {
    /// The instant the health endpoint judges market hours at.
    pub market_clock: MarketClock,
    /// The browser login happened this long ago (so the refresh token's 7 days end
    /// sooner); `None`: just now.
    pub login_age: Option<chrono::Duration>,
}

/// The service, its fake Schwab, and its health endpoint.
pub struct TestService {
    sim: Option<SimServer>,
    /// The validated configuration it runs with.
    pub cfg: Config,
    /// `http://127.0.0.1:PORT` of the health endpoint.
    pub url: String,
    /// The health endpoint's address.
    pub addr: SocketAddr,
    /// The database it writes to.
    pub database_url: String,
    /// The temporary folder holding the token file (and the SQLite file of [`start_sqlite`](Self::start_sqlite)).
    pub dir: tempfile::TempDir,
    /// The session health, as the service publishes it.
    pub health: watch::Receiver<SessionHealth>,
    /// The token status, as the service publishes it.
    pub tokens: watch::Receiver<TokenStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<RunSummary, AppError>>>,
}

impl TestService {
    /// Starts a fake Schwab with `settings`, logs in (token file in a temporary folder) and
    /// starts the service writing to `database_url`, with fast reconnect timings, the spool
    /// off, the health endpoint on `127.0.0.1:0` and `extra` variables (which win).
    pub async fn start(
        settings: SimServerSettings,
        database_url: &str,
        extra: &[(&str, &str)],
        options: ServiceOptions,
    ) -> Result<Self, TestServiceError> {
        let dir = tempfile::Builder::new()
            .prefix("test-service-")
            .tempdir()
            .map_err(TestServiceError::TempDir)?;
        Self::start_in(settings, database_url, extra, options, None, dir).await
    }

    /// Like [`start`](Self::start), also appending every raw server frame to `record` (as
    /// `run --record FILE` does); panics if the service cannot start.
    pub async fn start_recording(
        settings: SimServerSettings,
        database_url: &str,
        extra: &[(&str, &str)],
        record: PathBuf,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = ServiceOptions::default();
        Self::start_in(settings, database_url, extra, options, Some(record), dir)
            .await
            .expect("start the service")
    }

    /// Like [`start`](Self::start), writing to a SQLite file in the temporary folder; panics
    /// if the service cannot start.
    pub async fn start_sqlite(settings: SimServerSettings, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("market.db").display());
        Self::start_in(settings, &url, extra, ServiceOptions::default(), None, dir)
            .await
            .expect("start the service")
    }

    async fn start_in(
        settings: SimServerSettings,
        database_url: &str,
        extra: &[(&str, &str)],
        options: ServiceOptions,
        record: Option<PathBuf>,
        dir: tempfile::TempDir,
    ) -> Result<Self, TestServiceError> {
        market_streamer::schwab::install_crypto_provider();
        let sim = SimServer::start(settings, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let vars = live_vars(&sim, dir.path(), database_url, extra);
        let cfg = settings::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })?;
        try_login(&cfg, &sim).await?;
        if let Some(age) = options.login_age {
            age_login(&cfg, age).await?;
        }

        let (addr_tx, mut addr_rx) = watch::channel(None);
        let (health_tx, health) = watch::channel(SessionHealth::starting());
        let (token_tx, tokens) = watch::channel(TokenStatus::starting());
        let listens = cfg.health.addr.is_some();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let run_cfg = cfg.clone();
        let mut task = tokio::spawn(async move {
            app::run(
                &run_cfg,
                RunOptions {
                    record,
                    health: Some(health_tx),
                    token_status: Some(token_tx),
                    health_addr: Some(addr_tx),
                    market_clock: options.market_clock,
                    ..RunOptions::default()
                },
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        });
        // With HEALTH_ADDR=off there is nothing to wait for.
        let wait = async {
            if listens {
                tokio::time::timeout(LISTEN_WAIT, addr_rx.wait_for(Option::is_some))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .and_then(|addr| *addr)
            } else {
                Some(SocketAddr::from(([127, 0, 0, 1], 0)))
            }
        };
        let addr = tokio::select! {
            addr = wait => addr,
            ended = &mut task => {
                let why = match ended {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(_)) => "it ended without an error".into(),
                    Err(e) => e.to_string(),
                };
                return Err(TestServiceError::Run(why));
            }
        };
        let Some(addr) = addr else {
            task.abort();
            return Err(TestServiceError::NotListening(LISTEN_WAIT));
        };
        Ok(Self {
            sim: Some(sim),
            cfg,
            url: format!("http://{addr}"),
            addr,
            database_url: database_url.to_string(),
            dir,
            health,
            tokens,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The fake Schwab, for its switches; panics once [`stop_simulator`](Self::stop_simulator) ran.
    pub fn sim(&self) -> &SimServer {
        self.sim.as_ref().expect("the simulator was stopped")
    }

    /// Stops the fake Schwab: its sockets drop and new connections are refused, so the
    /// stream stays silent while the service keeps trying to reconnect.
    pub fn stop_simulator(&mut self) {
        self.sim = None;
    }

    /// A new browser login against the fake Schwab (after `revoke_refresh_tokens`).
    pub async fn login_again(&self) -> Result<(), TestServiceError> {
        match &self.sim {
            Some(sim) => try_login(&self.cfg, sim).await,
            None => Err(TestServiceError::Approve(
                "the simulator was stopped".into(),
            )),
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
                self.sim.as_ref().map(SimServer::received)
            ),
        }
    }

    /// Waits until the session has reached the streaming state `n` times in all and every
    /// subscription of that connection was answered (the session streams from the first
    /// acknowledged one).
    pub async fn wait_streamed(&mut self, n: u64) -> SessionHealth {
        self.wait_for(&format!("streaming session #{n}"), |h| {
            h.sessions_streamed >= n
                && h.state == SessionState::Streaming
                && h.subscriptions.iter().all(|s| {
                    s.state != market_streamer::schwab::session::subscriptions::SubState::Pending
                })
        })
        .await
    }

    /// Successful LOGIN commands, in order.
    pub fn accepted_logins(&self) -> Vec<ReceivedCommand> {
        self.sim()
            .received()
            .into_iter()
            .filter(|c| c.command == "LOGIN" && c.response_code == 0)
            .collect()
    }

    /// Stops the service as SIGINT would and returns its summary; panics if it does not stop
    /// within [`WAIT`] or the run failed.
    pub async fn stop(&mut self) -> RunSummary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("stops in time")
            .expect("ran")
            .expect("run succeeded")
    }

    /// `stream_gaps` rows as (reason, gap_start, gap_end), oldest first (SQLite only).
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

    /// Rows in `table` (SQLite only).
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

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// [`login`], reporting failures instead of panicking.
async fn try_login(cfg: &Config, sim: &SimServer) -> Result<(), TestServiceError> {
    let login = market_streamer::app::prepare_login(cfg).await?;
    let redirect = sim
        .approve(&cfg.schwab.callback_url)
        .map_err(TestServiceError::Approve)?;
    let result = login.complete(&redirect).await;
    login.close().await;
    result?;
    Ok(())
}

/// Rewrites the stored tokens as if the browser login happened `age` ago.
async fn age_login(cfg: &Config, age: chrono::Duration) -> Result<(), TestServiceError> {
    let store = market_streamer::app::open_token_store(cfg).await?;
    let id = cfg.schwab.client_id.clone().unwrap_or_default();
    let stored = store.load(&id).await?;
    if let Some(mut tokens) = stored {
        tokens.refresh_issued_at = chrono::Utc::now() - age;
        store.save(&tokens).await?;
    }
    store.close().await;
    Ok(())
}

/// The variables that point the service at the fake Schwab `sim` (token file in `dir`): fast
/// reconnect timings, the spool off, the health endpoint on `127.0.0.1:0` (tests run side by
/// side), plus `extra` (which win).
pub fn live_vars(
    sim: &SimServer,
    dir: &Path,
    database_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("DATABASE_URL", database_url.to_string()),
        ("SCHWAB_MODE", "live".into()),
        ("SCHWAB_API_BASE", sim.api_base()),
        ("SCHWAB_AUTH_BASE", sim.auth_base()),
        ("SCHWAB_CLIENT_ID", sim.client_id().into()),
        ("SCHWAB_CLIENT_SECRET", sim.client_secret().into()),
        ("TOKEN_FILE", dir.join("tokens.json").display().to_string()),
        ("SYMBOLS", "AAPL,MSFT".into()),
        ("OPTION_SYMBOLS", "AAPL  271217C00250000".into()),
        // The services of issue 15 are off unless a test asks for them (`extra`), so each
        // test streams what it is about.
        ("FUTURES_SYMBOLS", String::new()),
        ("FUTURES_OPTION_SYMBOLS", String::new()),
        ("FOREX_SYMBOLS", String::new()),
        ("NASDAQ_BOOK_SYMBOLS", String::new()),
        ("SCREENER_EQUITY_KEYS", String::new()),
        ("SCREENER_OPTION_KEYS", String::new()),
        ("ACCOUNT_ACTIVITY", "off".into()),
        ("STALL_TIMEOUT", "3".into()),
        ("STREAM_RESPONSE_TIMEOUT", "5".into()),
        ("RECONNECT_BACKOFF_MIN", "0.05".into()),
        ("RECONNECT_BACKOFF_MAX", "0.3".into()),
        ("KICKED_BACKOFF", "600".into()),
        ("NEEDS_LOGIN_RETRY", "600".into()),
        ("TOKEN_STORE_POLL", "0.1".into()),
        ("STATUS_INTERVAL", "0".into()),
        ("SHUTDOWN_GRACE", "5".into()),
        ("SPOOL_DIR", "off".into()),
        ("HEALTH_ADDR", "127.0.0.1:0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

/// Starts the service binary `bin` in `dir` with only `vars` (plus `PATH` and `HOME`) in its
/// environment, its output (stdout and stderr) appended to the file `log`: a file, not a pipe,
/// since nobody reads a pipe while a test waits and a full pipe would block the service's
/// logging. Killed when dropped.
pub fn spawn_binary(
    bin: &Path,
    dir: &Path,
    vars: &[(String, String)],
    log: &Path,
) -> std::io::Result<tokio::process::Child> {
    let file = std::fs::File::create(log)?;
    tokio::process::Command::new(bin)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
}

/// [`app::run`] in a task of its own (see [`spawn_run`]).
pub struct Running {
    /// Stops the service (as SIGINT does).
    pub stop: oneshot::Sender<()>,
    pub task: JoinHandle<Result<RunSummary, AppError>>,
    /// The health endpoint's address once it listens (`None` with `HEALTH_ADDR=off`).
    pub addr: watch::Receiver<Option<SocketAddr>>,
}

impl Running {
    /// The health endpoint's address, waited for up to [`WAIT`] (panics after that).
    pub async fn listens(&mut self) -> SocketAddr {
        match tokio::time::timeout(WAIT, self.addr.wait_for(Option::is_some)).await {
            Ok(Ok(addr)) => addr.unwrap_or_else(|| unreachable!("waited for Some")),
            Ok(Err(_)) => panic!("the service ended before its health endpoint listened"),
            Err(_) => panic!("the health endpoint did not listen within {WAIT:?}"),
        }
    }

    /// Stops the service and returns how its run ended.
    pub async fn stop(self) -> Result<RunSummary, AppError> {
        let _ = self.stop.send(());
        self.task.await.expect("the run task joined")
    }
}

/// Starts [`app::run`] for `cfg` with `options` (its `health_addr` is set here) until
/// [`Running::stop`].
pub fn spawn_run(cfg: Config, options: RunOptions) -> Running {
    let (addr_tx, addr) = watch::channel::<Option<SocketAddr>>(None);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app::run(
            &cfg,
            RunOptions {
                health_addr: Some(addr_tx),
                ..options
            },
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
    });
    Running { stop, task, addr }
}
