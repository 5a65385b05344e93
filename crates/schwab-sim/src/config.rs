//! Simulator configuration and the update clock that turns a mean rate into slot-aligned event times.

use fastrand::Rng;

/// Settings of a [`MarketSimulator`](super::MarketSimulator).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Seed of every random choice; the same seed, commands and `advance_to` calls give identical frames.
    pub seed: u64,
    /// Mean LEVELONE updates per symbol per second (Schwab conflates to about 1/s; benchmarks raise it).
    /// Zero, negative or non-finite values stop updates (snapshots are still sent); above 1000/s
    /// a symbol updates at most once per millisecond.
    pub updates_per_symbol_per_sec: f64,
    /// Interval between heartbeat frames in milliseconds; zero or negative disables heartbeats.
    pub heartbeat_interval_ms: i64,
    /// Most keys that may be subscribed at once, summed over all services (`None`: no limit).
    /// A SUBS or ADD that would exceed it is refused (the server answers code 19,
    /// REACHED_SYMBOL_LIMIT) and adds nothing.
    pub symbol_limit: Option<usize>,
    /// Length of an equity candle in ms (CHART_EQUITY and `pricehistory`'s one-minute
    /// frequency): 60 000 like Schwab. Tests shorten it (e.g. 2 000) so that "minutes" pass
    /// quickly; values below 1 are taken as 1.
    pub candle_ms: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            updates_per_symbol_per_sec: 1.0,
            heartbeat_interval_ms: 10_000,
            symbol_limit: None,
            candle_ms: 60_000,
        }
    }
}

/// Slot lengths tried from coarse to fine; all divide 1000 ms, so minute boundaries fall on slots.
const SLOT_CHOICES_MS: [i64; 11] = [100, 50, 40, 25, 20, 10, 8, 5, 4, 2, 1];

/// Highest per-slot update probability accepted before a finer slot is chosen.
const MAX_SLOT_PROBABILITY: f64 = 0.5;

/// Longest gap, in slots, between two updates of one symbol (keeps times far from overflow).
const MAX_GAP_SLOTS: f64 = 1.0e9;

/// Discrete-time Poisson clock: time is cut into slots (frames group the symbols due in the same
/// slot) and each symbol updates in a slot with probability `p`, so gaps are geometric and the
/// mean rate is exactly the configured one, with at most one update per symbol per slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpdateClock {
    slot_ms: i64,
    p: f64,
    ln_miss: f64,
}

impl UpdateClock {
    /// Clock for a mean rate of `per_sec` updates per symbol per second.
    pub(crate) fn new(per_sec: f64) -> Self {
        let rate = if per_sec.is_finite() && per_sec > 0.0 {
            per_sec
        } else {
            0.0
        };
        let slot_ms = SLOT_CHOICES_MS
            .iter()
            .copied()
            .find(|&slot| rate * slot as f64 / 1000.0 <= MAX_SLOT_PROBABILITY)
            .unwrap_or(1);
        let p = (rate * slot_ms as f64 / 1000.0).min(1.0);
        let ln_miss = if p > 0.0 && p < 1.0 {
            (1.0 - p).ln()
        } else {
            0.0
        };
        Self {
            slot_ms,
            p,
            ln_miss,
        }
    }

    /// Length of one slot in milliseconds.
    #[cfg(test)]
    pub(crate) fn slot_ms(&self) -> i64 {
        self.slot_ms
    }

    /// First slot boundary strictly after `t`.
    pub(crate) fn next_slot_after(&self, t: i64) -> i64 {
        (t.div_euclid(self.slot_ms) + 1) * self.slot_ms
    }

    /// Time of the next random update after `t`, or `None` when updates are disabled.
    pub(crate) fn next_update_after(&self, t: i64, rng: &mut Rng) -> Option<i64> {
        if self.p <= 0.0 {
            return None;
        }
        let gap_slots = if self.p >= 1.0 {
            1
        } else {
            let u = 1.0 - rng.f64(); // (0, 1]
            ((u.ln() / self.ln_miss).floor() + 1.0).clamp(1.0, MAX_GAP_SLOTS) as i64
        };
        Some(self.next_slot_after(t) + (gap_slots - 1) * self.slot_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_coarse_for_slow_rates_and_fine_for_fast_ones() {
        assert_eq!(UpdateClock::new(1.0).slot_ms(), 100);
        assert_eq!(UpdateClock::new(20.0).slot_ms(), 25);
        assert_eq!(UpdateClock::new(5000.0).slot_ms(), 1);
    }

    #[test]
    fn disabled_rates_never_schedule() {
        let mut rng = Rng::with_seed(1);
        for rate in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(UpdateClock::new(rate).next_update_after(0, &mut rng), None);
        }
    }

    #[test]
    fn next_times_are_on_slots_and_strictly_later() {
        let clock = UpdateClock::new(3.0);
        let mut rng = Rng::with_seed(9);
        let mut t = 1_234_567;
        for _ in 0..1000 {
            let next = clock.next_update_after(t, &mut rng).unwrap_or(i64::MAX);
            assert!(next > t);
            assert_eq!(next % clock.slot_ms(), 0);
            t = next;
        }
    }
}
