//! Capped exponential backoff with jitter, shared by the writer and reconnect loops.

use std::time::Duration;

/// How a delay is drawn below the current ceiling `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// From [d/2, d]: never drops to zero (writer retries).
    Equal,
    /// From [0, d] ("full jitter"): spreads reconnecting clients the most (Schwab reconnects).
    Full,
}

/// Doubles a ceiling from `min` up to `max`; each delay is drawn below it with [`Jitter`] so
/// that many clients never retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// A backoff starting at `min`, never above `max`, with equal jitter.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self::with_jitter(min, max, Jitter::Equal)
    }

    /// A backoff starting at `min`, never above `max`, with full jitter.
    pub fn full_jitter(min: Duration, max: Duration) -> Self {
        Self::with_jitter(min, max, Jitter::Full)
    }

    fn with_jitter(min: Duration, max: Duration, jitter: Jitter) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            current: min,
            jitter,
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        let floor = match self.jitter {
            Jitter::Equal => ceiling / 2,
            Jitter::Full => Duration::ZERO,
        };
        let jitter_ns =
            fastrand::u64(0..=(ceiling - floor).as_nanos().min(u128::from(u64::MAX)) as u64);
        floor + Duration::from_nanos(jitter_ns)
    }

    /// The ceiling the next delay is drawn below.
    pub fn ceiling(&self) -> Duration {
        self.current
    }

    /// Starts again from `min` (after a success).
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut last_ceiling = Duration::ZERO;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_secs(1),
                "{d:?}"
            );
            last_ceiling = last_ceiling.max(d);
        }
        assert!(last_ceiling > Duration::from_millis(400));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn full_jitter_draws_from_zero_to_a_capped_ceiling() {
        let mut b = Backoff::full_jitter(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceilings = Vec::new();
        let mut below_half = false;
        for _ in 0..200 {
            let ceiling = b.ceiling();
            ceilings.push(ceiling);
            let d = b.next_delay();
            assert!(d <= ceiling, "{d:?} above {ceiling:?}");
            below_half |= d < ceiling / 2;
        }
        assert!(below_half, "full jitter goes below half the ceiling");
        assert_eq!(
            ceilings[..6],
            [100, 200, 400, 800, 1600, 2000].map(Duration::from_millis)
        );
        assert_eq!(*ceilings.last().expect("some"), Duration::from_secs(2));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }
}
