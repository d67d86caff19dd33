//! The public face of the engine: [`Engine`], [`Execution`] and the callback API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::children::ChildStarter;
use crate::clock::{Clock, SystemClock};
use crate::definition::Definition;
use crate::error::{CallbackError, Failure};
use crate::history::{HistoryEvent, HistoryLog};
use crate::task::TaskInvoker;

/// How the engine is wired: who runs Tasks, what time it is, and AWS-like limits and names.
#[derive(Clone)]
pub struct EngineConfig {
    pub invoker: Arc<dyn TaskInvoker>,
    pub clock: Arc<dyn Clock>,
    /// Maximum events per execution history; AWS's limit is 25,000. Exceeding it fails the
    /// execution with `States.Runtime`.
    pub history_limit: usize,
    /// Maximum size in bytes of execution input, task parameters and task results
    /// (`States.DataLimitExceeded`); AWS's is 256 KiB. `None` disables the check.
    pub payload_limit: Option<usize>,
    /// Used in ARNs and history events.
    pub region: String,
    pub account_id: String,
    /// Who starts the child executions of `states:startExecution[.sync[:2]]` Tasks. `None`: the
    /// engine runs them itself from [`Engine::register_state_machine`]'s definitions.
    pub children: Option<Arc<dyn ChildStarter>>,
}

impl EngineConfig {
    /// Real time, AWS's limits, region `us-east-1`, account `123456789012`.
    pub fn new(invoker: Arc<dyn TaskInvoker>) -> Self {
        EngineConfig {
            invoker,
            clock: Arc::new(SystemClock),
            history_limit: 25_000,
            payload_limit: Some(256 * 1024),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            children: None,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Child executions through `children` (a host that stores executions) instead of inside
    /// the engine.
    pub fn with_children(mut self, children: Arc<dyn ChildStarter>) -> Self {
        self.children = Some(children);
        self
    }
}

/// Options for one execution.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The execution name (a UUID when `None`).
    pub name: Option<String>,
    /// The state machine's name, used in ARNs and `$$.StateMachine` (default `weft`).
    pub state_machine_name: Option<String>,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// The result of a finished execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    /// Set when SUCCEEDED.
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date: DateTime<Utc>,
    pub stop_date: DateTime<Utc>,
}

impl Outcome {
    /// `{"status": "SUCCEEDED", "output": ...}` or `{"status": "FAILED", "error": ..., "cause": ...}`.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("status".into(), self.status.as_str().into());
        if let Some(o) = &self.output {
            m.insert("output".into(), o.clone());
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), e.clone().into());
        }
        if let Some(c) = &self.cause {
            m.insert("cause".into(), c.clone().into());
        }
        Value::Object(m)
    }
}

/// A message for a waiting `.waitForTaskToken` task.
#[derive(Debug)]
pub(crate) enum TokenMsg {
    Success(Value),
    Failure(Failure),
    Heartbeat,
}

pub(crate) struct Inner {
    pub config: EngineConfig,
    pub tokens: Mutex<HashMap<String, mpsc::UnboundedSender<TokenMsg>>>,
    pub machines: RwLock<HashMap<String, Arc<Definition>>>,
    pub counter: AtomicU64,
    /// `$$.Execution.RoleArn`, formatted once.
    pub role_arn: Arc<str>,
    /// The state machine name used when `StartOptions` gives none, and its ARN.
    pub default_sm_name: Arc<str>,
    pub default_sm_arn: Arc<str>,
}

/// The engine: starts executions and routes task callbacks. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("region", &self.inner.config.region).finish_non_exhaustive()
    }
}

pub(crate) struct ExecShared {
    pub arn: Arc<str>,
    pub name: Arc<str>,
    pub state_machine_arn: Arc<str>,
    pub start_date: DateTime<Utc>,
    pub input: Arc<Value>,
    pub log: Arc<HistoryLog>,
    /// Set once when the execution ends; `done` wakes the waiters.
    pub outcome: std::sync::OnceLock<Outcome>,
    pub done: tokio::sync::Notify,
    pub stop: Mutex<Option<oneshot::Sender<Failure>>>,
}

