//! A Step Functions-compatible endpoint backed by Weft's engine: the same API the `aws-sdk-sfn`
//! client, boto3 and the AWS CLI speak to AWS, served locally by `weft serve`.
//!
//! # Protocol
//!
//! AWS JSON 1.0: `POST /` with `Content-Type: application/x-amz-json-1.0` and
//! `X-Amz-Target: AWSStepFunctions.<Action>`. Supported actions: CreateStateMachine,
//! UpdateStateMachine, DescribeStateMachine, PublishStateMachineVersion, CreateStateMachineAlias,
//! UpdateStateMachineAlias, ListStateMachines, StartExecution, StartSyncExecution,
//! DescribeExecution, ListExecutions, GetExecutionHistory, StopExecution, RedriveExecution,
//! SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat. Field names, ARN formats, timestamps
//! (epoch seconds) and errors (`{"__type": "com.amazonaws.swf.service.v2.model#<Code>",
//! "message"}`, HTTP 400) are AWS's, so the SDKs map errors to their typed variants. Requests
//! are not authenticated (any SigV4 signature is accepted unchecked): bind it to 127.0.0.1 or put
//! it behind Weft's own auth. Region and account in incoming ARNs are not checked.
//!
//! ```no_run
//! # async fn demo(invoker: std::sync::Arc<dyn engine::TaskInvoker>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = sfn_server::PgStore::connect("postgres://127.0.0.1/weft", 10).await?;
//! store.migrate().await?;
//! let state = sfn_server::SfnState::open(Arc::new(store), engine::EngineConfig::new(invoker)).await?;
//! // The endpoint answers `POST /` only, so it merges into a router that has no `POST /`.
//! let app: axum::Router = axum::Router::new().merge(sfn_server::router(state));
//! # let _ = app; Ok(()) }
//! ```
//!
//! `StartSyncExecution` carries the modeled host prefix `sync-`, which SDKs prepend to a custom
//! endpoint's host (`sync-127.0.0.1` does not resolve): use [`sdk::local_client`] (Rust), or
//! boto3's `Config(inject_host_prefix=False)`.
//!
//! # Persistence and restarts
//!
//! State machines, versions, aliases, executions and every history event go to an [`SfnStore`]:
//! [`PgStore`] (tables from `migrations/20261130100001_sfn.sql`) or [`MemoryStore`]. A driver
//! task per execution copies history events into the store as the engine writes them, then the
//! outcome (events first, so a client that sees the final status can read the whole history).
//!
//! On start-up ([`SfnState::open`]) executions still RUNNING in the store belong to a process
//! that died: they are marked FAILED with error `Weft.EngineRestarted` and a cause saying so, and
//! an `ExecutionFailed` event is appended to their history. Nothing is resumed implicitly, since
//! Tasks may have side effects. `RedriveExecution` on such an execution (or any FAILED, TIMED_OUT
//! or ABORTED one) continues it as AWS does: same execution ARN, `redriveCount` + 1, an
//! `ExecutionRedriven` event, then the history goes on with the following ids. It resumes at the
//! last top-level state that was entered, with the input recorded in its `*StateEntered` event
//! (if the process died right after that state exited, at its static `Next` with its output).
//!
//! Limits of redrive: a Map or Parallel state restarts as a whole (AWS redrives only failed
//! iterations); a Task that had already run but whose result was not recorded runs again; task
//! tokens issued before a restart are gone (`TaskDoesNotExist`), the redriven Task issues a new
//! one; JSONata variables assigned before the resumed state are not restored; the definition is
//! the one the execution started with. One `weft serve` process per database is assumed.
//! EXPRESS executions are stored like STANDARD ones (AWS keeps no history for them). State
//! machines are registered with the engine (at creation, update and start-up), so
//! `arn:aws:states:::states:startExecution[.sync]` Tasks can start them; such child executions
//! run inside the engine and are not listed by this endpoint. Listings page in memory over all
//! matching rows (fine for thousands, not millions).
//!
//! # Invariants
//!
//! - Client errors are AWS error codes; storage failures are a 500 `InternalFailure` whose
//!   detail is logged, never sent.
//! - History event ids are dense from 1 per execution and continue across redrives.

mod arn;
mod error;
mod pg;
pub mod sdk;
mod service;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

pub use arn::{SmRef, check_name, parse_execution, parse_state_machine};
pub use error::{ERROR_NAMESPACE, SfnError};
pub use pg::PgStore;
pub use service::{ENGINE_RESTARTED, Recovery};
pub use store::{MemoryStore, SfnStore, StoreError};

/// The content type of AWS JSON 1.0 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The endpoint: the engine, the store and the running executions. Cheap to clone.
#[derive(Clone)]
pub struct SfnState {
    svc: Arc<service::Service>,
}

impl std::fmt::Debug for SfnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfnState").finish_non_exhaustive()
    }
}

impl SfnState {
    /// Builds the endpoint over `store` with an engine configured by `config` (its invoker runs
    /// the Tasks, its region and account go into ARNs), then recovers executions a previous
    /// process left RUNNING (see the crate docs). Must be called inside a tokio runtime.
    pub async fn open(store: Arc<dyn SfnStore>, config: engine::EngineConfig) -> Result<Self, SfnError> {
        let (state, _) = Self::open_with_report(store, config).await?;
        Ok(state)
    }

    /// [`SfnState::open`], also returning which executions were marked FAILED.
    pub async fn open_with_report(store: Arc<dyn SfnStore>, config: engine::EngineConfig) -> Result<(Self, Recovery), SfnError> {
        let svc = Arc::new(service::Service::new(store, config));
        let report = svc.recover().await?;
        Ok((SfnState { svc }, report))
    }

    /// Runs one action in process, without HTTP: `action` is the part after
    /// `AWSStepFunctions.`, `input` and the result are the request and response documents.
    pub async fn call(&self, action: &str, input: Value) -> Result<Value, SfnError> {
        self.svc.call(action, input).await
    }

    /// The engine executions run on (e.g. to register child state machines).
    pub fn engine(&self) -> &engine::Engine {
        self.svc.engine()
    }
}

/// The AWS JSON 1.0 endpoint at `/`. Mount it on its own listener or with `nest_service`.
pub fn router(state: SfnState) -> Router {
    Router::new().route("/", post(handle)).with_state(state)
}

async fn handle(State(state): State<SfnState>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let result = match target.strip_prefix("AWSStepFunctions.") {
        None => Err(SfnError::new(
            "UnknownOperationException",
            format!("X-Amz-Target '{target}' is not an AWSStepFunctions operation"),
        )),
        Some(action) => {
            let input = if body.is_empty() { Ok(Value::Object(Default::default())) } else { serde_json::from_slice(&body) };
            match input {
                Ok(input) if input.is_object() => state.call(action, input).await,
                Ok(_) => Err(SfnError::new("SerializationException", "the request body must be a JSON object")),
                Err(e) => Err(SfnError::new("SerializationException", format!("the request body is not JSON: {e}"))),
            }
        }
    };
    let mut resp = match result {
        Ok(v) => {
            let mut r = v.to_string().into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}
