//! The actions: each takes the request document and returns the response document, with AWS's
//! field names. One module per part of the API, all of them `impl` blocks of [`Service`]:
//!
//! - [`input`]: the request documents, paging, and the ARNs and names requests carry;
//! - [`machines`]: state machines, their versions and aliases;
//! - [`executions`]: starting (and what a start resolves to), describing, listing and stopping
//!   executions, their history, and the task token callbacks;
//! - [`children`]: the child executions of `states:startExecution` Tasks, started as
//!   StartExecution starts executions (the engine's `ChildStarter`), and the host's
//!   [`ChildNamer`];
//! - [`driver`]: [`Service::drive`], the task per execution that copies its history into the
//!   store as the engine writes it and records its outcome, the one place an execution's
//!   progress leaves the engine;
//! - [`redrive`]: start-up recovery of executions a previous process left RUNNING, and
//!   RedriveExecution.
//!
//! Here: the state they share (engine, store, running executions, the definition cache, the
//! child namer) and the dispatch from action names.

mod children;
mod driver;
mod executions;
mod input;
mod machines;
mod redrive;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use engine::{Definition, Engine, EngineConfig};

use crate::error::SfnError;
use crate::store::{ExecutionRecord, SfnStore, StateMachineRecord};
use input::parse;

pub use children::{ChildNamer, ChildStart};
pub use redrive::{ENGINE_RESTARTED, Recovery};

pub(crate) struct Service {
    engine: Engine,
    store: Arc<dyn SfnStore>,
    region: String,
    account: String,
    running: Mutex<HashMap<String, driver::Running>>,
    /// Serializes changes to state machines, versions and aliases (version numbers are
    /// allocated under it) and redrives. One process per database is assumed.
    admin: tokio::sync::Mutex<()>,
    definitions: Mutex<HashMap<String, Arc<Definition>>>,
    /// What starts of a state machine version resolve to, by version ARN. Versions and the
    /// state machine fields a start uses (name, ARN, type) never change, and nothing is deleted.
    version_targets: Mutex<HashMap<String, executions::Target>>,
    /// The histories of executions that just ended (see `driver::Recent`).
    recent: Mutex<driver::Recent>,
    /// The ARNs of executions as they end (see `SfnState::ended_executions`).
    ended: tokio::sync::broadcast::Sender<String>,
    generations: std::sync::atomic::AtomicU64,
    /// Names child executions (see `children`); set after the service is built.
    namer: RwLock<Option<Arc<dyn ChildNamer>>>,
}

/// Puts `value` in one of the service's caches, clearing it first when it holds 1,024 entries: a
/// bound, not an eviction policy (entries are rebuilt from the store cheaply).
fn remember<K: std::hash::Hash + Eq, V>(cache: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut g = cache.lock().unwrap_or_else(|p| p.into_inner());
    if g.len() >= 1024 {
        g.clear();
    }
    g.insert(key, value);
}

fn epoch(t: DateTime<Utc>) -> Value {
    // Epoch seconds with milliseconds: AWS JSON 1.0's timestamp format.
    json!(t.timestamp_millis() as f64 / 1000.0)
}

fn put_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.into(), v);
    }
}

fn redrivable(status: &str) -> bool {
    matches!(status, "FAILED" | "TIMED_OUT" | "ABORTED")
}

/// How [`Service::end_in_store`] ends an execution.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `StopExecution` of an execution no engine runs.
    Aborted,
    /// Start-up recovery of an execution a previous process left RUNNING.
    Failed,
}

