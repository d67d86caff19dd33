//! Random text never panics either parser, nor evaluation of whatever parses.

use asl_expr::{intrinsics, jsonata};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text built from the pieces both languages are made of, so that much of it gets past the
/// first character and exercises the deeper parser states.
fn expression_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("States.".to_owned()),
        Just("Format".to_owned()),
        Just("Array".to_owned()),
        Just("MathAdd".to_owned()),
        Just("ArrayRange".to_owned()),
        Just("Hash".to_owned()),
        Just("$states.input".to_owned()),
        Just("$.a".to_owned()),
        Just("$$".to_owned()),
        Just("$partition".to_owned()),
        Just("$range".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just(",".to_owned()),
        Just(".".to_owned()),
        Just(":=".to_owned()),
        Just("~>".to_owned()),
        Just("?".to_owned()),
        Just("function($x)".to_owned()),
        Just(" ".to_owned()),
        "-?[0-9]{1,20}(\\.[0-9]{1,3})?(e[0-9]{1,3})?".prop_map(|s| s),
        "[a-z]{1,5}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn input() -> Value {
    json!({"a": [1, "x", null, {"k": 2.5}], "b": "text", "c": 3})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, .. ProptestConfig::default() })]

    #[test]
    fn intrinsic_parser_never_panics(s in expression_like()) {
        if let Ok(call) = intrinsics::parse(&s) {
            let _ = call.check();
            let _ = call.to_string();
            let _ = call.eval(&|p| Ok(if p == "$" { input() } else { json!([p]) }));
        }
    }

    #[test]
    fn intrinsic_parser_never_panics_on_any_text(s in ".*") {
        let _ = intrinsics::parse(&s);
        let _ = intrinsics::parse(&format!("States.Array({s})"));
    }

    #[test]
    fn jsonata_never_panics(s in expression_like()) {
        if let Ok(expr) = jsonata::compile(&s) {
            let _ = expr.eval(&json!({"input": input(), "context": {}}), &|_| Some(json!(1)));
        }
    }

    #[test]
    fn jsonata_never_panics_on_any_text(s in ".*") {
        let _ = jsonata::compile(&s);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}1{}", "States.Array(".repeat(100_000), ")".repeat(100_000));
    assert!(intrinsics::parse(&deep).is_err());
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(jsonata::compile(&deep).is_err());
}
