//! Simulated market: a deterministic generator of Charles Schwab Streamer server frames.
//!
//! [`MarketSimulator`] turns subscription commands (SUBS / ADD / UNSUBS / VIEW on
//! `LEVELONE_EQUITIES`, `LEVELONE_OPTIONS` and `CHART_EQUITY`) and caller-supplied simulated
//! time into the exact JSON text the real streamer sends: LEVELONE snapshots then deltas with
//! string field keys, CHART_EQUITY candles in the real (not the documented) field order, and
//! `notify` heartbeats. It does no I/O and has no clock of its own.
//!
//! Files: `config` (settings, update clock), `walk` (equity price model), `option_model` and
//! `black_scholes` (options), `candles` (1-minute bars from the trades), the field tables in
//! `equity_fields` and `option_fields`, `frames` and `json` (wire text), `simulator`,
//! `commands` and `event_loop` (the simulator itself).

mod account_activity;
mod black_scholes;
mod books;
mod candles;
mod commands;
mod config;
mod equity_fields;
mod error;
mod event_loop;
mod field_value;
mod forex_fields;
mod frames;
mod futures;
mod futures_fields;
mod futures_option_fields;
mod futures_reference;
mod instruments;
mod json;
mod keys;
mod market_time;
mod option_fields;
mod option_model;
mod option_symbol;
mod reference;
mod schedule;
mod screeners;
mod seeding;
pub mod server;
mod simulator;
mod subscription;
mod tick_instruments;
mod tick_walk;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_services;

pub use config::SimConfig;
pub use error::SimError;
pub use simulator::MarketSimulator;
