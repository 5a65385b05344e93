//! Session VWAP on bars: `Σ(typical price × volume) / Σ volume` over the bars of the current
//! New York trading day, typical price = `(high + low + close) / 3` (TA-Lib's `VWAP`).
//!
//! TA-Lib's VWAP stream has no notion of a session (its batch function is meant to be called
//! on one session's slice). A new session therefore starts a fresh stream, opened on a
//! zero-volume bar: that adds exactly `0` to both sums, so the stream is bit-for-bit in the
//! state of an empty session, and opening it allocates nothing. TA-Lib answers 0 while no
//! volume has traded; we answer NULL instead.

use ta_lib::{RetCode, VwapStream};

use super::bars::Bar;
use super::talib::core;

/// VWAP of one symbol's current session.
#[derive(Debug, Clone)]
pub struct SessionVwap {
    stream: Option<VwapStream>,
    session: Option<i32>,
    /// Volume of the session's committed bars.
    volume: f64,
}

impl SessionVwap {
    /// No session yet.
    pub fn new() -> Self {
        Self {
            stream: None,
            session: None,
            volume: 0.0,
        }
    }

    /// Starts a new session's stream when `bar` belongs to another session than the last one.
    fn sync_session(&mut self, bar: &Bar) {
        if self.session == Some(bar.session) {
            return;
        }
        let c = [bar.close];
        self.stream = match core().vwap_open(&c, &c, &c, &[0.0]) {
            Ok((stream, _)) => Some(stream),
            Err(code) => {
                tracing::warn!(error = %code, "TA-Lib refused to start a VWAP session; VWAP is NULL until the next one");
                None
            }
        };
        self.session = Some(bar.session);
        self.volume = 0.0;
    }

    /// Commits a closed bar.
    pub fn commit(&mut self, bar: &Bar) {
        self.sync_session(bar);
        if let Some(stream) = &mut self.stream {
            match stream.update(bar.high, bar.low, bar.close, bar.volume) {
                Ok(_) => self.volume += bar.volume,
                Err(code) => self.fail(code),
            }
        }
    }

    /// The VWAP if the open `bar` closed as it stands; NULL while the session has no volume.
    /// Starting a new session here is not a change of committed state: every bar of the
    /// previous session has closed before a bar of the next one exists.
    pub fn provisional(&mut self, bar: &Bar) -> Option<f64> {
        self.sync_session(bar);
        if self.volume + bar.volume <= 0.0 {
            return None;
        }
        self.stream
            .as_ref()?
            .peek(bar.high, bar.low, bar.close, bar.volume)
            .ok()
    }

    fn fail(&mut self, code: RetCode) {
        tracing::warn!(error = %code, "TA-Lib refused a VWAP bar; VWAP is NULL until the next session");
        self.stream = None;
    }
}

impl Default for SessionVwap {
    fn default() -> Self {
        Self::new()
    }
}
