//! Task states end to end: lambda:invoke and bare ARNs through in-process invokers and through the
//! Lambda HTTP Invoke API on a real 127.0.0.1 server, Retry/Catch, timeouts, heartbeats,
//! `.waitForTaskToken` callbacks, `startExecution.sync:2` child executions, stop, history.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{
    Definition, Engine, EngineConfig, EventType, LambdaHttpInvoker, StartOptions, Status, TaskCall, TaskFailure,
    TaskInvoker,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Handler = dyn Fn(TaskCall, u32) -> futures::future::BoxFuture<'static, Result<Value, TaskFailure>> + Send + Sync;

/// In-process functions by name: the same kind of invoker `weft run` uses.
struct Functions {
    handler: Box<Handler>,
    calls: AtomicU32,
    seen: Mutex<Vec<TaskCall>>,
}

#[async_trait::async_trait]
impl TaskInvoker for Functions {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().expect("lock").push(call.clone());
        (self.handler)(call, n).await
    }
}

fn functions<F, Fut>(f: F) -> Arc<Functions>
where
    F: Fn(TaskCall, u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, TaskFailure>> + Send + 'static,
{
    Arc::new(Functions {
        handler: Box::new(move |c, n| Box::pin(f(c, n))),
        calls: AtomicU32::new(0),
        seen: Mutex::new(vec![]),
    })
}

fn def(v: Value) -> Arc<Definition> {
    Arc::new(Definition::parse(&v).expect("valid definition"))
}

fn lambda_task(extra: Value) -> Value {
    let mut t = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
        "End": true
    });
    if let (Some(t), Some(e)) = (t.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
    json!({"StartAt": "T", "States": {"T": t}})
}

#[tokio::test]
async fn lambda_invoke_wraps_the_payload_and_records_task_events() {
    let f = functions(|c, _| async move { Ok(json!({"got": c.payload, "fn": c.function_name})) });
    let engine = Engine::new(EngineConfig::new(f.clone()));
    let exec = engine.start(
        def(lambda_task(json!({"ResultSelector": {"p.$": "$.Payload", "code.$": "$.StatusCode"}}))),
        json!({"x": 1}),
        StartOptions::default(),
    );
    let o = exec.wait().await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(o.output, Some(json!({"p": {"got": {"x": 1}, "fn": "echo"}, "code": 200})));
    let types: Vec<EventType> = exec.history_snapshot().iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![
            EventType::ExecutionStarted,
            EventType::TaskStateEntered,
            EventType::TaskScheduled,
            EventType::TaskStarted,
            EventType::TaskSucceeded,
            EventType::TaskStateExited,
            EventType::ExecutionSucceeded
        ]
    );
    for (i, e) in exec.history_snapshot().iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert_eq!(e.previous_event_id, i as u64);
    }
    let scheduled = exec.history_snapshot()[2].to_aws_json();
    assert_eq!(scheduled["taskScheduledEventDetails"]["resource"], "invoke");
    assert_eq!(
        scheduled["taskScheduledEventDetails"]["parameters"],
        json!(r#"{"FunctionName":"echo","Payload":{"x":1}}"#)
    );
}

#[tokio::test]
async fn bare_lambda_arn_passes_the_input_and_returns_the_raw_result() {
    let f = functions(|c, _| async move { Ok(json!({"name": c.function_name, "in": c.payload})) });
    let engine = Engine::new(EngineConfig::new(f));
    let d = def(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:doit", "End": true}}}),
    );
    let exec = engine.start(d, json!([1]), StartOptions::default());
    let o = exec.wait().await;
    assert_eq!(o.output, Some(json!({"name": "doit", "in": [1]})));
    assert!(exec.history_snapshot().iter().any(|e| e.event_type == EventType::LambdaFunctionSucceeded));
}

