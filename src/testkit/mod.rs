//! Test and benchmark helpers.
//!
//! [`TestPostgres`] starts a throwaway PostgreSQL cluster (fresh `initdb` in a
//! temporary directory, random local port) and tears it down on drop;
//! [`supabase::prepare`] sets a database up like a Supabase project;
//! [`service::TestService`] runs the whole service against the fake Schwab.

pub mod postgres;
pub mod service;
pub mod supabase;

pub use postgres::{PgOptions, TestPostgres, TestkitError};
