//! Execution history: AWS's event types and fields, numbered from 1 with `previousEventId`.
//!
//! [`HistoryEvent::to_aws_json`] renders an event exactly as `GetExecutionHistory` does (inputs
//! and outputs as JSON strings). A [`HistoryLog`] is append-only; [`HistoryLog::follow`] returns a
//! stream that replays the events so far and then yields new ones live until the execution ends.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// AWS's history event types (the subset the engine emits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionAborted,
    ExecutionTimedOut,
    PassStateEntered,
    PassStateExited,
    TaskStateEntered,
    TaskStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    ParallelStateEntered,
    ParallelStateExited,
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    ParallelStateAborted,
    MapStateEntered,
    MapStateExited,
    MapStateStarted,
    MapStateSucceeded,
    MapStateFailed,
    MapStateAborted,
    MapIterationStarted,
    MapIterationSucceeded,
    MapIterationFailed,
    MapIterationAborted,
    MapRunStarted,
    MapRunSucceeded,
    MapRunFailed,
    MapRunAborted,
    TaskScheduled,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    LambdaFunctionScheduled,
    LambdaFunctionStarted,
    LambdaFunctionSucceeded,
    LambdaFunctionFailed,
    LambdaFunctionTimedOut,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        use EventType::*;
        match self {
            ExecutionStarted => "ExecutionStarted",
            ExecutionSucceeded => "ExecutionSucceeded",
            ExecutionFailed => "ExecutionFailed",
            ExecutionAborted => "ExecutionAborted",
            ExecutionTimedOut => "ExecutionTimedOut",
            PassStateEntered => "PassStateEntered",
            PassStateExited => "PassStateExited",
            TaskStateEntered => "TaskStateEntered",
            TaskStateExited => "TaskStateExited",
            ChoiceStateEntered => "ChoiceStateEntered",
            ChoiceStateExited => "ChoiceStateExited",
            WaitStateEntered => "WaitStateEntered",
            WaitStateExited => "WaitStateExited",
            SucceedStateEntered => "SucceedStateEntered",
            SucceedStateExited => "SucceedStateExited",
            FailStateEntered => "FailStateEntered",
            ParallelStateEntered => "ParallelStateEntered",
            ParallelStateExited => "ParallelStateExited",
            ParallelStateStarted => "ParallelStateStarted",
            ParallelStateSucceeded => "ParallelStateSucceeded",
            ParallelStateFailed => "ParallelStateFailed",
            ParallelStateAborted => "ParallelStateAborted",
            MapStateEntered => "MapStateEntered",
            MapStateExited => "MapStateExited",
            MapStateStarted => "MapStateStarted",
            MapStateSucceeded => "MapStateSucceeded",
            MapStateFailed => "MapStateFailed",
            MapStateAborted => "MapStateAborted",
            MapIterationStarted => "MapIterationStarted",
            MapIterationSucceeded => "MapIterationSucceeded",
            MapIterationFailed => "MapIterationFailed",
            MapIterationAborted => "MapIterationAborted",
            MapRunStarted => "MapRunStarted",
            MapRunSucceeded => "MapRunSucceeded",
            MapRunFailed => "MapRunFailed",
            MapRunAborted => "MapRunAborted",
            TaskScheduled => "TaskScheduled",
            TaskStarted => "TaskStarted",
            TaskSubmitted => "TaskSubmitted",
            TaskSucceeded => "TaskSucceeded",
            TaskFailed => "TaskFailed",
            TaskTimedOut => "TaskTimedOut",
            LambdaFunctionScheduled => "LambdaFunctionScheduled",
            LambdaFunctionStarted => "LambdaFunctionStarted",
            LambdaFunctionSucceeded => "LambdaFunctionSucceeded",
            LambdaFunctionFailed => "LambdaFunctionFailed",
            LambdaFunctionTimedOut => "LambdaFunctionTimedOut",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The details of an event; which variant goes with which [`EventType`] follows AWS.
#[derive(Debug, Clone, PartialEq)]
pub enum Details {
    None,
    ExecutionStarted {
        input: Arc<Value>,
        role_arn: String,
    },
    ExecutionSucceeded {
        output: Arc<Value>,
    },
    /// ExecutionFailed / Aborted / TimedOut, MapRunFailed.
    Error {
        error: Option<String>,
        cause: Option<String>,
    },
    StateEntered {
        name: Arc<str>,
        input: Arc<Value>,
    },
    StateExited {
        name: Arc<str>,
        output: Arc<Value>,
    },
    MapStateStarted {
        length: usize,
    },
    MapIteration {
        name: Arc<str>,
        index: usize,
    },
    MapRunStarted {
        map_run_arn: String,
    },
    TaskScheduled {
        resource_type: String,
        resource: String,
        region: String,
        parameters: Value,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
    },
    TaskStarted {
        resource_type: String,
        resource: String,
    },
    /// TaskSubmitted and TaskSucceeded.
    TaskOutput {
        resource_type: String,
        resource: String,
        output: Value,
    },
    /// TaskFailed and TaskTimedOut.
    TaskError {
        resource_type: String,
        resource: String,
        error: Option<String>,
        cause: Option<String>,
    },
    LambdaScheduled {
        resource: String,
        input: Value,
        timeout_seconds: Option<u64>,
    },
    LambdaSucceeded {
        output: Value,
    },
    /// LambdaFunctionFailed and LambdaFunctionTimedOut.
    LambdaError {
        error: Option<String>,
        cause: Option<String>,
    },
}

/// One history event.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub id: u64,
    /// 0 for the first event, as AWS.
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    pub details: Details,
}

