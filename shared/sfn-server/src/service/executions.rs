//! Executions: StartExecution and StartSyncExecution (what a start resolves to: the latest
//! revision, a version, or a version an alias picks by weight; and [`Service::launch`], the part
//! of a start that child executions share), DescribeExecution,
//! ListExecutions, GetExecutionHistory, StopExecution, and SendTask{Success,Failure,Heartbeat}
//! for `.waitForTaskToken` Tasks. Running executions are the engine's; what clients read comes
//! from the store, which [`Service::drive`] keeps up to date.

use std::sync::Arc;

use arn::{ExecutionArn, Qualifier};
use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde_json::{Map, Value, json};

use engine::{CallbackError, Execution, StartOptions};

use super::driver::Done;
use super::input::{self, ExecArnIn, HistoryIn, ListExecIn, StartIn, StopIn, TaskIn};
use super::{Ending, Service, epoch, put_opt, redrivable};
use crate::error::SfnError;
use crate::store::{ExecutionFilter, ExecutionRecord, StateMachineRecord, StoreError, event_id};

const MAX_PAYLOAD: usize = 256 * 1024;

/// An execution input over Step Functions' limit is `InvalidExecutionInput`.
pub(super) fn check_payload(input_text: &str) -> Result<(), SfnError> {
    if input_text.len() > MAX_PAYLOAD {
        return Err(SfnError::new("InvalidExecutionInput", "Invalid execution input: the input exceeds 262144 bytes"));
    }
    Ok(())
}

fn status_ok(s: &str) -> bool {
    matches!(s, "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED")
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

/// What an execution start resolved to.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) sm: StateMachineRecord,
    pub(super) version_arn: Option<String>,
    pub(super) alias_arn: Option<String>,
    definition: String,
}

/// What [`Service::launch`] did.
pub(super) enum Launched {
    /// A new execution, running on the engine, its driver started.
    Started { exec: Execution, done: Done, arn: String, start_date: DateTime<Utc> },
    /// An execution of that name existed already (the caller decides: idempotent or a conflict),
    /// and the input text the start was given.
    Existing(Box<ExecutionRecord>, String),
}

/// The fields DescribeExecution and the StartSyncExecution answer share, as DescribeExecution
/// has them.
fn execution_document(rec: &ExecutionRecord) -> Map<String, Value> {
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
    out
}