impl Service {
    /// The service and its engine, whose child executions it starts (`children`): the engine
    /// holds a weak reference back, so the service is built cyclically. A `children` starter
    /// already in `config` is replaced.
    pub(crate) fn new(store: Arc<dyn SfnStore>, config: EngineConfig) -> Arc<Self> {
        let region = config.region.clone();
        let account = config.account_id.clone();
        Arc::new_cyclic(|svc| Service {
            engine: Engine::new(config.with_children(Arc::new(children::Children { svc: svc.clone() }))),
            store,
            region,
            account,
            running: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            definitions: Mutex::new(HashMap::new()),
            version_targets: Mutex::new(HashMap::new()),
            recent: Mutex::new(driver::Recent::default()),
            ended: tokio::sync::broadcast::channel(4096).0,
            generations: std::sync::atomic::AtomicU64::new(0),
            namer: RwLock::new(None),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The ARN of state machine `name` on this endpoint.
    fn sm_arn(&self, name: &str) -> String {
        arn::StateMachineArn::new(&self.region, &self.account, name).to_string()
    }

    pub(crate) async fn call(self: &Arc<Self>, action: &str, input: Value) -> Result<Value, SfnError> {
        match action {
            "CreateStateMachine" => self.create_state_machine(parse(input)?).await,
            "UpdateStateMachine" => self.update_state_machine(parse(input)?).await,
            "DescribeStateMachine" => self.describe_state_machine(parse(input)?).await,
            "PublishStateMachineVersion" => self.publish(parse(input)?).await,
            "CreateStateMachineAlias" => self.create_alias(parse(input)?).await,
            "UpdateStateMachineAlias" => self.update_alias(parse(input)?).await,
            "ListStateMachines" => self.list_state_machines(parse(input)?).await,
            "StartExecution" => self.start_execution(parse(input)?, false).await,
            "StartSyncExecution" => self.start_execution(parse(input)?, true).await,
            "DescribeExecution" => self.describe_execution(parse(input)?).await,
            "ListExecutions" => self.list_executions(parse(input)?).await,
            "GetExecutionHistory" => self.history(parse(input)?).await,
            "StopExecution" => self.stop(parse(input)?).await,
            "RedriveExecution" => self.redrive(parse(input)?).await,
            "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => self.task_callback(action, parse(input)?),
            other => Err(SfnError::new(
                "UnknownOperationException",
                format!("AWSStepFunctions.{other} is not an operation this endpoint supports"),
            )),
        }
    }

    /// Parses (and caches) a definition text; problems are `InvalidDefinition`.
    fn definition(&self, text: &str) -> Result<Arc<Definition>, SfnError> {
        if let Some(d) = self.definitions.lock().unwrap_or_else(|p| p.into_inner()).get(text) {
            return Ok(Arc::clone(d));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            SfnError::new(
                "InvalidDefinition",
                format!("Invalid State Machine Definition: 'the definition is not JSON: {e}'"),
            )
        })?;
        let def = Arc::new(Definition::parse(&value).map_err(|errs| {
            SfnError::new("InvalidDefinition", format!("Invalid State Machine Definition: '{errs}'"))
        })?);
        remember(&self.definitions, text.to_owned(), Arc::clone(&def));
        Ok(def)
    }

    pub(crate) fn ended_executions(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, driver::Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn machine(&self, name: &str, arn: &str) -> Result<StateMachineRecord, SfnError> {
        self.store.get_state_machine(name).await?.ok_or_else(|| SfnError::state_machine_does_not_exist(arn))
    }

    /// Ends an execution that is RUNNING in the store with no engine behind it: appends the
    /// `ExecutionAborted` or `ExecutionFailed` event after the last one stored and stores the
    /// record with the matching status, `error` and `cause`.
    async fn end_in_store(
        &self,
        mut rec: ExecutionRecord,
        ending: Ending,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<ExecutionRecord, SfnError> {
        let (status, event_type, details_key) = match ending {
            Ending::Aborted => ("ABORTED", "ExecutionAborted", "executionAbortedEventDetails"),
            Ending::Failed => ("FAILED", "ExecutionFailed", "executionFailedEventDetails"),
        };
        let last = self.store.events(&rec.arn, u64::MAX, 1, true).await?;
        let last_id = last.first().map_or(0, crate::store::event_id);
        let now = Utc::now();
        let mut details = Map::new();
        put_opt(&mut details, "error", error.clone().map(Value::from));
        put_opt(&mut details, "cause", cause.clone().map(Value::from));
        let event = json!({"timestamp": epoch(now), "type": event_type, "id": last_id + 1,
            "previousEventId": last_id, details_key: details});
        self.store.append_events(&rec.arn, &[event]).await?;
        rec.status = status.into();
        rec.stop_date = Some(now);
        rec.error = error;
        rec.cause = cause;
        rec.event_count = last_id + 1;
        self.store.put_execution(&rec).await?;
        Ok(rec)
    }

    async fn execution(&self, arn_text: &str) -> Result<ExecutionRecord, SfnError> {
        input::execution_arn(arn_text)?;
        self.store.get_execution(arn_text).await?.ok_or_else(|| SfnError::execution_does_not_exist(arn_text))
    }
}
