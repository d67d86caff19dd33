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
//!
//! The driver also keeps the whole history of the last [`RECENT`] executions that ended (of at
//! most [`RECENT_EVENTS`] events each) in memory, as stored: whoever reads an execution's history
//! right after it ends (the api recording a synchronous execution, say) reads it from here
//! ([`Recent`]) instead of from the store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::StreamExt as _;
use serde_json::Value;
use tokio::sync::watch;

use engine::{Execution, HistoryEvent};

use super::{Service, epoch};
use crate::store::{ExecutionRecord, StoreError, event_id};

/// How long the engine may be quiet before the waiting events are stored.
const FLUSH_IDLE: std::time::Duration = std::time::Duration::from_millis(2);
/// How long an event may wait to be stored while the engine keeps writing.
const FLUSH_MAX: std::time::Duration = std::time::Duration::from_millis(50);
/// How many events may wait before they are stored.
const FLUSH_EVENTS: usize = 512;

/// How many ended executions [`Recent`] keeps.
const RECENT: usize = 256;
/// The longest history [`Recent`] keeps.
const RECENT_EVENTS: usize = 1000;

/// An ended execution as the store has it: its record and its whole history.
pub(super) struct Ended {
    pub(super) record: Arc<ExecutionRecord>,
    pub(super) events: Vec<Value>,
}

/// The last [`RECENT`] executions that ended, oldest first out. Entries are exactly what was
/// stored, and are dropped when an execution is redriven (its history grows again); one process
/// per database is assumed (see `Service::admin`), so nothing else changes them.
#[derive(Default)]
pub(super) struct Recent {
    by_arn: HashMap<String, Arc<Ended>>,
    order: VecDeque<String>,
}

impl Recent {
    pub(super) fn get(&self, arn: &str) -> Option<Arc<Ended>> {
        self.by_arn.get(arn).cloned()
    }

    fn put(&mut self, ended: Ended) {
        let arn = ended.record.arn.clone();
        if self.by_arn.insert(arn.clone(), Arc::new(ended)).is_none() {
            self.order.push_back(arn);
        }
        while self.order.len() > RECENT {
            if let Some(old) = self.order.pop_front() {
                self.by_arn.remove(&old);
            }
        }
    }

    pub(super) fn forget(&mut self, arn: &str) {
        if self.by_arn.remove(arn).is_some() {
            self.order.retain(|a| a != arn);
        }
    }
}

impl Ended {
    /// A page of the history as `SfnStore::events` answers it: from event `from` on (down, with
    /// `reverse`), at most `limit`.
    pub(super) fn page(&self, from: u64, limit: usize, reverse: bool) -> Vec<Value> {
        if reverse {
            self.events.iter().rev().filter(|e| event_id(e) <= from).take(limit).cloned().collect()
        } else {
            self.events.iter().filter(|e| event_id(e) >= from).take(limit).cloned().collect()
        }
    }
}

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
    /// `offset`) and records its outcome; with `announce`, its ARN then goes to
    /// `Service::ended_executions`. The returned receiver holds the stored record once both are
    /// stored.
    pub(super) fn drive(
        self: &Arc<Self>,
        exec: Execution,
        mut record: ExecutionRecord,
        offset: u64,
        announce: bool,
    ) -> Done {
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
            // The whole history, for `Recent` (a redriven execution's starts in the store).
            let mut kept: Option<Vec<Value>> = (offset == 0).then(Vec::new);
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
                        let at = pending.len();
                        pending.extend(chunk.iter().map(|e| render(e, offset)));
                        if let Some(k) = &mut kept {
                            if k.len() + chunk.len() > RECENT_EVENTS {
                                kept = None;
                            } else {
                                k.extend_from_slice(&pending[at..]);
                            }
                        }
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
            let record = Arc::new(record);
            if let Some(events) = kept {
                svc.recent().put(Ended { record: Arc::clone(&record), events });
            }
            // Nobody listening is fine: the broadcast is a hint, the store is the record.
            if announce {
                let _ = svc.ended.send(record.arn.clone());
            }
            let _ = tx.send(Some(record));
        });
        rx
    }
}
