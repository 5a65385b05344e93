//! What each command does, wired from the parts: open the database, start the writer,
//! run a source, drain, and report. The binary maps these to exit codes.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::counters::PipelineStats;
use crate::db::stream_gaps::spawn_gap_recorder;
use crate::db::warm_start;
use crate::db::{Database, SinkError};
use crate::health::live::LivePage;
use crate::health::metrics::Metrics;
use crate::health::server::{HealthServer, HealthServerError};
use crate::health::{Health, HealthSources, MarketClock};
use crate::indicators::warm_start::{WarmStart, WarmSymbols};
use crate::indicators::{BadPeriods, IndicatorEngine};
use crate::pipeline::{FrameProcessor, Pipeline};
use crate::rows::Table;
use crate::schwab::login::{Login, LoginError};
use crate::schwab::replay::{ReplayCounts, ReplayError, replay_file};
use crate::schwab::rest::{RestError, SchwabRest};
use crate::schwab::session::recorder::{FrameRecorder, RecordError};
use crate::schwab::session::supervisor::{SessionOutput, SessionParts};
use crate::schwab::session::{CloseReason, SessionHealth, run_session};
use crate::schwab::token_manager::{TokenStatus, spawn_token_manager};
use crate::schwab::tokens::{TokenStore, TokenStoreError, TokenStoreKind};
use crate::schwab::wire::Service;
use crate::settings::{self, Config};
use crate::writer::{OverflowPolicy, WriterError, WriterReport, spawn_writer};
use schwab_sim::server::SimServer;
use streamer_config::SchwabMode;

/// How long startup waits for an unreachable database before giving up.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(60);
/// `run` at startup: after `CONNECT_GIVE_UP`, how often an unreachable database is tried
/// again (one-shot commands give up instead).
const UNREACHABLE_RETRY: Duration = Duration::from_secs(30);

/// How `run` waits for a database that is unreachable at startup: attempts with a growing
/// pause for `connect_for` (default 60 s), then one more every `retry` (default 30 s) until
/// it answers or the service is stopped. Tests shorten both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseWait {
    pub connect_for: Duration,
    pub retry: Duration,
}

