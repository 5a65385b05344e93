//! The `market-streamer` binary: parses the command line, loads `.env` and the config,
//! sets up logging, and runs a command. Errors end here, printed with what to do next.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use market_streamer::{app, config, shutdown};

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
    Run,
    /// Feed a JSON Lines file of recorded server frames through the pipeline into DATABASE_URL.
    Replay {
        /// One server frame per line.
        file: PathBuf,
    },
    /// Apply the database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
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
    let dotenv = config::load_dotenv().map_err(anyhow::Error::msg)?;
    let cfg = config::Config::from_env()?;
    init_logging(&cfg.rust_log);
    if let Some(path) = dotenv {
        tracing::info!(path = %path.display(), "loaded settings from .env");
    }
    tracing::debug!(config = ?cfg, "configuration");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => {
                app::run_simulated(&cfg, shutdown::signal()).await?;
            }
            Command::Replay { file } => {
                let summary = app::replay(&cfg, &file).await?;
                println!("{summary}");
            }
            Command::Migrate => {
                app::migrate(&cfg).await?;
                println!("migrations applied to {}", cfg.database.redacted());
            }
        }
        Ok(())
    })
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
