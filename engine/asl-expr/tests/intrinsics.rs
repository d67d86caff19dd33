//! Intrinsic functions, one test per function, with the edge cases AWS has been observed to
//! answer (the values come from AWS's documentation, the conformance corpus and published
//! observations of the live service).

use asl_expr::ExprError;
use asl_expr::intrinsics::{self, Arg, Func};
use serde_json::{Value, json};

/// Resolves `$`, `$.a.b` and `$$.x` (against `{"Execution": {"Id": "exec-1"}}`) over `input`.
fn resolve(input: &Value, path: &str) -> Result<Value, ExprError> {
    let context = json!({"Execution": {"Id": "exec-1", "Input": input}});
    let (root, rest) = match path.strip_prefix("$$") {
        Some(rest) => (&context, rest),
        None => (input, path.strip_prefix('$').unwrap_or(path)),
    };
    let mut v = root;
    for key in rest.split('.').skip(1) {
        v = v.get(key).ok_or_else(|| {
            ExprError::runtime(format!(
                "The JsonPath argument for the field '{path}' could not be found in the input '{input}'"
            ))
        })?;
    }
    Ok(v.clone())
}

fn eval(expr: &str, input: Value) -> Result<Value, ExprError> {
    intrinsics::eval(expr, &|p| resolve(&input, p))
}

#[track_caller]
fn check(expr: &str, input: Value, expected: Value) {
    match eval(expr, input) {
        Ok(v) => assert_eq!(v, expected, "{expr}"),
        Err(e) => panic!("{expr}: unexpected error {e}"),
    }
}

/// AWS fails the execution with `States.Runtime` and this cause.
#[track_caller]
fn invalid(expr: &str, input: Value) {
    let err = eval(expr, input).expect_err(expr);
    let name = expr.split('(').next().unwrap_or_default();
    assert_eq!(err.error, "States.Runtime", "{expr}");
    assert_eq!(err.cause, format!("Invalid arguments in {name}"), "{expr}");
}

#[track_caller]
fn syntax_error(expr: &str) {
    assert!(intrinsics::parse(expr).is_err(), "{expr} should not parse");
}

#[test]
fn parse_builds_the_call_tree() {
    let call = intrinsics::parse("States.Format('a{}', States.MathAdd($.x, -1), $$.Execution.Id)").expect("parses");
    assert_eq!(call.func(), Func::Format);
    assert_eq!(call.args().len(), 3);
    assert!(matches!(&call.args()[1], Arg::Call(c) if c.func() == Func::MathAdd));
    assert_eq!(call.paths(), vec!["$.x", "$$.Execution.Id"]);
    assert_eq!(call.to_string(), "States.Format('a{}', States.MathAdd($.x, -1), $$.Execution.Id)");
    let quoted = intrinsics::parse(r"States.Array('it\'s \\ here')").expect("parses");
    assert_eq!(quoted.args()[0], Arg::Literal(json!("it's \\ here")));
    assert_eq!(quoted.to_string(), r"States.Array('it\'s \\ here')");
    let spaced = intrinsics::parse(" States.Array( 1 ,\t'b' ,\n$.c ) ").expect("whitespace is skipped");
    assert_eq!(spaced.args().len(), 3);
}

#[test]
fn parse_reads_every_literal_kind_and_path_form() {
    let call = intrinsics::parse(
        "States.Array('s', 1, -2.5, 1e3, true, false, null, $, $.a[0].b, $['x y'], $var.x, $$.Map.Item.Value)",
    )
    .expect("parses");
    let args = call.args();
    assert_eq!(args[0], Arg::Literal(json!("s")));
    assert_eq!(args[1], Arg::Literal(json!(1)));
    assert_eq!(args[2], Arg::Literal(json!(-2.5)));
    assert_eq!(args[3], Arg::Literal(json!(1000.0)));
    assert_eq!(args[4], Arg::Literal(json!(true)));
    assert_eq!(args[5], Arg::Literal(json!(false)));
    assert_eq!(args[6], Arg::Literal(Value::Null));
    assert_eq!(call.paths(), vec!["$", "$.a[0].b", "$['x y']", "$var.x", "$$.Map.Item.Value"]);
}