#[tokio::test(start_paused = true)]
async fn retry_backs_off_then_succeeds_with_retry_count_in_context() {
    let f = functions(|c, n| async move {
        if n < 2 {
            Err(TaskFailure { error: "Custom.Flaky".into(), cause: format!("attempt {n}") })
        } else {
            Ok(json!({"retry": c.context.retry_count}))
        }
    });
    let engine = Engine::new(EngineConfig::new(f.clone()));
    let d = def(lambda_task(json!({
        "Parameters": {"FunctionName": "f", "Payload": {"rc.$": "$$.State.RetryCount"}},
        "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 5}, {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 2}],
        "OutputPath": "$.Payload"
    })));
    let t0 = tokio::time::Instant::now();
    let o = engine.run(d, json!({})).await;
    assert_eq!(o.output, Some(json!({"retry": 2})), "{o:?}");
    assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    // 2 s then 2*3 = 6 s of backoff on the paused clock.
    assert_eq!(t0.elapsed().as_secs(), 8);
    let payloads: Vec<Value> = f.seen.lock().expect("lock").iter().map(|c| c.payload.clone()).collect();
    assert_eq!(payloads, vec![json!({"rc": 0}), json!({"rc": 1}), json!({"rc": 2})]);
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_then_catch_with_result_path() {
    let f = functions(|_, _| async { Err(TaskFailure { error: "Boom".into(), cause: "bad".into() }) });
    let engine = Engine::new(EngineConfig::new(f.clone()));
    let d = def(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f"},
              "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 1}],
              "Catch": [{"ErrorEquals": ["Nope"], "Next": "Never"}, {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Handled"}],
              "End": true},
        "Never": {"Type": "Fail", "Error": "Wrong"},
        "Handled": {"Type": "Pass", "End": true}}}));
    let o = engine.run(d, json!({"keep": true})).await;
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(o.output, Some(json!({"keep": true, "err": {"Error": "Boom", "Cause": "bad"}})));
    assert_eq!(f.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn uncaught_task_failure_fails_the_execution() {
    let f = functions(|_, _| async { Err(TaskFailure { error: "Boom".into(), cause: "bad".into() }) });
    let engine = Engine::new(EngineConfig::new(f));
    let o = engine.run(def(lambda_task(json!({}))), json!({})).await;
    assert_eq!((o.status, o.error.as_deref(), o.cause.as_deref()), (Status::Failed, Some("Boom"), Some("bad")));
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_raises_states_timeout_which_task_failed_does_not_catch() {
    let f = functions(|_, _| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(json!(1))
    });
    let engine = Engine::new(EngineConfig::new(f));
    let mut v = lambda_task(
        json!({"TimeoutSeconds": 5, "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "C"}], "End": true}),
    );
    v["States"]["C"] = json!({"Type": "Succeed"});
    let d2 = def(v);
    let exec = engine.start(d2, json!({}), StartOptions::default());
    let o = exec.wait().await;
    assert_eq!(o.error.as_deref(), Some("States.Timeout"), "{o:?}");
    assert!(exec.history_snapshot().iter().any(|e| e.event_type == EventType::TaskTimedOut));
}

/// An invoker that hands the task token to the test, as a function that queues work would.
fn token_sink() -> (Arc<Functions>, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let f = functions(move |c, _| {
        let tx = tx.clone();
        async move {
            let token = c.payload["token"].as_str().map(str::to_owned).unwrap_or_default();
            assert_eq!(c.context.task_token.as_deref(), Some(token.as_str()));
            let _ = tx.send(token);
            Ok(json!("queued"))
        }
    });
    (f, rx)
}

fn callback_def(extra: Value) -> Arc<Definition> {
    def(lambda_task(
        json!({
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "q", "Payload": {"token.$": "$$.Task.Token"}}
        })
        .as_object()
        .map(|o| {
            let mut o = o.clone();
            if let Some(e) = extra.as_object() {
                o.extend(e.clone());
            }
            Value::Object(o)
        })
        .unwrap_or_default(),
    ))
}

#[tokio::test]
async fn wait_for_task_token_completes_on_send_task_success() {
    let (f, mut tokens) = token_sink();
    let engine = Engine::new(EngineConfig::new(f));
    let exec = engine.start(callback_def(json!({})), json!({}), StartOptions::default());
    let token = tokens.recv().await.expect("the function got the token");
    assert!(engine.send_task_heartbeat(&token).is_ok());
    engine.send_task_success(&token, json!({"approved": true})).expect("token is live");
    let o = exec.wait().await;
    assert_eq!(o.output, Some(json!({"approved": true})), "{o:?}");
    assert!(exec.history_snapshot().iter().any(|e| e.event_type == EventType::TaskSubmitted));
    // The token is gone once the task ended.
    assert!(engine.send_task_success(&token, json!(1)).is_err());
}

#[tokio::test]
async fn wait_for_task_token_fails_on_send_task_failure() {
    let (f, mut tokens) = token_sink();
    let engine = Engine::new(EngineConfig::new(f));
    let exec = engine.start(callback_def(json!({})), json!({}), StartOptions::default());
    let token = tokens.recv().await.expect("token");
    engine.send_task_failure(&token, Some("Rejected".into()), Some("no".into())).expect("live");
    let o = exec.wait().await;
    assert_eq!((o.error.as_deref(), o.cause.as_deref()), (Some("Rejected"), Some("no")));
}

#[tokio::test(start_paused = true)]
async fn heartbeat_timeout_without_heartbeats() {
    let (f, mut tokens) = token_sink();
    let engine = Engine::new(EngineConfig::new(f));
    let exec = engine.start(
        callback_def(json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 100})),
        json!({}),
        StartOptions::default(),
    );
    let token = tokens.recv().await.expect("token");
    tokio::time::sleep(Duration::from_secs(6)).await;
    engine.send_task_heartbeat(&token).expect("live");
    let t0 = tokio::time::Instant::now();
    let o = exec.wait().await;
    assert_eq!(o.error.as_deref(), Some("States.HeartbeatTimeout"));
    // The heartbeat at 6 s restarted the 10 s timer.
    assert_eq!(t0.elapsed().as_secs(), 10);
}

