//! Definition validation: every error names the state and the field, like
//! ValidateStateMachineDefinition (and stricter where LocalStack is lax).

use engine::{Definition, ValidationError};
use serde_json::{Value, json};

fn errors(def: Value) -> Vec<ValidationError> {
    match Definition::parse(&def) {
        Ok(_) => panic!("expected the definition to be rejected: {def}"),
        Err(e) => e.0,
    }
}

fn has(errs: &[ValidationError], code: &str, state: Option<&str>, field: Option<&str>) -> bool {
    errs.iter().any(|e| e.code == code && e.state.as_deref() == state && e.field.as_deref() == field)
}

#[test]
fn dangling_start_at_and_transitions() {
    let e = errors(json!({"StartAt": "Nope", "States": {"A": {"Type": "Succeed"}}}));
    assert!(has(&e, "MISSING_TRANSITION_TARGET", None, Some("StartAt")), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}));
    assert!(has(&e, "MISSING_TRANSITION_TARGET", Some("A"), Some("Next")), "{e:?}");
    let e = errors(
        json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "Z"}], "Default": "Y"}}}),
    );
    assert_eq!(e.iter().filter(|e| e.code == "MISSING_TRANSITION_TARGET").count(), 2, "{e:?}");
}

#[test]
fn unreachable_states_and_missing_ends() {
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}));
    assert!(has(&e, "UNREACHABLE_STATE", Some("B"), None), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}));
    assert!(has(&e, "MISSING_TRANSITION_TARGET", Some("A"), Some("Next")), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("End")), "{e:?}");
}

#[test]
fn choice_needs_choices() {
    let e =
        errors(json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Default": "D"}, "D": {"Type": "Succeed"}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("C"), Some("Choices")), "{e:?}");
    let e = errors(
        json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": "1", "Next": "D"}]}, "D": {"Type": "Succeed"}}}),
    );
    assert!(
        e.iter().any(|e| e.state.as_deref() == Some("C") && e.location.ends_with("/Choices/0/NumericEquals")),
        "{e:?}"
    );
}

#[test]
fn unknown_fields_types_and_other_query_language() {
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Reslt": 1, "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("Reslt")), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Passs", "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("Type")), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {"x": 1}, "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("Output")), "{e:?}");
    let e = errors(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.x", "End": true}}}),
    );
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("InputPath")), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Task", "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("Resource")), "{e:?}");
}

#[test]
fn bad_paths_intrinsics_and_jsonata() {
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.a[", "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("InputPath")), "{e:?}");
    let e = errors(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": true}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("ResultPath")), "{e:?}");
    let e = errors(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "States.Format("}, "End": true}}}),
    );
    assert!(e.iter().any(|e| e.state.as_deref() == Some("A") && e.location == "/States/A/Parameters/x.$"), "{e:?}");
    let e = errors(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "not a path"}, "End": true}}}),
    );
    assert!(e.iter().any(|e| e.location == "/States/A/Parameters/x.$"), "{e:?}");
    let e = errors(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% $states.input. %}", "End": true}}}),
    );
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("A"), Some("Output")), "{e:?}");
}

#[test]
fn nested_machines_are_validated_with_their_location() {
    let e = errors(json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "X", "States": {"P": {"Type": "Pass", "End": true}}}}}}));
    assert!(e.iter().any(|e| e.location == "/States/M/ItemProcessor/StartAt"), "{e:?}");
    let e = errors(json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": []}}}));
    assert!(has(&e, "SCHEMA_VALIDATION_FAILED", Some("P"), Some("Branches")), "{e:?}");
}

#[test]
fn valid_definitions_pass_with_warnings_for_local_differences() {
    let d = Definition::parse(&json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "p"}}}}}))
    .expect("valid");
    assert!(d.warnings().iter().any(|w| w.contains("ResultWriter")));
    assert!(Definition::from_json_str("{not json").is_err());
}
