//! [`Service::drive`]: the task per execution that copies the history the engine writes into the
//! store and then records the outcome. It is the one place an execution's progress leaves the
//! engine, so anything that must follow every execution (the store today) hangs off it.
//!
//! Events are never dropped: a store outage delays them ([`persist`] retries with backoff, and
//! appends are idempotent per event id), and the outcome is written only after the last event,
//! so a reader that sees the final status can read the whole history.
//!
//! Writes are batched: waiting events are stored once the engine has written nothing new for
//! [`FLUSH_IDLE`] (an execution that waits, for a task, a timer or an approval, has its history
//! stored within that), at most [`FLUSH_MAX`] after the first of them or once [`FLUSH_EVENTS`]
//! are waiting; an execution that ends meanwhile stores its last events together with its
//! outcome in one write, so a short execution costs the store two writes (its start, its end).

use std::sync::Arc;

use futures::StreamExt as _;
use serde_json::Value;
use tokio::sync::watch;

use engine::{Execution, HistoryEvent};

use super::{Service, epoch};
use crate::store::{ExecutionRecord, StoreError};

/// How long the engine may be quiet before the waiting events are stored.
const FLUSH_IDLE: std::time::Duration = std::time::Duration::from_millis(2);
/// How long an event may wait to be stored while the engine keeps writing.
const FLUSH_MAX: std::time::Duration = std::time::Duration::from_millis(50);
/// How many events may wait before they are stored.
const FLUSH_EVENTS: usize = 512;

/// The stored outcome of an execution, once its driver has written it.
pub(super) type Done = watch::Receiver<Option<Arc<ExecutionRecord>>>;

/// A running execution: the engine's handle and a signal that its driver has stored the outcome.
pub(super) struct Running {
    pub(super) exec: Execution,
    pub(super) done: Done,
    /// Which run of the execution this is: a driver must not remove the entry of the redrive
    /// that followed it.
    generation: u64,
}

/// Retries a store write until it succeeds, backing off from 50 ms to 5 s and logging each
/// failure. Used for the writes an execution's driver must not lose (its history and outcome);
/// if the process dies meanwhile, start-up recovery marks the execution FAILED
/// (`Weft.EngineRestarted`), so nothing stays RUNNING for good.
async fn persist<F, Fut>(arn: &str, what: &str, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut delay = std::time::Duration::from_millis(50);
    let mut attempt = 0u32;
    loop {
        match write().await {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!(execution = %arn, attempts = attempt + 1, "stored {what} after retrying");
                }
                return;
            }
            Err(e) => {
                attempt += 1;
                tracing::warn!(execution = %arn, error = %e, attempt, "could not store {what}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

/// An engine event as `GetExecutionHistory` returns it, its ids shifted by `offset` (the id of
/// the `ExecutionRedriven` event when the execution was redriven) and its timestamp in epoch
/// seconds.
fn render(e: &HistoryEvent, offset: u64) -> Value {
    let mut v = e.to_aws_json();
    if let Some(m) = v.as_object_mut() {
        m.insert("id".into(), (e.id + offset).into());
        let prev = if e.previous_event_id == 0 { offset } else { e.previous_event_id + offset };
        m.insert("previousEventId".into(), prev.into());
        m.insert("timestamp".into(), epoch(e.timestamp));
    }
    v
}

impl Service {
    /// Spawns the task that copies the execution's history into the store (ids shifted by
    /// `offset`) and records its outcome. The returned receiver holds the stored record once both
    /// are stored.
    pub(super) fn drive(self: &Arc<Self>, exec: Execution, mut record: ExecutionRecord, offset: u64) -> Done {
        let (tx, rx) = watch::channel(None);
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.arn.clone(), Running { exec: exec.clone(), done: rx.clone(), generation });
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let mut last = offset;
            let mut chunks = Box::pin(exec.history().ready_chunks(FLUSH_EVENTS));
            let mut pending: Vec<Value> = Vec::new();
            // When the first waiting event arrived (the cap), and when the engine last wrote.
            let mut first: Option<tokio::time::Instant> = None;
            let mut latest = tokio::time::Instant::now();
            loop {
                // `next()` is cancel-safe: an interrupted wait loses no event.
                let next = match first {
                    Some(first) => {
                        tokio::time::timeout_at((latest + FLUSH_IDLE).min(first + FLUSH_MAX), chunks.next()).await
                    }
                    None => Ok(chunks.next().await),
                };
                match next {
                    Ok(Some(chunk)) => {
                        pending.extend(chunk.iter().map(|e| render(e, offset)));
                        last = chunk.last().map_or(last, |e| e.id + offset);
                        latest = tokio::time::Instant::now();
                        first.get_or_insert(latest);
                        if pending.len() < FLUSH_EVENTS && latest < first.map_or(latest, |f| f + FLUSH_MAX) {
                            continue;
                        }
                    }
                    Ok(None) => break,
                    Err(_elapsed) => {}
                }
                persist(&record.arn, "history events", || svc.store.append_events(&record.arn, &pending)).await;
                pending.clear();
                first = None;
            }
            let outcome = exec.wait().await;
            record.status = outcome.status.as_str().to_owned();
            record.stop_date = Some(outcome.stop_date);
            record.output = outcome.output.map(|o| o.to_string());
            record.error = outcome.error;
            record.cause = outcome.cause;
            record.event_count = last;
            persist(&record.arn, "the execution's last events and outcome", || {
                svc.store.finish_execution(&record, &pending)
            })
            .await;
            {
                let mut g = svc.running.lock().unwrap_or_else(|p| p.into_inner());
                if g.get(&record.arn).is_some_and(|r| r.generation == generation) {
                    g.remove(&record.arn);
                }
            }
            let _ = tx.send(Some(Arc::new(record)));
        });
        rx
    }
}
