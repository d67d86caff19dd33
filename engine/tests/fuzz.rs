//! Random definitions and inputs never panic the engine: parsing either succeeds or returns
//! validation errors, and executions end with an outcome (never a crashed task).

use std::sync::Arc;
use std::time::Duration;

use engine::{Definition, Engine, EngineConfig, StartOptions, VirtualClock};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..100).prop_map(Value::from),
        (-1.0e3f64..1.0e3).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "$",
            "$.a",
            "$.a.b",
            "$.a[0]",
            "$.a[*]",
            "$..b",
            "$.a[?(@.b > 1)]",
            "$$.Execution.Id",
            "$$.Map.Item.Value",
            "$x",
            "$x.y",
            "States.Format('{} {}', $.a, $.b)",
            "States.ArrayLength($.a)",
            "States.StringToJson($.s)",
            "States.MathAdd($.n, 1)",
            "States.Array(1, $.a)",
            "States.Hash($.s, 'SHA-256')",
            "{% $states.input %}",
            "{% $states.input.a + 1 %}",
            "{% $x %}",
            "{% $count($states.input.a) %}",
            "2024-01-01T00:00:00Z",
            "S0",
            "S1",
            "S2",
            "States.ALL",
            "States.Runtime",
            "hello",
            "$.",
            "$[",
            "{% (",
            "States.Nope()",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_with_keys(vec!["a", "b", "n", "s", "x.$", "y.$", "a.$", "Items"])
}

/// JSON without `.$` keys (a literal inside a payload template).
fn literal() -> impl Strategy<Value = Value> {
    json_with_keys(vec!["a", "b", "n", "s", "Items"])
}

fn json_with_keys(keys: Vec<&'static str>) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys.clone()), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Result",
    "Assign",
    "Output",
    "Arguments",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
    "ItemsPath",
    "Items",
    "ItemSelector",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
    "QueryLanguage",
    "Default",
    "Resource",
    "TimeoutSeconds",
    "HeartbeatSeconds",
];

fn rule() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["$.a", "$.n", "$.s", "$x", "$.missing", "$"]),
        prop::sample::select(vec![
            "NumericEquals",
            "NumericLessThan",
            "StringEquals",
            "StringMatches",
            "BooleanEquals",
            "IsNull",
            "IsPresent",
            "IsNumeric",
            "IsString",
            "TimestampLessThan",
            "NumericEqualsPath",
            "StringEqualsPath",
        ]),
        leaf(),
        prop::sample::select(vec!["S0", "S1", "S2", "S3"]),
        any::<bool>(),
    )
        .prop_map(|(var, op, val, next, not)| {
            let cmp = json!({"Variable": var, op: val});
            let r = if not { json!({"Not": cmp}) } else { cmp };
            let mut r = r.as_object().cloned().unwrap_or_default();
            r.insert("Next".into(), json!(next));
            Value::Object(r)
        })
}

/// A well-typed comparison.
fn valid_rule() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["$.a", "$.n", "$.s", "$x", "$.missing", "$"]),
        prop_oneof![
            (-5i64..5).prop_map(|n| ("NumericLessThan", json!(n))),
            (-5i64..5).prop_map(|n| ("NumericEquals", json!(n))),
            prop::sample::select(vec!["a,b", "x", "", "x*"]).prop_map(|t| ("StringMatches", json!(t))),
            prop::sample::select(vec!["a,b", "x"]).prop_map(|t| ("StringGreaterThan", json!(t))),
            any::<bool>().prop_map(|b| ("IsPresent", json!(b))),
            any::<bool>().prop_map(|b| ("IsNumeric", json!(b))),
            any::<bool>().prop_map(|b| ("BooleanEquals", json!(b))),
            Just(("TimestampLessThan", json!("2024-01-01T00:00:00Z"))),
            Just(("NumericEqualsPath", json!("$.n"))),
        ],
        any::<bool>(),
    )
        .prop_map(|(var, (op, val), not)| {
            let cmp = json!({"Variable": var, op: val});
            if not { json!({"Not": cmp, "Next": "x"}) } else { json!({"Or": [cmp], "Next": "x"}) }
        })
}

