//! The seam between Schwab and everything downstream of it.
//!
//! The streamer session (and `replay`, which reads recorded frames) parses each server frame
//! once with [`crate::schwab::wire`], acts on its responses and notices itself, and hands the
//! parsed frame to a [`FrameConsumer`]. The consumer (the pipeline: merge, indicators, rows
//! for the writer) never calls back into the session: data flows one way.

use std::future::Future;

use super::wire::{Frame, FrameError, Service};

/// Downstream has stopped (the database writer ended); the source stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline downstream of the Schwab session has stopped (see the writer's error)")]
pub struct DownstreamStopped;

/// What a frame source hands downstream: every frame, parsed once, in arrival order.
pub trait FrameConsumer: Send {
    /// One server frame received at `received_ms` (ms since the epoch), or why it could not
    /// be parsed (so the consumer can count it). Waits while downstream is full (a bounded
    /// channel to the writer): a live socket then stops being read for that moment, a replay
    /// slows down. `Err` means downstream is gone and the source should stop.
    fn consume(
        &mut self,
        frame: Result<&Frame<'_>, &FrameError>,
        received_ms: i64,
    ) -> impl Future<Output = Result<(), DownstreamStopped>> + Send;

    /// The session is about to subscribe (`added`) or has unsubscribed `keys` of `service`
    /// on the running connection (the watchlist), so the consumer knows which keys to expect.
    /// Sent before the `ADD` goes out, so no data of a new key can come first.
    fn keys_changed(&mut self, service: Service, keys: &[String], added: bool) {
        let _ = (service, keys, added);
    }
}
