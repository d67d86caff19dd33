//! Input-sized structures never overflow the stack: long definitions, deeply nested expressions
//! and deeply nested values built at run time are executed, or refused with a validation error
//! or a runtime error, on tokio worker threads with their default 2 MiB stack, in whichever
//! profile the tests are built (CI: debug).

use std::sync::Arc;

use engine::{Definition, Engine, EngineConfig, Outcome, Status, VirtualClock};
use serde_json::{Value, json};

/// A multi-threaded runtime whose workers have tokio's default stack, set explicitly.
fn block_on<F: std::future::Future + Send + 'static>(f: F) -> F::Output
where
    F::Output: Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(2 << 20)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move { tokio::spawn(f).await.expect("task") })
}

/// Parses (on a 2 MiB worker) and runs `def` with `input`; `Err` holds validation messages.
fn run(def: String, input: Value) -> Result<Outcome, String> {
    block_on(async move {
        let d = Definition::from_json_str(&def).map_err(|e| e.to_string())?;
        let engine =
            Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_clock(Arc::new(VirtualClock::new())));
        Ok(engine.run(Arc::new(d), input).await)
    })
}

fn pass(field: &str, expr: &str) -> String {
    json!({"StartAt": "S", "States": {"S": {"Type": "Pass", field: {"v.$": expr}, "End": true}}}).to_string()
}

fn jsonata(output: &str) -> String {
    json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "Output": output, "End": true}}})
        .to_string()
}

#[test]
fn a_chain_of_10000_states_runs() {
    let mut states = serde_json::Map::new();
    for i in 0..10_000 {
        let next = if i == 9_999 {
            json!({"Type": "Pass", "End": true})
        } else {
            json!({"Type": "Pass", "Next": format!("s{}", i + 1)})
        };
        states.insert(format!("s{i}"), next);
    }
    let def = json!({"StartAt": "s0", "States": states}).to_string();
    let o = run(def, json!({"a": 1})).expect("valid");
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(o.output, Some(json!({"a": 1})));
}

#[test]
fn deeply_nested_jsonpath_filters_are_refused() {
    for path in [
        format!("$.a[?({}@.b == 1{})]", "(".repeat(100_000), ")".repeat(100_000)),
        format!("$.a[?({}@.b)]", "!".repeat(100_000)),
        format!("$.a[?(@.b{})]", " && @.c".repeat(50_000)),
    ] {
        let r = run(pass("Parameters", &path), json!({"a": [{"b": 1, "c": 1}]}));
        assert!(r.is_err(), "{:?}", r.map(|o| o.status));
    }
    // Within bounds, nesting still works.
    let o = run(pass("Parameters", "$.a[?(((@.b == 1)))]"), json!({"a": [{"b": 1}, {"b": 2}]})).expect("valid");
    assert_eq!(o.output, Some(json!({"v": [{"b": 1}]})));
}

#[test]
fn long_regex_filters_do_not_recurse_per_character() {
    let long = "x".repeat(200_000);
    let pattern = format!("{}.*", "x".repeat(100_000));
    let def = pass("Parameters", &format!("$.a[?(@.s =~ /{pattern}/)]"));
    let o = run(def, json!({"a": [{"s": long}, {"s": "y"}]})).expect("valid");
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(o.output.as_ref().and_then(|v| v["v"].as_array()).map(Vec::len), Some(1));
    // Many `.*` do not backtrack exponentially either.
    let def = pass("Parameters", &format!("$.a[?(@.s =~ /{}y/)]", ".*".repeat(30)));
    let o = run(def, json!({"a": [{"s": "x".repeat(5_000)}]})).expect("valid");
    assert_eq!(o.output, Some(json!({"v": []})));
}

#[test]
fn deeply_nested_intrinsics_are_refused() {
    let expr = format!("{}$.a{}", "States.Array(".repeat(10_000), ")".repeat(10_000));
    assert!(run(pass("Parameters", &expr), json!({"a": 1})).is_err());
}

#[test]
fn string_to_json_of_a_deep_string_is_an_error() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let o = run(pass("Parameters", "States.StringToJson($.s)"), json!({"s": deep})).expect("valid");
    assert_eq!(o.status, Status::Failed, "{o:?}");
}

#[test]
fn deeply_nested_jsonata_is_refused() {
    let expr = format!("{{% {}1{} %}}", "(".repeat(100_000), ")".repeat(100_000));
    let r = run(jsonata(&expr), json!({}));
    assert!(r.as_ref().is_err() || r.as_ref().is_ok_and(|o| o.status == Status::Failed), "{:?}", r.map(|o| o.status));
    let expr = format!("{{% {}1{} %}}", "[".repeat(100_000), "]".repeat(100_000));
    let r = run(jsonata(&expr), json!({}));
    assert!(r.as_ref().is_err() || r.as_ref().is_ok_and(|o| o.status == Status::Failed), "{:?}", r.map(|o| o.status));
}

#[test]
fn jsonata_building_a_deep_value_fails_the_state() {
    let expr = r#"{% $reduce([1..100000], function($acc, $v) { {"v": $acc} }, {}) %}"#;
    let o = run(jsonata(expr), json!({})).expect("valid");
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert_eq!(o.error.as_deref(), Some("States.QueryEvaluationError"), "{o:?}");
    // Shared values doubling: 2^40 values once converted.
    let expr = r#"{% $reduce([1..40], function($acc, $v) { [[$acc], [$acc]] }, [1]) %}"#;
    let o = run(jsonata(expr), json!({})).expect("valid");
    assert_eq!(o.error.as_deref(), Some("States.QueryEvaluationError"), "{o:?}");
    // Deep, but within AWS's limit of 1,000 levels: fine.
    let expr = r#"{% $reduce([1..990], function($acc, $v) { {"v": $acc} }, {}) %}"#;
    let o = run(jsonata(expr), json!({})).expect("valid");
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
}

#[test]
fn a_loop_deepening_its_state_stops_at_the_limit() {
    // A Map that wraps its input once per level, 2,000 levels through a Choice loop.
    let def = json!({"StartAt": "Wrap", "States": {
        "Wrap": {"Type": "Pass", "Parameters": {"v.$": "$"}, "Next": "Again"},
        "Again": {"Type": "Choice", "Choices": [{"Variable": "$.v", "IsPresent": true, "Next": "Wrap"}]}
    }})
    .to_string();
    let o = run(def, json!({})).expect("valid");
    assert_eq!(o.status, Status::Failed, "{o:?}");
}
