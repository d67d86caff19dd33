//! The `code` node function: JavaScript on QuickJS (rquickjs).
//!
//! Runs a node's `config.expression` (one JavaScript expression) or `config.source` (a function
//! body that `return`s) with `input`, `nodes`, `item`, `index` and `args` (an agent tool's arguments) bound from the event's `scope`,
//! and returns the result as JSON. It also evaluates conditions that did not lower to native
//! Choice rules (with `config.boolean: true` the result is JavaScript's truthiness of the value).
//!
//! Every invocation gets a fresh QuickJS runtime, so nothing leaks between executions, with:
//! - a time limit enforced by QuickJS's interrupt handler (`Code.Timeout`), which also stops
//!   `while (true) {}` because the handler runs inside the interpreter loop;
//! - a memory limit on the runtime's allocator (`Code.MemoryLimit`) and a stack limit;
//! - no file, network or process access: only the ECMAScript standard library is present (no
//!   `std`/`os` modules, no module loader).
//!
//! Syntax and runtime errors come back as `Code.Error` with the error's name, message and line
//! (lines count from the first line of the user's code).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use node_contract::{NodeError, NodeEvent, NodeFunction, error_names, kind_of};
use rquickjs::{Context, Ctx, Function, Runtime, Value as JsValue};
use serde_json::Value;

/// Limits applied to every evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for one evaluation; a node's `config.timeout_seconds` may only lower it.
    pub timeout: Duration,
    /// Bytes the QuickJS runtime may allocate (input values included).
    pub memory_bytes: usize,
    /// Bytes of native stack the interpreter may use (deep recursion fails as `Code.Error`).
    pub stack_bytes: usize,
    /// Evaluations that may run at once in this process; more wait for a turn. With
    /// `memory_bytes` this bounds what code can take of the process's memory:
    /// `max_concurrent × memory_bytes` (a Lambda runs one at a time; `weft serve` and `weft run`
    /// run a whole execution's nodes in one process). Default: twice the CPU count, at least 2.
    pub max_concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            memory_bytes: 64 << 20,
            stack_bytes: 512 << 10,
            max_concurrent: default_concurrency(),
        }
    }
}

/// A setting read from the environment has a bad value.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?}: {problem}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub problem: &'static str,
}

/// Twice the CPU count, at least 2: evaluations are CPU-bound, so more at once only adds memory.
fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2).max(2)
}

impl Limits {
    /// Reads `WEFT_CODE_TIMEOUT_MS`, `WEFT_CODE_MEMORY_MB` and `WEFT_CODE_MAX_CONCURRENCY` (all
    /// optional) over the defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let mut limits = Self::default();
        if let Some(ms) = env_u64("WEFT_CODE_TIMEOUT_MS")? {
            limits.timeout = Duration::from_millis(ms);
        }
        if let Some(mb) = env_u64("WEFT_CODE_MEMORY_MB")? {
            limits.memory_bytes = usize::try_from(mb).unwrap_or(usize::MAX / (1 << 20)) << 20;
        }
        if let Some(n) = env_u64("WEFT_CODE_MAX_CONCURRENCY")? {
            limits.max_concurrent = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(limits)
    }
}

fn env_u64(name: &'static str) -> Result<Option<u64>, SettingsError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        // Set but empty means unset, as in the rest of Weft's configuration.
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => match value.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(SettingsError { name, value, problem: "expected a positive integer" }),
        },
    }
}

/// What to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// One JavaScript expression, e.g. `input.total > 100 && nodes.fetch.status == 200`.
    Expression(String),
    /// A function body that returns the result, e.g. `const n = input.items.length; return n * 2;`.
    Source(String),
}

