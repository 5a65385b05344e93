//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod sim;

use std::path::PathBuf;

use market_streamer::settings::{self, Config};

/// Path of a file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

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
pub fn start_postgres() -> market_streamer::testkit::TestPostgres {
    match market_streamer::testkit::TestPostgres::start() {
        Ok(pg) => pg,
        Err(e) => panic!("cannot start the test PostgreSQL server: {e}"),
    }
}
