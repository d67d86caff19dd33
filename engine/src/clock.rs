//! Time, abstracted so that tests and `--fast-timers` don't really wait.
//!
//! [`Clock::sleep`] is used for Wait states and retry intervals; [`Clock::deadline`] for
//! timeouts (`TimeoutSeconds`, `HeartbeatSeconds`, the execution timeout), which guard real work
//! and so keep running on tokio's timer even on a virtual clock. Under tokio's paused test
//! clock (`#[tokio::test(start_paused = true)]`) a [`SystemClock`] is virtual too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A boxed future that completes when the timer fires.
pub type Timer = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The engine's source of time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, used for event timestamps, `$$.State.EnteredTime` and Wait `Timestamp`.
    fn now(&self) -> DateTime<Utc>;
    /// Waits `d` (Wait states, retry intervals).
    fn sleep(&self, d: Duration) -> Timer;
    /// Completes after `d` of real work (task timeouts and heartbeats).
    fn deadline(&self, d: Duration) -> Timer {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Wall-clock time with tokio timers (for `weft serve`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Follows tokio's clock so that paused-time tests see consistent timestamps.
        let start = *START;
        let elapsed = tokio_elapsed();
        start.0 + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    fn sleep(&self, d: Duration) -> Timer {
        Box::pin(tokio::time::sleep(d))
    }
}

static START: std::sync::LazyLock<(DateTime<Utc>, std::time::Instant)> =
    std::sync::LazyLock::new(|| (Utc::now(), std::time::Instant::now()));

fn tokio_elapsed() -> Duration {
    // Outside a runtime (or with real time) tokio's Instant tracks std's.
    let std_now = std::time::Instant::now();
    let tokio_now = tokio::time::Instant::now().into_std();
    let base = START.1;
    // tokio's paused clock runs ahead of std's; take the later of the two.
    tokio_now.max(std_now).saturating_duration_since(base)
}

/// Virtual time: `sleep` returns at once and moves the clock forward by the slept duration, so a
/// `Wait` of a day takes no time. `now()` is the real time plus everything slept so far.
#[derive(Debug, Default)]
pub struct VirtualClock {
    /// Nanoseconds slept so far.
    offset: AtomicU64,
}

impl VirtualClock {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        let off = self.offset.load(Ordering::Relaxed);
        Utc::now() + chrono::Duration::nanoseconds(i64::try_from(off).unwrap_or(i64::MAX))
    }

    fn sleep(&self, d: Duration) -> Timer {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.offset.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some(o.saturating_add(nanos)));
        // Yield once so that a long chain of zero-time waits still lets other tasks run.
        Box::pin(tokio::task::yield_now())
    }
}
