//! Test and benchmark helpers.
//!
//! [`TestPostgres`] starts a throwaway PostgreSQL cluster (fresh `initdb` in a
//! temporary directory, random local port) and tears it down on drop.

pub mod postgres;

pub use postgres::{PgOptions, TestPostgres, TestkitError};
