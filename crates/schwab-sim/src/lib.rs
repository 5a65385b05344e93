//! Simulated market: a deterministic generator of Charles Schwab Streamer server frames.
//!
//! [`MarketSimulator`] turns subscription commands (SUBS / ADD / UNSUBS / VIEW) and
//! caller-supplied simulated time into the exact JSON text the real streamer sends, for every
//! streamer service: LEVELONE_EQUITIES, _OPTIONS, _FUTURES, _FUTURES_OPTIONS and _FOREX
//! (Change delivery: a snapshot with `delayed` / `assetMainType` first, then only the changed
//! fields, string field keys), CHART_EQUITY (the real, not the documented, field order) and
//! CHART_FUTURES (All Sequence bars with `seq`), NYSE_BOOK, NASDAQ_BOOK and OPTIONS_BOOK
//! (Whole, nested levels and market makers), SCREENER_EQUITY and SCREENER_OPTION (Whole,
//! named row fields), ACCT_ACTIVITY (All Sequence order events, and the "Feature not
//! supported" text item), and `notify` heartbeats. It does no I/O and has no clock of its own.
//!
//! Files: `config` (settings, update clock, symbol limit); models: `walk` (equity prices),
//! `tick_walk` (tick-priced futures and forex), `option_model` and `black_scholes` (options),
//! `futures` and `futures_reference` (futures, futures options, contract months),
//! `candles` (1-minute bars from the trades); field tables: `equity_fields`, `option_fields`,
//! `futures_fields`, `futures_option_fields`, `forex_fields`; whole-record services: `books`,
//! `screeners`, `account_activity`; `subscription` and `keys` (services, commands, key
//! formats); `frames` and `json` (wire text); `simulator`, `commands`, `tick_instruments` and
//! `event_loop` (the simulator itself); `server` (the fake Schwab over HTTP and WebSocket).

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
pub use simulator::{HistoryCandle, MarketSimulator};
