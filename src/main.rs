//! The `market-streamer` binary: parses the command line, loads `.env` and the config,
//! sets up logging, and runs a command. Errors end here, printed with what to do next.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use market_streamer::schwab::login::LoginError;
use market_streamer::{app, schwab, settings, shutdown};

/// Streams Schwab market data into PostgreSQL/Supabase or SQLite. All settings come from the
/// environment or a `.env` file in the working directory (see README.md).
#[derive(Parser)]
#[command(name = "market-streamer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Stream until SIGINT/SIGTERM, then drain the buffer (the default command).
    Run {
        /// Also append every raw server frame to this JSON Lines file (readable by `replay`).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
    },
    /// One-time browser authorisation: prints a URL to open, takes the redirect URL you paste
    /// back, and saves the tokens in the token store (TOKEN_STORE). Works over SSH.
    Login {
        /// The redirect URL, instead of pasting it when asked.
        #[arg(long, value_name = "URL")]
        redirect_url: Option<String>,
    },
    /// Serve a Schwab-compatible fake (OAuth, userPreference, streamer WebSocket) until
    /// SIGINT/SIGTERM, for trying the real client without a Schwab account.
    Simulate {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8765")]
        listen: std::net::SocketAddr,
    },
    /// Feed a JSON Lines file of recorded server frames through the pipeline into DATABASE_URL.
    Replay {
        /// One server frame per line.
        file: PathBuf,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Ask a running service's GET /health (the container's HEALTHCHECK): prints OK, WARNING,
    /// CRITICAL or UNKNOWN with the reasons and exits 0, 1, 2 or 3. Reads no settings.
    Probe {
        /// The service's health endpoint (plain http; `/health` is added).
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Seconds the answer may take.
        #[arg(long, value_name = "SECS", default_value_t = 5.0)]
        timeout: f64,
    },
}

/// Warns about each variable of `.env` that no part of market-streamer reads but that looks
/// like one of its settings (a typo would otherwise silently leave the default in place).
fn warn_about_unknown_variables(path: &std::path::Path) {
    match streamer_config::unknown_dotenv_variables(path) {
        Ok(unknown) => {
            for variable in unknown {
                tracing::warn!(path = %path.display(), "{variable}");
            }
        }
        Err(e) => tracing::warn!("{e}"),
    }
}

fn main() -> ExitCode {
    if let Ok(Cli {
        command: Some(Command::Probe { url, timeout }),
    }) = Cli::try_parse()
    {
        // Needs no settings, no runtime and no logging: one GET, one line, an exit code.
        let timeout = std::time::Duration::try_from_secs_f64(timeout)
            .unwrap_or(std::time::Duration::from_secs(5));
        let result = market_streamer::health::probe::probe(&url, timeout);
        println!("{}", result.text);
        return ExitCode::from(result.exit_code);
    }
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    schwab::install_crypto_provider();
    let dotenv = streamer_config::load_dotenv().map_err(anyhow::Error::msg)?;
    let cfg = settings::from_env()?;
    init_logging(&cfg.logging.rust_log);
    if let Some(path) = dotenv {
        tracing::info!(path = %path.display(), "loaded settings from .env");
        warn_about_unknown_variables(&path);
    }
    tracing::debug!(config = ?cfg, "configuration");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command.unwrap_or(Command::Run { record: None }) {
            Command::Run { record } => {
                let options = app::RunOptions {
                    record,
                    ..app::RunOptions::default()
                };
                app::run(&cfg, options, shutdown::signal()).await?;
            }
            Command::Login { redirect_url } => login(&cfg, redirect_url).await?,
            Command::Simulate { listen } => {
                let server = app::start_simulator(&cfg, listen).await?;
                // Handlers first: a Ctrl-C right after the line below must stop it gracefully.
                let stop = shutdown::signal();
                println!("Schwab simulator listening on http://{}", server.addr());
                println!("Point market-streamer at it (in another terminal) with:");
                println!(
                    "  SCHWAB_MODE=live SCHWAB_API_BASE={} SCHWAB_AUTH_BASE={} SCHWAB_CLIENT_ID={} SCHWAB_CLIENT_SECRET={}",
                    server.api_base(),
                    server.auth_base(),
                    server.client_id(),
                    server.client_secret()
                );
                println!(
                    "then run `market-streamer login` (the simulator approves at once) and `market-streamer run`. Ctrl-C stops it."
                );
                stop.await;
                drop(server);
            }
            Command::Replay { file } => {
                let summary = app::replay(&cfg, &file).await?;
                println!("{summary}");
            }
            Command::Probe { .. } => unreachable!("handled in main"),
            Command::Migrate => {
                app::migrate(&cfg).await?;
                println!("migrations applied to {}", cfg.database.url.redacted());
            }
        }
        Ok(())
    })
}

/// `market-streamer login`: print the URL, read the pasted redirect URL, save the tokens.
async fn login(cfg: &settings::Config, redirect_url: Option<String>) -> anyhow::Result<()> {
    let login = app::prepare_login(cfg).await?;
    println!(
        "1. Open this URL in a browser (on any computer) and sign in with your Schwab brokerage login"
    );
    println!("   (not the developer-portal login), select the accounts and approve:\n");
    println!("   {}\n", login.authorize_url());
    println!(
        "2. The browser is then sent to {}?code=... The page may not load: that is expected.",
        login.callback_url()
    );
    println!(
        "   Copy the whole address from the address bar and paste it here within 30 seconds, then press Enter:"
    );
    let pasted = match redirect_url {
        Some(url) => url,
        None => tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line),
            }
        })
        .await?
        .ok_or(LoginError::NoInput)?,
    };
    let tokens = login.complete(&pasted).await;
    login.close().await;
    let tokens = tokens?;
    println!(
        "Saved the tokens to the {}. The refresh token works until {} (7 days after this login):",
        login.store_description(),
        tokens.refresh_expires_at().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "run `market-streamer login` again before then. A running market-streamer picks the new tokens up by itself."
    );
    Ok(())
}

/// Crates that log frame, request or statement contents at debug/trace level (a LOGIN frame
/// carries the access token, a token-table statement its parameters): capped at info
/// whatever RUST_LOG says, so no token or password reaches a log.
const CAPPED_TARGETS: [&str; 9] = [
    "tungstenite",
    "tokio_tungstenite",
    "reqwest",
    "hyper",
    "hyper_util",
    "tokio_postgres",
    "postgres_protocol",
    "sqlx",
    "rustls",
];

fn init_logging(filter: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in CAPPED_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