#[tokio::test]
async fn start_execution_sync_2_runs_a_child_and_returns_its_output() {
    let engine = Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)));
    let child = def(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": true}}}),
    );
    engine.register_state_machine("child", child);
    let parent = def(json!({"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": engine.state_machine_arn("child"), "Input": {"n.$": "$.n"}},
        "OutputPath": "$.Output", "End": true}}}));
    let o = engine.run(parent, json!({"n": 21})).await;
    assert_eq!(o.output, Some(json!({"doubled": 42})), "{o:?}");

    let failing = def(json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ChildErr", "Cause": "c"}}}));
    engine.register_state_machine("failing", failing);
    let parent = def(json!({"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": "failing"}, "End": true}}}));
    let o = engine.run(parent, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.TaskFailed"));
    let cause: Value = serde_json::from_str(o.cause.as_deref().unwrap_or("")).expect("cause is JSON");
    assert_eq!((cause["Status"].as_str(), cause["Error"].as_str()), (Some("FAILED"), Some("ChildErr")));
}

#[tokio::test]
async fn stop_aborts_a_running_execution() {
    let engine = Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)));
    let d = def(json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}));
    let exec = engine.start(d, json!({}), StartOptions { name: Some("to-stop".into()), ..Default::default() });
    let mut history = Box::pin(exec.history());
    // Wait until the Wait state is entered, following the history live.
    while let Some(e) = history.next().await {
        if e.event_type == EventType::WaitStateEntered {
            break;
        }
    }
    exec.stop(Some("User.Stop".into()), Some("enough".into()));
    let o = exec.wait().await;
    assert_eq!((o.status, o.error.as_deref()), (Status::Aborted, Some("User.Stop")));
    let rest: Vec<_> = history.collect().await;
    assert_eq!(rest.last().map(|e| e.event_type), Some(EventType::ExecutionAborted));
    assert!(exec.arn().ends_with(":execution:weft:to-stop"));
}

