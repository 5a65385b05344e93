//! A running service for end-to-end tests: the real [`app::run`] (session, token task,
//! writer, health endpoint) against an in-process fake Schwab ([`SimServer`]) on
//! 127.0.0.1:0, logged in through the real code exchange, with its health endpoint on a free
//! loopback port. The simulator stays reachable for its switches (silence, kick, revoke, …)
//! and can be stopped to make the stream stall.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::{self, AppError, RunOptions, RunSummary};
use crate::health::MarketClock;
use crate::schwab::login::LoginError;
use crate::schwab::tokens::TokenStoreError;
use crate::settings::{self as wiring, Config, ConfigError};
use crate::sim::server::{SimServer, SimServerSettings};

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
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<RunSummary, AppError>>>,
    _dir: tempfile::TempDir,
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
        crate::schwab::install_crypto_provider();
        let sim = SimServer::start(settings, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let dir = tempfile::Builder::new()
            .prefix("test-service-")
            .tempdir()
            .map_err(TestServiceError::TempDir)?;
        let token_file = dir.path().join("tokens.json").display().to_string();
        let vars = live_vars(&sim, &token_file, database_url, extra);
        let cfg = wiring::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })?;
        login(&cfg, &sim).await?;
        if let Some(age) = options.login_age {
            age_login(&cfg, age).await?;
        }

        let (addr_tx, mut addr_rx) = watch::channel(None);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let run_cfg = cfg.clone();
        let mut task = tokio::spawn(async move {
            app::run(
                &run_cfg,
                RunOptions {
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
        let addr = tokio::select! {
            r = tokio::time::timeout(LISTEN_WAIT, addr_rx.wait_for(Option::is_some)) => match r {
                Ok(Ok(addr)) => *addr,
                _ => None,
            },
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
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        })
    }

    /// The fake Schwab, for its switches (`None` once [`stop_simulator`](Self::stop_simulator) ran).
    pub fn sim(&self) -> Option<&SimServer> {
        self.sim.as_ref()
    }

    /// Stops the fake Schwab: its sockets drop and new connections are refused, so the
    /// stream stays silent while the service keeps trying to reconnect.
    pub fn stop_simulator(&mut self) {
        self.sim = None;
    }

    /// A new browser login against the fake Schwab (after `revoke_refresh_tokens`).
    pub async fn login_again(&self) -> Result<(), TestServiceError> {
        match &self.sim {
            Some(sim) => login(&self.cfg, sim).await,
            None => Err(TestServiceError::Approve(
                "the simulator was stopped".into(),
            )),
        }
    }

    /// Stops the service as SIGINT would and returns how the run ended (`None` if it was
    /// already stopped or its task failed).
    pub async fn stop(&mut self) -> Option<Result<RunSummary, AppError>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take()?;
        task.await.ok()
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A browser login against `sim`, through the real code exchange, into the configured store.
async fn login(cfg: &Config, sim: &SimServer) -> Result<(), TestServiceError> {
    let login = crate::app::prepare_login(cfg).await?;
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
    let store = crate::app::open_token_store(cfg).await?;
    let id = cfg.schwab.client_id.clone().unwrap_or_default();
    let stored = store.load(&id).await?;
    if let Some(mut tokens) = stored {
        tokens.refresh_issued_at = chrono::Utc::now() - age;
        store.save(&tokens).await?;
    }
    store.close().await;
    Ok(())
}

/// The variables that point the service at the fake Schwab `sim`: fast reconnect timings, the
/// spool off, the health endpoint on `127.0.0.1:0` (tests run side by side), plus `extra`
/// (which win).
pub fn live_vars(
    sim: &SimServer,
    token_file: &str,
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
        ("TOKEN_FILE", token_file.to_string()),
        ("SYMBOLS", "AAPL,MSFT".into()),
        ("OPTION_SYMBOLS", "AAPL  271217C00250000".into()),
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
