//! Each state type and its error paths, on a virtual clock without Tasks.

use std::sync::Arc;

use engine::{Definition, Engine, EngineConfig, EventType, Outcome, StartOptions, Status, VirtualClock};
use serde_json::{Value, json};

fn engine() -> Engine {
    Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_clock(Arc::new(VirtualClock::new())))
}

async fn run(def: Value, input: Value) -> Outcome {
    let d = Definition::parse(&def).unwrap_or_else(|e| panic!("invalid definition: {e}"));
    engine().run(Arc::new(d), input).await
}

fn ok(o: &Outcome) -> &Value {
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    o.output.as_ref().expect("output")
}

fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

#[tokio::test]
async fn pass_applies_input_path_parameters_result_path_and_output_path() {
    let o = run(
        one(json!({"Type": "Pass", "InputPath": "$.in", "Parameters": {"x.$": "$.v", "lit": [1, {"y.$": "$.v"}]},
                   "ResultPath": "$.res", "OutputPath": "$.res", "End": true})),
        json!({"in": {"v": 7}}),
    )
    .await;
    assert_eq!(ok(&o), &json!({"x": 7, "lit": [1, {"y": 7}]}));
    let o = run(one(json!({"Type": "Pass", "Result": "r", "ResultPath": null, "End": true})), json!({"a": 1})).await;
    assert_eq!(ok(&o), &json!({"a": 1}));
    let o = run(one(json!({"Type": "Pass", "InputPath": null, "End": true})), json!({"a": 1})).await;
    assert_eq!(ok(&o), &json!({}));
}

#[tokio::test]
async fn missing_paths_are_states_runtime_with_the_state_in_the_cause() {
    let o = run(one(json!({"Type": "Pass", "Parameters": {"x.$": "$.nope"}, "End": true})), json!({"a": 1})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        o.cause.as_deref(),
        Some(
            "An error occurred while executing the state 'S' (entered at the event id #2). The JSONPath '$.nope' specified for the field 'x.$' could not be found in the input '{\"a\":1}'"
        )
    );
    let o = run(one(json!({"Type": "Pass", "InputPath": "$.nope", "End": true})), json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
    let o = run(one(json!({"Type": "Pass", "ResultPath": "$.x", "End": true})), json!("a string")).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"), "{o:?}");
}

#[tokio::test]
async fn context_object_and_variables() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"who.$": "$.name", "n": 1}, "Next": "B"},
        "B": {"Type": "Pass", "Parameters": {"who.$": "$who", "state.$": "$$.State.Name", "exec.$": "$$.Execution.Name",
                                             "input.$": "$$.Execution.Input"}, "End": true}}});
    let d = Arc::new(Definition::parse(&def).expect("valid"));
    let o = engine()
        .start(d, json!({"name": "ann"}), StartOptions { name: Some("e1".into()), ..Default::default() })
        .wait()
        .await;
    assert_eq!(ok(&o), &json!({"who": "ann", "state": "B", "exec": "e1", "input": {"name": "ann"}}));
}

#[tokio::test]
async fn choice_rules_default_and_no_match() {
    let def = |default: bool| {
        let mut c = json!({"Type": "Choice", "Choices": [
            {"And": [{"Variable": "$.n", "NumericGreaterThan": 1}, {"Not": {"Variable": "$.s", "StringMatches": "x*"}}], "Next": "Big"},
            {"Variable": "$.t", "TimestampLessThanPath": "$.u", "Next": "Early"}]});
        if default {
            c["Default"] = json!("Other");
        }
        let mut d = json!({"StartAt": "C", "States": {"C": c,
            "Big": {"Type": "Pass", "Result": "big", "End": true},
            "Early": {"Type": "Pass", "Result": "early", "End": true}}});
        if default {
            d["States"]["Other"] = json!({"Type": "Pass", "Result": "other", "End": true});
        }
        d
    };
    let input = |n: i64, s: &str| json!({"n": n, "s": s, "t": "2024-01-01T00:00:00Z", "u": "2025-01-01T00:00:00Z"});
    assert_eq!(ok(&run(def(true), input(5, "abc")).await), &json!("big"));
    assert_eq!(ok(&run(def(true), input(5, "xyz")).await), &json!("early"));
    let mut no_ts = input(0, "a");
    no_ts["u"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(ok(&run(def(true), no_ts.clone()).await), &json!("other"));
    let o = run(def(false), no_ts).await;
    assert_eq!(o.error.as_deref(), Some("States.NoChoiceMatched"));
    let o = run(def(true), json!({"s": "a"})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"), "a missing Variable is a runtime error: {o:?}");
}

#[tokio::test]
async fn wait_seconds_and_timestamp_on_virtual_time() {
    let def = json!({"StartAt": "W1", "States": {
        "W1": {"Type": "Wait", "Seconds": 86400, "Next": "W2"},
        "W2": {"Type": "Wait", "TimestampPath": "$.at", "End": true}}});
    let t0 = std::time::Instant::now();
    let o = run(def, json!({"at": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(ok(&o), &json!({"at": "2000-01-01T00:00:00Z"}));
    assert!(t0.elapsed().as_secs() < 5, "a day of Wait took no real time");
    let o = run(one(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true})), json!({"s": "x"})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test]
async fn fail_and_succeed() {
    let o = run(
        one(json!({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('because {}', $.c)"})),
        json!({"e": "E", "c": 3}),
    )
    .await;
    assert_eq!((o.status, o.error.as_deref(), o.cause.as_deref()), (Status::Failed, Some("E"), Some("because 3")));
    let o = run(one(json!({"Type": "Succeed", "OutputPath": "$.a"})), json!({"a": [1]})).await;
    assert_eq!(ok(&o), &json!([1]));
}

#[tokio::test]
async fn parallel_collects_branch_outputs_and_catches_branch_failures() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "InputPath": "$.x", "End": true}}}],
              "ResultSelector": {"sum.$": "States.MathAdd($[0], $[1])"}, "End": true}}});
    assert_eq!(ok(&run(def, json!({"x": 2})).await), &json!({"sum": 3}));
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [
                {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "BranchErr", "Cause": "c"}}}],
              "Catch": [{"ErrorEquals": ["BranchErr"], "ResultPath": "$.e", "Next": "Done"}], "End": true},
        "Done": {"Type": "Succeed"}}});
    assert_eq!(ok(&run(def, json!({})).await), &json!({"e": {"Error": "BranchErr", "Cause": "c"}}));
}

