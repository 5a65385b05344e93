//! Subscription changes while the session runs (the watchlist): what is asked for, and
//! Schwab's answer for each set of keys. Changes come in on a bounded channel (full: the
//! asking task waits; changes are rare and small); answers go out through the supervisor.

use crate::schwab::wire::Service;

/// Keys of one service to add or remove on the running connection (and on every later one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChange {
    pub service: Service,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// The service's fields, for a service not subscribed yet.
    pub fields: Vec<u32>,
}

/// Schwab's answer to a `SUBS` (every key of the service) or an `ADD` (the added keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysAnswer {
    pub service: Service,
    pub keys: Vec<String>,
    /// `Err((code, message))`: refused (code -1: no answer in time).
    pub result: Result<(), (i64, String)>,
}
