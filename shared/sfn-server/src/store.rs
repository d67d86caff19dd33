//! Persistence of state machines, versions, aliases, executions and their histories.
//!
//! [`SfnStore`] is deliberately small and document-shaped: records are serde structs, history
//! events are stored exactly as `GetExecutionHistory` returns them. [`MemoryStore`] keeps
//! everything in process (for `weft run`-like uses and fast tests); [`crate::PgStore`] keeps it in
//! Postgres so that it survives a restart of `weft serve`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record already exists (a unique key is taken).
    #[error("already exists")]
    Conflict,
    /// The backend failed; retrying may help if it was transient.
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") {
            StoreError::Conflict
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("a stored document does not decode: {e}"))
    }
}

/// The unqualified state machine: its latest revision and how many versions it has published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMachineRecord {
    pub name: String,
    pub arn: String,
    /// The definition text exactly as given (AWS returns it verbatim).
    pub definition: String,
    pub role_arn: String,
    /// `STANDARD` or `EXPRESS`.
    pub kind: String,
    pub creation_date: DateTime<Utc>,
    pub update_date: Option<DateTime<Utc>>,
    pub revision_id: String,
    pub description: Option<String>,
    pub logging_configuration: Option<Value>,
    pub tracing_configuration: Option<Value>,
    /// The highest version number published so far (0: none).
    pub last_version: u32,
}

/// An immutable, numbered snapshot of a state machine revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub state_machine: String,
    pub version: u32,
    pub arn: String,
    pub definition: String,
    pub role_arn: String,
    pub kind: String,
    pub revision_id: String,
    pub description: Option<String>,
    pub creation_date: DateTime<Utc>,
}

/// One route of an alias: a version ARN and its share of executions in percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub version_arn: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub state_machine: String,
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub routing: Vec<Route>,
    pub creation_date: DateTime<Utc>,
    pub update_date: Option<DateTime<Utc>>,
}

/// An execution, with what a restart needs to redrive it (the definition it ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub arn: String,
    pub name: String,
    pub state_machine: String,
    /// The unqualified state machine ARN.
    pub state_machine_arn: String,
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
    pub kind: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
    /// The input text as given.
    pub input: String,
    /// The output as JSON text, when SUCCEEDED.
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub redrive_count: u32,
    pub redrive_date: Option<DateTime<Utc>>,
    /// The definition the execution runs, so a redrive after a restart runs the same one. Not
    /// part of the stored document: [`crate::PgStore`] keeps each definition once, by hash.
    #[serde(skip)]
    pub definition: String,
    /// The number of history events stored so far (the id of the last one).
    pub event_count: u64,
}

/// Where a listing of executions is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub state_machine: Option<String>,
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
    pub status: Option<String>,
}

impl ExecutionFilter {
    fn matches(&self, e: &ExecutionRecord) -> bool {
        self.state_machine.as_ref().is_none_or(|s| *s == e.state_machine)
            && self.version_arn.as_ref().is_none_or(|v| Some(v) == e.version_arn.as_ref())
            && self.alias_arn.as_ref().is_none_or(|a| Some(a) == e.alias_arn.as_ref())
            && self.status.as_ref().is_none_or(|s| *s == e.status)
    }
}

/// Storage for the endpoint. Implementations must make `create_*`/`insert_*` fail with
/// [`StoreError::Conflict`] when the key exists, and keep history event ids unique per execution.
#[async_trait::async_trait]
pub trait SfnStore: Send + Sync + 'static {
    async fn create_state_machine(&self, sm: &StateMachineRecord) -> Result<(), StoreError>;
    async fn put_state_machine(&self, sm: &StateMachineRecord) -> Result<(), StoreError>;
    async fn get_state_machine(&self, name: &str) -> Result<Option<StateMachineRecord>, StoreError>;
    /// All state machines, ordered by name.
    async fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError>;

    async fn create_version(&self, v: &VersionRecord) -> Result<(), StoreError>;
    async fn get_version(&self, state_machine: &str, version: u32) -> Result<Option<VersionRecord>, StoreError>;

    async fn put_alias(&self, a: &AliasRecord) -> Result<(), StoreError>;
    async fn get_alias(&self, state_machine: &str, name: &str) -> Result<Option<AliasRecord>, StoreError>;

    async fn insert_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError>;
    async fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError>;
    async fn get_execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError>;
    /// Executions matching `filter`, newest first (then by ARN, for a stable order).
    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>, StoreError>;
    /// Executions whose status is RUNNING.
    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// Appends rendered history events (each has a numeric `id`).
    async fn append_events(&self, execution_arn: &str, events: &[Value]) -> Result<(), StoreError>;
    /// An execution's last events and its outcome, atomically where the store can (the events
    /// are stored no later than the outcome either way).
    async fn finish_execution(&self, e: &ExecutionRecord, events: &[Value]) -> Result<(), StoreError> {
        self.append_events(&e.arn, events).await?;
        self.put_execution(e).await
    }
    /// Up to `limit` events: ids `>= from` ascending, or ids `<= from` descending when `reverse`.
    async fn events(
        &self,
        execution_arn: &str,
        from: u64,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Value>, StoreError>;
}

