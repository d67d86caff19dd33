//! Weft's local engine: an Amazon States Language interpreter that runs the state machines the
//! compiler emits, with the same semantics as AWS Step Functions.

pub mod task;

pub use task::{TaskCall, TaskContext, TaskFailure, TaskInvoker};
