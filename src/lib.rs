//! market-streamer: Schwab Streamer frames in, merged quotes and bars out to a database.
//!
//! Data flows one way (one task owns each piece of mutable state):
//!
//! [`schwab`] session (live socket, or `replay` of recorded frames; parsed once by
//! [`schwab::wire`]) → [`schwab::downstream::FrameConsumer`] seam → [`pipeline`] ([`market`]
//! merge + [`indicators`] → [`rows`]) → bounded channel → [`writer`] task (with the disk
//! [`spool`]) → [`db`] (PostgreSQL/Supabase or SQLite; every SQL statement lives there).
//!
//! Beside the flow: [`health`] (`/health`, `/metrics`) and [`status_line`] read the shared
//! [`counters`]; [`retention`] runs maintenance through [`db`]; [`app`] wires it all, and
//! [`settings`] maps the validated `Config` (the leaf crate `streamer-config`, which imports no
//! component) onto each component's own settings struct.

pub mod app;
pub mod backfill;
pub mod backoff;
pub mod counters;
pub mod db;
pub mod health;
pub mod indicators;
pub mod market;
pub mod pipeline;
pub mod realtime;
pub mod retention;
pub mod rows;
pub mod schwab;
pub mod settings;
pub mod shutdown;
pub mod spool;
pub mod status_line;
pub mod storage_budget;
pub mod watchlist;
pub mod writer;
