//! The one retry pacing of the crate: a first pause that doubles after each failure up to a
//! cap, optionally jittered, bounded by a number of attempts and/or a deadline.
//!
//! Loops that retry hold a [`Backoff`] and call [`Backoff::retry`] (or [`Backoff::wait`])
//! after a failure; schedulers that keep their own failure counts ask
//! [`Backoff::delay_after`].

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Doubling pauses between attempts. Without limits it retries forever.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// Fraction of a pause that may be taken off at random (0: none).
    jitter: f64,
    max_attempts: Option<u32>,
    deadline: Option<Instant>,
    /// Failed attempts so far (pauses taken).
    failures: u32,
}

impl Backoff {
    /// Pauses of `initial`, then twice as long after each failure, at most `max`.
    pub(crate) const fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            jitter: 0.0,
            max_attempts: None,
            deadline: None,
            failures: 0,
        }
    }

    /// At most `attempts` attempts in all (so `attempts - 1` pauses).
    pub(crate) const fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// No pause that would end at or after `deadline`.
    pub(crate) const fn until(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Takes up to `fraction` (0 to 1) of each pause off at random, so that clients failing
    /// together do not retry together.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// The pause after `failures` failures in a row: `initial × 2^failures`, at most `max`
    /// (before jitter).
    pub(crate) fn delay_after(&self, failures: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << failures.min(31))
            .min(self.max)
    }

    /// Attempts made so far, counting the one that just failed.
    pub(crate) fn attempts(&self) -> u32 {
        self.failures + 1
    }

    /// The pause before the next attempt, or `None` when the attempts are used up or the
    /// pause would reach the deadline. Counts a failure when it returns a pause.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        if self.max_attempts.is_some_and(|n| self.attempts() >= n) {
            return None;
        }
        let delay = self.jittered(self.delay_after(self.failures));
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() + delay >= deadline)
        {
            return None;
        }
        self.failures += 1;
        Some(delay)
    }

    /// After a failure: sleeps and returns `true` if another attempt may follow, else returns
    /// `false` at once.
    pub(crate) async fn retry(&mut self) -> bool {
        match self.next_delay() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => false,
        }
    }

    /// Sleeps the next pause whatever the limits (for loops that check their own deadline).
    pub(crate) async fn sleep(&mut self) {
        let delay = self.jittered(self.delay_after(self.failures));
        self.failures += 1;
        tokio::time::sleep(delay).await;
    }

    /// As [`retry`](Self::retry), giving back the failure `last` when no attempt may follow.
    pub(crate) async fn wait(&mut self, last: Error) -> Result<()> {
        if self.retry().await {
            Ok(())
        } else {
            Err(last)
        }
    }

    fn jittered(&self, delay: Duration) -> Duration {
        if self.jitter == 0.0 {
            return delay;
        }
        let mut byte = [0u8; 2];
        // Without randomness the pause stays whole: jitter only spreads clients out.
        let unit = match getrandom::fill(&mut byte) {
            Ok(()) => f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX),
            Err(_) => 0.0,
        };
        delay.mul_f64(1.0 - self.jitter * unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(50 * MS, 500 * MS);
        let delays: Vec<_> = (0..6).map(|_| b.next_delay().unwrap()).collect();
        assert_eq!(
            delays,
            [50 * MS, 100 * MS, 200 * MS, 400 * MS, 500 * MS, 500 * MS]
        );
        assert_eq!(b.attempts(), 7);
        assert_eq!(b.delay_after(40), 500 * MS, "huge failure counts saturate");
    }

    #[test]
    fn stops_after_the_attempts() {
        let mut b = Backoff::new(MS, 10 * MS).with_max_attempts(3);
        assert_eq!(b.next_delay(), Some(MS));
        assert_eq!(b.next_delay(), Some(2 * MS));
        assert_eq!(b.attempts(), 3);
        assert_eq!(b.next_delay(), None);
        assert_eq!(b.attempts(), 3, "a refused pause is not a failure");
    }

    #[tokio::test(start_paused = true)]
    async fn no_pause_reaches_the_deadline() {
        let mut b = Backoff::new(100 * MS, Duration::from_secs(1)).until(Instant::now() + 350 * MS);
        assert!(b.retry().await); // 100 ms, ends at 100
        assert!(b.retry().await); // 200 ms, ends at 300
        let before = Instant::now();
        assert!(!b.retry().await, "400 ms would end at 700");
        assert_eq!(Instant::now(), before, "no sleep when giving up");
        let err = b
            .wait(Error::Closed)
            .await
            .expect_err("the last error back");
        assert!(matches!(err, Error::Closed));
    }

    #[test]
    fn jitter_only_shortens_within_the_fraction() {
        let mut b = Backoff::new(1000 * MS, 1000 * MS).with_jitter(0.25);
        for _ in 0..50 {
            let d = b.next_delay().unwrap();
            assert!(d <= 1000 * MS && d >= 750 * MS, "{d:?}");
        }
    }
}
