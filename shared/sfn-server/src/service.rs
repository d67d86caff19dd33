//! The actions: each takes the request document and returns the response document, with AWS's
//! field names. Executions run on the engine; a driver task per execution copies its history
//! into the store as it is written and records the outcome when it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use rand::Rng as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use engine::{CallbackError, Definition, Engine, EngineConfig, Execution, HistoryEvent, StartOptions};

use crate::arn::{self, SmRef};
use crate::error::SfnError;
use crate::store::{AliasRecord, ExecutionFilter, ExecutionRecord, Route, SfnStore, StateMachineRecord, VersionRecord};

/// The error and cause recorded on executions that a previous process left RUNNING.
pub const ENGINE_RESTARTED: &str = "Weft.EngineRestarted";

const MAX_PAYLOAD: usize = 256 * 1024;
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// A running execution: the engine's handle and a signal that its driver has stored the outcome.
struct Running {
    exec: Execution,
    done: watch::Receiver<bool>,
    /// Which run of the execution this is: a driver must not remove the entry of the redrive
    /// that followed it.
    generation: u64,
}

pub(crate) struct Service {
    engine: Engine,
    store: Arc<dyn SfnStore>,
    region: String,
    account: String,
    running: Mutex<HashMap<String, Running>>,
    /// Serializes changes to state machines, versions and aliases (version numbers are
    /// allocated under it) and redrives. One process per database is assumed.
    admin: tokio::sync::Mutex<()>,
    definitions: Mutex<HashMap<String, Arc<Definition>>>,
    generations: std::sync::atomic::AtomicU64,
}

/// What `SfnState::open` did to executions a previous process left RUNNING.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The ARNs marked FAILED with `Weft.EngineRestarted`.
    pub failed: Vec<String>,
}

/// Retries a store write until it succeeds, backing off from 50 ms to 5 s and logging each
/// failure. Used for the writes an execution's driver must not lose (its history and outcome);
/// if the process dies meanwhile, start-up recovery marks the execution FAILED
/// (`Weft.EngineRestarted`), so nothing stays RUNNING for good.
async fn persist<F, Fut>(arn: &str, what: &str, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::store::StoreError>>,
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

fn epoch(t: DateTime<Utc>) -> Value {
    // Epoch seconds with milliseconds: AWS JSON 1.0's timestamp format.
    json!(t.timestamp_millis() as f64 / 1000.0)
}

fn parse<T: DeserializeOwned>(v: Value) -> Result<T, SfnError> {
    serde_json::from_value(v).map_err(|e| SfnError::validation(format!("1 validation error detected: {e}")))
}

fn page_size(max: Option<i64>) -> Result<usize, SfnError> {
    match max {
        None | Some(0) => Ok(DEFAULT_PAGE),
        Some(n) if n < 0 || n > MAX_PAGE as i64 => {
            Err(SfnError::validation(format!("maxResults must be between 0 and {MAX_PAGE}, got {n}")))
        }
        Some(n) => Ok(n as usize),
    }
}

fn token(t: Option<&str>) -> Result<Option<u64>, SfnError> {
    match t {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<u64>().map(Some).map_err(|_| {
            SfnError::new("InvalidToken", format!("Invalid Token: '{t}' (use the nextToken of a previous page)"))
        }),
    }
}

fn put_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.into(), v);
    }
}

fn status_ok(s: &str) -> bool {
    matches!(s, "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED")
}