fn state() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Pass", "Pass", "Choice", "Wait", "Succeed", "Fail", "Map", "Parallel", "Task"]),
        prop::collection::vec((prop::sample::select(FIELDS.to_vec()), json_value()), 0..4),
        prop::option::of(prop::sample::select(vec!["S0", "S1", "S2", "S3", "Nope"])),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(|(ty, fields, next, rules)| {
            let mut s = Map::new();
            s.insert("Type".into(), json!(ty));
            for (k, v) in fields {
                s.insert(k.to_owned(), v);
            }
            match ty {
                "Choice" => {
                    s.insert("Choices".into(), Value::Array(rules));
                }
                "Map" => {
                    s.insert("ItemProcessor".into(), json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}));
                }
                "Parallel" => {
                    s.insert("Branches".into(), json!([{"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": true}}}]));
                }
                "Task" => {
                    s.entry("Resource").or_insert(json!("arn:aws:states:::lambda:invoke"));
                }
                _ => {}
            }
            match next {
                Some(n) if !matches!(ty, "Choice" | "Succeed" | "Fail") => {
                    s.insert("Next".into(), json!(n));
                }
                _ if !matches!(ty, "Choice" | "Succeed" | "Fail") => {
                    s.insert("End".into(), json!(true));
                }
                _ => {}
            }
            Value::Object(s)
        })
}

fn definition() -> impl Strategy<Value = Value> {
    (prop::collection::vec(state(), 1..5), any::<bool>()).prop_map(|(states, jsonata)| {
        let mut m = Map::new();
        for (i, s) in states.into_iter().enumerate() {
            m.insert(format!("S{i}"), s);
        }
        let mut d = json!({"StartAt": "S0", "States": m});
        if jsonata {
            d["QueryLanguage"] = json!("JSONata");
        }
        d
    })
}

fn path() -> impl Strategy<Value = Value> {
    prop::sample::select(vec!["$", "$.a", "$.a.b", "$.a[0]", "$.a[*]", "$..b", "$.n", "$.s", "$.missing", "$x", "$x.y"])
        .prop_map(|s| json!(s))
}

fn template() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["p", "q", "r"]),
            prop_oneof![
                path().prop_map(|p| ("$", p)),
                prop::sample::select(vec![
                    "States.Format('{}-{}', $.a, $.n)",
                    "States.ArrayLength($.a)",
                    "States.MathAdd($.n, 2)",
                    "States.JsonToString($)",
                    "States.StringToJson($.s)",
                    "States.ArrayPartition($.a, 2)",
                    "States.UUID()",
                    "States.Base64Encode($.s)",
                    "States.ArrayContains($.a, 1)",
                    "States.StringSplit($.s, ',')",
                    "$$.State.Name",
                    "$$.Map.Item.Index",
                ])
                .prop_map(|s| ("$", json!(s))),
                literal().prop_map(|v| ("", v)),
            ],
        ),
        0..4,
    )
    .prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, (suffix, v))| (if suffix.is_empty() { k.to_owned() } else { format!("{k}.$") }, v))
                .collect(),
        )
    })
}

/// A state that is valid by construction (in JSONPath), so the run itself gets exercised.
fn valid_state(next: Option<String>) -> impl Strategy<Value = Value> {
    let n = next.clone();
    (
        prop::sample::select(vec!["Pass", "Choice", "Wait", "Map", "Parallel", "PassResult"]),
        prop::option::of(path()),
        prop::option::of(path()),
        prop::option::of(prop::sample::select(vec!["$", "$.r", "$.r.s"]).prop_map(|s| json!(s))),
        prop::option::of(template()),
        prop::collection::vec(valid_rule(), 1..3),
        json_value(),
        (0u64..3, prop::option::of(0u64..3)),
    )
        .prop_map(move |(ty, ip, op, rp, tpl, mut rules, result, (conc, tol))| {
            let mut s = Map::new();
            let to = |s: &mut Map<String, Value>| match &n {
                Some(n) => {
                    s.insert("Next".into(), json!(n));
                }
                None => {
                    s.insert("End".into(), json!(true));
                }
            };
            match ty {
                "Choice" => {
                    s.insert("Type".into(), json!("Choice"));
                    let target = n.clone().unwrap_or_else(|| "Done".into());
                    for r in &mut rules {
                        r["Next"] = json!(target);
                    }
                    s.insert("Choices".into(), Value::Array(rules));
                    s.insert("Default".into(), json!(target));
                }
                "Fail" => {
                    s.insert("Type".into(), json!("Fail"));
                    s.insert("ErrorPath".into(), ip.unwrap_or(json!("$.s")));
                }
                "Succeed" => {
                    s.insert("Type".into(), json!("Succeed"));
                }
                "Wait" => {
                    s.insert("Type".into(), json!("Wait"));
                    s.insert("SecondsPath".into(), ip.unwrap_or(json!("$.n")));
                    to(&mut s);
                }
                "Map" => {
                    s.insert("Type".into(), json!("Map"));
                    if let Some(p) = ip {
                        s.insert("ItemsPath".into(), p);
                    }
                    if let Some(t) = tpl {
                        s.insert("ItemSelector".into(), t);
                    }
                    s.insert("MaxConcurrency".into(), json!(conc));
                    if let Some(t) = tol {
                        s.insert("ToleratedFailureCount".into(), json!(t));
                    }
                    s.insert("ItemProcessor".into(), json!({"StartAt": "P", "States": {
                        "P": {"Type": "Pass", "Parameters": {"v.$": "$", "i.$": "States.JsonToString($)"}, "Next": "C"},
                        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "IsNumeric": true, "Next": "F"}], "Default": "E"},
                        "F": {"Type": "Fail", "Error": "Num"},
                        "E": {"Type": "Succeed"}}}));
                    if let Some(r) = rp {
                        s.insert("ResultPath".into(), r);
                    }
                    s.insert("Catch".into(), json!([{"ErrorEquals": ["Num"], "Next": "Done"}]));
                    to(&mut s);
                }
                "Parallel" => {
                    s.insert("Type".into(), json!("Parallel"));
                    s.insert("Branches".into(), json!([
                        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 1, "ResultPath": "$.one", "End": true}}}]));
                    if let Some(t) = tpl {
                        s.insert("Parameters".into(), t);
                    }
                    if let Some(r) = rp {
                        s.insert("ResultPath".into(), r);
                    }
                    s.insert("Retry".into(), json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]));
                    to(&mut s);
                }
                other => {
                    s.insert("Type".into(), json!("Pass"));
                    if other == "PassResult" {
                        s.insert("Result".into(), result);
                    } else if let Some(t) = tpl {
                        s.insert("Parameters".into(), t.clone());
                        s.insert("Assign".into(), json!({"x.$": "$", "y": t}));
                    }
                    if let Some(p) = ip {
                        s.insert("InputPath".into(), p);
                    }
                    if let Some(p) = op {
                        s.insert("OutputPath".into(), p);
                    }
                    if let Some(r) = rp {
                        s.insert("ResultPath".into(), r);
                    }
                    to(&mut s);
                }
            }
            Value::Object(s)
        })
}

