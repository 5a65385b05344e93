//! The integration tests of health_check, compiled into one binary: they run the built
//! binary against real PostgreSQL and SQLite and local HTTP servers.

mod cli;
mod common;
mod database;
mod live_service;
mod service;
mod supabase;
