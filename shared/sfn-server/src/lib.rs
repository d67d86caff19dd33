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
//! "message"}`, HTTP 400) are AWS's, so the SDKs map errors to their typed variants. Region and
//! account in incoming ARNs are not checked.
//!
//! # Authentication
//!
//! Every request must carry an AWS Signature Version 4 (`Authorization: AWS4-HMAC-SHA256 ...`)
//! made with one of the [`Credentials`] the [`router`] is built with, exactly as AWS requires:
//! the SDKs, boto3 and the AWS CLI sign already, so a client only needs the access key id and
//! secret. The [`sigv4`] module checks the signature over the method, path, query, the signed
//! headers (`host` and `x-amz-target` must be among them) and the SHA-256 of the body actually
//! received; `X-Amz-Date` must be within 15 minutes of the server's clock and the scope must
//! name the service `states` (any region). Refusals are AWS's: no `Authorization` is a 403
//! `MissingAuthenticationTokenException`; an unknown access key id, or any session token
//! (`X-Amz-Security-Token`; none are issued), a 400 `UnrecognizedClientException`; a wrong
//! signature, an expired or future date, a body, target or host other than the signed ones, a 400
//! `InvalidSignatureException`; a malformed header, a 400 `IncompleteSignatureException` (all
//! with `__type` `com.amazon.coral.service#<Code>`, as AWS's front end answers). No action runs
//! before the signature is verified. There is no "accept everything" mode. `weft serve` gives
//! the endpoint its own listener on 127.0.0.1 with the credentials of `WEFT_SFN_ACCESS_KEY_ID`
//! and `WEFT_SFN_SECRET_ACCESS_KEY`, or random ones known only to its own api client.
//!
//! ```no_run
//! # async fn demo(invoker: std::sync::Arc<dyn engine::TaskInvoker>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = sfn_server::PgStore::connect("postgres://127.0.0.1/weft", 10).await?;
//! store.migrate().await?;
//! let state = sfn_server::SfnState::open(Arc::new(store), engine::EngineConfig::new(invoker)).await?;
//! let credentials = sfn_server::Credentials::generate();
//! let app: axum::Router = sfn_server::router(state, sfn_server::Verifier::new([credentials.clone()]));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let client = sfn_server::sdk::local_client(&format!("http://{}", listener.local_addr()?), &credentials);
//! tokio::spawn(async move { axum::serve(listener, app).await });
//! # let _ = client; Ok(()) }
//! ```
//!
//! `StartSyncExecution` carries the modeled host prefix `sync-`, which SDKs prepend to a custom
//! endpoint's host (`sync-127.0.0.1` does not resolve): use `sdk::local_client` (Rust, feature
//! `sdk`), or boto3's `Config(inject_host_prefix=False)`.
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
//! EXPRESS executions are stored like STANDARD ones (AWS keeps no history for them). Listings
//! page in memory over all matching rows (fine for thousands, not millions).
//!
//! # Child executions
//!
//! `arn:aws:states:::states:startExecution[.sync[:2]]` Tasks start their children through this
//! endpoint, as StartExecution does: the state machine ARN may be unqualified (the latest
//! revision), a version or an alias (a version by its weights); the child is stored with its
//! version and alias ARNs, its history is stored, it is listed by ListExecutions, described,
//! stopped and redriven like any execution, and announced on [`SfnState::ended_executions`] when
//! it ends. Its input is the Task's `Input` as given (an `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID`
//! field stays in it). Its name is what the host's [`ChildNamer`] says
//! ([`SfnState::set_child_namer`]), else the Task's `Name`, else a UUID. A start that
//! StartExecution would refuse fails the Task with AWS's `StepFunctions.<Code>Exception` (an
//! unknown machine: `StepFunctions.StateMachineDoesNotExistException`); a `.sync` Task whose
//! child fails fails with `States.TaskFailed` and the child's DescribeExecution document as the
//! cause. Stopping a parent does not stop its running children.
//!
//! # Invariants
//!
//! - No action runs, and nothing is read, for a request whose SigV4 signature does not verify
//!   against the configured credentials (tests `protocol.rs`, `sdk.rs` `auth_*`, `boto3.rs`).
//! - Client errors are AWS error codes; storage failures are a 500 `InternalFailure` whose
//!   detail is logged, never sent.
//! - History event ids are dense from 1 per execution and continue across redrives.

