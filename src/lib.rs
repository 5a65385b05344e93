//! market-streamer: Schwab Streamer frames in, merged quotes and bars out to a database.
//!
//! Data flow (one task owns each piece of mutable state):
//! `source` (simulator / replay / live socket) → [`frame`] parser → [`market`] state
//! (+ [`indicators`] per equity row) → bounded channel → [`batch`] writer task → [`sink`] (PostgreSQL or SQLite).

pub mod app;
pub mod batch;
pub mod config;
pub mod frame;
pub mod health;
pub mod indicators;
pub mod market;
pub mod pipeline;
pub mod retention;
pub mod rows;
pub mod schwab;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod spool;
pub mod stats;
pub mod status;
