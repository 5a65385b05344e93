//! Test and benchmark helpers (a dev-dependency only: nothing here ships in the service).
//!
//! [`TestPostgres`] starts a throwaway PostgreSQL cluster (fresh `initdb` in a
//! temporary directory, random local port) and tears it down on drop; [`pg_client`] connects
//! to it with tokio-postgres for assertions;
//! [`supabase::prepare`] sets a database up like a Supabase project;
//! [`service::TestService`] runs the whole service against the fake Schwab (the one harness
//! for that); [`alloc::CountingAllocator`] counts one thread's allocations.

pub mod alloc;
pub mod pg_client;
pub mod postgres;
pub mod proxy;
pub mod service;
pub mod supabase;

pub use pg_client::{pg_client, pg_i64};
pub use postgres::{PgOptions, TestPostgres, TestkitError};

use market_streamer::settings::{self, Config};

/// A config for `database_url` with defaults otherwise, built through the real validation.
pub fn config_for(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: Vec<(String, String)> = vec![("DATABASE_URL".into(), database_url.into())];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // Tests share a working directory: no spool unless a test asks for its own folder.
    if !extra.iter().any(|(k, _)| *k == "SPOOL_DIR") {
        vars.push(("SPOOL_DIR".into(), "off".into()));
    }
    // Tests run side by side: the health endpoint on a free port unless a test says otherwise.
    if !extra.iter().any(|(k, _)| *k == "HEALTH_ADDR") {
        vars.push(("HEALTH_ADDR".into(), "127.0.0.1:0".into()));
    }
    settings::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("test config is valid")
}

/// Starts a throwaway PostgreSQL cluster (fails with install instructions if binaries are missing).
pub fn start_postgres() -> TestPostgres {
    match TestPostgres::start() {
        Ok(pg) => pg,
        Err(e) => panic!("cannot start the test PostgreSQL server: {e}"),
    }
}
