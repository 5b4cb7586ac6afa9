//! The app's clock: the wall time that cron schedules and idle windows read, through one place
//! so that a test harness can run it virtually.
//!
//! Intervals and timeouts use tokio's clock everywhere; a virtual [`Clock`] derives the wall
//! time from that clock too, so under tokio's paused time (`tokio::time::pause`) the whole app
//! runs on virtual time, reproducibly.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::timestamp::Timestamp;

/// Where an app reads the wall time ([`App::clock`](crate::App::clock)).
///
/// The system clock by default; [`Clock::starting_at`] is a clock that reads `start` when it is
/// made and then moves with tokio's clock (virtual when tokio's time is paused).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use streams::{Clock, Timestamp};
///
/// let clock = Clock::starting_at(Timestamp::from_millis(1_000));
/// tokio::time::sleep(Duration::from_secs(5)).await; // paused time: returns at once
/// assert_eq!(clock.now(), Timestamp::from_millis(6_000));
/// # }
/// ```
///
/// Clones share one source: a clock taken from an app before a test gives the app another
/// one (`App::set_clock`, with the `testing` feature) reads the new one too.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    source: Arc<RwLock<Option<Arc<Anchor>>>>,
}

#[derive(Debug)]
struct Anchor {
    wall: Timestamp,
    at: tokio::time::Instant,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A clock that reads `start` now and then advances with tokio's clock.
    pub fn starting_at(start: impl Into<Timestamp>) -> Self {
        let anchor = Anchor {
            wall: start.into(),
            at: tokio::time::Instant::now(),
        };
        Clock {
            source: Arc::new(RwLock::new(Some(Arc::new(anchor)))),
        }
    }

    /// Makes this clock and its clones read what `other` reads (before the app starts).
    pub(crate) fn follow(&self, other: &Clock) {
        let anchor = other.anchor();
        *self.source.write().unwrap_or_else(|e| e.into_inner()) = anchor;
    }

    fn anchor(&self) -> Option<Arc<Anchor>> {
        self.source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        self.anchor().is_none()
    }

    /// The wall time now.
    pub fn now(&self) -> Timestamp {
        match &self.anchor() {
            None => Timestamp::now(),
            Some(a) => a.wall.saturating_add(a.at.elapsed()),
        }
    }

    /// How long until `at` by this clock (zero when it has passed).
    pub fn until(&self, at: Timestamp) -> Duration {
        at.duration_since(self.now()).unwrap_or(Duration::ZERO)
    }

    /// Sleeps until this clock reads `at` or later.
    pub async fn sleep_until(&self, at: Timestamp) {
        // Wall clocks may be stepped: re-check after each sleep.
        loop {
            let left = self.until(at);
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_virtual_clock_moves_with_paused_tokio_time() {
        let clock = Clock::starting_at(Timestamp::from_millis(10_000));
        assert_eq!(clock.now(), Timestamp::from_millis(10_000));
        clock.sleep_until(Timestamp::from_millis(70_000)).await;
        assert_eq!(clock.now(), Timestamp::from_millis(70_000));
        assert_eq!(clock.until(Timestamp::from_millis(60_000)), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_taken_before_it_was_replaced_follows_the_replacement() {
        let app_clock = Clock::system();
        let taken = app_clock.clone();
        app_clock.follow(&Clock::starting_at(Timestamp::from_millis(5_000)));
        assert!(!taken.is_system());
        assert_eq!(taken.now(), Timestamp::from_millis(5_000));
    }

    #[test]
    fn the_system_clock_reads_the_wall_time() {
        let before = Timestamp::now();
        let read = Clock::system().now();
        assert!(Clock::system().is_system());
        assert!(read >= before && read <= Timestamp::now());
    }
}
