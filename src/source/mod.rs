//! Frame sources: where raw server frames come from before the processor.
//!
//! - [`replay`]: a JSON Lines file of recorded frames (finite, backpressured).
//! - the live streamer session (`crate::schwab::session`), which in the zero-configuration
//!   demo talks to the in-process Schwab simulator over the real protocol.

pub mod replay;

use tokio::sync::mpsc;

use crate::pipeline::{FrameEvents, FrameProcessor};
use crate::rows::Row;

/// Processes one frame and hands its rows to the writer. Returns `Err(())` when the writer
/// has stopped (its error is reported by whoever awaits the writer task).
///
/// When the writer's channel is full this waits: a finite source slows down, a live source
/// stops reading its socket for that moment (the writer empties the channel as fast as it
/// can, so this is short unless the writer is in backpressure mode).
pub async fn forward_frame(
    processor: &mut FrameProcessor,
    text: &str,
    received_ms: i64,
    tx: &mpsc::Sender<Vec<Row>>,
) -> Result<FrameEvents, ()> {
    let mut rows = Vec::new();
    let events = processor.process(text, received_ms, &mut rows);
    if !rows.is_empty() && tx.send(rows).await.is_err() {
        return Err(());
    }
    Ok(events)
}
