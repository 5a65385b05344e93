//! The integration tests of market-streamer, compiled into one binary: one module per area.
//! The fake Schwab and the throwaway PostgreSQL come from the `testkit` crate.

mod backfill;
mod cli;
mod clock_and_keys;
mod container_healthcheck;
mod exactly_once;
mod fault_injection;
mod fuzz_props;
mod health_endpoints;
mod indicators_db;
mod indicators_no_alloc;
mod live_page;
mod memory_bounds;
mod migrations;
mod poison;
mod postgres_writer;
mod replay;
mod retention_sqlite;
mod schwab_cli;
mod schwab_session;
mod schwab_tokens;
mod secrets_in_logs;
mod services_db;
mod services_stream;
mod simulator_protocol;
mod size_guard;
mod sizing;
mod subscriptions_watch;
mod supabase;
mod watchlist;

/// Path of a file under `tests/fixtures`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
