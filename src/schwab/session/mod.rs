//! The streamer session: request building ([`protocol`]), one connection's life
//! ([`connection`]), the reconnect loop with gap recording ([`supervisor`], [`gaps`]), and
//! `--record` ([`recorder`]).

pub mod changes;
pub mod connection;
pub mod gaps;
pub mod protocol;
pub mod recorder;
pub mod subscriptions;
pub mod supervisor;

pub use connection::CloseReason;
pub use supervisor::{SessionHealth, SessionState, SupervisorSettings, run_session};