impl Service {
    /// Resolves a start target: the latest revision, a version, or a version picked by an
    /// alias's weights.
    pub(super) async fn target(&self, arn_text: &str) -> Result<Target, SfnError> {
        let r = input::state_machine_arn(arn_text)?;
        if let Some(t) = self.version_targets.lock().unwrap_or_else(|p| p.into_inner()).get(arn_text) {
            return Ok(t.clone());
        }
        let sm = self.machine(r.name, arn_text).await?;
        match r.qualifier {
            None => Ok(Target { definition: sm.definition.clone(), sm, version_arn: None, alias_arn: None }),
            Some(Qualifier::Version(n)) => {
                let v = self
                    .store
                    .get_version(r.name, n)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(arn_text))?;
                let target = Target { sm, version_arn: Some(v.arn), alias_arn: None, definition: v.definition };
                super::remember(&self.version_targets, arn_text.to_owned(), target.clone());
                Ok(target)
            }
            Some(Qualifier::Alias(a)) => {
                let alias = self
                    .store
                    .get_alias(r.name, a)
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
                let Ok(Some(Qualifier::Version(n))) = input::state_machine_arn(&chosen).map(|c| c.qualifier) else {
                    return Err(SfnError::Internal(format!(
                        "alias {} routes to a non-version ARN {chosen}",
                        alias.arn
                    )));
                };
                let v = self
                    .store
                    .get_version(r.name, n)
                    .await?
                    .ok_or_else(|| SfnError::state_machine_does_not_exist(&chosen))?;
                Ok(Target { sm, version_arn: Some(v.arn), alias_arn: Some(alias.arn), definition: v.definition })
            }
        }
    }

    /// What every start shares (StartExecution, StartSyncExecution and the child executions of
    /// `states:startExecution` Tasks): the name and payload checks, the record (with the
    /// version and alias `target` resolved to), its insertion, the engine's start and the
    /// driver, which announces the end with `announce`. `input` is `input_text` parsed, when the
    /// caller has it already.
    pub(super) async fn launch(
        self: &Arc<Self>,
        target: Target,
        name: String,
        input_text: String,
        input: Option<Value>,
        announce: bool,
    ) -> Result<Launched, SfnError> {
        input::check_name(&name, "execution")?;
        check_payload(&input_text)?;
        let input: Value = match input {
            Some(v) => v,
            None => serde_json::from_str(&input_text).map_err(|e| {
                SfnError::new("InvalidExecutionInput", format!("Invalid execution input: the input is not JSON: {e}"))
            })?,
        };
        let def = self.definition(&target.definition)?;
        let exec_arn = ExecutionArn::new(&self.region, &self.account, &target.sm.name, &name).to_string();
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
            input: input_text,
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
            Err(StoreError::Conflict) => {
                // An execution of this name exists: an earlier start, or a concurrent one that won.
                let existing = self
                    .store
                    .get_execution(&exec_arn)
                    .await?
                    .ok_or_else(|| SfnError::execution_does_not_exist(&exec_arn))?;
                return Ok(Launched::Existing(Box::new(existing), record.input));
            }
            Err(e) => return Err(e.into()),
        }
        let exec = self.engine.start(
            def,
            input,
            StartOptions { name: Some(name), state_machine_name: Some(target.sm.name.clone()) },
        );
        let done = self.drive(exec.clone(), record, 0, announce);
        Ok(Launched::Started { exec, done, arn: exec_arn, start_date: now })
    }

    pub(super) async fn start_execution(self: &Arc<Self>, req: StartIn, sync: bool) -> Result<Value, SfnError> {
        let target = self.target(&req.state_machine_arn).await?;
        if sync && target.sm.kind != "EXPRESS" {
            return Err(SfnError::new(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine: StartSyncExecution needs an EXPRESS state machine",
            ));
        }
        let name = req.name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let input_text = req.input.unwrap_or_else(|| "{}".into());
        // Only asynchronous starts are announced: a synchronous caller gets the outcome itself.
        let (mut done, exec_arn, now) = match self.launch(target, name, input_text, None, !sync).await? {
            Launched::Existing(existing, input_text) => return self.existing(*existing, &input_text),
            Launched::Started { done, arn, start_date, .. } => (done, arn, start_date),
        };
        if !sync {
            return Ok(json!({"executionArn": exec_arn, "startDate": epoch(now)}));
        }
        let rec = match done.wait_for(Option::is_some).await.ok().and_then(|d| d.clone()) {
            Some(rec) => rec,
            None => Arc::new(
                self.store
                    .get_execution(&exec_arn)
                    .await?
                    .ok_or_else(|| SfnError::execution_does_not_exist(&exec_arn))?,
            ),
        };
        // DescribeExecution's fields, except that the state machine is the version that ran, the
        // stop date is always there, and the redrive fields are not (EXPRESS executions cannot be
        // redriven); plus what the run is billed for.
        let mut out = execution_document(&rec);
        out.insert("stateMachineArn".into(), rec.version_arn.clone().unwrap_or(rec.state_machine_arn.clone()).into());
        out.insert("stopDate".into(), epoch(rec.stop_date.unwrap_or_else(Utc::now)));
        let ms = rec.stop_date.map_or(0, |s| (s - rec.start_date).num_milliseconds().max(0));
        out.insert(
            "billingDetails".into(),
            json!({"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": ms.max(100)}),
        );
        Ok(Value::Object(out))
    }

    /// StartExecution with the name of an existing execution: the same answer if it is still
    /// RUNNING with the same input (an idempotent retry), `ExecutionAlreadyExists` otherwise.
    pub(super) fn existing(&self, rec: ExecutionRecord, input_text: &str) -> Result<Value, SfnError> {
        if rec.status == "RUNNING" && rec.input == input_text {
            return Ok(json!({"executionArn": rec.arn, "startDate": epoch(rec.start_date)}));
        }
        Err(SfnError::new("ExecutionAlreadyExists", format!("Execution Already Exists: '{}'", rec.arn)))
    }

    pub(super) async fn describe_execution(&self, req: ExecArnIn) -> Result<Value, SfnError> {
        let rec = self.execution(&req.execution_arn).await?;
        let mut out = execution_document(&rec);
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

    pub(super) async fn list_executions(&self, req: ListExecIn) -> Result<Value, SfnError> {
        let size = input::page_size(req.max_results)?;
        let from = input::token(req.next_token.as_deref())?.unwrap_or(0) as usize;
        let Some(sm_arn) = req.state_machine_arn else {
            return Err(SfnError::validation("ListExecutions needs a stateMachineArn (mapRunArn is not supported)"));
        };
        let mut filter = ExecutionFilter::default();
        let r = input::state_machine_arn(&sm_arn)?;
        self.machine(r.name, &sm_arn).await?;
        filter.state_machine = Some(r.name.to_owned());
        match r.qualifier {
            None => {}
            Some(Qualifier::Version(_)) => filter.version_arn = Some(sm_arn.clone()),
            Some(Qualifier::Alias(_)) => filter.alias_arn = Some(sm_arn.clone()),
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

    pub(super) async fn history(&self, req: HistoryIn) -> Result<Value, SfnError> {
        let size = input::page_size(req.max_results)?;
        input::execution_arn(&req.execution_arn)?;
        let reverse = req.reverse_order == Some(true);
        let from = input::token(req.next_token.as_deref())?.unwrap_or(if reverse { u64::MAX } else { 1 });
        let ended = self.recent().get(&req.execution_arn);
        let mut events = match ended {
            Some(ended) => ended.page(from, size + 1, reverse),
            None => {
                self.execution(&req.execution_arn).await?;
                self.store.events(&req.execution_arn, from, size + 1, reverse).await?
            }
        };
        let next = (events.len() > size).then(|| events.pop().map(|e| event_id(&e))).flatten();
        if req.include_execution_data == Some(false) {
            events = events.into_iter().map(strip_data).collect();
        }
        let mut out = json!({"events": events});
        if let Some(n) = next {
            out["nextToken"] = n.to_string().into();
        }
        Ok(out)
    }

    pub(super) async fn stop(&self, req: StopIn) -> Result<Value, SfnError> {
        let rec = self.execution(&req.execution_arn).await?;
        let running = {
            let g = self.running.lock().unwrap_or_else(|p| p.into_inner());
            g.get(&rec.arn).map(|r| (r.exec.clone(), r.done.clone()))
        };
        if let Some((exec, mut done)) = running {
            exec.stop(req.error, req.cause);
            // Answer once the outcome is stored, so a DescribeExecution right after sees ABORTED.
            let _ = done.wait_for(Option::is_some).await;
        } else if rec.status == "RUNNING" {
            // RUNNING in the store with no engine behind it (its outcome could not be stored):
            // close it as ABORTED so it does not stay RUNNING forever.
            self.end_in_store(rec, Ending::Aborted, req.error, req.cause).await?;
        }
        let rec = self.execution(&req.execution_arn).await?;
        Ok(json!({"stopDate": epoch(rec.stop_date.unwrap_or_else(Utc::now))}))
    }

    pub(super) fn task_callback(&self, action: &str, req: TaskIn) -> Result<Value, SfnError> {
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
