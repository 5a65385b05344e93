//! Capped exponential backoff with jitter, shared by the writer and reconnect loops.

use std::time::Duration;

/// Doubles from `min` up to `max`; each delay is drawn from [d/2, d] ("equal jitter") so
/// that many clients never retry in lockstep, while a delay never drops to zero.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff starting at `min`, never above `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            current: min,
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = ceiling / 2;
        let jitter_ns =
            fastrand::u64(0..=(ceiling - half).as_nanos().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_nanos(jitter_ns)
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
}
