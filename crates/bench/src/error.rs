//! Why a benchmark run stopped. Each message says what to check.

use market_streamer::app::AppError;
use market_streamer::db::SinkError;
use market_streamer::settings::ConfigError;
use market_streamer::writer::WriterError;
use schwab_sim::SimError;
use testkit::TestkitError;

/// A benchmark run failed (a missed target is not an error: it is reported in the table).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start the throwaway PostgreSQL server for the benchmark: {0}")]
    Postgres(#[from] TestkitError),
    #[error(
        "benchmark database step failed ({context}): {source}; see the server log of the throwaway cluster"
    )]
    Sql {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the simulator refused the benchmark's subscription: {0}")]
    Simulator(#[from] SimError),
    #[error("benchmark settings are invalid (this is a bug): {0}")]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a benchmark task crashed ({0}); this is a bug, please report it with the output")]
    Task(#[from] tokio::task::JoinError),
    #[error("footprint run: {0}")]
    Footprint(String),
    #[error(
        "benchmark self-check failed: {0}; the figures of this run would be wrong, so none are reported"
    )]
    Check(String),
}

impl BenchError {
    pub(crate) fn sql(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        Self::Sql {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
