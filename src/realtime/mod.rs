//! Supabase Realtime outside the database: the message budget ([`budget`]). The live cadence
//! itself (what is sent, and when) is database work and lives in
//! [`crate::db::postgres::live_cadence`].

pub mod budget;

pub use budget::{Budget, BudgetInput, PlanQuota};
