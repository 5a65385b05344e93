//! The benchmark binary (`cargo run --release -p bench`): runs every section on a throwaway
//! PostgreSQL cluster, prints the report and writes BENCHMARKS.md. Errors end here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use testkit::alloc::CountingAllocator;

/// The system allocator; the hot-path section counts its allocations with it (off otherwise:
/// one relaxed atomic load per allocation).
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Measure market-streamer's throughput, latency and footprint on a throwaway PostgreSQL
/// cluster and write BENCHMARKS.md (needs the PostgreSQL server binaries, like the tests, and
/// the `market-streamer` binary built next to this one). Build with --release for meaningful
/// figures: `cargo build --release && cargo run --release -p bench`.
#[derive(Parser)]
#[command(name = "bench", version, about)]
struct Cli {
    /// Small sizes (about a minute): checks that everything works; figures are not
    /// representative and BENCHMARKS.md is only written with --output.
    #[arg(long)]
    quick: bool,
    /// Where to write the report [default: BENCHMARKS.md, or nowhere with --quick].
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
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
    let Cli { quick, output } = Cli::parse();
    market_streamer::schwab::install_crypto_provider();
    // Quiet by default: the service's info logs and sqlx's slow-statement warnings (a bulk
    // COPY is slow by design) would drown the progress lines.
    init_logging(&std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,sqlx=error".into()));
    if cfg!(debug_assertions) && !quick {
        eprintln!(
            "warning: this is a debug build; its figures are not representative. Use `cargo run --release -p bench`."
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = bench::BenchOptions {
        quick,
        ..bench::BenchOptions::default()
    };
    let report = runtime.block_on(bench::run(&options))?;
    println!("{}", report.markdown());
    let output = output.or_else(|| (!quick).then(|| PathBuf::from("BENCHMARKS.md")));
    if let Some(path) = output {
        report.write_markdown(&path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