#[test]
fn parse_rejects_malformed_calls() {
    for bad in [
        "",
        "States",
        "States.",
        "States.Nope()",
        "States.format('x')",
        "Foo.Array()",
        "States.Array(",
        "States.Array(1,)",
        "States.Array(,1)",
        "States.Array(1 2)",
        "States.Array('unterminated)",
        "States.Array('bad \\n escape')",
        "States.Array(tru)",
        "States.Array(01)",
        "States.Array(1) trailing",
        "States.Array(1))",
        "$.a",
    ] {
        syntax_error(bad);
    }
    assert!(intrinsics::is_intrinsic("States.UUID()"));
    assert!(!intrinsics::is_intrinsic("$.States"));
}

#[test]
fn arity_and_template_problems_wait_for_run_time_as_on_aws() {
    // AWS accepts these definitions and fails the execution; `check` reports them up front.
    for expr in
        ["States.MathAdd(1)", "States.Hash()", "States.UUID(1)", "States.Format('{} {}', 1)", "States.Format('a {')"]
    {
        let call = intrinsics::parse(expr).expect("syntax is fine");
        assert!(call.check().is_err(), "{expr}");
        assert_eq!(call.eval(&|_| Ok(Value::Null)).expect_err(expr).error, "States.Runtime");
    }
    let nested = intrinsics::parse("States.Array(States.MathAdd(1))").expect("parses");
    assert!(nested.check().is_err());
    assert_eq!(intrinsics::parse("States.Format('{}', 1)").expect("parses").check(), Ok(()));
}

#[test]
fn path_errors_from_the_engine_pass_through() {
    let err = eval("States.Base64Encode($.missing)", json!({})).expect_err("missing path");
    assert_eq!(err.error, "States.Runtime");
    assert!(err.cause.contains("could not be found in the input '{}'"), "{}", err.cause);
}

#[test]
fn format() {
    check("States.Format('Hello {}', $.name)", json!({"name": "Ada"}), json!("Hello Ada"));
    check("States.Format('{} {} {}', $.a, $.b, $.c)", json!({"a": "x", "b": 2, "c": true}), json!("x 2 true"));
    check("States.Format('no placeholders')", json!({}), json!("no placeholders"));
    check("States.Format($.t, $.n)", json!({"t": "Hello {}", "n": "Ada"}), json!("Hello Ada"));
    check("States.Format('  {}  ', 'x')", json!({}), json!("  x  "));
    check("States.Format('{}:{}', $.name, $$.Execution.Id)", json!({"name": "job"}), json!("job:exec-1"));
    // Non-string values: JSON for scalars, null as "null", Java notation for collections.
    check(
        "States.Format('{}|{}|{}|{}|{}', $.nil, $.b, $.neg, $.frac, $.big)",
        json!({"nil": null, "b": false, "neg": -1, "frac": 3.5, "big": 9007199254740991_i64}),
        json!("null|false|-1|3.5|9007199254740991"),
    );
    check("States.Format('{}', $.o)", json!({"o": {"Arg1": 1, "Arg2": []}}), json!("{Arg1=1, Arg2=[]}"));
    check("States.Format('{}', $.a)", json!({"a": ["x", 1, null, {"k": "v"}]}), json!("[x, 1, null, {k=v}]"));
    check("States.Format('Format:{}', 101)", json!({}), json!("Format:101"));
    check(
        "States.Format('arn:{}:{}', 'l', States.JsonToString($.o))",
        json!({"o": {"k": 1}}),
        json!("arn:l:{\"k\":1}"),
    );
    // Escapes: \' \{ \} \\ stand for themselves and braces so escaped are not holes.
    check(r"States.Format('Name: \'{}\'', 'G')", json!({}), json!("Name: 'G'"));
    check(r"States.Format('\{\} is {}', 'literal')", json!({}), json!("{} is literal"));
    check(r"States.Format('a\\b {}', 1)", json!({}), json!("a\\b 1"));
    invalid("States.Format('{} {}', $.a)", json!({"a": "x"}));
    invalid("States.Format('{}', $.a, $.b)", json!({"a": "x", "b": "y"}));
    invalid("States.Format($.t, 'x')", json!({"t": 123}));
    invalid("States.Format('Hello {', 'x')", json!({}));
    invalid("States.Format('Hello {{}}', 'x')", json!({}));
    invalid("States.Format('}')", json!({}));
    invalid("States.Format()", json!({}));
}