/// The `code` function's handler. Cheap to clone; clones share the limits and the turns
/// ([`Limits::max_concurrent`]).
#[derive(Debug, Clone)]
pub struct CodeFunction {
    limits: Limits,
    turns: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for CodeFunction {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl CodeFunction {
    pub fn new(limits: Limits) -> Self {
        let permits = limits.max_concurrent.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        Self { limits, turns: std::sync::Arc::new(tokio::sync::Semaphore::new(permits)) }
    }

    pub fn from_env() -> Result<Self, SettingsError> {
        Limits::from_env().map(Self::new)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Validates the event, then evaluates on a blocking thread so a long script never stalls
    /// the async runtime that the local engine shares with other nodes.
    pub async fn run(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let (script, limits, boolean) = self.parse_config(&event)?;
        let scope = event.scope.unwrap_or(Value::Null);
        // Waiting for a turn is not evaluation time: the time limit starts inside `evaluate`.
        let turn = std::sync::Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .map_err(|e| NodeError::new(error_names::CODE_ERROR, format!("the evaluation queue is closed: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let value = evaluate(&script, &scope, &limits)?;
            Ok(if boolean { Value::Bool(truthy(&value)) } else { value })
        })
        .await
        .map_err(|e| NodeError::new(error_names::CODE_ERROR, format!("the evaluation thread failed: {e}")))?
    }

    fn parse_config(&self, event: &NodeEvent) -> Result<(Script, Limits, bool), NodeError> {
        let config = event.config_object()?;
        let text = |field: &str| match config.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(NodeError::config(field, format!("expected a string, got {}", kind_of(other)))),
        };
        let script = match (text("expression")?, text("source")?) {
            (Some(e), None) => Script::Expression(e),
            (None, Some(s)) => Script::Source(s),
            (Some(_), Some(_)) => {
                return Err(NodeError::config("expression", "give either expression or source, not both"));
            }
            (None, None) => {
                return Err(NodeError::config("expression", "missing: give expression or source"));
            }
        };
        let mut limits = self.limits;
        match config.get("timeout_seconds") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match n.as_f64() {
                Some(secs) if secs > 0.0 && secs.is_finite() => {
                    limits.timeout = limits.timeout.min(Duration::from_secs_f64(secs.min(86_400.0)));
                }
                _ => {
                    return Err(NodeError::config("timeout_seconds", "must be a positive number"));
                }
            },
            Some(other) => {
                return Err(NodeError::config("timeout_seconds", format!("expected a number, got {}", kind_of(other))));
            }
        }
        let boolean = match config.get("boolean") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(NodeError::config("boolean", format!("expected a boolean, got {}", kind_of(other))));
            }
        };
        Ok((script, limits, boolean))
    }
}

impl NodeFunction for CodeFunction {
    fn handle(&self, event: NodeEvent) -> impl Future<Output = Result<Value, NodeError>> + Send {
        self.run(event)
    }
}

/// JavaScript's truthiness of a JSON value (`ToBoolean`).
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The parameters every script sees, in order.
const PARAMS: &str = "input, nodes, item, index, args";

/// Evaluates `script` synchronously on a fresh QuickJS runtime with `input`, `nodes`, `item`,
/// `index` and `args` taken from `scope` (missing ones are `undefined`, except `nodes`, which is `{}`).
pub fn evaluate(script: &Script, scope: &Value, limits: &Limits) -> Result<Value, NodeError> {
    // The wrapper adds no line before the user's code, so QuickJS's line numbers are the user's.
    let wrapped = match script {
        Script::Expression(e) => format!("(function ({PARAMS}) {{ return ({e}\n); }})"),
        Script::Source(s) => format!("(function ({PARAMS}) {{ {s}\n}})"),
    };
    // On the process's global allocator (mimalloc in `weft`), which is faster than QuickJS's
    // default (the C library's malloc) for the many small objects of a fresh context.
    let runtime = Runtime::new_with_alloc(rquickjs::allocator::RustAllocator)
        .map_err(|e| internal(format!("cannot create a JavaScript runtime: {e}")))?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(limits.stack_bytes);
    let interrupted = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limits.timeout;
    {
        let interrupted = interrupted.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let late = Instant::now() >= deadline;
            if late {
                interrupted.store(true, Ordering::Relaxed);
            }
            late
        })));
    }
    let context = Context::full(&runtime).map_err(|e| memory_or_internal(e, limits))?;
    let outcome = context.with(|ctx| run_in(&ctx, &wrapped, scope));
    let outcome = match outcome {
        Ok(v) => Ok(v),
        Err(_) if interrupted.load(Ordering::Relaxed) => Err(NodeError::new(
            error_names::CODE_TIMEOUT,
            format!("the code ran longer than its time limit of {} ms", limits.timeout.as_millis()),
        )),
        Err(Failure::Memory) => Err(memory_error(limits)),
        Err(Failure::Node(e)) => Err(e),
    };
    // Dropping a runtime that hit its memory limit can need a little memory; lift the limit first.
    runtime.set_memory_limit(0);
    drop(context);
    drop(runtime);
    outcome
}

