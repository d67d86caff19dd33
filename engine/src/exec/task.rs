//! Task states: classifying the `Resource` (Lambda invoke, bare Lambda ARN, `startExecution`,
//! other service integrations), history events, `TimeoutSeconds`/`HeartbeatSeconds`, task tokens
//! for `.waitForTaskToken` (registered before the invocation, removed however the task ends), and
//! child executions for `states:startExecution[.sync[:2]]` (started by the host's
//! `ChildStarter` when the engine has one, else on this engine; waited for and described here).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::io::{effective_params, eval_num};
use super::{At, Thread, fast_uuid, json_size, rt, start, ts};
use crate::children::{ChildExecution, ChildRequest};
use crate::definition::TaskSpec;
use crate::engine::{Engine, Inner, StartOptions, Status, TokenMsg};
use crate::error::{Failure, names};
use crate::history::{Details, EventType};
use crate::task::{TaskCall, TaskContext};
use crate::template::to_json_text;

/// What kind of thing a Task's `Resource` names.
pub(super) enum Target<'a> {
    /// `arn:aws:states:::lambda:invoke[.waitForTaskToken]`.
    LambdaInvoke { wait_token: bool },
    /// A bare Lambda function ARN.
    LambdaArn(&'a str),
    /// `arn:aws:states:::states:startExecution[.sync[:2]]`.
    StartExecution { sync: u8 },
    /// Any other service integration, handed to the invoker as is.
    Service { service: &'a str, wait_token: bool },
}

pub(super) fn classify(resource: &str) -> Option<Target<'_>> {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let (service, action) = rest.split_once(':')?;
        let (action, wait_token) = match action.strip_suffix(".waitForTaskToken") {
            Some(a) => (a, true),
            None => (action, false),
        };
        return Some(match (service, action) {
            ("lambda", "invoke") => Target::LambdaInvoke { wait_token },
            ("states", "startExecution") if !wait_token => Target::StartExecution { sync: 0 },
            ("states", "startExecution.sync") => Target::StartExecution { sync: 1 },
            ("states", "startExecution.sync:2") => Target::StartExecution { sync: 2 },
            _ => Target::Service { service, wait_token },
        });
    }
    let parts: Vec<&str> = resource.split(':').collect();
    if parts.len() >= 7 && parts[2] == "lambda" && parts[5] == "function" {
        return Some(Target::LambdaArn(parts[6]));
    }
    None
}