#[test]
fn string_to_json_and_back() {
    check("States.StringToJson($.s)", json!({"s": "{\"a\":[1,2]}"}), json!({"a": [1, 2]}));
    check("States.StringToJson($.s)", json!({"s": "1.1"}), json!(1.1));
    check("States.StringToJson($.s)", json!({"s": ""}), Value::Null);
    check("States.StringToJson($.s)", json!({"s": "\"x\""}), json!("x"));
    check("States.StringToJson('\\{\"a\":1\\}')", json!({}), json!({"a": 1}));
    invalid("States.StringToJson($.s)", json!({"s": "{not json"}));
    invalid("States.StringToJson($.s)", json!({"s": 1}));
    invalid("States.StringToJson('a', 'b')", json!({}));
    check("States.JsonToString($.v)", json!({"v": 0}), json!("0"));
    check("States.JsonToString($.v)", json!({"v": [1, 2, "HelloWorld"]}), json!("[1,2,\"HelloWorld\"]"));
    check("States.JsonToString($.v)", json!({"v": {"Arg1": 1, "Arg2": []}}), json!("{\"Arg1\":1,\"Arg2\":[]}"));
    check("States.JsonToString($.v)", json!({"v": "s"}), json!("\"s\""));
    check("States.JsonToString($.v)", json!({"v": null}), json!("null"));
    invalid("States.JsonToString()", json!({}));
}

#[test]
fn array() {
    check("States.Array()", json!({}), json!([]));
    check("States.Array($.a, $.b)", json!({"a": {"x": 1}, "b": null}), json!([{"x": 1}, null]));
    check("States.Array('a', 1, true, null, States.Array())", json!({}), json!(["a", 1, true, null, []]));
}