#[tokio::test(start_paused = true)]
async fn execution_timeout_times_out() {
    let engine = Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)));
    let d = def(
        json!({"TimeoutSeconds": 5, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}}),
    );
    let o = engine.run(d, json!({})).await;
    assert_eq!((o.status, o.error.as_deref()), (Status::TimedOut, Some("States.Timeout")));
}

#[tokio::test(start_paused = true)]
async fn map_iterations_and_parallel_branches_run_concurrently() {
    let f = functions(|c, _| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(c.payload)
    });
    let engine = Engine::new(EngineConfig::new(f));
    let task = json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:slow", "End": true});
    let d = def(json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "T", "States": {"T": task}}, "Next": "P"},
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "T", "States": {"T": task}}, {"StartAt": "T", "States": {"T": task}}], "End": true}}}));
    let t0 = tokio::time::Instant::now();
    let o = engine.run(d, json!([1, 2, 3, 4, 5])).await;
    assert_eq!(o.output, Some(json!([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]])), "{o:?}");
    assert_eq!(t0.elapsed().as_secs(), 20, "5 iterations in 10 s, then 2 branches in 10 s");
}

#[tokio::test]
async fn oversized_task_result_is_data_limit_exceeded() {
    let f = functions(|_, _| async { Ok(json!("x".repeat(300 * 1024))) });
    let engine = Engine::new(EngineConfig::new(f));
    let o = engine.run(def(lambda_task(json!({}))), json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.DataLimitExceeded"), "{o:?}");
}

#[tokio::test]
async fn history_limit_fails_the_execution() {
    let mut cfg = EngineConfig::new(Arc::new(engine::task::NoInvoker));
    cfg.history_limit = 10;
    let engine = Engine::new(cfg);
    let mut states = serde_json::Map::new();
    for i in 0..20 {
        let mut s = json!({"Type": "Pass"});
        if i == 19 {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    let o = engine.run(def(json!({"StartAt": "S0", "States": states})), json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
}

/// A minimal Lambda Invoke API server on 127.0.0.1: `ok` echoes, `fails` returns a function
/// error, anything else is 404.
async fn lambda_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).into_owned();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < i + 4 + len {
                            let n = sock.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[i + 4..].to_vec());
                    }
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, extra, body) = match path.as_str() {
                    "/2015-03-31/functions/ok/invocations" => {
                        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        ("200 OK", "", json!({"echo": input}).to_string())
                    }
                    "/2015-03-31/functions/fails/invocations" => (
                        "200 OK",
                        "X-Amz-Function-Error: Unhandled\r\n",
                        json!({"errorType": "Node.Failed", "errorMessage": "it broke"}).to_string(),
                    ),
                    _ => ("404 Not Found", "", json!({"Message": "Function not found"}).to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn lambda_http_invoker_calls_the_invoke_api() {
    let url = lambda_server().await;
    let engine = Engine::new(EngineConfig::new(Arc::new(LambdaHttpInvoker::new(url))));
    let ok = def(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:ok", "Payload": {"a.$": "$.a"}},
        "OutputPath": "$.Payload", "End": true}}}));
    let o = engine.run(ok, json!({"a": [1, "two"]})).await;
    assert_eq!(o.output, Some(json!({"echo": {"a": [1, "two"]}})), "{o:?}");

    let fails = def(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:fails", "End": true}}}),
    );
    let o = engine.run(fails, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("Node.Failed"));
    assert!(o.cause.as_deref().is_some_and(|c| c.contains("it broke")), "{o:?}");

    let missing = def(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:nope", "End": true}}}),
    );
    let o = engine.run(missing, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("Lambda.ResourceNotFoundException"));
}
