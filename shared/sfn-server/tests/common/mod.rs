//! Test support: a real endpoint on 127.0.0.1 with the in-process node functions, and a client.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use engine::EngineConfig;
use fn_code::{CodeFunction, Limits};
use fn_http::{HttpFunction, Settings};
use local_functions::{LocalFunctions, fn_code, fn_http};
use serde_json::{Value, json};
use sfn_server::{Credentials, SfnState, SfnStore, Verifier};

pub const ROLE: &str = "arn:aws:iam::123456789012:role/weft";
pub const ACCESS_KEY_ID: &str = "AKIDWEFTTEST0001";
pub const SECRET_ACCESS_KEY: &str = "weft-test-secret-0123456789abcdefghijklm";

/// The credentials every test endpoint accepts.
pub fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
}

pub fn invoker() -> Arc<LocalFunctions> {
    let http = HttpFunction::new(Settings::allowing(&["127.0.0.1"]).unwrap()).unwrap();
    let code = CodeFunction::new(Limits { timeout: Duration::from_secs(5), ..Limits::default() });
    Arc::new(LocalFunctions::new(http, code))
}

pub fn config() -> EngineConfig {
    EngineConfig::new(invoker())
}

pub struct Server {
    pub url: String,
    pub state: SfnState,
    pub client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `state` on an ephemeral 127.0.0.1 port in the current runtime, accepting requests
/// signed with [`credentials`]; the client signs with them.
pub async fn serve(state: SfnState) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = sfn_server::router(state.clone(), Verifier::new([credentials()]));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let client = sfn_server::sdk::local_client(&url, &credentials());
    Server { url, state, client, task }
}

pub async fn memory_server() -> Server {
    memory_server_with(config()).await
}

pub async fn memory_server_with(config: EngineConfig) -> Server {
    let store: Arc<dyn SfnStore> = Arc::new(sfn_server::MemoryStore::new());
    serve(SfnState::open(store, config).await.unwrap()).await
}

/// A Task state running the `code` node function with a JavaScript `source`; `input` is its
/// scope's `input` (a Parameters template).
pub fn code_task(id: &str, source: &str, input: Value) -> Value {
    json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": "${CodeFunctionArn}",
            "Payload": {
                "node": {"id": id, "type": "code"},
                "config": {"source": source},
                "execution": {"id.$": "$$.Execution.Id"},
                "scope": {"input": input, "nodes": {}}
            }
        },
        "OutputPath": "$.Payload",
    })
}

pub async fn create(client: &Client, name: &str, definition: &Value) -> String {
    client
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

/// Polls DescribeExecution until the status is not RUNNING (30 s at most).
pub async fn finished(
    client: &Client,
    arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    for _ in 0..3000 {
        let d = client.describe_execution().execution_arn(arn).send().await.unwrap();
        if d.status != ExecutionStatus::Running {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("execution {arn} did not finish within 30 s");
}

/// Every history event of an execution, through the paged API.
pub async fn history(client: &Client, arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(arn)
            .set_next_token(token)
            .max_results(50)
            .send()
            .await
            .unwrap();
        out.extend(page.events);
        token = page.next_token;
        if token.is_none() {
            return out;
        }
    }
}

/// Polls the history until an event of type `ty` appears (30 s at most).
pub async fn wait_for_event(
    client: &Client,
    arn: &str,
    ty: aws_sdk_sfn::types::HistoryEventType,
) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
    for _ in 0..3000 {
        let events = history(client, arn).await;
        if events.iter().any(|e| e.r#type == ty) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {ty:?} event in {arn} within 30 s");
}

/// `v` with `key` set to `x`.
pub fn with(mut v: Value, key: &str, x: Value) -> Value {
    v[key] = x;
    v
}