#[tokio::test]
async fn map_item_selector_concurrency_and_tolerated_failures() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.xs", "MaxConcurrency": 2,
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "k.$": "$.k"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
    let o = run(def, json!({"xs": ["a", "b"], "k": 0})).await;
    assert_eq!(ok(&o), &json!([{"v": "a", "i": 0, "k": 0}, {"v": "b", "i": 1, "k": 0}]));

    let failing = |tolerated: u64| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ToleratedFailureCount": tolerated,
            "ItemProcessor": {"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "F"}], "Default": "P"},
                "F": {"Type": "Fail", "Error": "Zero"},
                "P": {"Type": "Pass", "End": true}}}, "End": true}}})
    };
    let o = run(failing(1), json!([0, 1, 2])).await;
    assert_eq!(ok(&o), &json!([{"Error": "Zero"}, 1, 2]));
    let o = run(failing(0), json!([0, 0, 2])).await;
    assert_eq!(o.error.as_deref(), Some("States.ExceedToleratedFailureThreshold"), "{o:?}");
    let o = run(one(json!({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true})), json!({"not": "array"})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test]
async fn map_history_has_iteration_events() {
    let d = Definition::parse(&one(json!({"Type": "Map", "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true})))
    .expect("valid");
    let exec = engine().start(Arc::new(d), json!([1, 2]), StartOptions::default());
    exec.wait().await;
    let types: Vec<&str> = exec.history_snapshot().iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    let json = exec.history_snapshot()[2].to_aws_json();
    assert_eq!(json["mapStateStartedEventDetails"]["length"], 2);
    assert!(exec.history_snapshot().iter().all(|e| e.event_type != EventType::ExecutionFailed));
}

#[tokio::test]
async fn jsonata_states_use_arguments_output_assign_and_conditions() {
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"total": "{% $sum($states.input.xs) %}"}, "Output": {"n": "{% $count($states.input.xs) %}"}, "Next": "C"},
        "C": {"Type": "Choice", "Choices": [{"Condition": "{% $total > 5 %}", "Next": "Big", "Output": {"t": "{% $total %}"}}], "Default": "Small"},
        "Big": {"Type": "Succeed"},
        "Small": {"Type": "Fail", "Error": "{% 'Small' & $string($total) %}"}}});
    assert_eq!(ok(&run(def.clone(), json!({"xs": [1, 2, 3]})).await), &json!({"t": 6}));
    let o = run(def, json!({"xs": [1]})).await;
    assert_eq!(o.error.as_deref(), Some("Small1"));
}

#[tokio::test]
async fn unbounded_nesting_fails_instead_of_overflowing_the_stack() {
    // Each turn wraps the input one level deeper; AWS's JSON stack limits this too.
    let def =
        json!({"StartAt": "Wrap", "States": {"Wrap": {"Type": "Pass", "Parameters": {"p.$": "$"}, "Next": "Wrap"}}});
    let o = run(def, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"), "{o:?}");
    assert!(o.cause.as_deref().is_some_and(|c| c.contains("nested deeper than 1000")), "{o:?}");
}

#[tokio::test]
async fn an_endless_loop_ends_at_the_history_limit() {
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}});
    let o = run(def, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.Runtime"));
    assert!(o.cause.as_deref().is_some_and(|c| c.contains("25000")), "{o:?}");
}

#[tokio::test]
async fn jsonata_undefined_and_errors_name_the_field() {
    let o = run(json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {"v": ["{% $states.input.nope %}"]}, "End": true}}}), json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.QueryEvaluationError"));
    assert!(
        o.cause
            .as_deref()
            .is_some_and(|c| c.ends_with("specified for the field 'Output/v[0]' returned nothing (undefined).")),
        "{o:?}"
    );
}