fn json_string(v: &Value) -> Value {
    Value::String(serde_json::to_string(v).unwrap_or_default())
}

fn put_opt(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.into(), Value::String(v.clone()));
    }
}

impl HistoryEvent {
    /// The event as `GetExecutionHistory` returns it.
    pub fn to_aws_json(&self) -> Value {
        let mut ev = Map::new();
        ev.insert("timestamp".into(), self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true).into());
        ev.insert("type".into(), self.event_type.as_str().into());
        ev.insert("id".into(), self.id.into());
        ev.insert("previousEventId".into(), self.previous_event_id.into());
        let not_truncated = json!({"truncated": false});
        let (key, body): (String, Value) = match &self.details {
            Details::None => return Value::Object(ev),
            Details::ExecutionStarted { input, role_arn } => (
                "executionStartedEventDetails".into(),
                json!({"input": json_string(input), "inputDetails": not_truncated, "roleArn": role_arn}),
            ),
            Details::ExecutionSucceeded { output } => (
                "executionSucceededEventDetails".into(),
                json!({"output": json_string(output), "outputDetails": not_truncated}),
            ),
            Details::Error { error, cause } => {
                let mut m = Map::new();
                put_opt(&mut m, "error", error);
                put_opt(&mut m, "cause", cause);
                (details_key(self.event_type), Value::Object(m))
            }
            Details::StateEntered { name, input } => (
                "stateEnteredEventDetails".into(),
                json!({"name": name.as_ref(), "input": json_string(input), "inputDetails": not_truncated}),
            ),
            Details::StateExited { name, output } => (
                "stateExitedEventDetails".into(),
                json!({"name": name.as_ref(), "output": json_string(output), "outputDetails": not_truncated}),
            ),
            Details::MapStateStarted { length } => ("mapStateStartedEventDetails".into(), json!({"length": length})),
            Details::MapIteration { name, index } => {
                (details_key(self.event_type), json!({"name": name.as_ref(), "index": index}))
            }
            Details::MapRunStarted { map_run_arn } => {
                ("mapRunStartedEventDetails".into(), json!({"mapRunArn": map_run_arn}))
            }
            Details::TaskScheduled {
                resource_type,
                resource,
                region,
                parameters,
                timeout_seconds,
                heartbeat_seconds,
            } => {
                let mut m = Map::new();
                m.insert("resourceType".into(), resource_type.clone().into());
                m.insert("resource".into(), resource.clone().into());
                m.insert("region".into(), region.clone().into());
                m.insert("parameters".into(), json_string(parameters));
                if let Some(t) = timeout_seconds {
                    m.insert("timeoutInSeconds".into(), (*t).into());
                }
                if let Some(h) = heartbeat_seconds {
                    m.insert("heartbeatInSeconds".into(), (*h).into());
                }
                ("taskScheduledEventDetails".into(), Value::Object(m))
            }
            Details::TaskStarted { resource_type, resource } => {
                ("taskStartedEventDetails".into(), json!({"resourceType": resource_type, "resource": resource}))
            }
            Details::TaskOutput { resource_type, resource, output } => (
                details_key(self.event_type),
                json!({"resourceType": resource_type, "resource": resource, "output": json_string(output), "outputDetails": not_truncated}),
            ),
            Details::TaskError { resource_type, resource, error, cause } => {
                let mut m = Map::new();
                m.insert("resourceType".into(), resource_type.clone().into());
                m.insert("resource".into(), resource.clone().into());
                put_opt(&mut m, "error", error);
                put_opt(&mut m, "cause", cause);
                (details_key(self.event_type), Value::Object(m))
            }
            Details::LambdaScheduled { resource, input, timeout_seconds } => {
                let mut m = Map::new();
                m.insert("resource".into(), resource.clone().into());
                m.insert("input".into(), json_string(input));
                m.insert("inputDetails".into(), not_truncated);
                if let Some(t) = timeout_seconds {
                    m.insert("timeoutInSeconds".into(), (*t).into());
                }
                ("lambdaFunctionScheduledEventDetails".into(), Value::Object(m))
            }
            Details::LambdaSucceeded { output } => (
                "lambdaFunctionSucceededEventDetails".into(),
                json!({"output": json_string(output), "outputDetails": not_truncated}),
            ),
            Details::LambdaError { error, cause } => {
                let mut m = Map::new();
                put_opt(&mut m, "error", error);
                put_opt(&mut m, "cause", cause);
                (details_key(self.event_type), Value::Object(m))
            }
        };
        ev.insert(key, body);
        Value::Object(ev)
    }
}

