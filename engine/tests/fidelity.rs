//! AWS's documented behaviour in corners the conformance corpus does not record: the wording of
//! JSONata and Wait causes, and JSONPath member names with escaped quotes.

use std::sync::Arc;

use engine::{Definition, Engine, EngineConfig, Outcome, Status, VirtualClock};
use serde_json::{Value, json};

async fn run(def: Value, input: Value) -> Outcome {
    let d = Definition::parse(&def).unwrap_or_else(|e| panic!("invalid definition: {e}"));
    let engine =
        Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_clock(Arc::new(VirtualClock::new())));
    engine.run(Arc::new(d), input).await
}

fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

const PREFIX: &str = "An error occurred while executing the state 'S' (entered at the event id #2). ";

/// AWS quotes the expression without its `{% %}` delimiters (and the spaces inside them), e.g.
/// "The JSONata expression '$states.input.pushLocation' specified for the field
/// 'Arguments/Input/pushLocation' returned nothing (undefined)."
#[tokio::test]
async fn jsonata_causes_quote_the_expression_without_delimiters() {
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "Output": {"v": "{% $states.input.absent %}"}, "End": true}}});
    let o = run(def, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.QueryEvaluationError"));
    assert_eq!(
        o.cause.as_deref().unwrap_or_default(),
        format!(
            "{PREFIX}The JSONata expression '$states.input.absent' specified for the field 'Output/v' returned nothing (undefined)."
        )
    );

    let def = json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "Output": "{%1 + \"a\"%}", "End": true}}});
    let o = run(def, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.QueryEvaluationError"));
    let cause = o.cause.unwrap_or_default();
    assert!(
        cause.starts_with(&format!("{PREFIX}The JSONata expression '1 + \"a\"' specified for the field 'Output' threw an error during evaluation. ")),
        "{cause}"
    );

    // The Wait state's Timestamp: the type error quotes it the same way.
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Wait", "Timestamp": "{% 5 %}", "End": true}}});
    let o = run(def, json!({})).await;
    let cause = o.cause.unwrap_or_default();
    assert!(
        cause.starts_with(&format!("{PREFIX}The JSONata expression '5' specified for the field 'Timestamp'")),
        "{cause}"
    );
}

#[tokio::test]
async fn bracketed_member_names_with_escaped_quotes_resolve() {
    let input = json!({"a\"b": 1, "c'd": 2, "e\\f": 3, "plain": {"x\"y": 4}});
    for (path, want, key) in [
        (r#"$['a\"b']"#, json!(1), "a\"b"),
        (r#"$["a\"b"]"#, json!(1), "a\"b"),
        (r#"$['c\'d']"#, json!(2), "c'd"),
        (r#"$["c'd"]"#, json!(2), "c'd"),
        (r#"$['e\\f']"#, json!(3), "e\\f"),
        (r#"$.plain['x\"y']"#, json!(4), "x\"y"),
    ] {
        for def in [
            one(json!({"Type": "Pass", "InputPath": path, "End": true})),
            one(json!({"Type": "Pass", "Parameters": {"v.$": path}, "OutputPath": "$.v", "End": true})),
            one(
                json!({"Type": "Pass", "Parameters": {"v.$": format!("States.Array({path})")}, "OutputPath": "$.v[0]", "End": true}),
            ),
        ] {
            let o = run(def.clone(), input.clone()).await;
            assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
            assert_eq!(o.output.as_ref(), Some(&want), "{path} in {def}");
        }
        // As a ResultPath: the value lands under the unescaped name.
        let o =
            run(one(json!({"Type": "Pass", "Result": 9, "ResultPath": path, "End": true})), json!({"plain": {}})).await;
        assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
        let out = o.output.unwrap_or_default();
        let got = if path.starts_with("$.plain") { &out["plain"][key] } else { &out[key] };
        assert_eq!(got, &json!(9), "{path}: {out}");
        // And in a Choice rule.
        let def = json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": path, "IsPresent": true, "Next": "Y"}], "Default": "N"},
            "Y": {"Type": "Succeed"}, "N": {"Type": "Fail", "Error": "Missed"}}});
        let o = run(def, input.clone()).await;
        assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
    }
}

/// AWS (and LocalStack's recorded behaviour): a Wait whose SecondsPath or TimestampPath selects
/// nothing fails with States.Runtime, "The SecondsPath parameter does not reference an input
/// value: <path>".
#[tokio::test]
async fn wait_paths_that_select_nothing_use_aws_wording() {
    for field in ["SecondsPath", "TimestampPath"] {
        let o = run(one(json!({"Type": "Wait", field: "$.missing", "End": true})), json!({"other": 1})).await;
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.error.as_deref(), Some("States.Runtime"));
        assert_eq!(
            o.cause.as_deref().unwrap_or_default(),
            format!("{PREFIX}The {field} parameter does not reference an input value: $.missing")
        );
    }
    // With an InputPath, the path is applied to the effective input.
    let o = run(
        one(json!({"Type": "Wait", "InputPath": "$.inner", "SecondsPath": "$.s", "End": true})),
        json!({"s": 1, "inner": {}}),
    )
    .await;
    assert_eq!(
        o.cause.as_deref().unwrap_or_default(),
        format!("{PREFIX}The SecondsPath parameter does not reference an input value: $.s")
    );
}