fn redrivable(status: &str) -> bool {
    matches!(status, "FAILED" | "TIMED_OUT" | "ABORTED")
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

fn strip_data(mut ev: Value) -> Value {
    if let Some(m) = ev.as_object_mut() {
        for (k, d) in m.iter_mut() {
            if k.ends_with("EventDetails")
                && let Some(d) = d.as_object_mut()
            {
                d.remove("input");
                d.remove("output");
            }
        }
    }
    ev
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIn {
    name: String,
    definition: String,
    role_arn: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    logging_configuration: Option<Value>,
    tracing_configuration: Option<Value>,
    publish: Option<bool>,
    version_description: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateIn {
    state_machine_arn: String,
    definition: Option<String>,
    role_arn: Option<String>,
    logging_configuration: Option<Value>,
    tracing_configuration: Option<Value>,
    publish: Option<bool>,
    version_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArnIn {
    state_machine_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishIn {
    state_machine_arn: String,
    revision_id: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouteIn {
    state_machine_version_arn: String,
    weight: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAliasIn {
    name: String,
    description: Option<String>,
    routing_configuration: Vec<RouteIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateAliasIn {
    state_machine_alias_arn: String,
    description: Option<String>,
    routing_configuration: Option<Vec<RouteIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageIn {
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIn {
    state_machine_arn: String,
    name: Option<String>,
    input: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecArnIn {
    execution_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListExecIn {
    state_machine_arn: Option<String>,
    status_filter: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    redrive_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryIn {
    execution_arn: String,
    max_results: Option<i64>,
    reverse_order: Option<bool>,
    next_token: Option<String>,
    include_execution_data: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopIn {
    execution_arn: String,
    error: Option<String>,
    cause: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskIn {
    task_token: String,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

/// What an execution start resolved to.
struct Target {
    sm: StateMachineRecord,
    version_arn: Option<String>,
    alias_arn: Option<String>,
    definition: String,
}

impl Service {
    pub(crate) fn new(store: Arc<dyn SfnStore>, config: EngineConfig) -> Self {
        let region = config.region.clone();
        let account = config.account_id.clone();
        Service {
            engine: Engine::new(config),
            store,
            region,
            account,
            running: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            definitions: Mutex::new(HashMap::new()),
            generations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    fn sm_arn(&self, name: &str) -> String {
        format!("arn:aws:states:{}:{}:stateMachine:{name}", self.region, self.account)
    }

    fn exec_arn(&self, sm: &str, name: &str) -> String {
        format!("arn:aws:states:{}:{}:execution:{sm}:{name}", self.region, self.account)
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
        let mut g = self.definitions.lock().unwrap_or_else(|p| p.into_inner());
        // A bound on the cache; definitions are re-parsed after a clear, which is cheap enough.
        if g.len() >= 1024 {
            g.clear();
        }
        g.insert(text.to_owned(), Arc::clone(&def));
        Ok(def)
    }

    async fn machine(&self, name: &str, arn: &str) -> Result<StateMachineRecord, SfnError> {
        self.store.get_state_machine(name).await?.ok_or_else(|| SfnError::state_machine_does_not_exist(arn))
    }

    async fn create_state_machine(&self, req: CreateIn) -> Result<Value, SfnError> {
        arn::check_name(&req.name, "state machine")?;
        let kind = req.kind.unwrap_or_else(|| "STANDARD".into());
        if kind != "STANDARD" && kind != "EXPRESS" {
            return Err(SfnError::validation(format!("type must be STANDARD or EXPRESS, got '{kind}'")));
        }
        let def = self.definition(&req.definition)?;
        let _g = self.admin.lock().await;
        let now = Utc::now();
        let rec = StateMachineRecord {
            name: req.name.clone(),
            arn: self.sm_arn(&req.name),
            definition: req.definition,
            role_arn: req.role_arn,
            kind,
            creation_date: now,
            update_date: None,
            revision_id: uuid::Uuid::new_v4().to_string(),
            description: req.description,
            logging_configuration: req.logging_configuration,
            tracing_configuration: req.tracing_configuration,
            last_version: 0,
        };
        if let Some(existing) = self.store.get_state_machine(&req.name).await? {
            // CreateStateMachine is idempotent for an identical machine, as in AWS.
            let same =
                existing.definition == rec.definition && existing.role_arn == rec.role_arn && existing.kind == rec.kind;
            if !same || req.publish == Some(true) {
                return Err(SfnError::new(
                    "StateMachineAlreadyExists",
                    format!("State Machine Already Exists: '{}'", existing.arn),
                ));
            }
            return Ok(json!({"stateMachineArn": existing.arn, "creationDate": epoch(existing.creation_date)}));
        }
        self.store.create_state_machine(&rec).await.map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                SfnError::new("StateMachineAlreadyExists", format!("State Machine Already Exists: '{}'", rec.arn))
            }
            other => other.into(),
        })?;
        self.engine.register_state_machine(&rec.name, def);
        let mut out = Map::new();
        out.insert("stateMachineArn".into(), rec.arn.clone().into());
        out.insert("creationDate".into(), epoch(now));
        if req.publish == Some(true) {
            let v = self.publish_locked(rec, req.version_description).await?;
            out.insert("stateMachineVersionArn".into(), v.arn.into());
        }
        Ok(Value::Object(out))
    }

    /// Publishes the current revision (returning the existing version if it is already
    /// published, as AWS does). The caller holds `admin`.
    async fn publish_locked(
        &self,
        mut sm: StateMachineRecord,
        description: Option<String>,
    ) -> Result<VersionRecord, SfnError> {
        if sm.last_version > 0
            && let Some(v) = self.store.get_version(&sm.name, sm.last_version).await?
            && v.revision_id == sm.revision_id
        {
            return Ok(v);
        }
        let version = sm.last_version + 1;
        let v = VersionRecord {
            state_machine: sm.name.clone(),
            version,
            arn: format!("{}:{version}", sm.arn),
            definition: sm.definition.clone(),
            role_arn: sm.role_arn.clone(),
            kind: sm.kind.clone(),
            revision_id: sm.revision_id.clone(),
            description,
            creation_date: Utc::now(),
        };
        self.store.create_version(&v).await?;
        sm.last_version = version;
        self.store.put_state_machine(&sm).await?;
        Ok(v)
    }

    async fn update_state_machine(&self, req: UpdateIn) -> Result<Value, SfnError> {
        let name = match arn::parse_state_machine(&req.state_machine_arn)? {
            SmRef::Latest(n) => n,
            _ => {
                return Err(SfnError::validation(
                    "UpdateStateMachine takes an unqualified state machine ARN, not a version or alias ARN",
                ));
            }
        };
        if req.definition.is_none()
            && req.role_arn.is_none()
            && req.logging_configuration.is_none()
            && req.tracing_configuration.is_none()
            && req.publish != Some(true)
        {
            return Err(SfnError::new(
                "MissingRequiredParameter",
                "Update requires at least one of definition, roleArn, loggingConfiguration or tracingConfiguration",
            ));
        }
        let new_def = match &req.definition {
            Some(d) => Some(self.definition(d)?),
            None => None,
        };
        let _g = self.admin.lock().await;
        let mut sm = self.machine(&name, &req.state_machine_arn).await?;
        let changed = req.definition.as_ref().is_some_and(|d| *d != sm.definition)
            || req.role_arn.as_ref().is_some_and(|r| *r != sm.role_arn)
            || req.logging_configuration.is_some()
            || req.tracing_configuration.is_some();
        let now = Utc::now();
        if changed {
            if let Some(d) = req.definition {
                sm.definition = d;
            }
            if let Some(r) = req.role_arn {
                sm.role_arn = r;
            }
            if req.logging_configuration.is_some() {
                sm.logging_configuration = req.logging_configuration;
            }
            if req.tracing_configuration.is_some() {
                sm.tracing_configuration = req.tracing_configuration;
            }
            sm.revision_id = uuid::Uuid::new_v4().to_string();
            sm.update_date = Some(now);
            self.store.put_state_machine(&sm).await?;
            if let Some(def) = new_def {
                self.engine.register_state_machine(&sm.name, def);
            }
        }
        let mut out = Map::new();
        out.insert("updateDate".into(), epoch(sm.update_date.unwrap_or(now)));
        out.insert("revisionId".into(), sm.revision_id.clone().into());
        if req.publish == Some(true) {
            let v = self.publish_locked(sm, req.version_description).await?;
            out.insert("stateMachineVersionArn".into(), v.arn.into());
        }
        Ok(Value::Object(out))
    }

    async fn describe_state_machine(&self, req: ArnIn) -> Result<Value, SfnError> {
        let r = arn::parse_state_machine(&req.state_machine_arn)?;
        let sm = self.machine(r.name(), &req.state_machine_arn).await?;
        let mut out = Map::new();
        match r {
            SmRef::Latest(_) => {
                out.insert("stateMachineArn".into(), sm.arn.clone().into());
                out.insert("definition".into(), sm.definition.clone().into());
                out.insert("roleArn".into(), sm.role_arn.clone().into());
                out.insert("creationDate".into(), epoch(sm.creation_date));
                out.insert("revisionId".into(), sm.revision_id.clone().into());
                put_opt(&mut out, "description", sm.description.clone().map(Value::from));
            }
            SmRef::Version(name, n) => {
                let v = self
                    .store
                    .get_version(&name, n)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(&req.state_machine_arn))?;
                out.insert("stateMachineArn".into(), v.arn.into());
                out.insert("definition".into(), v.definition.into());
                out.insert("roleArn".into(), v.role_arn.into());
                out.insert("creationDate".into(), epoch(v.creation_date));
                out.insert("revisionId".into(), v.revision_id.into());
                put_opt(&mut out, "description", v.description.map(Value::from));
            }
            SmRef::Alias(..) => {
                return Err(SfnError::invalid_arn(&req.state_machine_arn));
            }
        }
        out.insert("name".into(), sm.name.into());
        out.insert("status".into(), "ACTIVE".into());
        out.insert("type".into(), sm.kind.into());
        out.insert(
            "loggingConfiguration".into(),
            sm.logging_configuration.unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
        );
        out.insert(
            "tracingConfiguration".into(),
            sm.tracing_configuration.unwrap_or_else(|| json!({"enabled": false})),
        );
        Ok(Value::Object(out))
    }

    async fn publish(&self, req: PublishIn) -> Result<Value, SfnError> {
        let name = match arn::parse_state_machine(&req.state_machine_arn)? {
            SmRef::Latest(n) => n,
            _ => return Err(SfnError::validation("PublishStateMachineVersion takes an unqualified state machine ARN")),
        };
        let _g = self.admin.lock().await;
        let sm = self.machine(&name, &req.state_machine_arn).await?;
        if let Some(r) = &req.revision_id
            && *r != sm.revision_id
        {
            return Err(SfnError::new(
                "ConflictException",
                format!("The revisionId '{r}' is not the state machine's current revision '{}'", sm.revision_id),
            ));
        }
        let v = self.publish_locked(sm, req.description).await?;
        Ok(json!({"creationDate": epoch(v.creation_date), "stateMachineVersionArn": v.arn}))
    }

    /// Checks an alias routing configuration: 1 or 2 existing versions of `sm`, weights 0..=100
    /// summing to 100.
    async fn routes(&self, sm: &str, routes: Vec<RouteIn>) -> Result<Vec<Route>, SfnError> {
        if routes.is_empty() || routes.len() > 2 {
            return Err(SfnError::validation("routingConfiguration must have 1 or 2 entries"));
        }
        let mut out = Vec::new();
        let mut total = 0i64;
        for r in routes {
            if !(0..=100).contains(&r.weight) {
                return Err(SfnError::validation(format!("weight must be between 0 and 100, got {}", r.weight)));
            }
            total += r.weight;
            match arn::parse_state_machine(&r.state_machine_version_arn)? {
                SmRef::Version(name, n) if name == sm => {
                    if self.store.get_version(&name, n).await?.is_none() {
                        return Err(SfnError::new(
                            "ResourceNotFound",
                            format!("Resource not found: '{}'", r.state_machine_version_arn),
                        ));
                    }
                }
                _ => {
                    return Err(SfnError::validation(format!(
                        "'{}' is not a version ARN of state machine '{sm}'",
                        r.state_machine_version_arn
                    )));
                }
            }
            if out.iter().any(|o: &Route| o.version_arn == r.state_machine_version_arn) {
                return Err(SfnError::validation("routingConfiguration names the same version twice"));
            }
            out.push(Route { version_arn: r.state_machine_version_arn, weight: r.weight as u32 });
        }
        if total != 100 {
            return Err(SfnError::validation(format!("routing weights must add up to 100, got {total}")));
        }
        Ok(out)
    }

    async fn create_alias(&self, req: CreateAliasIn) -> Result<Value, SfnError> {
        arn::check_name(&req.name, "alias")?;
        if req.name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SfnError::new(
                "InvalidName",
                format!("Invalid Name: '{}' (an alias name cannot be a number)", req.name),
            ));
        }
        let sm_name =
            match req.routing_configuration.first().map(|r| arn::parse_state_machine(&r.state_machine_version_arn)) {
                Some(Ok(r)) => r.name().to_owned(),
                Some(Err(e)) => return Err(e),
                None => return Err(SfnError::validation("routingConfiguration must have 1 or 2 entries")),
            };
        let _g = self.admin.lock().await;
        let sm = self.machine(&sm_name, &self.sm_arn(&sm_name)).await?;
        let routing = self.routes(&sm.name, req.routing_configuration).await?;
        let arn = format!("{}:{}", sm.arn, req.name);
        if let Some(existing) = self.store.get_alias(&sm.name, &req.name).await? {
            if existing.routing == routing && existing.description == req.description {
                return Ok(
                    json!({"stateMachineAliasArn": existing.arn, "creationDate": epoch(existing.creation_date)}),
                );
            }
            return Err(SfnError::new(
                "ConflictException",
                format!("An alias named '{}' already exists with another configuration", req.name),
            ));
        }
        let now = Utc::now();
        let rec = AliasRecord {
            state_machine: sm.name,
            name: req.name,
            arn: arn.clone(),
            description: req.description,
            routing,
            creation_date: now,
            update_date: None,
        };
        self.store.put_alias(&rec).await?;
        Ok(json!({"stateMachineAliasArn": arn, "creationDate": epoch(now)}))
    }

    async fn update_alias(&self, req: UpdateAliasIn) -> Result<Value, SfnError> {
        let (sm, alias) = match arn::parse_state_machine(&req.state_machine_alias_arn)? {
            SmRef::Alias(sm, a) => (sm, a),
            _ => return Err(SfnError::invalid_arn(&req.state_machine_alias_arn)),
        };
        if req.description.is_none() && req.routing_configuration.is_none() {
            return Err(SfnError::validation("UpdateStateMachineAlias needs a description or a routingConfiguration"));
        }
        let _g = self.admin.lock().await;
        let mut rec = self.store.get_alias(&sm, &alias).await?.ok_or_else(|| {
            SfnError::new("ResourceNotFound", format!("Resource not found: '{}'", req.state_machine_alias_arn))
        })?;
        if let Some(r) = req.routing_configuration {
            rec.routing = self.routes(&sm, r).await?;
        }
        if req.description.is_some() {
            rec.description = req.description;
        }
        let now = Utc::now();
        rec.update_date = Some(now);
        self.store.put_alias(&rec).await?;
        Ok(json!({"updateDate": epoch(now)}))
    }

    async fn list_state_machines(&self, req: PageIn) -> Result<Value, SfnError> {
        let size = page_size(req.max_results)?;
        let from = token(req.next_token.as_deref())?.unwrap_or(0) as usize;
        let all = self.store.list_state_machines().await?;
        let items: Vec<Value> = all
            .iter()
            .skip(from)
            .take(size)
            .map(|sm| json!({"stateMachineArn": sm.arn, "name": sm.name, "type": sm.kind, "creationDate": epoch(sm.creation_date)}))
            .collect();
        let mut out = json!({"stateMachines": items});
        if from + size < all.len() {
            out["nextToken"] = (from + size).to_string().into();
        }
        Ok(out)
    }

    /// Resolves a start target: the latest revision, a version, or a version picked by an
    /// alias's weights.
    async fn target(&self, arn_text: &str) -> Result<Target, SfnError> {
        let r = arn::parse_state_machine(arn_text)?;
        let sm = self.machine(r.name(), arn_text).await?;
        match r {
            SmRef::Latest(_) => {
                Ok(Target { definition: sm.definition.clone(), sm, version_arn: None, alias_arn: None })
            }
            SmRef::Version(name, n) => {
                let v = self
                    .store
                    .get_version(&name, n)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(arn_text))?;
                Ok(Target { sm, version_arn: Some(v.arn), alias_arn: None, definition: v.definition })
            }
            SmRef::Alias(name, a) => {
                let alias = self
                    .store
                    .get_alias(&name, &a)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(arn_text))?;
                let mut pick = rand::rng().random_range(0..100u32);
                let mut chosen = alias.routing.last().map(|r| r.version_arn.clone());
                for route in &alias.routing {
                    if pick < route.weight {
                        chosen = Some(route.version_arn.clone());
                        break;
                    }
                    pick -= route.weight;
                }
                let chosen = chosen.ok_or_else(|| SfnError::state_machine_does_not_exist(arn_text))?;
                let Ok(SmRef::Version(_, n)) = arn::parse_state_machine(&chosen) else {
                    return Err(SfnError::Internal(format!(
                        "alias {} routes to a non-version ARN {chosen}",
                        alias.arn
                    )));
                };
                let v = self
                    .store
                    .get_version(&name, n)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(&chosen))?;
                Ok(Target { sm, version_arn: Some(v.arn), alias_arn: Some(alias.arn), definition: v.definition })
            }
        }
    }

    async fn start_execution(self: &Arc<Self>, req: StartIn, sync: bool) -> Result<Value, SfnError> {
        let target = self.target(&req.state_machine_arn).await?;
        if sync && target.sm.kind != "EXPRESS" {
            return Err(SfnError::new(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine: StartSyncExecution needs an EXPRESS state machine",
            ));
        }
        let name = req.name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        arn::check_name(&name, "execution")?;
        let input_text = req.input.unwrap_or_else(|| "{}".into());
        if input_text.len() > MAX_PAYLOAD {
            return Err(SfnError::new(
                "InvalidExecutionInput",
                "Invalid execution input: the input exceeds 262144 bytes",
            ));
        }
        let input: Value = serde_json::from_str(&input_text).map_err(|e| {
            SfnError::new("InvalidExecutionInput", format!("Invalid execution input: the input is not JSON: {e}"))
        })?;
        let def = self.definition(&target.definition)?;
        let exec_arn = self.exec_arn(&target.sm.name, &name);
        if let Some(existing) = self.store.get_execution(&exec_arn).await? {
            return self.existing(existing, &input_text);
        }
        let now = Utc::now();
        let record = ExecutionRecord {
            arn: exec_arn.clone(),
            name: name.clone(),
            state_machine: target.sm.name.clone(),
            state_machine_arn: target.sm.arn.clone(),
            version_arn: target.version_arn,
            alias_arn: target.alias_arn,
            kind: target.sm.kind.clone(),
            status: "RUNNING".into(),
            start_date: now,
            stop_date: None,
            input: input_text.clone(),
            output: None,
            error: None,
            cause: None,
            redrive_count: 0,
            redrive_date: None,
            definition: target.definition,
            event_count: 0,
        };
        match self.store.insert_execution(&record).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Conflict) => {
                // A concurrent start with the same name won the race.
                let existing = self
                    .store
                    .get_execution(&exec_arn)
                    .await?
                    .ok_or_else(|| SfnError::execution_does_not_exist(&exec_arn))?;
                return self.existing(existing, &input_text);
            }
            Err(e) => return Err(e.into()),
        }
        let exec = self.engine.start(
            def,
            input,
            StartOptions { name: Some(name), state_machine_name: Some(target.sm.name.clone()) },
        );
        let mut done = self.drive(exec, record, 0);
        if !sync {
            return Ok(json!({"executionArn": exec_arn, "startDate": epoch(now)}));
        }
        let _ = done.wait_for(|d| *d).await;
        let rec =
            self.store.get_execution(&exec_arn).await?.ok_or_else(|| SfnError::execution_does_not_exist(&exec_arn))?;
        let mut out = Map::new();
        out.insert("executionArn".into(), rec.arn.clone().into());
        out.insert("stateMachineArn".into(), rec.version_arn.clone().unwrap_or(rec.state_machine_arn.clone()).into());
        out.insert("name".into(), rec.name.clone().into());
        out.insert("startDate".into(), epoch(rec.start_date));
        out.insert("stopDate".into(), epoch(rec.stop_date.unwrap_or_else(Utc::now)));
        out.insert("status".into(), rec.status.clone().into());
        out.insert("input".into(), rec.input.clone().into());
        out.insert("inputDetails".into(), json!({"included": true}));
        if let Some(o) = &rec.output {
            out.insert("output".into(), o.clone().into());
            out.insert("outputDetails".into(), json!({"included": true}));
        }
        put_opt(&mut out, "error", rec.error.clone().map(Value::from));
        put_opt(&mut out, "cause", rec.cause.clone().map(Value::from));
        let ms = rec.stop_date.map_or(0, |s| (s - rec.start_date).num_milliseconds().max(0));
        out.insert(
            "billingDetails".into(),
            json!({"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": ms.max(100)}),
        );
        Ok(Value::Object(out))
    }

    /// StartExecution with the name of an existing execution: the same answer if it is still
    /// RUNNING with the same input (an idempotent retry), `ExecutionAlreadyExists` otherwise.
    fn existing(&self, rec: ExecutionRecord, input_text: &str) -> Result<Value, SfnError> {
        if rec.status == "RUNNING" && rec.input == input_text {
            return Ok(json!({"executionArn": rec.arn, "startDate": epoch(rec.start_date)}));
        }
        Err(SfnError::new("ExecutionAlreadyExists", format!("Execution Already Exists: '{}'", rec.arn)))
    }

    /// Spawns the task that copies the execution's history into the store (ids shifted by
    /// `offset`) and records its outcome. The returned receiver turns `true` once both are stored.
    fn drive(self: &Arc<Self>, exec: Execution, mut record: ExecutionRecord, offset: u64) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.arn.clone(), Running { exec: exec.clone(), done: rx.clone(), generation });
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let mut last = offset;
            let mut chunks = Box::pin(exec.history().ready_chunks(512));
            while let Some(chunk) = chunks.next().await {
                let events: Vec<Value> = chunk.iter().map(|e| render(e, offset)).collect();
                last = chunk.last().map_or(last, |e| e.id + offset);
                // Events are never dropped: a store outage delays them (appends are idempotent per
                // event id), and the outcome below waits for them, so a reader that sees the
                // final status can read the whole history.
                persist(&record.arn, "history events", || svc.store.append_events(&record.arn, &events)).await;
            }
            let outcome = exec.wait().await;
            record.status = outcome.status.as_str().to_owned();
            record.stop_date = Some(outcome.stop_date);
            record.output = outcome.output.map(|o| o.to_string());
            record.error = outcome.error;
            record.cause = outcome.cause;
            record.event_count = last;
            persist(&record.arn, "the execution's outcome", || svc.store.put_execution(&record)).await;
            {
                let mut g = svc.running.lock().unwrap_or_else(|p| p.into_inner());
                if g.get(&record.arn).is_some_and(|r| r.generation == generation) {
                    g.remove(&record.arn);
                }
            }
            let _ = tx.send(true);
        });
        rx
    }

    async fn execution(&self, arn_text: &str) -> Result<ExecutionRecord, SfnError> {
        arn::parse_execution(arn_text)?;
        self.store.get_execution(arn_text).await?.ok_or_else(|| SfnError::execution_does_not_exist(arn_text))
    }

    async fn describe_execution(&self, req: ExecArnIn) -> Result<Value, SfnError> {
        let rec = self.execution(&req.execution_arn).await?;
        let mut out = Map::new();
        out.insert("executionArn".into(), rec.arn.clone().into());
        out.insert("stateMachineArn".into(), rec.state_machine_arn.clone().into());
        out.insert("name".into(), rec.name.clone().into());
        out.insert("status".into(), rec.status.clone().into());
        out.insert("startDate".into(), epoch(rec.start_date));
        put_opt(&mut out, "stopDate", rec.stop_date.map(epoch));
        out.insert("input".into(), rec.input.clone().into());
        out.insert("inputDetails".into(), json!({"included": true}));
        if let Some(o) = &rec.output {
            out.insert("output".into(), o.clone().into());
            out.insert("outputDetails".into(), json!({"included": true}));
        }
        put_opt(&mut out, "error", rec.error.clone().map(Value::from));
        put_opt(&mut out, "cause", rec.cause.clone().map(Value::from));
        put_opt(&mut out, "stateMachineVersionArn", rec.version_arn.clone().map(Value::from));
        put_opt(&mut out, "stateMachineAliasArn", rec.alias_arn.clone().map(Value::from));
        out.insert("redriveCount".into(), rec.redrive_count.into());
        put_opt(&mut out, "redriveDate", rec.redrive_date.map(epoch));
        let (status, reason) = if redrivable(&rec.status) {
            ("REDRIVABLE", None)
        } else {
            ("NOT_REDRIVABLE", Some(format!("Execution is {}", rec.status)))
        };
        out.insert("redriveStatus".into(), status.into());
        put_opt(&mut out, "redriveStatusReason", reason.map(Value::from));
        Ok(Value::Object(out))
    }

    async fn list_executions(&self, req: ListExecIn) -> Result<Value, SfnError> {
        let size = page_size(req.max_results)?;
        let from = token(req.next_token.as_deref())?.unwrap_or(0) as usize;
        let Some(sm_arn) = req.state_machine_arn else {
            return Err(SfnError::validation("ListExecutions needs a stateMachineArn (mapRunArn is not supported)"));
        };
        let mut filter = ExecutionFilter::default();
        let r = arn::parse_state_machine(&sm_arn)?;
        self.machine(r.name(), &sm_arn).await?;
        match &r {
            SmRef::Latest(n) => filter.state_machine = Some(n.clone()),
            SmRef::Version(n, _) => {
                filter.state_machine = Some(n.clone());
                filter.version_arn = Some(sm_arn.clone());
            }
            SmRef::Alias(n, _) => {
                filter.state_machine = Some(n.clone());
                filter.alias_arn = Some(sm_arn.clone());
            }
        }
        if let Some(s) = &req.status_filter {
            if !status_ok(s) {
                return Err(SfnError::validation(format!("statusFilter '{s}' is not an execution status")));
            }
            filter.status = Some(s.clone());
        }
        let mut all = self.store.list_executions(&filter).await?;
        match req.redrive_filter.as_deref() {
            None => {}
            Some("REDRIVEN") => all.retain(|e| e.redrive_count > 0),
            Some("NOT_REDRIVEN") => all.retain(|e| e.redrive_count == 0),
            Some(other) => {
                return Err(SfnError::validation(format!("redriveFilter '{other}' is not REDRIVEN or NOT_REDRIVEN")));
            }
        }
        let items: Vec<Value> = all
            .iter()
            .skip(from)
            .take(size)
            .map(|e| {
                let mut m = Map::new();
                m.insert("executionArn".into(), e.arn.clone().into());
                m.insert("stateMachineArn".into(), e.state_machine_arn.clone().into());
                m.insert("name".into(), e.name.clone().into());
                m.insert("status".into(), e.status.clone().into());
                m.insert("startDate".into(), epoch(e.start_date));
                put_opt(&mut m, "stopDate", e.stop_date.map(epoch));
                put_opt(&mut m, "stateMachineVersionArn", e.version_arn.clone().map(Value::from));
                put_opt(&mut m, "stateMachineAliasArn", e.alias_arn.clone().map(Value::from));
                m.insert("redriveCount".into(), e.redrive_count.into());
                put_opt(&mut m, "redriveDate", e.redrive_date.map(epoch));
                Value::Object(m)
            })
            .collect();
        let mut out = json!({"executions": items});
        if from + size < all.len() {
            out["nextToken"] = (from + size).to_string().into();
        }
        Ok(out)
    }

    async fn history(&self, req: HistoryIn) -> Result<Value, SfnError> {
        let size = page_size(req.max_results)?;
        self.execution(&req.execution_arn).await?;
        let reverse = req.reverse_order == Some(true);
        let from = token(req.next_token.as_deref())?.unwrap_or(if reverse { u64::MAX } else { 1 });
        let mut events = self.store.events(&req.execution_arn, from, size + 1, reverse).await?;
        let next = (events.len() > size).then(|| events.pop().map(|e| crate::store::event_id(&e))).flatten();
        if req.include_execution_data == Some(false) {
            events = events.into_iter().map(strip_data).collect();
        }
        let mut out = json!({"events": events});
        if let Some(n) = next {
            out["nextToken"] = n.to_string().into();
        }
        Ok(out)
    }

    async fn stop(&self, req: StopIn) -> Result<Value, SfnError> {
        let rec = self.execution(&req.execution_arn).await?;
        let running = {
            let g = self.running.lock().unwrap_or_else(|p| p.into_inner());
            g.get(&rec.arn).map(|r| (r.exec.clone(), r.done.clone()))
        };
        if let Some((exec, mut done)) = running {
            exec.stop(req.error, req.cause);
            // Answer once the outcome is stored, so a DescribeExecution right after sees ABORTED.
            let _ = done.wait_for(|d| *d).await;
        } else if rec.status == "RUNNING" {
            // RUNNING in the store with no engine behind it (its outcome could not be stored):
            // close it as ABORTED so it does not stay RUNNING forever.
            let mut rec = rec;
            let last = self.store.events(&rec.arn, u64::MAX, 1, true).await?;
            let last_id = last.first().map_or(0, crate::store::event_id);
            let now = Utc::now();
            let mut details = Map::new();
            put_opt(&mut details, "error", req.error.clone().map(Value::from));
            put_opt(&mut details, "cause", req.cause.clone().map(Value::from));
            let event = json!({"timestamp": epoch(now), "type": "ExecutionAborted", "id": last_id + 1,
                "previousEventId": last_id, "executionAbortedEventDetails": details});
            self.store.append_events(&rec.arn, &[event]).await?;
            rec.status = "ABORTED".into();
            rec.stop_date = Some(now);
            rec.error = req.error;
            rec.cause = req.cause;
            rec.event_count = last_id + 1;
            self.store.put_execution(&rec).await?;
        }
        let rec = self.execution(&req.execution_arn).await?;
        Ok(json!({"stopDate": epoch(rec.stop_date.unwrap_or_else(Utc::now))}))
    }

    /// Executions a previous process left RUNNING: FAILED with `Weft.EngineRestarted` and an
    /// `ExecutionFailed` event, so nothing is silently lost and they can be redriven.
    pub(crate) async fn recover(&self) -> Result<Recovery, SfnError> {
        // `states:startExecution` Tasks find stored machines by name or ARN.
        for sm in self.store.list_state_machines().await? {
            match self.definition(&sm.definition) {
                Ok(def) => self.engine.register_state_machine(&sm.name, def),
                Err(e) => tracing::warn!(state_machine = %sm.arn, error = %e, "a stored definition no longer parses"),
            }
        }
        let mut report = Recovery::default();
        for mut rec in self.store.running_executions().await? {
            if self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&rec.arn) {
                continue;
            }
            let last = self.store.events(&rec.arn, u64::MAX, 1, true).await?;
            let last_id = last.first().map_or(0, crate::store::event_id);
            let now = Utc::now();
            let cause = "The Weft process running this execution stopped before it finished (the server was restarted or \
                         crashed). Steps after the last recorded event did not complete or their results were lost; \
                         RedriveExecution resumes the execution from the state that was running.";
            let event = json!({
                "timestamp": epoch(now),
                "type": "ExecutionFailed",
                "id": last_id + 1,
                "previousEventId": last_id,
                "executionFailedEventDetails": {"error": ENGINE_RESTARTED, "cause": cause},
            });
            self.store.append_events(&rec.arn, &[event]).await?;
            rec.status = "FAILED".into();
            rec.stop_date = Some(now);
            rec.error = Some(ENGINE_RESTARTED.into());
            rec.cause = Some(cause.into());
            rec.event_count = last_id + 1;
            self.store.put_execution(&rec).await?;
            tracing::warn!(execution = %rec.arn, "execution left RUNNING by a previous process marked FAILED ({ENGINE_RESTARTED})");
            report.failed.push(rec.arn);
        }
        Ok(report)
    }

    async fn redrive(self: &Arc<Self>, req: ExecArnIn) -> Result<Value, SfnError> {
        let _g = self.admin.lock().await;
        let mut rec = self.execution(&req.execution_arn).await?;
        if !redrivable(&rec.status) {
            return Err(SfnError::new(
                "ExecutionNotRedrivable",
                format!(
                    "Execution '{}' is {}; only FAILED, TIMED_OUT and ABORTED executions can be redriven",
                    rec.arn, rec.status
                ),
            ));
        }
        let def = self.definition(&rec.definition)?;
        let def_json: Value = serde_json::from_str(&rec.definition).unwrap_or(Value::Null);
        let events = self.store.events(&rec.arn, 1, usize::MAX, false).await?;
        let input: Value = serde_json::from_str(&rec.input).unwrap_or_else(|_| json!({}));
        let (state, state_input) = redrive_point(&def_json, &events, &input).ok_or_else(|| {
            SfnError::new("ExecutionNotRedrivable", format!("Execution '{}' has no state to redrive from", rec.arn))
        })?;
        let last_id = events.last().map_or(0, crate::store::event_id);
        let now = Utc::now();
        rec.redrive_count += 1;
        rec.redrive_date = Some(now);
        rec.status = "RUNNING".into();
        rec.stop_date = None;
        rec.output = None;
        rec.error = None;
        rec.cause = None;
        let redriven_id = last_id + 1;
        let event = json!({
            "timestamp": epoch(now),
            "type": "ExecutionRedriven",
            "id": redriven_id,
            "previousEventId": last_id,
            "executionRedrivenEventDetails": {"redriveCount": rec.redrive_count},
        });
        self.store.append_events(&rec.arn, &[event]).await?;
        rec.event_count = redriven_id;
        self.store.put_execution(&rec).await?;
        let exec = self
            .engine
            .resume(
                def,
                input,
                StartOptions { name: Some(rec.name.clone()), state_machine_name: Some(rec.state_machine.clone()) },
                &state,
                state_input,
                rec.redrive_count,
            )
            .ok_or_else(|| {
                SfnError::new("ExecutionNotRedrivable", format!("state '{state}' is not a top-level state"))
            })?;
        self.drive(exec, rec, redriven_id);
        Ok(json!({"redriveDate": epoch(now)}))
    }

    fn task_callback(&self, action: &str, req: TaskIn) -> Result<Value, SfnError> {
        if req.task_token.is_empty() || req.task_token.len() > 2048 {
            return Err(SfnError::new("InvalidToken", "Invalid Token: the task token must be 1 to 2048 characters"));
        }
        let r = match action {
            "SendTaskSuccess" => {
                let text = req.output.unwrap_or_default();
                let output: Value = serde_json::from_str(&text).map_err(|e| {
                    SfnError::new("InvalidOutput", format!("Invalid Output: the output is not JSON: {e}"))
                })?;
                self.engine.send_task_success(&req.task_token, output)
            }
            "SendTaskFailure" => self.engine.send_task_failure(&req.task_token, req.error, req.cause),
            _ => self.engine.send_task_heartbeat(&req.task_token),
        };
        match r {
            Ok(()) => Ok(json!({})),
            Err(CallbackError::TaskDoesNotExist) => Err(SfnError::new(
                "TaskDoesNotExist",
                "Task Does Not Exist: no running task has this token (it finished, timed out, or its execution was stopped or restarted)",
            )),
            Err(CallbackError::InvalidOutput) => {
                Err(SfnError::new("InvalidOutput", "Invalid Output: the output exceeds 262144 bytes"))
            }
        }
    }
}

/// Where a redrive resumes: the last top-level state that was entered, with its recorded input
/// (AWS: "from the failed state"). When that state had already exited (the process died between
/// two states), the state after it with its output if the transition is static, else the state
/// itself again. With no state entered, `StartAt` with the execution input.
fn redrive_point(def: &Value, events: &[Value], input: &Value) -> Option<(String, Value)> {
    let states = def.get("States")?.as_object()?;
    let mut last: Option<(String, Value, Option<Value>)> = None;
    for ev in events {
        let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(details) = ev.get("stateEnteredEventDetails").or_else(|| ev.get("stateExitedEventDetails")) else {
            continue;
        };
        let Some(name) = details.get("name").and_then(Value::as_str) else { continue };
        if !states.contains_key(name) {
            continue;
        }
        let data = |k: &str| details.get(k).and_then(Value::as_str).and_then(|s| serde_json::from_str::<Value>(s).ok());
        if ty.ends_with("StateEntered") {
            last = Some((name.to_owned(), data("input").unwrap_or(Value::Null), None));
        } else if ty.ends_with("StateExited")
            && let Some(l) = last.as_mut()
            && l.0 == name
        {
            l.2 = data("output");
        }
    }
    match last {
        None => Some((def.get("StartAt")?.as_str()?.to_owned(), input.clone())),
        Some((name, input, None)) => Some((name, input)),
        Some((name, input, Some(output))) => {
            let st = states.get(&name)?;
            match st.get("Next").and_then(Value::as_str) {
                Some(next) => Some((next.to_owned(), output)),
                None => Some((name, input)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_points() {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Wait", "Seconds": 9, "Next": "C"}, "C": {"Type": "Succeed"}}});
        let entered =
            |n: &str, i: &str| json!({"type": "PassStateEntered", "stateEnteredEventDetails": {"name": n, "input": i}});
        let exited =
            |n: &str, o: &str| json!({"type": "PassStateExited", "stateExitedEventDetails": {"name": n, "output": o}});
        assert_eq!(redrive_point(&def, &[], &json!(1)), Some(("A".into(), json!(1))));
        assert_eq!(
            redrive_point(&def, &[entered("A", "1"), exited("A", "2"), entered("B", "2")], &json!(1)),
            Some(("B".into(), json!(2)))
        );
        assert_eq!(
            redrive_point(&def, &[entered("A", "1"), exited("A", "{\"x\":3}")], &json!(1)),
            Some(("B".into(), json!({"x": 3})))
        );
        // Events of nested states (names not at the top level) are skipped.
        assert_eq!(
            redrive_point(&def, &[entered("A", "1"), entered("inner", "5")], &json!(1)),
            Some(("A".into(), json!(1)))
        );
    }
}