/// `MapIterationStarted` -> `mapIterationStartedEventDetails`.
fn details_key(t: EventType) -> String {
    let s = t.as_str();
    let mut out = String::with_capacity(s.len() + 12);
    let mut chars = s.chars();
    if let Some(c) = chars.next() {
        out.push(c.to_ascii_lowercase());
    }
    out.extend(chars);
    out.push_str("EventDetails");
    out
}

#[derive(Debug, Default)]
struct LogInner {
    /// Stored inline (one allocation less per event); handed out as `Arc`s on demand.
    events: Vec<HistoryEvent>,
    closed: bool,
}

/// The append-only history of one execution, shared by the execution and its followers.
#[derive(Debug)]
pub struct HistoryLog {
    inner: Mutex<LogInner>,
    notify: tokio::sync::Notify,
    /// Live followers; appends only wake waiters when there are some (the common case of no
    /// follower then costs no extra lock).
    followers: std::sync::atomic::AtomicUsize,
    limit: usize,
}

/// The history reached its limit; the execution must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryFull;

impl HistoryLog {
    pub(crate) fn new(limit: usize) -> Self {
        HistoryLog {
            inner: Mutex::new(LogInner { events: Vec::with_capacity(16), closed: false }),
            notify: tokio::sync::Notify::new(),
            followers: std::sync::atomic::AtomicUsize::new(0),
            limit,
        }
    }

    /// Appends an event, assigning its id. `force` bypasses the limit (for the closing event).
    pub(crate) fn push(
        &self,
        event_type: EventType,
        previous_event_id: u64,
        timestamp: DateTime<Utc>,
        details: Details,
        force: bool,
    ) -> Result<u64, HistoryFull> {
        let id = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if !force && g.events.len() >= self.limit {
                return Err(HistoryFull);
            }
            let id = g.events.len() as u64 + 1;
            g.events.push(HistoryEvent { id, previous_event_id, timestamp, event_type, details });
            id
        };
        if self.followers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
        Ok(id)
    }

    pub(crate) fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        if self.followers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// The number of events so far.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the events so far.
    pub fn snapshot(&self) -> Vec<Arc<HistoryEvent>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).events.iter().map(|e| Arc::new(e.clone())).collect()
    }

    /// Events from index `from` (0-based), and whether the log is closed.
    fn since(&self, from: usize) -> (Vec<Arc<HistoryEvent>>, bool) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let evs = g.events.get(from..).map(|s| s.iter().map(|e| Arc::new(e.clone())).collect()).unwrap_or_default();
        (evs, g.closed)
    }

    /// A stream of every event, from the first, that ends after the execution's closing event.
    pub fn follow(self: &Arc<Self>) -> impl futures::Stream<Item = Arc<HistoryEvent>> + Send + 'static {
        // Registered before the first look at the events, so no append can be missed.
        self.followers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guard = FollowerGuard(Arc::clone(self));
        futures::stream::unfold(
            (guard, 0usize, std::collections::VecDeque::new()),
            |(guard, mut next, mut buf)| async move {
                loop {
                    if let Some(ev) = buf.pop_front() {
                        return Some((ev, (guard, next, buf)));
                    }
                    let log = &guard.0;
                    let notified = log.notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let (evs, closed) = log.since(next);
                    if !evs.is_empty() {
                        next += evs.len();
                        buf.extend(evs);
                        continue;
                    }
                    if closed {
                        return None;
                    }
                    notified.await;
                }
            },
        )
    }
}

/// Unregisters a follower when its stream is dropped.
struct FollowerGuard(Arc<HistoryLog>);

impl Drop for FollowerGuard {
    fn drop(&mut self) {
        self.0.followers.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