enum Failure {
    Memory,
    Node(NodeError),
}

fn internal(message: String) -> NodeError {
    NodeError::new(error_names::CODE_ERROR, message)
}

fn memory_error(limits: &Limits) -> NodeError {
    NodeError::new(
        error_names::CODE_MEMORY,
        format!("the code used more than its memory limit of {} MiB", limits.memory_bytes >> 20),
    )
}

fn memory_or_internal(e: rquickjs::Error, limits: &Limits) -> NodeError {
    match e {
        rquickjs::Error::Allocation => memory_error(limits),
        other => internal(format!("cannot create a JavaScript context: {other}")),
    }
}

fn run_in(ctx: &Ctx<'_>, wrapped: &str, scope: &Value) -> Result<Value, Failure> {
    let mut options = rquickjs::context::EvalOptions::default();
    options.strict = false;
    options.filename = Some("code".to_owned());
    let function: Function = ctx.eval_with_options(wrapped, options).map_err(|e| js_failure(ctx, e, wrapped))?;
    let part = |name: &str| scope.get(name).cloned();
    let mut nodes = part("nodes").unwrap_or_else(|| Value::Object(Default::default()));
    // `nodes.<start>` is the execution input (see `NodeEvent::scope`).
    if let (Some(start), Value::Object(map)) = (scope.get("start").and_then(Value::as_str), &mut nodes) {
        map.entry(start.to_owned()).or_insert_with(|| part("input").unwrap_or(Value::Null));
    }
    let input = to_js(ctx, part("input"))?;
    let nodes = to_js(ctx, Some(nodes))?;
    let item = to_js(ctx, part("item"))?;
    let index = to_js(ctx, part("index"))?;
    // An agent's `code` tool: the arguments the model passed.
    let args = to_js(ctx, part("args"))?;
    let result: JsValue = function.call((input, nodes, item, index, args)).map_err(|e| js_failure(ctx, e, wrapped))?;
    to_json(ctx, result)
}

/// JSON → JavaScript through QuickJS's own JSON parser (fast, and exactly JSON semantics).
fn to_js<'js>(ctx: &Ctx<'js>, value: Option<Value>) -> Result<JsValue<'js>, Failure> {
    match value {
        None => Ok(JsValue::new_undefined(ctx.clone())),
        Some(v) => {
            let text = serde_json::to_string(&v)
                .map_err(|e| Failure::Node(internal(format!("cannot encode the scope: {e}"))))?;
            ctx.json_parse(text).map_err(|e| js_failure(ctx, e, ""))
        }
    }
}