pub(super) async fn task(th: &mut Thread, at: &At<'_>, raw: &Value, t: &TaskSpec) -> Result<Value, Failure> {
    let st = at.st;
    let region = th.run.inner.config.region.clone();
    let Some(target) = classify(&t.resource) else {
        return Err(rt(at, format!("The resource '{}' is not supported by the local engine.", t.resource)));
    };
    let timeout = eval_num(th, at, &t.timeout, raw, "TimeoutSeconds", true)?.map(|s| s as u64);
    let heartbeat = eval_num(th, at, &t.heartbeat, raw, "HeartbeatSeconds", true)?.map(|s| s as u64);
    let wait_token =
        matches!(target, Target::LambdaInvoke { wait_token: true } | Target::Service { wait_token: true, .. });
    let token = wait_token.then(|| format!("{}-{}", fast_uuid(), Engine::next_id(&th.run.inner)));
    let params = {
        let at_tok = At {
            st,
            entered_id: at.entered_id,
            entered_time: at.entered_time,
            retry: at.retry,
            token: token.as_deref(),
        };
        effective_params(th, &at_tok, raw)?
    };
    if let Some(limit) = th.run.inner.config.payload_limit
        && json_size(&params) > limit
    {
        return Err(Failure::new(
            names::DATA_LIMIT_EXCEEDED,
            format!(
                "The state/task '{}' has an input with a size exceeding the maximum number of bytes service limit.",
                st.name
            ),
        ));
    }
    let (resource_type, resource) = match &target {
        Target::LambdaInvoke { .. } => {
            ("lambda".to_owned(), t.resource.trim_start_matches("arn:aws:states:::lambda:").to_owned())
        }
        Target::StartExecution { .. } => {
            ("states".to_owned(), t.resource.trim_start_matches("arn:aws:states:::states:").to_owned())
        }
        Target::Service { service, .. } => (
            service.to_string(),
            t.resource
                .trim_start_matches("arn:aws:states:::")
                .split_once(':')
                .map_or(String::new(), |x| x.1.to_owned()),
        ),
        Target::LambdaArn(_) => (String::new(), t.resource.clone()),
    };
    let bare = matches!(target, Target::LambdaArn(_));
    if bare {
        th.emit(
            EventType::LambdaFunctionScheduled,
            Details::LambdaScheduled { resource: t.resource.clone(), input: params.clone(), timeout_seconds: timeout },
        )?;
        th.emit(EventType::LambdaFunctionStarted, Details::None)?;
    } else {
        th.emit(
            EventType::TaskScheduled,
            Details::TaskScheduled {
                resource_type: resource_type.clone(),
                resource: resource.clone(),
                region,
                parameters: params.clone(),
                timeout_seconds: timeout,
                heartbeat_seconds: heartbeat,
            },
        )?;
        th.emit(
            EventType::TaskStarted,
            Details::TaskStarted { resource_type: resource_type.clone(), resource: resource.clone() },
        )?;
    }

    let ctx = TaskContext {
        execution_arn: th.run.exec_arn.to_string(),
        state_name: st.name.to_string(),
        retry_count: at.retry,
        task_token: token.clone(),
    };
    // Register the token before invoking: the function may call back before it returns.
    let mut token_rx = None;
    if let Some(tok) = &token {
        let (tx, rx) = mpsc::unbounded_channel();
        th.run.inner.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(tok.clone(), tx);
        token_rx = Some(rx);
    }
    let _guard = TokenGuard { inner: Arc::clone(&th.run.inner), token: token.clone() };
    let clock = Arc::clone(&th.run.inner.config.clock);
    let deadline = async {
        match timeout {
            Some(s) => clock.deadline(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    let invoked = match &target {
        // `.sync` children: as AWS does, `TaskSubmitted` (with the child's ARN) as soon as it
        // has started, so whoever reads the history can follow the child while it runs.
        Target::StartExecution { sync } if *sync > 0 => {
            let launched = tokio::select! {
                r = launch_child(th, &params) => r,
                _ = &mut deadline => Err(Failure { error: Some(names::TIMEOUT.into()), cause: None }),
            };
            match launched {
                Err(f) => Err(f),
                Ok(child) => {
                    let exec = &child.execution;
                    th.emit(
                        EventType::TaskSubmitted,
                        Details::TaskOutput {
                            resource_type: resource_type.clone(),
                            resource: resource.clone(),
                            output: json!({"ExecutionArn": exec.arn(), "StartDate": ts(exec.start_date())}),
                        },
                    )?;
                    tokio::select! {
                        r = await_child(&child, *sync) => r,
                        _ = &mut deadline => Err(Failure { error: Some(names::TIMEOUT.into()), cause: None }),
                    }
                }
            }
        }
        _ => tokio::select! {
            r = invoke(th, &target, &t.resource, params, ctx) => r,
            _ = &mut deadline => Err(Failure { error: Some(names::TIMEOUT.into()), cause: None }),
        },
    };
    let result = match (invoked, token_rx) {
        (Ok(submitted), Some(mut rx)) => {
            // `.waitForTaskToken`: the invocation only hands out the token; wait for the callback.
            th.emit(
                EventType::TaskSubmitted,
                Details::TaskOutput {
                    resource_type: resource_type.clone(),
                    resource: resource.clone(),
                    output: submitted,
                },
            )?;
            loop {
                let beat = async {
                    match heartbeat {
                        Some(s) => clock.deadline(Duration::from_secs(s)).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(TokenMsg::Success(v)) => break Ok(v),
                        Some(TokenMsg::Failure(f)) => break Err(f),
                        Some(TokenMsg::Heartbeat) => continue,
                        None => break Err(Failure::new(names::RUNTIME, "the callback channel closed")),
                    },
                    _ = beat => break Err(Failure { error: Some(names::HEARTBEAT_TIMEOUT.into()), cause: None }),
                    _ = &mut deadline => break Err(Failure { error: Some(names::TIMEOUT.into()), cause: None }),
                }
            }
        }
        (r, _) => r,
    };
    match result {
        Ok(v) => {
            if let Some(limit) = th.run.inner.config.payload_limit
                && json_size(&v) > limit
            {
                let f = Failure::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!(
                        "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                        st.name
                    ),
                );
                emit_task_failure(th, bare, &resource_type, &resource, &f)?;
                return Err(f);
            }
            if bare {
                th.emit(EventType::LambdaFunctionSucceeded, Details::LambdaSucceeded { output: v.clone() })?;
            } else {
                th.emit(EventType::TaskSucceeded, Details::TaskOutput { resource_type, resource, output: v.clone() })?;
            }
            Ok(v)
        }
        Err(f) => {
            emit_task_failure(th, bare, &resource_type, &resource, &f)?;
            Err(f)
        }
    }
}

pub(super) fn emit_task_failure(
    th: &mut Thread,
    bare: bool,
    resource_type: &str,
    resource: &str,
    f: &Failure,
) -> Result<(), Failure> {
    let timed_out = matches!(f.error_name(), names::TIMEOUT | names::HEARTBEAT_TIMEOUT);
    if bare {
        let ty = if timed_out { EventType::LambdaFunctionTimedOut } else { EventType::LambdaFunctionFailed };
        th.emit(ty, Details::LambdaError { error: f.error.clone(), cause: f.cause.clone() })?;
    } else {
        let ty = if timed_out { EventType::TaskTimedOut } else { EventType::TaskFailed };
        th.emit(
            ty,
            Details::TaskError {
                resource_type: resource_type.to_owned(),
                resource: resource.to_owned(),
                error: f.error.clone(),
                cause: f.cause.clone(),
            },
        )?;
    }
    Ok(())
}

/// Removes a task token from the registry when the task ends, however it ends.
pub(super) struct TokenGuard {
    inner: Arc<Inner>,
    token: Option<String>,
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.token {
            self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(t);
        }
    }
}

pub(super) async fn invoke(
    th: &Thread,
    target: &Target<'_>,
    resource: &str,
    params: Value,
    ctx: TaskContext,
) -> Result<Value, Failure> {
    let invoker = Arc::clone(&th.run.inner.config.invoker);
    match target {
        Target::LambdaInvoke { wait_token } => {
            let Some(obj) = params.as_object() else {
                return Err(Failure::new(names::RUNTIME, "lambda:invoke needs Parameters with FunctionName"));
            };
            let Some(fname) = obj.get("FunctionName").and_then(Value::as_str) else {
                return Err(Failure::new(
                    names::RUNTIME,
                    "The field 'FunctionName' is required by lambda:invoke but was not found in the Parameters.",
                ));
            };
            let payload = obj.get("Payload").cloned().unwrap_or(Value::Object(Map::new()));
            let call =
                TaskCall { resource: resource.to_owned(), function_name: fname.to_owned(), payload, context: ctx };
            let out = invoker.invoke(call).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })?;
            let wrapped = json!({
                "ExecutedVersion": "$LATEST",
                "Payload": out,
                "SdkHttpMetadata": {"HttpHeaders": {"Content-Type": "application/json"}, "HttpStatusCode": 200},
                "SdkResponseMetadata": {"RequestId": uuid::Uuid::new_v4().to_string()},
                "StatusCode": 200,
            });
            let _ = wait_token;
            Ok(wrapped)
        }
        Target::LambdaArn(name) => {
            let call = TaskCall {
                resource: resource.to_owned(),
                function_name: (*name).to_owned(),
                payload: params,
                context: ctx,
            };
            invoker.invoke(call).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })
        }
        Target::Service { .. } => {
            let call =
                TaskCall { resource: resource.to_owned(), function_name: String::new(), payload: params, context: ctx };
            invoker.invoke(call).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })
        }
        Target::StartExecution { sync } => {
            let child = launch_child(th, &params).await?;
            if *sync == 0 {
                let exec = &child.execution;
                return Ok(json!({"ExecutionArn": exec.arn(), "StartDate": ts(exec.start_date())}));
            }
            await_child(&child, *sync).await
        }
    }
}