mod error;
mod pg;
#[cfg(feature = "sdk")]
pub mod sdk;
mod service;
pub mod sigv4;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

pub use error::{AUTH_ERROR_NAMESPACE, ERROR_NAMESPACE, SfnError};
pub use pg::PgStore;
pub use service::{ChildNamer, ChildStart, ENGINE_RESTARTED, Recovery};
pub use sigv4::{AuthError, Credentials, Verifier};
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
    pub async fn open_with_report(
        store: Arc<dyn SfnStore>,
        config: engine::EngineConfig,
    ) -> Result<(Self, Recovery), SfnError> {
        let svc = service::Service::new(store, config);
        let report = svc.recover().await?;
        Ok((SfnState { svc }, report))
    }

    /// Runs one action in process, without HTTP: `action` is the part after
    /// `AWSStepFunctions.`, `input` and the result are the request and response documents.
    pub async fn call(&self, action: &str, input: Value) -> Result<Value, SfnError> {
        self.svc.call(action, input).await
    }

    /// The ARNs of executions started by `StartExecution` (or redriven) as they end (once their
    /// outcome is stored; a `StartSyncExecution` caller has the outcome already), as EventBridge's
    /// "Step Functions Execution Status Change" events tell them in AWS: what `weft serve`'s
    /// recorder follows. A receiver that falls more than 4,096 behind misses some (its next
    /// `recv` says how many); whoever relies on it must also look for itself now and then.
    pub fn ended_executions(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.svc.ended_executions()
    }

    /// Names the child executions that `states:startExecution` Tasks start from now on (see
    /// [`ChildNamer`]); replaces an earlier namer. Without one, a child gets the name its Task
    /// asked for, or a UUID.
    pub fn set_child_namer(&self, namer: Arc<dyn ChildNamer>) {
        self.svc.set_child_namer(namer);
    }

    /// The engine executions run on. Its child executions are this endpoint's: a
    /// `ChildStarter` in the `EngineConfig` given to [`SfnState::open`] is replaced.
    pub fn engine(&self) -> &engine::Engine {
        self.svc.engine()
    }
}

/// The AWS JSON 1.0 endpoint at `/`, answering only requests signed (SigV4) with credentials
/// `verifier` knows. Serve it on a listener of its own (see the crate docs).
pub fn router(state: SfnState, verifier: Verifier) -> Router {
    Router::new().route("/", post(handle)).with_state(Endpoint { state, verifier: Arc::new(verifier) })
}

#[derive(Clone)]
struct Endpoint {
    state: SfnState,
    verifier: Arc<Verifier>,
}

async fn handle(
    State(endpoint): State<Endpoint>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = match endpoint.verifier.verify(&method, &uri, &headers, &body, chrono::Utc::now()) {
        Ok(_) => dispatch(&endpoint.state, &headers, &body).await,
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// Runs the action of a verified request.
async fn dispatch(state: &SfnState, headers: &HeaderMap, body: &Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let result = match target.strip_prefix("AWSStepFunctions.") {
        None => Err(SfnError::new(
            "UnknownOperationException",
            format!("X-Amz-Target '{target}' is not an AWSStepFunctions operation"),
        )),
        Some(action) => {
            let input =
                if body.is_empty() { Ok(Value::Object(Default::default())) } else { serde_json::from_slice(body) };
            match input {
                Ok(input) if input.is_object() => state.call(action, input).await,
                Ok(_) => Err(SfnError::new("SerializationException", "the request body must be a JSON object")),
                Err(e) => Err(SfnError::new("SerializationException", format!("the request body is not JSON: {e}"))),
            }
        }
    };
    match result {
        Ok(v) => {
            let mut r = v.to_string().into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => e.into_response(),
    }
}
