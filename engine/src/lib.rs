//! Weft's local engine: an Amazon States Language interpreter that runs the state machines the
//! compiler emits, with the same semantics as AWS Step Functions.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo(invoker: std::sync::Arc<dyn engine::TaskInvoker>) {
//! use std::sync::Arc;
//! use engine::{Definition, Engine, EngineConfig, StartOptions};
//!
//! let definition = Definition::parse(&serde_json::json!({
//!     "StartAt": "Hello",
//!     "States": {"Hello": {"Type": "Pass", "Result": "world", "End": true}}
//! })).expect("valid definition"); // ValidationErrors name the state and field
//! let engine = Engine::new(EngineConfig::new(invoker));
//! let execution = engine.start(Arc::new(definition), serde_json::json!({}), StartOptions::default());
//! let outcome = execution.wait().await; // Outcome { status: Succeeded, output: Some("world"), .. }
//! # }
//! ```
//!
//! - [`Definition::parse`] validates and compiles once; share the result with `Arc`.
//! - [`Engine::start`] runs an execution as a tokio task (call it inside a runtime) and returns
//!   an [`Execution`] handle: [`Execution::wait`] for the [`Outcome`], [`Execution::history`] to
//!   follow AWS-shaped [`HistoryEvent`]s live (render them with [`HistoryEvent::to_aws_json`]),
//!   [`Execution::stop`] to abort.
//! - Tasks go through a [`TaskInvoker`]; `.waitForTaskToken` tasks complete through
//!   [`Engine::send_task_success`] / [`Engine::send_task_failure`] /
//!   [`Engine::send_task_heartbeat`] (the token is `$$.Task.Token` and
//!   [`TaskContext::task_token`]). `states:startExecution[.sync[:2]]` starts a child execution
//!   through the host's [`ChildStarter`] ([`EngineConfig::with_children`]: the Step Functions
//!   endpoint stores children like any execution), or, without one, runs it inside the engine
//!   from a definition registered with [`Engine::register_state_machine`].
//! - `LambdaHttpInvoker` (feature `lambda-invoke`, off by default: it brings an HTTP client)
//!   calls the Lambda Invoke API (`cargo lambda watch`, LocalStack).
//! - Time comes from a [`Clock`]: [`SystemClock`] for real time, [`VirtualClock`] to skip
//!   Wait states and retry intervals (`--fast-timers`, tests).
//!
//! - [`conformance`] runs the corpus of cases recorded against AWS (`weft conformance`).
//!
//! # Invariants
//!
//! - No panics on user input: bad definitions are [`ValidationErrors`], runtime problems are
//!   AWS errors (`States.Runtime`, ...) in the [`Outcome`].
//! - Event ids are dense from 1 in the order events are appended; `previous_event_id` follows
//!   the branch or iteration that produced the event, as in AWS.
//! - A definition is parsed once into an immutable compiled form (`Arc<Definition>`); values
//!   flow between states as `Arc<Value>` shared with the history, so a state that does not change
//!   its input copies nothing.
//! - Limits that keep one execution from hurting the process: history events (25,000), payload
//!   size (256 KiB), nesting depth of state outputs (1,000); loops of non-waiting states yield to
//!   the runtime cooperatively.

pub mod children;
mod choice;
pub mod clock;
pub mod conformance;
mod definition;
mod engine;
pub mod error;
mod exec;
pub mod history;
#[cfg(feature = "lambda-invoke")]
pub mod lambda;
pub mod path;
pub mod task;
mod template;

pub use children::{ChildExecution, ChildRequest, ChildStarter};
pub use clock::{Clock, SystemClock, VirtualClock};
pub use definition::Definition;
pub use engine::{Engine, EngineConfig, Execution, Outcome, StartOptions, Status};
pub use error::{CallbackError, Failure, ValidationError, ValidationErrors};
pub use history::{EventType, HistoryEvent};
#[cfg(feature = "lambda-invoke")]
pub use lambda::LambdaHttpInvoker;
pub use task::{TaskCall, TaskContext, TaskFailure, TaskInvoker};
