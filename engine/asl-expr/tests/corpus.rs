//! Checks the expression layer against the AWS recordings of the conformance corpus
//! (`engine/tests/conformance`): every case made of one Pass state whose `Parameters` hold
//! intrinsic calls over `$.` paths, or whose `Output` is one JSONata expression over
//! `$states.input`, is evaluated here and compared with what AWS answered.

use std::path::PathBuf;

use asl_expr::{ExprError, intrinsics, jsonata};
use serde_json::{Value, json};

fn corpus() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the conformance corpus is present") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("readable case");
            let case: Value = serde_json::from_str(&text).expect("valid JSON case");
            cases.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), case));
        }
    }
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// The single state of a one-state machine, if that is what the case is.
fn only_state(case: &Value) -> Option<&Value> {
    let states = case["definition"]["States"].as_object()?;
    (states.len() == 1).then(|| states.values().next()).flatten()
}

/// A deliberately small JSONPath: `$` and `$.a.b` over the input, which is all these cases use.
fn resolve_in(input: &Value, path: &str) -> Result<Value, ExprError> {
    let rest = path.strip_prefix('$').ok_or_else(|| ExprError::runtime("not a path"))?;
    let mut v = input;
    for key in rest.split('.').skip(1) {
        v = v.get(key).ok_or_else(|| ExprError::runtime(format!("'{path}' not found")))?;
    }
    Ok(v.clone())
}

#[test]
fn intrinsic_cases_match_aws() {
    let mut checked = 0;
    for (name, case) in corpus() {
        let Some(state) = only_state(&case) else {
            continue;
        };
        if state["Type"] != "Pass" || case["expected"]["status"] != "SUCCEEDED" {
            continue;
        }
        let Some(params) = state["Parameters"].as_object() else {
            continue;
        };
        let calls: Vec<_> = params
            .iter()
            .filter(|(k, v)| k.ends_with(".$") && v.as_str().is_some_and(intrinsics::is_intrinsic))
            .collect();
        if calls.is_empty() || calls.len() != params.len() {
            continue;
        }
        let input = &case["input"];
        for (key, expr) in calls {
            let expr = expr.as_str().unwrap_or_default();
            let parsed = intrinsics::parse(expr).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
            let got = parsed.eval(&|p| resolve_in(input, p)).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
            let field = key.trim_end_matches(".$");
            assert_eq!(got, case["expected"]["output"][field], "{name}: {expr}");
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} intrinsic calls checked");
}

#[test]
fn jsonata_output_cases_match_aws() {
    let mut checked = 0;
    for (name, case) in corpus() {
        let Some(state) = only_state(&case) else {
            continue;
        };
        if state["Type"] != "Pass" || case["expected"]["status"] != "SUCCEEDED" {
            continue;
        }
        let Some(expr) = state["Output"].as_str().and_then(jsonata::strip_delimiters) else {
            continue;
        };
        let compiled = jsonata::compile(expr).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
        let states = json!({"input": case["input"], "context": {}});
        let got = compiled.eval(&states, &|_| None).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
        assert_eq!(got.as_ref(), Some(&case["expected"]["output"]), "{name}: {expr}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} JSONata expressions checked");
}

/// Every `{% %}` expression anywhere in the corpus compiles, and every intrinsic call in a
/// `.$` field parses (a `Result` is literal data, never evaluated).
#[test]
fn every_corpus_expression_compiles() {
    fn walk(v: &Value, dollar_key: bool, jsonata: &mut Vec<String>, intrinsic: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                if let Some(expr) = jsonata::strip_delimiters(s) {
                    jsonata.push(expr.to_owned());
                } else if dollar_key && intrinsics::is_intrinsic(s) {
                    intrinsic.push(s.clone());
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, false, jsonata, intrinsic)),
            Value::Object(m) => {
                for (k, item) in m {
                    if k != "Result" {
                        walk(item, k.ends_with(".$"), jsonata, intrinsic);
                    }
                }
            }
            _ => {}
        }
    }
    let (mut jsonata_count, mut intrinsic_count) = (0, 0);
    for (name, case) in corpus() {
        let (mut exprs, mut calls) = (Vec::new(), Vec::new());
        walk(&case["definition"], false, &mut exprs, &mut calls);
        for expr in exprs {
            jsonata::compile(&expr).unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
            jsonata_count += 1;
        }
        for call in calls {
            let parsed = intrinsics::parse(&call).unwrap_or_else(|e| panic!("{name}: {call}: {e}"));
            parsed.check().unwrap_or_else(|e| panic!("{name}: {call}: {e}"));
            intrinsic_count += 1;
        }
    }
    assert!(jsonata_count >= 25, "{jsonata_count}");
    assert!(intrinsic_count >= 55, "{intrinsic_count}");
}