fn valid_definition() -> impl Strategy<Value = Value> {
    (1usize..6).prop_flat_map(|n| {
        let states: Vec<_> =
            (0..n).map(|i| valid_state(Some(if i + 1 < n { format!("S{}", i + 1) } else { "Done".into() }))).collect();
        states.prop_map(|states| {
            let mut m = Map::new();
            for (i, s) in states.into_iter().enumerate() {
                m.insert(format!("S{i}"), s);
            }
            m.insert("Done".into(), json!({"Type": "Succeed"}));
            json!({"StartAt": "S0", "States": m})
        })
    })
}

fn check_run(def: &Value, input: Value) {
    let Ok(parsed) = Definition::parse(def) else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let engine =
            Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_clock(Arc::new(VirtualClock::new())));
        let exec = engine.start(Arc::new(parsed), input, StartOptions::default());
        // Loops through Choice/Next are legal ASL; cut them off after a while.
        let outcome = match tokio::time::timeout(Duration::from_secs(2), exec.wait()).await {
            Ok(o) => o,
            Err(_) => {
                exec.stop(None, None);
                exec.wait().await
            }
        };
        let cause = outcome.cause.unwrap_or_default();
        assert!(!cause.contains("unexpectedly") && !cause.contains("shut down"), "the engine crashed: {cause}");
        for e in exec.history_snapshot() {
            let _ = e.to_aws_json();
        }
    });
}

fn input() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (json_value(), -3i64..5, prop::sample::select(vec!["a,b", "{\"k\":1}", "", "x"]))
            .prop_map(|(a, n, s)| json!({"a": [a, 1, {"b": 2}], "n": n, "s": s})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn valid_random_definitions_run_without_panicking(def in valid_definition(), input in input()) {
        prop_assert!(Definition::parse(&def).is_ok(), "generated an invalid definition: {def}");
        check_run(&def, input);
    }

    #[test]
    fn random_definitions_and_inputs_never_panic(def in definition(), input in json_value()) {
        let Ok(parsed) = Definition::parse(&def) else { return Ok(()) };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let engine = Engine::new(
                EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_clock(Arc::new(VirtualClock::new())),
            );
            let exec = engine.start(Arc::new(parsed), input, StartOptions::default());
            // Loops through Choice/Next are legal ASL; cut them off after a while.
            let outcome = match tokio::time::timeout(Duration::from_secs(2), exec.wait()).await {
                Ok(o) => o,
                Err(_) => {
                    exec.stop(None, None);
                    exec.wait().await
                }
            };
            let cause = outcome.cause.unwrap_or_default();
            assert!(!cause.contains("unexpectedly") && !cause.contains("shut down"), "the engine crashed: {cause}");
            for e in exec.history_snapshot() {
                let _ = e.to_aws_json();
            }
        });
    }
}
