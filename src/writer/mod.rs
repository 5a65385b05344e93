//! The writer: one task owns the row buffer and commits it to a [`Sink`](crate::db::Sink).
//!
//! - Flushes when `BATCH_SIZE` rows are buffered or the oldest buffered row is
//!   `BATCH_INTERVAL` old, whichever comes first; drains everything when its input closes.
//! - One write in flight at a time; rows that arrive meanwhile keep collecting and go out
//!   together in the next write (group commit), so `BATCH_SIZE=1` keeps up under load.
//! - Transient errors keep the batch and retry it with capped backoff; a database that
//!   refuses writes (read-only, disk full) keeps every row in the spool and is retried
//!   slowly; rows the database rejects are isolated and quarantined ([`isolate`]); a
//!   configuration or schema error spools what is in memory and stops the writer.
//! - The buffer is bounded by `BUFFER_MAX_ROWS`; what happens when it is full is set by
//!   [`OverflowPolicy`]: live sources drop the oldest row (counted in `rows_dropped`),
//!   finite sources (replay) wait.

pub mod isolate;
mod task;

pub use task::{
    OverflowPolicy, SpoolSettings, WriterError, WriterHandle, WriterReport, WriterSettings,
    spawn_writer,
};

#[cfg(test)]
mod tests;