/// An in-process [`SfnStore`]: nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Mem>,
}

#[derive(Debug, Default)]
struct Mem {
    machines: BTreeMap<String, StateMachineRecord>,
    versions: HashMap<(String, u32), VersionRecord>,
    aliases: HashMap<(String, String), AliasRecord>,
    executions: HashMap<String, ExecutionRecord>,
    events: HashMap<String, BTreeMap<u64, Value>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn event_id(ev: &Value) -> u64 {
    ev.get("id").and_then(Value::as_u64).unwrap_or(0)
}

#[async_trait::async_trait]
impl SfnStore for MemoryStore {
    async fn create_state_machine(&self, sm: &StateMachineRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.machines.contains_key(&sm.name) {
            return Err(StoreError::Conflict);
        }
        g.machines.insert(sm.name.clone(), sm.clone());
        Ok(())
    }

    async fn put_state_machine(&self, sm: &StateMachineRecord) -> Result<(), StoreError> {
        self.lock().machines.insert(sm.name.clone(), sm.clone());
        Ok(())
    }

    async fn get_state_machine(&self, name: &str) -> Result<Option<StateMachineRecord>, StoreError> {
        Ok(self.lock().machines.get(name).cloned())
    }

    async fn list_state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        Ok(self.lock().machines.values().cloned().collect())
    }

    async fn create_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        let key = (v.state_machine.clone(), v.version);
        if g.versions.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        g.versions.insert(key, v.clone());
        Ok(())
    }

    async fn get_version(&self, state_machine: &str, version: u32) -> Result<Option<VersionRecord>, StoreError> {
        Ok(self.lock().versions.get(&(state_machine.to_owned(), version)).cloned())
    }

    async fn put_alias(&self, a: &AliasRecord) -> Result<(), StoreError> {
        self.lock().aliases.insert((a.state_machine.clone(), a.name.clone()), a.clone());
        Ok(())
    }

    async fn get_alias(&self, state_machine: &str, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        Ok(self.lock().aliases.get(&(state_machine.to_owned(), name.to_owned())).cloned())
    }

    async fn insert_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.executions.contains_key(&e.arn) {
            return Err(StoreError::Conflict);
        }
        g.executions.insert(e.arn.clone(), e.clone());
        Ok(())
    }

    async fn put_execution(&self, e: &ExecutionRecord) -> Result<(), StoreError> {
        self.lock().executions.insert(e.arn.clone(), e.clone());
        Ok(())
    }

    async fn get_execution(&self, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.lock().executions.get(arn).cloned())
    }

    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut v: Vec<ExecutionRecord> =
            self.lock().executions.values().filter(|e| filter.matches(e)).cloned().collect();
        v.sort_by(|a, b| b.start_date.cmp(&a.start_date).then_with(|| a.arn.cmp(&b.arn)));
        Ok(v)
    }

    async fn running_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        Ok(self.lock().executions.values().filter(|e| e.status == "RUNNING").cloned().collect())
    }

    async fn append_events(&self, execution_arn: &str, events: &[Value]) -> Result<(), StoreError> {
        let mut g = self.lock();
        let log = g.events.entry(execution_arn.to_owned()).or_default();
        for ev in events {
            log.insert(event_id(ev), ev.clone());
        }
        Ok(())
    }

    async fn events(
        &self,
        execution_arn: &str,
        from: u64,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<Value>, StoreError> {
        let g = self.lock();
        let Some(log) = g.events.get(execution_arn) else { return Ok(Vec::new()) };
        Ok(if reverse {
            log.range(..=from).rev().take(limit).map(|(_, v)| v.clone()).collect()
        } else {
            log.range(from..).take(limit).map(|(_, v)| v.clone()).collect()
        })
    }
}