impl Default for DatabaseWait {
    fn default() -> Self {
        Self {
            connect_for: CONNECT_GIVE_UP,
            retry: UNREACHABLE_RETRY,
        }
    }
}

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Database(#[from] SinkError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("the writer task crashed ({0}); this is a bug, please report it with the log")]
    WriterCrashed(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Indicators(#[from] BadPeriods),
    #[error(transparent)]
    Tokens(#[from] TokenStoreError),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the in-process Schwab simulator could not start: {0}")]
    Simulator(String),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    HealthEndpoint(#[from] HealthServerError),
}

/// Connects to `DATABASE_URL` (waiting up to a minute for it to come up) and migrates it.
pub async fn open_database(cfg: &Config) -> Result<Database, AppError> {
    open_database_with(cfg, Arc::default()).await
}

/// [`open_database`], counting what the Realtime live cadence sends in `stats`.
pub async fn open_database_with(
    cfg: &Config,
    stats: Arc<PipelineStats>,
) -> Result<Database, AppError> {
    open_database_within(cfg, stats, CONNECT_GIVE_UP).await
}

/// [`open_database_with`], giving up on an unreachable database after `connect_for`.
async fn open_database_within(
    cfg: &Config,
    stats: Arc<PipelineStats>,
    connect_for: Duration,
) -> Result<Database, AppError> {
    let db = Database::connect_with_retry(&settings::database(cfg), connect_for).await?;
    // A database that refuses writes (read-only mode, disk full) with migrations pending:
    // say so and keep trying; it is not a reason to exit (a restart would change nothing).
    let (first, cap) = crate::db::error::REFUSED_RETRY;
    let mut backoff = crate::backoff::Backoff::new(first, cap);
    loop {
        match db.migrate().await {
            Ok(_) => break,
            Err(e) if e.kind == crate::db::ErrorKind::Refused => {
                let wait = backoff.next_delay();
                tracing::error!(error = %e, retry_in = ?wait, "migrations are pending but the database refuses writes; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    match db.prepare_realtime_with(cfg.realtime.mode, stats).await {
        Ok(()) => {}
        // Realtime wiring is set up again at the next start; streaming does not wait for it.
        Err(e) if e.kind == crate::db::ErrorKind::Refused => {
            tracing::warn!(error = %e, "Realtime setup skipped: the database refuses writes");
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(database = %cfg.database.url.redacted(), "database ready (migrations applied)");
    Ok(db)
}

/// `market-streamer migrate`.
pub async fn migrate(cfg: &Config) -> Result<(), AppError> {
    let db = open_database(cfg).await?;
    db.close().await;
    Ok(())
}

/// The indicator engine for `cfg`, warm-started from the database's latest bars of `symbols`
/// (see [`crate::indicators::warm_start`]). Call after migrations, before streaming.
pub async fn indicator_engine(
    cfg: &Config,
    db: &Database,
    symbols: WarmSymbols<'_>,
) -> Result<IndicatorEngine, AppError> {
    Ok(warm_indicator_engine(cfg, db, symbols).await?.0)
}

/// [`indicator_engine`], also returning the bars it was seeded with (the live page's rings
/// start from them).
pub async fn warm_indicator_engine(
    cfg: &Config,
    db: &Database,
    symbols: WarmSymbols<'_>,
) -> Result<(IndicatorEngine, WarmStart), AppError> {
    let indicators = settings::indicators(cfg);
    let mut engine = IndicatorEngine::new(indicators)?;
    let started = std::time::Instant::now();
    let warm = warm_start::load(db, &indicators, symbols).await?;
    warm.apply(&mut engine);
    if indicators.warm_start_bars > 0 {
        tracing::info!(
            symbols = warm.symbols.len() + warm.futures.len(),
            bars = warm.bar_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "indicators warm-started from equity_data and futures_data"
        );
    }
    Ok((engine, warm))
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub counts: ReplayCounts,
    pub frames: u64,
    pub updates: u64,
    pub skipped_items: u64,
    /// Items refused by the sanity limits (see `market::sanity`).
    pub items_refused: u64,
    pub writer: WriterReport,
    pub equity_rows: u64,
    pub option_rows: u64,
    pub bar_rows: u64,
    /// Rows committed per table, every table (in [`Table::ALL`] order).
    pub rows_by_table: Vec<(&'static str, u64)>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replay done: {} lines, {} frames, {} updates, {} rows written ({}), {} lines skipped as malformed, {} lines over MAX_FRAME_BYTES skipped, {} items skipped, {} items refused (bad key or implausible time)",
            self.counts.lines,
            self.frames,
            self.updates,
            self.writer.rows_written,
            self.rows_by_table
                .iter()
                .filter(|(name, n)| *n > 0
                    || matches!(*name, "equity_data" | "option_data" | "equity_bars"))
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.counts.malformed_lines,
            self.counts.oversized_lines,
            self.skipped_items,
            self.items_refused,
        )
    }
}

/// `market-streamer replay FILE`: returns once every row is committed.
pub async fn replay(cfg: &Config, path: &Path) -> Result<ReplaySummary, AppError> {
    let stats = Arc::new(PipelineStats::default());
    let db = Arc::new(open_database_with(cfg, stats.clone()).await?);
    let engine = indicator_engine(cfg, &db, WarmSymbols::AllInDatabase).await?;
    let writer = spawn_writer(
        db.clone(),
        settings::writer(cfg, OverflowPolicy::Backpressure),
        stats.clone(),
    );
    let mut pipeline = Pipeline::new(
        // No subscriptions are known ahead of a recording: every key is accepted.
        FrameProcessor::new(stats.clone(), engine)
            .with_books(settings::books(cfg))
            .with_clock_tolerance(cfg.schwab.clock_skew_tolerance),
        writer.tx,
    );
    let read = replay_file(path, &mut pipeline, cfg.schwab.max_frame_bytes).await;
    // Book snapshots still waiting for their slot are written; then the writer drains and
    // ends once its last sender (the pipeline's) is gone.
    pipeline.finish().await;
    let written = writer.task.await?;
    db.close().await;
    // A writer error explains a read that stopped early, so it comes first.
    let report = written?;
    let counts = read?;
    Ok(ReplaySummary {
        counts,
        frames: PipelineStats::get(&stats.frames),
        updates: PipelineStats::get(&stats.updates),
        skipped_items: PipelineStats::get(&stats.skipped_items),
        items_refused: stats.items_refused.iter().map(PipelineStats::get).sum(),
        writer: report,
        equity_rows: stats.table_rows(Table::EquityData),
        option_rows: stats.table_rows(Table::OptionData),
        bar_rows: stats.table_rows(Table::EquityBars),
        rows_by_table: Table::ALL.map(|t| (t.name(), stats.table_rows(t))).to_vec(),
    })
}

/// What a streaming run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub updates: u64,
    /// LEVELONE updates received, by service (each is one row).
    pub equity_updates: u64,
    pub option_updates: u64,
    /// Stream items refused by the sanity limits (see `market::sanity`).
    pub items_refused: u64,
    pub writer: WriterReport,
    /// Stream items ignored because their service did not subscribe their key.
    pub items_unsubscribed: u64,
    /// Stream items whose times were clamped to the receive time (`CLOCK_SKEW_TOLERANCE`).
    pub times_clamped: u64,
    /// Symbols with merged quote state, and with indicator state, when the stream ended
    /// (only subscribed keys have any).
    pub merged_symbols: usize,
    pub indicator_symbols: usize,
    /// Connections opened to the streamer.
    pub connects: u64,
    /// `stream_gaps` rows written.
    pub gaps_recorded: u64,
}

/// Options of `market-streamer run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--record FILE`: append every raw server frame to this JSON Lines file.
    pub record: Option<std::path::PathBuf>,
    /// Receives the session health (for tests and the future /health endpoint).
    pub health: Option<tokio::sync::watch::Sender<SessionHealth>>,
    /// Receives the token status (for tests and the future /health endpoint).
    pub token_status: Option<tokio::sync::watch::Sender<TokenStatus>>,
    /// Receives the address the health endpoint listens on (with `HEALTH_ADDR=…:0`, the
    /// port picked), once it listens.
    pub health_addr: Option<tokio::sync::watch::Sender<Option<std::net::SocketAddr>>>,
    /// The instant the health endpoint judges market hours at (tests pin it).
    pub market_clock: MarketClock,
    /// How an unreachable database is waited for at startup.
    pub database_wait: DatabaseWait,
}

/// The zero-configuration set-up: the Schwab simulator in process on loopback, a browser
/// login done against it, and `cfg` pointed at it (token file in a temporary folder).
struct InProcessSchwab {
    server: SimServer,
    _token_dir: tempfile::TempDir,
}

async fn start_in_process_schwab(cfg: &mut Config) -> Result<InProcessSchwab, AppError> {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = SimServer::start(settings::simulator(cfg), loopback)
        .await
        .map_err(|e| AppError::Simulator(e.to_string()))?;
    let token_dir = tempfile::Builder::new()
        .prefix("market-streamer-sim-")
        .tempdir()
        .map_err(|e| AppError::Simulator(format!("cannot create a temporary folder: {e}")))?;
    let s = &mut cfg.schwab;
    s.api_base = server.api_base();
    s.auth_base = server.auth_base();
    s.client_id = Some(server.client_id().to_string());
    s.client_secret = Some(crate::schwab::Secret::new(server.client_secret()));
    s.token_store = TokenStoreKind::File;
    s.token_file = token_dir.path().join("schwab-tokens.json");
    let app = settings::oauth_app(cfg).ok_or(LoginError::NoApp)?;
    let rest = SchwabRest::new(settings::rest(cfg))?;
    let login = Login::with(rest, app, TokenStore::file(&cfg.schwab.token_file));
    let redirect = server
        .approve(&cfg.schwab.callback_url)
        .map_err(AppError::Simulator)?;
    login.complete(&redirect).await?;
    Ok(InProcessSchwab {
        server,
        _token_dir: token_dir,
    })
}

/// `market-streamer run`: streams from Schwab (or, with `SCHWAB_MODE=simulated`, from the
/// in-process simulator over the same protocol path) until `shutdown` resolves, then drains
/// the buffer into the database.
pub async fn run(
    cfg: &Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunSummary, AppError> {
    crate::schwab::install_crypto_provider();
    // A taken HEALTH_ADDR fails the start before anything else happens.
    let health_listener = match cfg.health.addr {
        Some(addr) => Some((addr, crate::health::server::bind(addr).await?)),
        None => None,
    };
    let mut recorder = match &options.record {
        Some(path) => Some(FrameRecorder::open(path).await?),
        None => None,
    };
    let mut cfg = cfg.clone();
    let simulator = match cfg.schwab.mode {
        SchwabMode::Simulated => Some(start_in_process_schwab(&mut cfg).await?),
        SchwabMode::Live => None,
    };
    let cfg = &cfg;
    // The stop signal, the published states and the counters come first: the health
    // endpoint reads them from the start, also while the database is being reached.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopper = AbortOnDrop(tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    }));
    let health = options
        .health
        .unwrap_or_else(|| tokio::sync::watch::channel(SessionHealth::starting()).0);
    let token_status = options
        .token_status
        .unwrap_or_else(|| tokio::sync::watch::channel(TokenStatus::starting()).0);
    // The Realtime message budget, for the average month of this (New York) year.
    let budget_at = options.market_clock.market_now(chrono::Utc::now());
    log_realtime_budget(&settings::realtime_budget(cfg, budget_at));
    let metrics = health_listener.as_ref().map(|_| Arc::new(Metrics::new()));
    let stats = Arc::new(PipelineStats {
        histograms: metrics
            .as_ref()
            .map(|m| m.write_histograms())
            .unwrap_or_default(),
        ..PipelineStats::default()
    });
    let health_server = match (health_listener, metrics) {
        (Some((addr, listener)), Some(metrics)) => {
            let sources = HealthSources {
                session: health.subscribe(),
                tokens: token_status.subscribe(),
                stats: stats.clone(),
                started_at: chrono::Utc::now(),
                fixed: settings::health_facts(cfg, budget_at),
            };
            let endpoint = Health {
                sources,
                rules: settings::health_rules(cfg),
                clock: options.market_clock,
            };
            // Equities first, then option contracts, in their configured order.
            let shown = [&cfg.symbols.equities[..], &cfg.symbols.options[..]].concat();
            let live = LivePage::start(&shown, endpoint.clone());
            let server = HealthServer::start(
                listener,
                endpoint,
                metrics,
                Some(live.view.clone()),
                stop_rx.clone(),
            )
            .map_err(|source| HealthServerError::Bind { addr, source })?;
            if let Some(tx) = &options.health_addr {
                let _ = tx.send(Some(server.addr()));
            }
            Some((server, live))
        }
        _ => None,
    };

    health.send_modify(|h| {
        h.detail = format!(
            "connecting to the database ({}) and applying migrations",
            cfg.database.url.redacted()
        );
    });
    // A database that stays unreachable is waited for, never a reason to exit (a restart
    // loop would change nothing); nothing is received from Schwab until it answers, so
    // nothing is lost meanwhile. Configuration errors still stop the start with the fix.
    let wait = options.database_wait;
    let db = loop {
        match open_database_within(cfg, stats.clone(), wait.connect_for).await {
            Ok(db) => break Arc::new(db),
            Err(AppError::Database(e)) if e.kind == crate::db::ErrorKind::Transient => {
                tracing::error!(error = %e, retry_in = ?wait.retry, "the database is still unreachable; waiting for it (Schwab is not connected until it answers)");
                health.send_modify(|h| {
                    h.detail = format!(
                        "waiting for the database ({}): unreachable, retrying every {} s",
                        cfg.database.url.redacted(),
                        wait.retry.as_secs_f64()
                    );
                });
                let mut stop = stop_rx.clone();
                tokio::select! {
                    () = tokio::time::sleep(wait.retry) => {}
                    () = crate::shutdown::stopped(&mut stop) => return Err(AppError::Database(e)),
                }
            }
            Err(e) => return Err(e),
        }
    };
    let (engine, warm) = warm_indicator_engine(
        cfg,
        &db,
        WarmSymbols::These {
            equities: &cfg.symbols.equities,
            futures: &cfg.symbols.futures,
        },
    )
    .await?;
    let live_feed = health_server.as_ref().map(|(_, live)| live.feed.clone());
    if let Some(feed) = &live_feed {
        feed.seed(&warm, settings::indicators(cfg).bar_ms()).await;
    }
    drop(warm);
    let token_store = open_token_store(cfg).await?;
    let rest = Arc::new(SchwabRest::new(settings::rest(cfg))?);
    let app = settings::oauth_app(cfg).ok_or(LoginError::NoApp)?;
    let (tokens, token_task) = spawn_token_manager(
        token_store,
        rest.clone(),
        app,
        settings::tokens(cfg),
        token_status,
    );

    let writer = spawn_writer(
        db.clone(),
        settings::writer(cfg, OverflowPolicy::DropOldest),
        stats.clone(),
    );
    // The candle backfill (BACKFILL=on): its own task, fed by the gap recorder and once now.
    let backfill = start_backfill(cfg, &db, &rest, &tokens, &stats).await;
    let gaps = match &backfill {
        Some(b) => {
            let (tx, stats) = (b.tx.clone(), stats.clone());
            crate::db::stream_gaps::spawn_gap_recorder_with(db.clone(), move |gap| {
                crate::backfill::request(&tx, &stats, crate::backfill::Window::of_gap(gap));
            })
        }
        None => spawn_gap_recorder(db.clone()),
    };
    let status = tokio::spawn(crate::status_line::report_every(
        stats.clone(),
        cfg.logging.status_interval,
    ));
    let retention_settings = settings::retention(cfg);
    if let Err(e) = crate::retention::run_once(&db, &retention_settings, &stats).await {
        tracing::warn!(error = %e, "startup retention pass failed; it runs again every MAINTENANCE_INTERVAL");
    }
    let retention = tokio::spawn(crate::retention::run_every(
        db.clone(),
        retention_settings,
        stats.clone(),
    ));
    let subscriptions = settings::subscriptions(cfg);
    // The watchlist task (WATCHLIST=on): the table's rows applied on the running session.
    let (watch_control, watch_task) = if cfg.watchlist.enabled {
        let (control, task) =
            crate::watchlist::spawn(db.clone(), settings::watchlist(cfg), stop_rx.clone());
        (Some(control), Some(task))
    } else {
        (None, None)
    };
    match &simulator {
        Some(sim) => tracing::info!(
            simulator = %sim.server.addr(),
            symbols = %cfg.symbols.equities.join(","),
            options = cfg.symbols.options.len(),
            "streaming the simulated market through the in-process Schwab simulator (Ctrl-C to stop)"
        ),
        None => tracing::info!(
            api = %cfg.schwab.api_base,
            symbols = %cfg.symbols.equities.join(","),
            options = cfg.symbols.options.len(),
            "streaming from Schwab (Ctrl-C to stop)"
        ),
    }
    let mut pipeline = Pipeline::new(
        FrameProcessor::new(stats.clone(), engine)
            .with_books(settings::books(cfg))
            .with_subscriptions(&subscriptions)
            .with_clock_tolerance(cfg.schwab.clock_skew_tolerance)
            .with_live(live_feed),
        writer.tx.clone(),
    );
    let end = run_session(
        SessionParts {
            tokens,
            rest,
            subscriptions,
            settings: {
                // The silence rule asks the same (possibly pinned) market clock as /health.
                let mut s = settings::supervisor(cfg);
                s.connection.silence.clock = options.market_clock;
                s
            },
            gaps: gaps.tx.clone(),
            health: health.clone(),
            changes: watch_control,
        },
        SessionOutput {
            consumer: &mut pipeline,
            recorder: recorder.as_mut(),
        },
        stop_rx,
    )
    .await;
    drop(stopper);
    if let Some((server, live)) = health_server {
        // It stops with the stop signal; after a writer failure it has shown `down` until here.
        server.finish().await;
        drop(live);
    }
    if let Some(task) = watch_task {
        // It stops with the stop signal (or when the session's channels closed).
        task.abort();
    }
    let merged_symbols = pipeline.processor().state().symbol_count();
    let indicator_symbols = pipeline.processor().indicators().symbol_count();
    // Book snapshots still waiting for their slot go to the writer before it drains.
    pipeline.finish().await;
    drop(writer.tx);
    drop(gaps.tx);
    let written = writer.task.await?;
    // The gap rows are few; give them the same grace as the writer.
    let gaps_recorded = tokio::time::timeout(cfg.writer.shutdown_grace, gaps.task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    status.abort();
    retention.abort();
    if let Some(b) = backfill {
        // A refill cut short is harmless: its rows are idempotent and the gap row stays.
        drop(b.tx);
        b.task.abort();
    }
    // Every TokenHandle is gone with the session, so the token task ends by itself.
    let _ = token_task.await;
    db.close().await;
    drop(simulator);
    let report = written?;
    if end == CloseReason::WriterStopped {
        tracing::error!("the stream stopped because the database writer stopped");
    }
    tracing::info!(
        rows_written = report.rows_written,
        rows_dropped = report.rows_dropped,
        "stopped: every buffered row was written"
    );
    Ok(RunSummary {
        updates: PipelineStats::get(&stats.updates),
        equity_updates: stats.service_updates(Service::LevelOneEquities),
        option_updates: stats.service_updates(Service::LevelOneOptions),
        items_refused: stats.items_refused.iter().map(PipelineStats::get).sum(),
        items_unsubscribed: stats
            .items_unsubscribed
            .iter()
            .map(PipelineStats::get)
            .sum(),
        times_clamped: PipelineStats::get(&stats.times_clamped),
        merged_symbols,
        indicator_symbols,
        writer: report,
        connects: health.borrow().connects,
        gaps_recorded,
    })
}

/// Starts the candle backfill when `BACKFILL=on` and queues the startup window (from each
/// chart symbol's newest stored candle to now). Options and futures are logged once as
/// skipped: Schwab has no price history for them.
async fn start_backfill(
    cfg: &Config,
    db: &Arc<crate::db::Database>,
    rest: &Arc<SchwabRest>,
    tokens: &crate::schwab::token_manager::TokenHandle,
    stats: &Arc<PipelineStats>,
) -> Option<crate::backfill::Backfill> {
    if !cfg.schwab.backfill {
        tracing::info!("candle backfill is off (BACKFILL=off)");
        return None;
    }
    let skipped = crate::backfill::no_history_symbols(cfg);
    if !skipped.is_empty() {
        tracing::info!(symbols = %skipped.join(","), "candle backfill skips options and futures: Schwab keeps no price history for them");
    }
    let symbols: Vec<String> = cfg
        .symbols
        .charts
        .iter()
        .filter(|s| crate::backfill::has_history(s))
        .cloned()
        .collect();
    if symbols.is_empty() {
        return None;
    }
    // Read before streaming starts, so a fresh candle does not hide the hole behind it.
    let startup = crate::backfill::startup_window(db, &symbols).await;
    let backfill = crate::backfill::spawn(crate::backfill::BackfillParts {
        db: db.clone(),
        rest: rest.clone(),
        tokens: tokens.clone(),
        stats: stats.clone(),
        symbols,
        retry_min: std::time::Duration::from_secs(1),
    });
    if let Some(window) = startup {
        crate::backfill::request(&backfill.tx, stats, window);
    }
    Some(backfill)
}

/// The startup line of the Realtime message budget: a warning when few viewers fit.
fn log_realtime_budget(budget: &crate::realtime::Budget) {
    match &budget.warning {
        Some(warning) => tracing::warn!(
            viewers_fit = budget.viewers_fit,
            messages_per_month_per_viewer = budget.messages_per_month_per_viewer,
            "{}; {warning}",
            budget.summary()
        ),
        None => tracing::info!(
            viewers_fit = budget.viewers_fit,
            messages_per_month_per_viewer = budget.messages_per_month_per_viewer,
            "{}",
            budget.summary()
        ),
    }
}

/// Aborts a task when dropped (an early return included).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `market-streamer simulate --listen ADDR`: starts the fake Schwab (it serves until dropped).
pub async fn start_simulator(
    cfg: &Config,
    listen: std::net::SocketAddr,
) -> Result<SimServer, AppError> {
    SimServer::start(settings::simulator(cfg), listen)
        .await
        .map_err(|e| {
            AppError::Simulator(format!(
                "cannot listen on {listen}: {e}; pick a free address with --listen"
            ))
        })
}

/// `market-streamer login`: checks the app credentials and opens the configured token store.
pub async fn prepare_login(cfg: &Config) -> Result<Login, LoginError> {
    Login::prepare(
        settings::oauth_app(cfg),
        settings::rest(cfg),
        open_token_store(cfg),
    )
    .await
}

/// Opens the token store `TOKEN_STORE` chose.
pub async fn open_token_store(cfg: &Config) -> Result<TokenStore, TokenStoreError> {
    crate::db::tokens::open_token_store(
        cfg.schwab.token_store,
        &cfg.schwab.token_file,
        &settings::database(cfg),
    )
    .await
}