/// `states:startExecution[.sync[:2]]`: starts the child execution, through the host's
/// [`crate::ChildStarter`] when there is one, otherwise on this engine from the registered
/// definitions; [`await_child`] then waits for a `.sync` one, the same way for both.
pub(super) async fn launch_child(th: &Thread, params: &Value) -> Result<ChildExecution, Failure> {
    let inner = &th.run.inner;
    let Some(arn) = params.get("StateMachineArn").and_then(Value::as_str) else {
        return Err(Failure::new(names::RUNTIME, "startExecution needs Parameters.StateMachineArn"));
    };
    let input = match params.get("Input") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
        None => Value::Object(Map::new()),
    };
    let name = params.get("Name").and_then(Value::as_str).map(str::to_owned);
    let child = match &inner.config.children {
        Some(starter) => {
            let request = ChildRequest {
                parent_execution_arn: th.run.exec_arn.to_string(),
                state_machine_arn: arn.to_owned(),
                input: input.clone(),
                name,
            };
            starter.start_child(request).await.map_err(|e| Failure { error: Some(e.error), cause: Some(e.cause) })?
        }
        None => {
            let def = inner.machines.read().unwrap_or_else(|p| p.into_inner()).get(arn).cloned();
            let Some(def) = def else {
                return Err(Failure::new(
                    "StepFunctions.StateMachineDoesNotExistException",
                    format!("State Machine Does Not Exist: '{arn}'"),
                ));
            };
            let sm_name = arn.rsplit(':').next().unwrap_or("child").to_owned();
            let options = StartOptions { name, state_machine_name: Some(sm_name) };
            ChildExecution::from(start(Arc::clone(inner), def, input.clone(), options))
        }
    };
    Ok(child)
}