fn to_json<'js>(ctx: &Ctx<'js>, value: JsValue<'js>) -> Result<Value, Failure> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    if value.is_promise() {
        return Err(Failure::Node(NodeError::new(
            error_names::CODE_RESULT,
            "the code returned a Promise; async code is not supported, return a value",
        )));
    }
    let kind = value.type_name();
    match ctx.json_stringify(value) {
        Ok(Some(text)) => {
            let text = text.to_string().map_err(|e| js_failure(ctx, e, ""))?;
            serde_json::from_str(&text).map_err(|e| {
                Failure::Node(NodeError::new(error_names::CODE_RESULT, format!("the result is not JSON: {e}")))
            })
        }
        Ok(None) => Err(Failure::Node(NodeError::new(
            error_names::CODE_RESULT,
            format!("the result is a {kind}, which is not representable as JSON"),
        ))),
        Err(e) => match js_failure(ctx, e, "") {
            Failure::Node(err) if err.name == error_names::CODE_ERROR => Failure::Node(NodeError::new(
                error_names::CODE_RESULT,
                format!("the result is not representable as JSON: {}", err.message),
            )),
            other => other,
        }
        .into_err(),
    }
}

impl Failure {
    fn into_err<T>(self) -> Result<T, Failure> {
        Err(self)
    }
}

/// Turns a QuickJS error (usually a pending exception) into a node failure with message and line.
fn js_failure(ctx: &Ctx<'_>, error: rquickjs::Error, source: &str) -> Failure {
    match error {
        rquickjs::Error::Allocation => Failure::Memory,
        rquickjs::Error::Exception => {
            let thrown = ctx.catch();
            describe_thrown(ctx, thrown, source)
        }
        other => Failure::Node(internal(other.to_string())),
    }
}

fn describe_thrown<'js>(ctx: &Ctx<'js>, thrown: JsValue<'js>, source: &str) -> Failure {
    if let Some(object) = thrown.as_object() {
        let get = |key: &str| -> Option<String> {
            object.get::<_, Option<rquickjs::convert::Coerced<String>>>(key).ok().flatten().map(|c| c.0)
        };
        let message = get("message");
        let name = get("name");
        if thrown.is_error() {
            let message = message.unwrap_or_default();
            if message.contains("out of memory") {
                return Failure::Memory;
            }
            let line = object
                .get::<_, Option<u32>>("lineNumber")
                .ok()
                .flatten()
                .or_else(|| get("stack").as_deref().and_then(line_from_stack));
            let name = name.unwrap_or_else(|| "Error".to_owned());
            let text = match line {
                Some(line) => format!("{name}: {message} (line {line})"),
                None => format!("{name}: {message}"),
            };
            return Failure::Node(NodeError::new(error_names::CODE_ERROR, text));
        }
    }
    // When QuickJS cannot even allocate its "out of memory" error, the pending exception is `null`
    // (or uninitialized). A script can also `throw null`, so `null` only counts as memory
    // exhaustion when the code contains no `throw` at all.
    if thrown.type_of() == rquickjs::Type::Uninitialized || (thrown.is_null() && !source.contains("throw")) {
        return Failure::Memory;
    }
    // A thrown non-Error value (`throw "boom"`, `throw {code: 1}`): report it as JSON if possible.
    let shown = match ctx.json_stringify(thrown.clone()) {
        Ok(Some(s)) => s.to_string().unwrap_or_default(),
        _ => thrown
            .get::<rquickjs::convert::Coerced<String>>()
            .map(|c| c.0)
            .unwrap_or_else(|_| "a value that cannot be shown".to_owned()),
    };
    Failure::Node(NodeError::new(error_names::CODE_ERROR, format!("Uncaught {shown}")))
}

/// Finds the first `code:LINE` frame in a QuickJS stack trace (`    at <anonymous> (code:3:9)`).
fn line_from_stack(stack: &str) -> Option<u32> {
    let start = stack.find("code:")? + "code:".len();
    let digits: String = stack[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_read_from_stack_frames() {
        assert_eq!(line_from_stack("    at <anonymous> (code:3:9)\n"), Some(3));
        assert_eq!(line_from_stack("no frames"), None);
    }

    #[test]
    fn truthiness_follows_javascript() {
        use serde_json::json;
        for (v, t) in [
            (json!(0), false),
            (json!(""), false),
            (json!(null), false),
            (json!([]), true),
            (json!("0"), true),
            (json!(0.5), true),
        ] {
            assert_eq!(truthy(&v), t, "{v}");
        }
    }
}
