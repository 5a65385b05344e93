//! Test and benchmark helpers.
//!
//! [`TestPostgres`] starts a throwaway PostgreSQL cluster (fresh `initdb` in a
//! temporary directory, random local port) and tears it down on drop;
//! [`supabase::prepare`] sets a database up like a Supabase project.

pub mod postgres;
pub mod supabase;

pub use postgres::{PgOptions, TestPostgres, TestkitError};