/// Waits for a `.sync` (`sync` 1) or `.sync:2` (2) child and answers its description, or fails
/// with `States.TaskFailed` (`States.Timeout` for a timed-out child) with it as the cause.
pub(super) async fn await_child(child: &ChildExecution, sync: u8) -> Result<Value, Failure> {
    let exec = &child.execution;
    let o = exec.wait().await;
    let as_field = |v: &Value| if sync == 2 { v.clone() } else { Value::String(to_json_text(v)) };
    // DescribeExecution's document, with the SDK integration's capitalised field names.
    let mut desc = Map::new();
    desc.insert("ExecutionArn".into(), exec.arn().into());
    desc.insert("Input".into(), as_field(exec.input()));
    desc.insert("InputDetails".into(), json!({"Included": true}));
    desc.insert("Name".into(), exec.name().into());
    desc.insert("RedriveCount".into(), 0.into());
    desc.insert("RedriveStatus".into(), "NOT_REDRIVABLE".into());
    desc.insert("StartDate".into(), ts(o.start_date).into());
    desc.insert("StateMachineArn".into(), exec.state_machine_arn().into());
    if let Some(a) = &child.alias_arn {
        desc.insert("StateMachineAliasArn".into(), a.clone().into());
    }
    if let Some(v) = &child.version_arn {
        desc.insert("StateMachineVersionArn".into(), v.clone().into());
    }
    desc.insert("Status".into(), o.status.as_str().into());
    desc.insert("StopDate".into(), ts(o.stop_date).into());
    match o.status {
        Status::Succeeded => {
            desc.insert("Output".into(), as_field(o.output.as_ref().unwrap_or(&Value::Null)));
            desc.insert("OutputDetails".into(), json!({"Included": true}));
            Ok(Value::Object(desc))
        }
        _ => {
            if let Some(e) = &o.error {
                desc.insert("Error".into(), e.clone().into());
            }
            if let Some(c) = &o.cause {
                desc.insert("Cause".into(), c.clone().into());
            }
            let error = match o.status {
                Status::TimedOut => names::TIMEOUT,
                _ => names::TASK_FAILED,
            };
            Err(Failure::new(error, to_json_text(&Value::Object(desc))))
        }
    }
}
