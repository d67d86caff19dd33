//! Differential test: a condition's native Choice lowering (compiler → engine) must agree with
//! the same JavaScript expression evaluated by the `code` function, for a corpus of expressions
//! and inputs (comparisons, `&&`, `||`, `!`, missing fields, `null`, strings vs numbers, nested
//! paths). Where the compiler's guard sends a case to the `code` function at run time, both sides
//! are JavaScript; the test counts those and requires most runs to be native.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use engine::{Definition, Engine, EngineConfig, EventType, Status};
use fn_code_via_local::evaluate;
use serde_json::{Value, json};

mod fn_code_via_local {
    use node_contract::NodeEvent;
    use serde_json::{Value, json};

    /// The code function's verdict: `Some(truthiness)` or `None` when JavaScript throws.
    pub async fn evaluate(functions: &local_functions::LocalFunctions, expr: &str, input: &Value) -> Option<bool> {
        let event = NodeEvent::from_value(json!({
            "node": {"id": "cond", "type": "code"},
            "config": {"expression": expr, "boolean": true},
            "scope": {"input": input, "nodes": {"start": input}},
        }))
        .ok()?;
        functions.call("code", event).await.ok().and_then(|v| v.as_bool())
    }
}

const EXPRESSIONS: &[&str] = &[
    "input.a",
    "!input.a",
    "!!input.a",
    "input.a === 1",
    "input.a !== 1",
    "input.a === '1'",
    "input.a === null",
    "input.a === undefined",
    "input.a == null",
    "input.a != null",
    "input.a === true",
    "input.a !== false",
    "input.n > 5",
    "input.n >= 5",
    "input.n < 5",
    "input.n <= 5.5",
    "5 < input.n",
    "input.n > -1 && input.n < 10",
    "input.n < 0 || input.n > 9",
    "input.s === 'abc'",
    "input.s > 'abb'",
    "input.s <= 'b'",
    "input.s < input.t",
    "input.a === input.b",
    "input.a !== input.b",
    "input.a.b === 2",
    "input.a.b.c > 2",
    "input.a && input.a.b === 2",
    "!(input.a && input.b) || input.n === 3",
    "input.flag && (input.n > 1 || input.s === 'x')",
    "input.n === 5 && input.s !== 'abc' || !input.flag",
    "input['s'] === 'abc'",
    "input.a === 0 || input.a === ''",
];

fn inputs() -> Vec<Value> {
    vec![
        json!({}),
        json!({"a": null}),
        json!({"a": 0}),
        json!({"a": 1, "b": 1, "n": 5, "s": "abc", "t": "abd", "flag": true}),
        json!({"a": "1", "b": 1, "n": "5", "s": 5, "flag": false}),
        json!({"a": "", "n": 5.5, "s": "b", "t": "a"}),
        json!({"a": "0", "n": -1, "s": "", "flag": "yes"}),
        json!({"a": true, "b": true, "n": 10}),
        json!({"a": false, "b": false, "n": 0, "flag": 0}),
        json!({"a": {"b": 2}, "n": 3}),
        json!({"a": {"b": {"c": 3}}, "n": null}),
        json!({"a": {"b": null}, "s": null}),
        json!({"a": [], "b": {}, "n": "abc"}),
        json!({"a": {}, "n": 1e3, "s": "ABC"}),
        json!({"n": 5, "s": "x", "flag": 1}),
    ]
}

fn graph(expr: &str) -> String {
    json!({
        "format": "weft/v1", "id": "diff", "name": "diff",
        "nodes": [
            {"id": "start", "type": "start", "data": {}},
            {"id": "cond", "type": "condition", "data": {"expression": expr}},
            {"id": "yes", "type": "end", "data": {"output": "yes"}},
            {"id": "no", "type": "end", "data": {"output": "no"}},
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "cond"},
            {"id": "e2", "source": "cond", "sourceHandle": "true", "target": "yes"},
            {"id": "e3", "source": "cond", "sourceHandle": "false", "target": "no"},
        ],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_choice_lowering_agrees_with_javascript() {
    check(EXPRESSIONS).await;
}

/// `nodes.<start>` is the input; when a guarded case falls back to the code function, the
/// compiler tells it which node is the start (`scope.start`, see `node_contract::NodeEvent`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_on_the_start_node_agree_with_javascript() {
    check(&["nodes.start.n > 2", "nodes.start.a === null || nodes.start.s < 'b'"]).await;
}

async fn check(expressions: &[&str]) {
    use local_functions::{fn_code, fn_http};
    let functions = local_functions::LocalFunctions::new(
        fn_http::HttpFunction::new(fn_http::Settings::default()).expect("client"),
        fn_code::CodeFunction::new(fn_code::Limits { timeout: Duration::from_secs(2), ..Default::default() }),
    );
    let engine = Engine::new(EngineConfig::new(Arc::new(functions.clone())));
    let (mut native, mut via_code, mut disagreements) = (0, 0, Vec::new());
    let mut fully_native_expressions = 0;
    for expr in expressions {
        let graph = compiler::parse(&graph(expr)).expect("graph parses");
        let compiled =
            compiler::compile(&graph, &compiler::CompileOptions::default()).unwrap_or_else(|d| panic!("{expr}: {d:?}"));
        let asl = compiled.asl.to_string();
        if !asl.contains("lambda:invoke") {
            fully_native_expressions += 1;
        }
        let definition = Arc::new(Definition::parse(&compiled.asl).unwrap_or_else(|e| panic!("{expr}: {e:?}")));
        for input in inputs() {
            let execution = engine.start(definition.clone(), input.clone(), Default::default());
            let outcome = execution.wait().await;
            let used_code = execution.history_snapshot().iter().any(|e| e.event_type == EventType::TaskScheduled);
            if used_code {
                via_code += 1
            } else {
                native += 1
            }
            let engine_says = match (outcome.status, outcome.output.as_ref()) {
                (Status::Succeeded, Some(Value::String(s))) if s == "yes" => Some(true),
                (Status::Succeeded, Some(Value::String(s))) if s == "no" => Some(false),
                (Status::Failed, _) => None,
                other => panic!("{expr} on {input}: unexpected outcome {other:?} {outcome:?}"),
            };
            let js_says = evaluate(&functions, expr, &input).await;
            if engine_says != js_says {
                disagreements.push(format!(
                    "{expr} on {input}: engine {engine_says:?}, JavaScript {js_says:?} (code used: {used_code})"
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{} disagreement(s):\n{}", disagreements.len(), disagreements.join("\n"));
    eprintln!(
        "{native} native runs, {via_code} guarded runs through the code function; {fully_native_expressions} of {} expressions lower with no code Task",
        expressions.len()
    );
    assert!(native > via_code, "most runs must exercise the native lowering ({native} native, {via_code} via code)");
}
