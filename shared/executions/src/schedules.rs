//! The scheduler of `weft serve`: fires the `cron` triggers of published workflows.
//!
//! Every tick reads the enabled schedules, and for each one whose cron has a due time in
//! `(the later of last_fired_at and armed_at, now]` starts one execution for the latest such
//! time (missed earlier times are skipped: one run after a long stop, not a burst), with input
//! `{"trigger": "schedule", "trigger_id", "scheduled_time"}`. Exactly once per due time, across restarts and several
//! schedulers: the start's idempotency key is `schedule:<trigger>:<due unix seconds>`, so a
//! second start returns the first execution, and `last_fired_at` then advances by compare-and-set.
//! A start the api rejects (e.g. the input no longer matches the start node's schema) still
//! advances `last_fired_at` and is logged; an unavailable dependency leaves it for the next tick.
//! In AWS, EventBridge Scheduler runs the same cron expressions instead.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::task::JoinHandle;

use triggers::cron::Cron;
use triggers::{Registry, StartError, StartRequest, Starter};

/// How often `weft serve` looks for due schedules (cron's resolution is a minute).
pub const TICK: Duration = Duration::from_secs(15);

/// Where the scheduler reads the time from; tests inject a virtual clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Runs the scheduler on the system clock until the task is aborted.
pub fn spawn(registry: Registry, starter: Arc<dyn Starter>) -> JoinHandle<()> {
    spawn_with(registry, starter, Arc::new(SystemClock), TICK)
}

pub fn spawn_with(
    registry: Registry,
    starter: Arc<dyn Starter>,
    clock: Arc<dyn Clock>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = tick(&registry, starter.as_ref(), clock.now()).await {
                tracing::warn!(error = %e, "scheduler tick failed; retrying next tick");
            }
        }
    })
}

/// One pass at `now`: returns how many due times fired (executions started or found started).
pub async fn tick(reg: &Registry, starter: &dyn Starter, now: DateTime<Utc>) -> Result<usize, triggers::Error> {
    let mut fired = 0;
    for s in reg.schedules().await? {
        let cron = match Cron::parse(&s.key) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(trigger = %s.id, error = %e, "skipping a schedule whose cron does not parse");
                continue;
            }
        };
        let Some(due) = cron.latest_due(s.counting_from(), now) else { continue };
        let request = StartRequest {
            tenant: s.tenant_id.clone(),
            workflow_id: s.workflow_id,
            input: json!({"trigger": "schedule", "trigger_id": s.id, "scheduled_time": due.to_rfc3339()}),
            idempotency_key: Some(format!("schedule:{}:{}", s.id, due.timestamp())),
            started_by: format!("schedule:{}", s.id),
        };
        match starter.start(request).await {
            Ok(started) => {
                if reg.claim_fire(s.id, s.last_fired_at, due).await? {
                    fired += 1;
                    tracing::info!(trigger = %s.id, execution = %started.id, due = %due, "schedule fired");
                }
            }
            Err(StartError::Rejected(why)) => {
                tracing::warn!(trigger = %s.id, due = %due, reason = %why, "schedule could not start its workflow; skipping this due time");
                reg.claim_fire(s.id, s.last_fired_at, due).await?;
            }
            Err(StartError::Unavailable(why)) => {
                tracing::warn!(trigger = %s.id, due = %due, reason = %why, "schedule start unavailable; retrying next tick");
            }
        }
    }
    Ok(fired)
}
