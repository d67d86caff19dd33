//! The recorder loop of `weft serve` (in AWS, the `recorder` function does this from
//! EventBridge): keeps `executions` rows and `execution_events` current for every unfinished
//! execution, and resolves interrupted starts ([`Executions::sweep_orphans`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use uuid::Uuid;

use crate::{Executions, START_GRACE};

/// How the loop paces itself.
#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// How often an execution whose history changed is looked at again (`WEFT_RECORDER_INTERVAL_MS`).
    pub interval: Duration,
    /// The longest an unchanged execution waits between looks.
    pub max_interval: Duration,
    /// Executions recorded at once.
    pub parallel: usize,
    /// How often interrupted starts are looked for.
    pub sweep_every: Duration,
    /// The longest a `?wait=true` start waits (a sync row older than that plus
    /// [`START_GRACE`] cannot belong to a live request).
    pub sync_wait: Duration,
}

impl RecorderSettings {
    pub fn new(interval: Duration, sync_wait: Duration) -> Self {
        Self {
            interval,
            max_interval: Duration::from_secs(5).max(interval),
            parallel: 8,
            sweep_every: Duration::from_secs(5),
            sync_wait,
        }
    }
}

impl Executions {
    /// Runs until the task is dropped. `started_at` is when this process started (by the
    /// database's clock): the starts a previous process left half-done are resolved first.
    /// An execution whose history did not change is looked at less and less often (`interval`
    /// doubling to `max_interval`), so thousands of long waits (delays, approvals) cost little;
    /// readers of an execution (GET, SSE) record it themselves, so they never wait for this loop.
    ///
    /// `ended`, when given, tells the ARNs of executions as they end (`weft serve`'s own endpoint
    /// tells them, as EventBridge does in AWS): each is recorded at once, `parallel` at a time, so
    /// the polling pass only follows executions that keep running, and catches what the hints
    /// missed (a new execution is first looked at one `interval` after it is seen).
    pub async fn run_recorder(
        &self,
        settings: RecorderSettings,
        started_at: DateTime<Utc>,
        ended: Option<tokio::sync::broadcast::Receiver<String>>,
    ) {
        let hinted = ended.is_some();
        let follow = async {
            match ended {
                Some(rx) => self.follow_ended(rx, settings.parallel).await,
                None => std::future::pending().await,
            }
        };
        tokio::join!(self.poll(&settings, started_at, hinted), follow);
    }

    /// Records each execution `ended` names, at most `parallel` at once.
    async fn follow_ended(&self, mut ended: tokio::sync::broadcast::Receiver<String>, parallel: usize) {
        use tokio::sync::broadcast::error::RecvError;
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        loop {
            let arn = match ended.recv().await {
                Ok(arn) => arn,
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "the recorder fell behind the ended executions; polling records them");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            // Counted from its receipt until its recording is over; received at once, so the
            // count includes those waiting for a turn.
            let counted = self.inner.backlog.get().cloned().map(|b| {
                b.add();
                Counted(b)
            });
            let permits = std::sync::Arc::clone(&permits);
            let this = self.clone();
            tokio::spawn(async move {
                let _counted = counted;
                let Ok(_permit) = permits.acquire_owned().await else { return };
                // An execution can end before its start has put the ARN on the row: look again
                // a little later, then leave it to the polling pass.
                for delay in [0, 20, 100, 500] {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    match this.record_known_arn(&arn).await {
                        Ok(Some(_)) => return,
                        Ok(None) => {}
                        Err(err) => {
                            tracing::warn!(%err, execution = %arn, "recording an ended execution failed; polling will retry");
                            return;
                        }
                    }
                }
            });
        }
    }

    async fn poll(&self, settings: &RecorderSettings, started_at: DateTime<Utc>, hinted: bool) {
        let mut schedule: HashMap<Uuid, (Instant, Duration)> = HashMap::new();
        self.sweep(settings, Some(started_at)).await;
        let mut last_sweep = Instant::now();
        loop {
            if last_sweep.elapsed() >= settings.sweep_every {
                self.sweep(settings, None).await;
                last_sweep = Instant::now();
            }
            match self.active_ids(10_000).await {
                Ok(ids) => {
                    let now = Instant::now();
                    let live: HashSet<_> = ids.iter().copied().collect();
                    schedule.retain(|id, _| live.contains(id));
                    if hinted {
                        // Executions seen for the first time are due one interval from now: most
                        // end before that, and are recorded from their hint.
                        for id in &ids {
                            schedule.entry(*id).or_insert((now + settings.interval, settings.interval));
                        }
                    }
                    let due: Vec<_> =
                        ids.into_iter().filter(|id| schedule.get(id).is_none_or(|(at, _)| *at <= now)).collect();
                    let results: Vec<_> = futures::stream::iter(due)
                        .map(|id| async move { (id, self.record(id).await) })
                        .buffer_unordered(settings.parallel.max(1))
                        .collect()
                        .await;
                    for (id, result) in results {
                        let interval = match result {
                            Ok(true) => settings.interval,
                            Ok(false) => schedule
                                .get(&id)
                                .map_or(settings.interval, |(_, i)| (*i * 2).min(settings.max_interval)),
                            Err(err) => {
                                tracing::warn!(%err, execution = %id, "recording failed; will retry");
                                settings.max_interval
                            }
                        };
                        schedule.insert(id, (Instant::now() + interval, interval));
                    }
                }
                Err(err) => tracing::warn!(%err, "recorder pass failed; retrying"),
            }
            tokio::time::sleep(settings.interval).await;
        }
    }

    /// Resolves interrupted starts: first those a previous process left (everything that started
    /// before `cutoff`), then, on every later pass (`None`), those older than any start in flight
    /// could be.
    async fn sweep(&self, settings: &RecorderSettings, cutoff: Option<DateTime<Utc>>) {
        let cutoffs = match cutoff {
            Some(at) => Ok((at, at)),
            None => self.db_now().await.map(|now| {
                let grace = chrono::Duration::from_std(START_GRACE).unwrap_or_default();
                let sync = chrono::Duration::from_std(settings.sync_wait).unwrap_or_default();
                (now - grace, now - grace - sync)
            }),
        };
        let result = match cutoffs {
            Ok((pending, sync)) => self.sweep_orphans(pending, sync, Duration::from_secs(5)).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(count = n, "interrupted starts resolved (adopted, or FAILED with Weft.StartInterrupted)")
            }
            Err(err) => tracing::warn!(%err, "could not check for interrupted starts; will retry"),
        }
    }
}

/// An ended execution counted in the [`crate::Backlog`] until its recording attempt is over.
struct Counted(crate::Backlog);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.done();
    }
}