/// A handle on a running or finished execution. Cheap to clone.
#[derive(Clone)]
pub struct Execution {
    pub(crate) shared: Arc<ExecShared>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution").field("arn", &self.shared.arn).finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let role_arn: Arc<str> = Arc::from(arn::RoleArn::new(&config.account_id, "weft-local").to_string());
        Engine {
            inner: Arc::new(Inner {
                role_arn,
                default_sm_arn: Arc::from(
                    arn::StateMachineArn::new(&config.region, &config.account_id, "weft").to_string(),
                ),
                default_sm_name: Arc::from("weft"),
                config,
                tokens: Mutex::new(HashMap::new()),
                machines: RwLock::new(HashMap::new()),
                counter: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The ARN the engine gives a state machine of this name.
    pub fn state_machine_arn(&self, name: &str) -> String {
        let c = &self.inner.config;
        arn::StateMachineArn::new(&c.region, &c.account_id, name).to_string()
    }

    /// Makes a definition startable by `arn:aws:states:::states:startExecution[.sync[:2]]` Tasks,
    /// under its name and its ARN ([`Engine::state_machine_arn`]). Not consulted when
    /// [`EngineConfig::children`] is set: the starter finds the state machines then.
    pub fn register_state_machine(&self, name: &str, definition: Arc<Definition>) {
        let arn = self.state_machine_arn(name);
        let mut g = self.inner.machines.write().unwrap_or_else(|p| p.into_inner());
        g.insert(name.to_owned(), Arc::clone(&definition));
        g.insert(arn, definition);
    }

    /// Starts an execution. Must be called inside a tokio runtime: the execution runs as a task.
    pub fn start(&self, definition: Arc<Definition>, input: Value, options: StartOptions) -> Execution {
        crate::exec::start(Arc::clone(&self.inner), definition, input, options)
    }

    /// Resumes an execution at the top-level state `state` with `state_input` (a redrive, as
    /// `RedriveExecution` does): no `ExecutionStarted` event is written, so event ids in the new
    /// history start at 1 and the caller appends them after the history it already holds.
    /// `input` is the execution's original input (`$$.Execution.Input`), `redrive_count` goes to
    /// `$$.Execution.RedriveCount`. Variables assigned before `state` are not restored. Returns
    /// `None` if the definition has no top-level state of that name.
    pub fn resume(
        &self,
        definition: Arc<Definition>,
        input: Value,
        options: StartOptions,
        state: &str,
        state_input: Value,
        redrive_count: u32,
    ) -> Option<Execution> {
        let idx = definition.root.states.iter().position(|s| s.name.as_ref() == state)?;
        Some(crate::exec::start_at(
            Arc::clone(&self.inner),
            definition,
            input,
            options,
            Some((idx, state_input, redrive_count)),
        ))
    }

    /// Starts an execution and waits for it to end.
    pub async fn run(&self, definition: Arc<Definition>, input: Value) -> Outcome {
        self.start(definition, input, StartOptions::default()).wait().await
    }

    fn send(&self, token: &str, msg: TokenMsg) -> Result<(), CallbackError> {
        let g = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        match g.get(token) {
            Some(tx) => tx.send(msg).map_err(|_| CallbackError::TaskDoesNotExist),
            None => Err(CallbackError::TaskDoesNotExist),
        }
    }

    /// `SendTaskSuccess`: completes the `.waitForTaskToken` task waiting on `token`.
    pub fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        if let Some(limit) = self.inner.config.payload_limit
            && crate::exec::json_size(&output) > limit
        {
            return Err(CallbackError::InvalidOutput);
        }
        self.send(token, TokenMsg::Success(output))
    }

    /// `SendTaskFailure`: fails the task waiting on `token` with this error and cause.
    pub fn send_task_failure(
        &self,
        token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), CallbackError> {
        self.send(token, TokenMsg::Failure(Failure { error, cause }))
    }

    /// `SendTaskHeartbeat`: restarts the `HeartbeatSeconds` timer of the task waiting on `token`.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.send(token, TokenMsg::Heartbeat)
    }

    pub(crate) fn next_id(inner: &Inner) -> u64 {
        inner.counter.fetch_add(1, Ordering::Relaxed)
    }
}

impl ExecShared {
    /// Records the outcome (the first one wins) and wakes the waiters.
    pub(crate) fn finish(&self, outcome: Outcome) {
        let _ = self.outcome.set(outcome);
        self.done.notify_waiters();
    }
}

impl Execution {
    pub fn arn(&self) -> &str {
        &self.shared.arn
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.shared.state_machine_arn
    }

    pub fn start_date(&self) -> DateTime<Utc> {
        self.shared.start_date
    }

    pub fn input(&self) -> &Value {
        &self.shared.input
    }

    /// Follows the history: every event from the first, then new ones live, ending after the
    /// closing event (ExecutionSucceeded/Failed/Aborted/TimedOut).
    pub fn history(&self) -> impl futures::Stream<Item = Arc<HistoryEvent>> + Send + 'static {
        self.shared.log.follow()
    }

    /// The events so far.
    pub fn history_snapshot(&self) -> Vec<Arc<HistoryEvent>> {
        self.shared.log.snapshot()
    }

    /// The outcome if the execution has ended.
    pub fn outcome(&self) -> Option<Outcome> {
        self.shared.outcome.get().cloned()
    }

    pub fn status(&self) -> Status {
        self.outcome().map_or(Status::Running, |o| o.status)
    }

    /// Waits for the execution to end.
    pub async fn wait(&self) -> Outcome {
        loop {
            let notified = self.shared.done.notified();
            tokio::pin!(notified);
            // Registered before looking, so the runner's wake-up cannot be missed.
            notified.as_mut().enable();
            if let Some(o) = self.shared.outcome.get() {
                return o.clone();
            }
            notified.await;
        }
    }

    /// `StopExecution`: aborts the execution (ABORTED) with an optional error and cause. Does
    /// nothing if it already ended.
    pub fn stop(&self, error: Option<String>, cause: Option<String>) {
        let tx = self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            let _ = tx.send(Failure { error, cause });
        }
    }
}
