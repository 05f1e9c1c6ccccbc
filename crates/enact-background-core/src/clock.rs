//! Injectable time. The engine reads wall time from a [`Clock`] and sleeps
//! with tokio's timer; [`TokioClock`] ties the two together so that a test
//! running on tokio's paused clock (`start_paused = true`) sees wall time
//! advance exactly as far as the paused timer does.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// Wall time anchored once to the system clock, then advanced by tokio's
/// monotonic clock. Under a paused tokio runtime it advances only when the
/// runtime's time does, which makes backoff, timeouts and delays testable
/// without real sleeps.
pub struct TokioClock {
    wall: DateTime<Utc>,
    mono: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors at the current system time. Must be called inside a tokio
    /// runtime when the runtime's clock is paused.
    pub fn new() -> Self {
        Self::starting_at(Utc::now())
    }

    /// Anchors at `wall`.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self { wall, mono: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.mono);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The span from `now` until `at` (zero when `at` is past).
pub fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