#[test]
fn array_partition() {
    check("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3, 4]}), json!([[1, 2], [3, 4]]));
    check(
        "States.ArrayPartition($.a, 4)",
        json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
        json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
    );
    check("States.ArrayPartition($.a, 10)", json!({"a": [1, 2, 3]}), json!([[1, 2, 3]]));
    check("States.ArrayPartition($.a, 3)", json!({"a": []}), json!([]));
    check("States.ArrayPartition($.a, 2)", json!({"a": [[1], [2], [3]]}), json!([[[1], [2]], [[3]]]));
    check("States.ArrayPartition($.a, 2147483647)", json!({"a": [1, 2]}), json!([[1, 2]]));
    // AWS truncates a fractional size.
    check("States.ArrayPartition($.a, 2.6)", json!({"a": [1, 2, 3, 4, 5]}), json!([[1, 2], [3, 4], [5]]));
    for size in ["0", "-1", "0.6", "0.49", "-0.4", "-0.6", "null", "'2'"] {
        invalid(&format!("States.ArrayPartition($.a, {size})"), json!({"a": [1, 2, 3]}));
    }
    invalid("States.ArrayPartition('not-array', 2)", json!({}));
    invalid("States.ArrayPartition($.a)", json!({"a": [1]}));
    invalid("States.ArrayPartition($.a, 2, 9)", json!({"a": [1]}));
}

#[test]
fn array_contains() {
    check("States.ArrayContains($.a, $.v)", json!({"a": [[1, 2, 3], 2], "v": [1, 2, 3]}), json!(true));
    check("States.ArrayContains($.a, $.v)", json!({"a": [{"1": 2, "2": []}], "v": {"1": 2, "2": []}}), json!(true));
    // AWS compares text: key order matters, and strings match the values they spell.
    for (input, expected) in [
        (json!({"a": [{"a": 1, "b": 2}], "v": {"b": 2, "a": 1}}), false),
        (json!({"a": [{"a": 1}], "v": {"a": 1, "extra": null}}), false),
        (json!({"a": ["true", "false"], "v": true}), true),
        (json!({"a": ["-1", "9007199254740991"], "v": 9007199254740991_i64}), true),
        (json!({"a": [0, 1, -1, -1.5], "v": false}), false),
        (json!({"a": [null, "", " ", 0, 1, true, false, [0, 1, false]], "v": [0, 1, false]}), true),
    ] {
        check("States.ArrayContains($.a, $.v)", input, json!(expected));
    }
    check("States.ArrayContains($.a, $.v)", json!({"a": [], "v": []}), json!(false));
    check("States.ArrayContains($.a, $.v)", json!({"a": [true, false], "v": false}), json!(true));
    check("States.ArrayContains($.a, $.v)", json!({"a": [null], "v": null}), json!(true));
    check("States.ArrayContains($.a, 'x')", json!({"a": ["y"]}), json!(false));
    invalid("States.ArrayContains($.a, 1)", json!({"a": "abc"}));
    invalid("States.ArrayContains($.a)", json!({"a": []}));
}

#[test]
fn array_range() {
    check("States.ArrayRange(1, 9, 2)", json!({}), json!([1, 3, 5, 7, 9]));
    check("States.ArrayRange(0, 10, 3)", json!({}), json!([0, 3, 6, 9]));
    check("States.ArrayRange(-2, 2, 2)", json!({}), json!([-2, 0, 2]));
    check("States.ArrayRange(3, 3, -1)", json!({}), json!([3]));
    check("States.ArrayRange(5, 1, -2)", json!({}), json!([5, 3, 1]));
    check("States.ArrayRange(5, 1, 1)", json!({}), json!([]));
    check("States.ArrayRange(1, 5, -1)", json!({}), json!([]));
    // AWS truncates every argument.
    check("States.ArrayRange(1.4, 5.6, 2.2)", json!({}), json!([1, 3, 5]));
    check("States.ArrayRange(1.6, 1.4, 1)", json!({}), json!([1]));
    check("States.ArrayRange(5.4, -0.6, -2.4)", json!({}), json!([5, 3, 1]));
    check("States.ArrayRange(States.MathAdd($.b, 1), States.MathAdd($.b, 5), 2)", json!({"b": 0}), json!([1, 3, 5]));
    // At most 1000 items, either way.
    check("States.ArrayRange(1, 1000, 1)", json!({}), json!((1..=1000).collect::<Vec<i64>>()));
    check("States.ArrayRange(1000, 1, -1)", json!({}), json!((1..=1000).rev().collect::<Vec<i64>>()));
    invalid("States.ArrayRange(1, 1001, 1)", json!({}));
    invalid("States.ArrayRange(1001, 1, -1)", json!({}));
    check(
        "States.ArrayRange(-9000000000000000000, 9000000000000000000, 9000000000000000000)",
        json!({}),
        json!([-9_000_000_000_000_000_000_i64, 0, 9_000_000_000_000_000_000_i64]),
    );
    invalid("States.ArrayRange(1, 10, 0)", json!({}));
    invalid("States.ArrayRange(1, 10, 0.49)", json!({}));
    invalid("States.ArrayRange('a', 5, 1)", json!({}));
    invalid("States.ArrayRange(1, 5)", json!({}));
    invalid("States.ArrayRange(1, 5, 1, 99)", json!({}));
}

#[test]
fn array_get_item() {
    check("States.ArrayGetItem($.a, 1)", json!({"a": ["a", "b", "c"]}), json!("b"));
    check("States.ArrayGetItem($.a, $.i)", json!({"a": [10, 20, 30, 40], "i": 2}), json!(30));
    check("States.ArrayGetItem($.a, 0)", json!({"a": [null]}), Value::Null);
    check("States.ArrayGetItem(States.Array('x', 'y'), 1)", json!({}), json!("y"));
    // AWS truncates a fractional index and answers null for any index into an empty array.
    check("States.ArrayGetItem($.a, 1.2)", json!({"a": [10, 20, 30]}), json!(20));
    check("States.ArrayGetItem($.a, 999)", json!({"a": []}), Value::Null);
    invalid("States.ArrayGetItem($.a, 3)", json!({"a": [10, 20, 30]}));
    invalid("States.ArrayGetItem($.a, -1)", json!({"a": [10, 20, 30]}));
    invalid("States.ArrayGetItem($.a, '1')", json!({"a": [10, 20, 30]}));
    invalid("States.ArrayGetItem('not-array', 0)", json!({}));
    invalid("States.ArrayGetItem($.a)", json!({"a": [1]}));
}

#[test]
fn array_length_and_unique() {
    let mixed = json!([null, null, true, true, false, false, 1, 1, 1.1, 0, 0, "HelloWorld", "HelloWorld", [], [], [null], [null], {"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1, "b": 1}]);
    check("States.ArrayLength($.a)", json!({"a": mixed}), json!(20));
    check("States.ArrayLength($.a)", json!({"a": []}), json!(0));
    invalid("States.ArrayLength($.a)", json!({"a": {"k": 1}}));
    check(
        "States.ArrayUnique($.a)",
        json!({"a": mixed}),
        // The iteration order of a java.util.HashSet of these values (checked with a JVM), which
        // is the order AWS answers in.
        json!([null, 0, {"a": 1, "b": 2}, 1, [], {"a": 1, "b": 1}, 1.1, true, "HelloWorld", false, [null]]),
    );
    for (input, expected) in [
        (json!([true, false, true, false]), json!([false, true])),
        (json!([[1, 2], [1, 2], [2, 1]]), json!([[2, 1], [1, 2]])),
        (json!([null, null, 1, null]), json!([null, 1])),
        (json!(["a", "b", "a", "c", "b"]), json!(["a", "b", "c"])),
        (json!([{"a": 1, "b": 2}, {"b": 2, "a": 1}]), json!([{"a": 1, "b": 2}])),
        (json!([1, 1.0]), json!([1.0, 1])),
        (
            json!(["zeta", "alpha", "Mike", "b", 100000, -5, 3000000000_i64, 2.5, "x"]),
            json!(["zeta", 3000000000_i64, 100000, "Mike", "b", -5, 2.5, "alpha", "x"]),
        ),
    ] {
        check("States.ArrayUnique($.a)", json!({"a": input}), expected);
    }
    check("States.ArrayUnique($.a)", json!({"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]}), json!([1, 2, 3, 4]));
    invalid("States.ArrayUnique($.a)", json!({"a": "x"}));
}

#[test]
fn base64() {
    check("States.Base64Encode($.s)", json!({"s": "Data to encode"}), json!("RGF0YSB0byBlbmNvZGU="));
    check("States.Base64Encode('')", json!({}), json!(""));
    check("States.Base64Encode($.s)", json!({"s": "✓"}), json!("4pyT"));
    check("States.Base64Encode('🚀')", json!({}), json!("8J+agA=="));
    check("States.Base64Encode($.s)", json!({"s": "abc\u{0}def"}), json!("YWJjAGRlZg=="));
    check("States.Base64Decode($.s)", json!({"s": "RGF0YSB0byBlbmNvZGU="}), json!("Data to encode"));
    check("States.Base64Decode('44GT44KT44Gr44Gh44Gv')", json!({}), json!("こんにちは"));
    check("States.Base64Decode('')", json!({}), json!(""));
    check("States.Base64Decode(States.Base64Encode('hello'))", json!({}), json!("hello"));
    // AWS decodes leniently: stray characters skipped, decoding stops at padding, partial groups.
    check("States.Base64Decode(' YWJjZA== ')", json!({}), json!("abcd"));
    check("States.Base64Decode('YWJjZA')", json!({}), json!("abcd"));
    // "invalid" decodes to 8a 7b da 96 27; bytes that are not UTF-8 become U+FFFD, as in Java.
    check("States.Base64Decode('!!!invalid!!!')", json!({}), json!("\u{FFFD}{\u{0696}'"));
    check("States.Base64Decode('ab==cd')", json!({}), json!("i"));
    // At most 10,000 characters in.
    let a10000 = "a".repeat(10_000);
    check("States.Base64Encode($.s)", json!({"s": a10000}), json!("YWFh".repeat(3333) + "YQ=="));
    invalid("States.Base64Encode($.s)", json!({"s": "a".repeat(10_001)}));
    invalid("States.Base64Decode($.s)", json!({"s": "A".repeat(10_001)}));
    invalid("States.Base64Encode(123)", json!({}));
    invalid("States.Base64Encode($.o)", json!({"o": {}}));
    invalid("States.Base64Decode($.o)", json!({"o": ["x"]}));
    invalid("States.Base64Encode('a', 'b')", json!({}));
    invalid("States.Base64Decode()", json!({}));
}

#[test]
fn hash() {
    let hello = [
        ("MD5", "5d41402abc4b2a76b9719d911017c592"),
        ("SHA-1", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
        ("SHA-256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        ("SHA-384", "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f"),
        (
            "SHA-512",
            "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043",
        ),
    ];
    for (algorithm, digest) in hello {
        check(&format!("States.Hash('hello', '{algorithm}')"), json!({}), json!(digest));
    }
    check("States.Hash($.d, $.a)", json!({"d": "input data", "a": "MD5"}), json!("812f45842bc6d66ee14572ce20db8e86"));
    check(
        "States.Hash('', 'SHA-256')",
        json!({}),
        json!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    );
    check(
        "States.Hash('🚀', 'SHA-256')",
        json!({}),
        json!("ebbc0b2870eb323f2b6cffa5c493ceef81ae7eb36afc73d4e0367301631daec5"),
    );
    check("States.Hash($.s, 'MD5')", json!({"s": "abc\u{0}def"}), json!("a5e4d5963ae44c1f4bfb37b1a3d55a3c"));
    // AWS hashes other values as their JSON text.
    check("States.Hash(123, 'MD5')", json!({}), json!("202cb962ac59075b964b07152d234b70"));
    check(
        "States.Hash($.s, 'SHA-256')",
        json!({"s": "a".repeat(10_000)}),
        json!("27dd1f61b867b6a0f6e9d8a41c43231de52107e53ae424de8f847b821db4b711"),
    );
    invalid("States.Hash($.s, 'SHA-256')", json!({"s": "a".repeat(10_001)}));
    for algorithm in ["'sha-256'", "'SHA256'", "''", "'MD-5'", "'SHA-257'", "123"] {
        invalid(&format!("States.Hash('data', {algorithm})"), json!({}));
    }
    invalid("States.Hash('hello')", json!({}));
    invalid("States.Hash('hello', 'SHA-256', 'extra')", json!({}));
}

#[test]
fn json_merge() {
    check(
        "States.JsonMerge($.a, $.b, false)",
        json!({"a": {"x": 1, "y": 2}, "b": {"y": 3, "z": 4}}),
        json!({"x": 1, "y": 3, "z": 4}),
    );
    // Shallow: nested objects are replaced, not merged.
    check(
        "States.JsonMerge($.a, $.b, false)",
        json!({"a": {"nested": {"a1": 1, "a2": 2}}, "b": {"nested": {"a3": 3}}}),
        json!({"nested": {"a3": 3}}),
    );
    check(
        "States.JsonMerge($.a, $.b, false)",
        json!({"a": {"n": {"l": true}, "keep": 1}, "b": {"n": null}}),
        json!({"n": null, "keep": 1}),
    );
    check(
        "States.JsonMerge(States.StringToJson($.a), States.StringToJson($.b), false)",
        json!({"a": "{\"l\":1}", "b": "{\"r\":2}"}),
        json!({"l": 1, "r": 2}),
    );
    // AWS takes any third argument but true as the shallow merge.
    check("States.JsonMerge($.a, $.b, $.d)", json!({"a": {}, "b": {"k": 1}, "d": "false"}), json!({"k": 1}));
    invalid("States.JsonMerge($.a, $.b, true)", json!({"a": {}, "b": {}}));
    invalid("States.JsonMerge($.a, $.b, false)", json!({"a": null, "b": {}}));
    invalid("States.JsonMerge($.a, $.b, false)", json!({"a": [], "b": {}}));
    invalid("States.JsonMerge($.a, $.b, false)", json!({"a": {}, "b": "x"}));
    invalid("States.JsonMerge($.a, $.b)", json!({"a": {}, "b": {}}));
    invalid("States.JsonMerge()", json!({}));
}

#[test]
fn math_random() {
    for _ in 0..200 {
        let v = eval("States.MathRandom(1, 999)", json!({})).expect("in range");
        let n = v.as_i64().expect("an integer");
        assert!((1..999).contains(&n), "{n}");
        // Truncated bounds: [1, 5).
        let n = eval("States.MathRandom(1.6, 5.4)", json!({})).expect("ok").as_i64().expect("int");
        assert!((1..5).contains(&n), "{n}");
    }
    let seeded = eval("States.MathRandom(1, 100, 42)", json!({})).expect("seeded");
    assert_eq!(eval("States.MathRandom(1, 100, 42)", json!({})).expect("seeded"), seeded);
    // A seed draws what java.util.Random(seed).nextInt(end - start) draws (checked with a JVM).
    assert_eq!(seeded, json!(1 + 62));
    check("States.MathRandom(1, 10, -10)", json!({}), json!(1));
    check("States.MathRandom(0, 7, 1)", json!({}), json!(4));
    check("States.MathRandom(0, 64, 0)", json!({}), json!(46));
    let n = eval("States.MathRandom($.s, $.e, 1)", json!({"s": 2147483640, "e": 2147483647})).expect("ok");
    assert!((2147483640..2147483647).contains(&n.as_i64().expect("int")));
    let n = eval("States.MathRandom(-1000000, 1000000)", json!({})).expect("ok").as_i64().expect("int");
    assert!((-1_000_000..1_000_000).contains(&n));
    for expr in [
        "States.MathRandom(1, 1)",
        "States.MathRandom(10, 5)",
        "States.MathRandom(1.4, 1.6)",
        "States.MathRandom(1.49, 1.49)",
        "States.MathRandom('a', 10)",
        "States.MathRandom(1, 'b')",
        "States.MathRandom(1, 10, 'seed')",
        "States.MathRandom(1, 10, null)",
        "States.MathRandom(1)",
        "States.MathRandom(1, 10, 5, 99)",
    ] {
        invalid(expr, json!({}));
    }
}

#[test]
fn math_add() {
    check("States.MathAdd($.a, $.b)", json!({"a": -9, "b": 3}), json!(-6));
    check("States.MathAdd($.v, -1)", json!({"v": 111}), json!(110));
    // Each operand is rounded half up first, as Java's Math.round.
    check("States.MathAdd($.a, $.b)", json!({"a": 1.49, "b": 1.5}), json!(3));
    check("States.MathAdd($.a, $.b)", json!({"a": 2.5, "b": 0}), json!(3));
    check("States.MathAdd($.a, $.b)", json!({"a": -1.5, "b": -1.51}), json!(-3));
    check("States.MathAdd($.a, $.b)", json!({"a": 1.6, "b": 2.7}), json!(5));
    check("States.MathAdd($.a, $.b)", json!({"a": 0.1, "b": 0.2}), json!(0));
    check("States.MathAdd(-1.5, 0)", json!({}), json!(-1));
    check("States.MathAdd(States.MathAdd($.x, 1), 2)", json!({"x": 5}), json!(8));
    // 32-bit integers only.
    check("States.MathAdd(2147483646, 1)", json!({}), json!(2147483647));
    check("States.MathAdd(-2147483647, -1)", json!({}), json!(-2147483648_i64));
    invalid("States.MathAdd(2147483647, 1)", json!({}));
    invalid("States.MathAdd(-2147483648, -1)", json!({}));
    invalid("States.MathAdd(3000000000, 1)", json!({}));
    for bad in ["'a', 1", "1, 'b'", "null, 1", "true, 1", "'1', 2", "1", "1, 2, 999"] {
        invalid(&format!("States.MathAdd({bad})"), json!({}));
    }
    invalid("States.MathAdd(-1, $.p)", json!({"p": [0, 1]}));
}

#[test]
fn string_split() {
    check("States.StringSplit($.s, ',')", json!({"s": "a,b,c"}), json!(["a", "b", "c"]));
    check("States.StringSplit($.s, $.d)", json!({"s": " , ", "d": ","}), json!([" ", " "]));
    // Every character of the second argument is a delimiter.
    check(
        "States.StringSplit($.s, $.d)",
        json!({"s": "split on T and \nnew line", "d": "T\n"}),
        json!(["split on ", " and ", "new line"]),
    );
    check("States.StringSplit($.s, $.d)", json!({"s": "1+2,3.4", "d": ".+,"}), json!(["1", "2", "3", "4"]));
    check("States.StringSplit($.s, 'ab')", json!({"s": "1a2b3ab4"}), json!(["1", "2", "3", "4"]));
    // Empty tokens are dropped, as Java's StringTokenizer does.
    check("States.StringSplit($.s, ',')", json!({"s": "a,,b"}), json!(["a", "b"]));
    check("States.StringSplit($.s, ',')", json!({"s": ",a,b,"}), json!(["a", "b"]));
    check("States.StringSplit($.s, ',')", json!({"s": ","}), json!([]));
    check("States.StringSplit($.s, ',')", json!({"s": ""}), json!([]));
    check("States.StringSplit($.s, '')", json!({"s": "abc"}), json!(["abc"]));
    check("States.StringSplit('Hello\nWorld', '\n')", json!({}), json!(["Hello", "World"]));
    for (s, d) in [("123", "','"), ("null", "','"), ("'a,b'", "1"), ("'a,b'", "null"), ("false", "','")] {
        invalid(&format!("States.StringSplit({s}, {d})"), json!({}));
    }
    invalid("States.StringSplit($.s, $.d)", json!({"s": "a,b", "d": [","]}));
    invalid("States.StringSplit('a')", json!({}));
}

#[test]
fn uuid() {
    let a = eval("States.UUID()", json!({})).expect("uuid");
    let b = eval("States.UUID()", json!({})).expect("uuid");
    let s = a.as_str().expect("a string");
    assert_eq!(s.len(), 36);
    assert_eq!(s.as_bytes()[14], b'4', "version 4: {s}");
    assert_ne!(a, b);
    invalid("States.UUID(1)", json!({}));
}

#[test]
fn eval_indexed_numbers_paths_as_paths_lists_them() {
    let call = intrinsics::parse("States.Format('{}{}{}', $.a, States.JsonToString($.b), $.c)").expect("parses");
    assert_eq!(call.paths(), vec!["$.a", "$.b", "$.c"]);
    let values = [json!("x"), json!([1]), json!(true)];
    let got = call
        .eval_indexed(&|i, p| {
            assert_eq!(call.paths()[i], p);
            Ok(values[i].clone())
        })
        .expect("ok");
    assert_eq!(got, json!("x[1]true"));
}

#[test]
fn parse_once_evaluate_many_times() {
    let call = intrinsics::parse("States.Format('{}-{}', $.a, States.MathAdd($.b, 1))").expect("parses");
    for i in 0..100 {
        let input = json!({"a": "x", "b": i});
        assert_eq!(call.eval(&|p| resolve(&input, p)).expect("ok"), json!(format!("x-{}", i + 1)));
    }
}
