//! JSONata as Step Functions runs it: `$states`, Assign variables, AWS's extra functions, AWS's
//! definition-time refusals and AWS's JSON conversion of results.

use asl_expr::jsonata::{self, Jsonata};
use serde_json::{Value, json};

fn states(input: Value) -> Value {
    json!({
        "input": input,
        "context": {
            "Execution": {"Id": "arn:aws:states:us-east-1:1:execution:sm:e1", "Name": "e1"},
            "Map": {"Item": {"Index": 1, "Value": "Item2"}}
        }
    })
}

fn vars(name: &str) -> Option<Value> {
    match name {
        "ItemsVar" => Some(json!(["Item1", "Item2"])),
        "var" => Some(json!("\"")),
        "count" => Some(json!(7)),
        _ => None,
    }
}

fn compiled(expr: &str) -> Jsonata {
    jsonata::compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn eval(expr: &str, input: Value) -> Option<Value> {
    compiled(expr).eval(&states(input), &vars).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

#[track_caller]
fn check(expr: &str, input: Value, expected: Value) {
    assert_eq!(eval(expr, input), Some(expected), "{expr}");
}

#[track_caller]
fn undefined(expr: &str, input: Value) {
    assert_eq!(eval(expr, input), None, "{expr}");
}

#[track_caller]
fn fails(expr: &str, input: Value) -> String {
    let err = compiled(expr).eval(&states(input), &vars).expect_err(expr);
    assert_eq!(err.error, "States.QueryEvaluationError", "{expr}");
    err.cause
}

#[test]
fn corpus_expressions() {
    let fi = json!({"FunctionInput": {"fst": [0, 1, 2], "snd": 1}});
    check("$states.input.FunctionInput.fst", fi.clone(), json!([0, 1, 2]));
    check("$partition($states.input.FunctionInput.fst, $states.input.FunctionInput.snd)", fi, json!([[0], [1], [2]]));
    check("$states.input.type = 'Public'", json!({"type": "Public", "value": 22}), json!(true));
    check("$states.input.str_value = \"string literal\"", json!({"str_value": "string literal"}), json!(true));
    check("$states.input.condition", json!({"condition": false}), json!(false));
    check("$var = '\"'", json!({}), json!(true));
    check("$states.input = '\"'", json!("\""), json!(true));
    check("$states.input.cause", json!({"cause": "This failed."}), json!("This failed."));
    check("$states.context.Map.Item.Value", json!({}), json!("Item2"));
    check("$ItemsVar", json!({}), json!(["Item1", "Item2"]));
    check("$states.input.items", json!({"items": []}), json!([]));
    check("$parse($states.input.FunctionInput)", json!({"FunctionInput": "-0"}), json!(0));
    check("$parse($states.input.FunctionInput)", json!({"FunctionInput": "\"HelloWorld\""}), json!("HelloWorld"));
    check(
        "$parse($states.input.FunctionInput)",
        json!({"FunctionInput": "[1, 2, \"HelloWorld\"]"}),
        json!([1, 2, "HelloWorld"]),
    );
    check("$states.input", json!({"input_data": "test"}), json!({"input_data": "test"}));
}

#[test]
fn everyday_jsonata() {
    let input = json!({
        "items": [1, 2, 3],
        "csv": "x,y,z",
        "n": 3.7,
        "orders": [{"id": "a", "price": 150}, {"id": "b", "price": 50}],
        "name": "Public"
    });
    check("$count($states.input.items)", input.clone(), json!(3));
    check("$sum($states.input.items)", input.clone(), json!(6));
    check("$max($states.input.items) - $min($states.input.items)", input.clone(), json!(2));
    check("$average($states.input.items)", input.clone(), json!(2));
    check("$uppercase($states.input.name)", input.clone(), json!("PUBLIC"));
    check("$substring($states.input.name, 1, 3)", input.clone(), json!("ubl"));
    check("$split($states.input.csv, ',')", input.clone(), json!(["x", "y", "z"]));
    check("$join(['a', 'b'], '-')", input.clone(), json!("a-b"));
    check("$states.input.name & '!'", input.clone(), json!("Public!"));
    check("$states.input.n > 3 ? 'big' : 'small'", input.clone(), json!("big"));
    check(
        "{'first': $states.input.items[0], 'last': $states.input.items[-1]}",
        input.clone(),
        json!({"first": 1, "last": 3}),
    );
    check("$states.input.orders[price > 100].id", input.clone(), json!("a"));
    check("$states.input.orders.price", input.clone(), json!([150, 50]));
    check("$map($states.input.items, function($v) { $v * 10 })", input.clone(), json!([10, 20, 30]));
    check("$states.input.items ~> $filter(function($v) { $v > 1 })", input.clone(), json!([2, 3]));
    check("$reduce($states.input.items, function($a, $b) { $a + $b })", input.clone(), json!(6));
    check("($x := 5; $x * 2)", input.clone(), json!(10));
    check("$round(3.456, 2)", input.clone(), json!(3.46));
    check("$string($states.input.items)", input.clone(), json!("[1,2,3]"));
    check("$number('12')", input.clone(), json!(12));
    check("$exists($states.input.missing)", input.clone(), json!(false));
    check("$keys($states.input.orders[0])", input.clone(), json!(["id", "price"]));
    check("$merge([{'a': 1}, {'b': 2}])", input.clone(), json!({"a": 1, "b": 2}));
    check("[1..4]", input.clone(), json!([1, 2, 3, 4]));
    check("$formatNumber(1234.5, '#,##0.00')", input.clone(), json!("1,234.50"));
    check("$type($now())", input.clone(), json!("string"));
    check("$states.context.Execution.Name", input.clone(), json!("e1"));
    // Key order is kept, as Step Functions keeps it.
    check("{'z': 1, 'a': 2, 'm': 3}", input, json!({"z": 1, "a": 2, "m": 3}));
}

#[test]
fn assign_variables_are_dollar_names() {
    check("$count", json!({}), json!(7));
    // A variable named like a function does not hide the function.
    check("$count([1, 2])", json!({}), json!(2));
    undefined("$nobody", json!({}));
}

#[test]
fn undefined_results_are_none() {
    undefined("$states.input.absent", json!({}));
    undefined("$states.input.items[5]", json!({"items": [1]}));
    check("$states.input.bar", json!({"bar": null}), Value::Null);
    // Undefined members vanish from arrays and objects.
    check("{'a': $states.input.absent, 'b': 1}", json!({}), json!({"b": 1}));
    check("[$states.input.absent, 1]", json!({}), json!([1]));
    assert_eq!(
        jsonata::undefined_cause("$states.input.absent", "Output/v"),
        "The JSONata expression '$states.input.absent' specified for the field 'Output/v' returned nothing (undefined)."
    );
}

#[test]
fn plain_paths_keep_big_integers_exact() {
    let big = json!({"id": 12345678901234567890_u64, "n": -9007199254740993_i64, "f": 2.0});
    check("$states.input.id", big.clone(), json!(12345678901234567890_u64));
    check("$states.input", big.clone(), json!({"id": 12345678901234567890_u64, "n": -9007199254740993_i64, "f": 2}));
    check("$states.input.f", big, json!(2));
    // Steps over arrays map over the elements, as JSONata does.
    check("$states.input.a.b", json!({"a": [{"b": 1}, {"b": 2}]}), json!([1, 2]));
    check("$states.input.a", json!({"a": [[1, 2]]}), json!([[1, 2]]));
    check("$states.input.a", json!({"a": [0]}), json!([0]));
    undefined("$states.input.a.b", json!({"a": null}));
    undefined("$states.input.missing.deeper", json!({}));
}

#[test]
fn aws_number_conversion() {
    check("1/0", json!({}), json!("Infinity"));
    check("-1/0", json!({}), json!("-Infinity"));
    check("3.0", json!({}), json!(3));
    check("0.1 + 0.2", json!({}), json!(0.30000000000000004));
    check("100000000000000000000", json!({}), json!(100000000000000000000.0));
    check("$states.input.big", json!({"big": 9007199254740991_i64}), json!(9007199254740991_i64));
}

#[test]
fn partition() {
    for (items, size, expected) in [
        (json!([0, 1, 2]), json!(1), json!([[0], [1], [2]])),
        (json!([0, 1, 2, 3]), json!(1), json!([[0], [1], [2], [3]])),
        (json!([0]), json!(3), json!([[0]])),
        (json!([0]), json!(5), json!([[0]])),
        (json!([1, 2, 3, 4, 5]), json!(2), json!([[1, 2], [3, 4], [5]])),
        // Fractions are truncated.
        (json!([1, 2, 3, 4, 5]), json!(2.9), json!([[1, 2], [3, 4], [5]])),
    ] {
        check("$partition($states.input.a, $states.input.s)", json!({"a": items, "s": size}), expected);
    }
    undefined("$partition($states.input.a, 0)", json!({"a": [1, 2]}));
    undefined("$partition($states.input.a, 2)", json!({"a": []}));
    fails("$partition($states.input.a, 'x')", json!({"a": [1]}));
}

#[test]
fn range() {
    check("$range(0, 9, 3)", json!({}), json!([0, 3, 6, 9]));
    check("$range(0, 10, 3)", json!({}), json!([0, 3, 6, 9]));
    check("$range(1, 9, 2)", json!({}), json!([1, 3, 5, 7, 9]));
    check("$range(5, 1, -2)", json!({}), json!([5, 3, 1]));
    check("$range(-1.7, 2, 1)", json!({}), json!([-1, 0, 1, 2]));
    // A single-element range is the bare number.
    check("$range(3, 3, 1)", json!({}), json!(3));
    check("$count($range(-9e18, 9e18, 9e18))", json!({}), json!(3));
    undefined("$range(1, 5)", json!({}));
    undefined("$range(1, 5, -1)", json!({}));
    undefined("$range(5, 1, 1)", json!({}));
    undefined("$range(1, 5, 0)", json!({}));
    assert_eq!(eval("$count($range(1, 360145, 1))", json!({})), Some(json!(360145)));
    let cause = fails("$range(1, 360146, 1)", json!({}));
    assert!(cause.contains("memory limit"), "{cause}");
}

#[test]
fn hash_random_uuid() {
    check(
        "$hash('hello', 'SHA-256')",
        json!({}),
        json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
    );
    check("$hash($states.input.s, 'MD5')", json!({"s": "input data"}), json!("812f45842bc6d66ee14572ce20db8e86"));
    undefined("$hash('hello')", json!({}));
    fails("$hash('hello', 'sha-256')", json!({}));
    for _ in 0..100 {
        let r = eval("$random()", json!({})).and_then(|v| v.as_f64()).expect("a number");
        assert!((0.0..1.0).contains(&r), "{r}");
    }
    // java.util.Random(42).nextDouble(), checked with a JVM.
    check("$random(42)", json!({}), json!(0.7275636800328681));
    check("$random(42) = $random(42)", json!({}), json!(true));
    let a = eval("$uuid()", json!({})).expect("uuid");
    assert_eq!(a.as_str().map(str::len), Some(36));
    assert_ne!(Some(a), eval("$uuid()", json!({})));
}

#[test]
fn parse_and_eval() {
    check("$parse('{\"a\": [1, {\"b\": null}]}')", json!({}), json!({"a": [1, {"b": null}]}));
    fails("$parse('{bad')", json!({}));
    let cause = fails("$eval('1 + 1')", json!({}));
    assert!(cause.starts_with("T1006"), "{cause}");
}

/// The causes AWS reports for failing expressions (captured from the live service and published
/// with Floci's Step Functions emulator), which follow jsonata-js's message catalog.
#[test]
fn evaluation_errors_carry_aws_causes() {
    for (expr, cause) in [
        ("$states.input.s + 1", "T2001: The left side of the \"+\" operator must evaluate to a number"),
        ("1 + {}", "T2002: The right side of the \"+\" operator must evaluate to a number"),
        ("$split('a','b',-1)", "D3020: Third argument of split function must evaluate to a positive number"),
        (
            "$reduce([1,2], function($a){$a})",
            "D3050: The second argument of reduce function must be a function with at least two arguments",
        ),
        (
            "$single([1,2], function($x){true})",
            "D3138: The $single() function expected exactly 1 matching result.  Instead it matched more.",
        ),
        ("$parse(null)", "T0410: Argument 1 of function \"parse\" does not match function signature"),
        ("$replace('a','','b')", "Second argument of replace function cannot be an empty string"),
        ("$sqrt(-1)", "D3060: The sqrt function cannot be applied to a negative number: -1"),
        ("$number('x')", "D3030: Unable to cast value to a number: \"x\""),
        ("$nofunction(1)", "T1006: Attempted to invoke a non-function"),
    ] {
        assert_eq!(fails(expr, json!({"s": "x"})), cause, "{expr}");
    }
    fails("$error('custom')", json!({}));
    assert_eq!(
        jsonata::eval_error_cause("1 + {}", "Output", "T2002: x"),
        "The JSONata expression '1 + {}' specified for the field 'Output' threw an error during evaluation. T2002: x"
    );
}

#[test]
fn definition_time_checks() {
    for (expr, error, cause) in [
        ("phone", "UNSUPPORTED_JSONATA_EXPRESSION", "Reference to 'phone' at the top level is not supported."),
        ("phone.number", "UNSUPPORTED_JSONATA_EXPRESSION", "Reference to 'phone' at the top level is not supported."),
        ("{'v': b}", "UNSUPPORTED_JSONATA_EXPRESSION", "Reference to 'b' at the top level is not supported."),
        (
            "$map($states.input.a, function($x){ b })",
            "UNSUPPORTED_JSONATA_EXPRESSION",
            "Reference to 'b' at the top level is not supported.",
        ),
        ("$$", "UNSUPPORTED_JSONATA_EXPRESSION", "Reference to '$$' is not supported."),
        ("$$.a", "UNSUPPORTED_JSONATA_EXPRESSION", "Reference to '$$' is not supported."),
    ] {
        let err = jsonata::compile(expr).expect_err(expr);
        assert_eq!((err.error.as_str(), err.cause.as_str()), (error, cause), "{expr}");
    }
    let err = jsonata::compile("a[1,2)").expect_err("syntax");
    assert_eq!(err.error, "INVALID_JSONATA_EXPRESSION");
    // Names after the first step, in predicates and in sort terms read items, which is fine.
    for ok in [
        "$states.input.items[value > 3]",
        "$states.input.a.b.c",
        "$states.input.orders^(price).id",
        "$states.input.x{k: v}",
    ] {
        compiled(ok);
    }
}

/// Only the parts of `$states` and of variables an expression can reach are converted; these
/// check that every way of reaching a value still sees it.
#[test]
fn projections_keep_every_reachable_value() {
    let input = json!({
        "a": [{"b": 1, "c": 9}, {"b": 2}],
        "o": {"p": {"q": "deep", "r": "other"}, "s": [1, 2]},
        "k": "key"
    });
    check("$states.input.a.b", input.clone(), json!([1, 2]));
    check("$states.input.a[0].c", input.clone(), json!(9));
    check("$states.input.o.p.q", input.clone(), json!("deep"));
    check("$keys($states.input.o.p)", input.clone(), json!(["q", "r"]));
    check("$lookup($states.input, 'k')", input.clone(), json!("key"));
    check("($s := $states; $s.input.o.p.r)", input.clone(), json!("other"));
    check("$states.input.o.p.q & $states.input.o.s[1]", input.clone(), json!("deep2"));
    check("$states.input.o.*.q", input.clone(), json!("deep"));
    check("$states.input.o.p.$keys()", input.clone(), json!(["q", "r"]));
    check("$count($states.input.a)", input.clone(), json!(2));
    check("$states.context.Execution.Name & $states.input.k", input, json!("e1key"));
    check("$ItemsVar[1]", json!({}), json!("Item2"));
}

#[test]
fn reports_what_it_reads() {
    let e = compiled("$states.errorOutput.Cause & $states.input.x & $v & ($l := 1; $l)");
    assert_eq!(e.states_fields(), ["errorOutput", "input"]);
    assert_eq!(e.variables(), ["states", "v", "l"]);
    assert_eq!(e.source(), "$states.errorOutput.Cause & $states.input.x & $v & ($l := 1; $l)");
    assert_eq!(jsonata::strip_delimiters("{% $x %}"), Some(" $x "));
    assert_eq!(jsonata::strip_delimiters(" {% $x %} "), None);
    assert_eq!(jsonata::strip_delimiters("$states.input"), None);
}

#[test]
fn compile_once_evaluate_many_times_across_threads() {
    let e = std::sync::Arc::new(compiled("$states.input.n * 2"));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                (0..50).all(|i| {
                    e.eval(&states(json!({"n": t * 100 + i})), &|_| None).ok().flatten()
                        == Some(json!((t * 100 + i) * 2))
                })
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().expect("no panic"));
    }
}

mod fast_path {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-1_000_000i64..1_000_000).prop_map(Value::from),
            (-1000.0f64..1000.0).prop_map(|f| json!((f * 4.0).round() / 4.0)),
            "[a-c]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop_oneof![Just("a"), Just("b"), Just("c")], inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        /// A plain path read straight from the JSON answers what the JSONata evaluator answers
        /// for the same path (the parentheses make the second one go through the evaluator).
        #[test]
        fn plain_paths_agree_with_the_evaluator(input in json_value(), path in "(\\.[abc]){0,4}") {
            let direct = compiled(&format!("$states.input{path}"));
            let evaluated = compiled(&format!("($states.input{path})"));
            let s = states(input);
            prop_assert_eq!(direct.eval(&s, &vars).ok(), evaluated.eval(&s, &vars).ok());
        }
    }
}
