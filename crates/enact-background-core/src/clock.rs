//! Injectable time. The engine reads wall time from a [`Clock`] and sleeps
//! with tokio's timer; [`TokioClock`] ties the two together so that a test
//! running on tokio's paused clock (`start_paused = true`) sees wall time
//! advance exactly as far as the paused timer does.
//!
//! A [`ManualClock`] moves only when told. With it the engine's timed
//! services (the executor's timer, the scheduler) do not run at all: after
//! moving the clock, the host calls
//! [`Executor::run_due_now`](crate::executor::Executor::run_due_now) and
//! [`TriggerEngine::run_due`](crate::triggers::TriggerEngine::run_due),
//! which do at once whatever came due, so nothing depends on real time.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Whether time moves only when the host moves it (a [`ManualClock`]):
    /// then the engine runs no timed service of its own, and the host runs
    /// what came due after each move. False for clocks that follow real
    /// (or tokio's) time.
    fn is_manual(&self) -> bool {
        false
    }
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

/// Wall time that moves only when told: [`ManualClock::advance`] or
/// [`ManualClock::advance_to`]. Never moves backwards, so due times once
/// passed stay passed. For tests of delays, backoff, timeouts, cooldowns
/// and schedules that must not wait (the Node facade's
/// `clock: 'manual'`).
#[derive(Debug)]
pub struct ManualClock {
    now: parking_lot::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// Starts at the current system time, truncated to the millisecond (so
    /// that due times, which are whole milliseconds, are reached exactly).
    pub fn new() -> Self {
        let now = Utc::now();
        Self::starting_at(DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now))
    }

    /// Starts at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self { now: parking_lot::Mutex::new(start) }
    }

    /// Moves the clock forward by `by`; returns the new now.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut g = self.now.lock();
        *g = g.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC);
        *g
    }

    /// [`ManualClock::advance_to`] a time in milliseconds since the Unix
    /// epoch, fractions kept to the nanosecond (as JavaScript counts
    /// time); a time past the last representable instant moves the clock
    /// there. A NaN leaves it where it is.
    pub fn advance_to_millis(&self, ms: f64) -> DateTime<Utc> {
        if ms.is_nan() {
            return self.now();
        }
        let whole = ms.floor();
        let nanos = ((ms - whole) * 1e6).round() as i64;
        let t = DateTime::from_timestamp_millis(whole as i64)
            .and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(nanos)))
            .unwrap_or(if ms < 0.0 { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC });
        self.advance_to(t)
    }

    /// Moves the clock to `t`, or leaves it where it is if `t` is not
    /// later; returns the new now.
    pub fn advance_to(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut g = self.now.lock();
        if t > *g {
            *g = t;
        }
        *g
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }

    fn is_manual(&self) -> bool {
        true
    }
}
