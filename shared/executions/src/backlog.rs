//! [`Backlog`]: admission control for asynchronous starts where the recorder runs beside the
//! engine (`weft serve`). When more ended executions wait to be recorded than the bound, a start
//! waits (a bounded time) for the recorder to catch up, so at capacity executions are admitted
//! at the rate they are recorded instead of piling up unrecorded without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The count of ended executions waiting to be recorded, and the bound starts wait for. Cheap
/// to clone (shared).
#[derive(Debug, Clone)]
pub struct Backlog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    waiting: AtomicUsize,
    limit: usize,
    drained: tokio::sync::Notify,
}

impl Backlog {
    /// Starts wait while `limit` (at least 1) or more ended executions wait to be recorded.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner { waiting: AtomicUsize::new(0), limit: limit.max(1), drained: Default::default() }),
        }
    }

    /// An ended execution to record.
    pub(crate) fn add(&self) {
        self.inner.waiting.fetch_add(1, Ordering::AcqRel);
    }

    /// One recorded (or left to the polling pass).
    pub(crate) fn done(&self) {
        let before = self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
        if before <= self.inner.limit {
            self.inner.drained.notify_waiters();
        }
    }

    /// How many ended executions wait to be recorded.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Acquire)
    }

    /// Returns once fewer than the bound wait to be recorded, or after `max` (a start is never
    /// refused for it, only delayed). Whether it had to wait.
    pub async fn admit(&self, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        let mut waited = false;
        loop {
            let drained = self.inner.drained.notified();
            if self.waiting() < self.inner.limit {
                return waited;
            }
            waited = true;
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                tracing::debug!(waiting = self.waiting(), "the recorder is behind; starting anyway after {max:?}");
                return waited;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_wait_for_the_recorder_while_the_backlog_is_full() {
        let backlog = Backlog::new(2);
        assert!(!backlog.admit(Duration::from_secs(60)).await, "an empty backlog admits at once");
        backlog.add();
        assert!(!backlog.admit(Duration::from_secs(60)).await, "below the bound admits at once");
        backlog.add();
        let start = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.admit(Duration::from_secs(60)).await }
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!start.is_finished(), "a start waits while the backlog is at its bound");
        backlog.done();
        let waited = tokio::time::timeout(Duration::from_secs(60), start).await.expect("admitted").expect("task");
        assert!(waited);
        assert_eq!(backlog.waiting(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_waits_at_most_its_bound() {
        let backlog = Backlog::new(1);
        backlog.add();
        let before = tokio::time::Instant::now();
        assert!(backlog.admit(Duration::from_secs(5)).await);
        assert_eq!(before.elapsed(), Duration::from_secs(5), "admitted when the wait is over, not refused");
    }
}
