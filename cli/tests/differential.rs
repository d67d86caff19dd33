//! Differential test: the native Choice lowering of `condition` and `switch` expressions
//! (compiler → engine) must agree with the same JavaScript evaluated by the `code` function.
//!
//! Expressions and inputs are generated (proptest) besides a fixed corpus: comparisons, `&&`,
//! `||`, `!`, paths to missing fields, `null`, mixed types, integers beyond 2^53, `-0`, unicode
//! strings, inputs that are not objects. Every generated expression is either *meant to be
//! native* (built only from what `compiler::js` documents as lowered) or *meant for JavaScript*
//! (it contains a construct that is not lowered: `NaN`, arithmetic, calls, `.length`, an index,
//! loose equality with a value, an ordering against a non-ASCII string or `1e400`); the compiled
//! ASL must say the same (the case's state is a Choice, or the code function's Task).
//!
//! What must agree, per run:
//! - the branch taken (`true`/`false`, or the switch case name, or `default`);
//! - or the failure. The compiled graph can only fail where the code function threw (a guard sent
//!   the case to JavaScript, or it never lowered): the engine's `(error, cause)` then corresponds
//!   to the JavaScript throw `(name, message)` exactly when `error == name` and `cause` is
//!   Lambda's error document `{"errorMessage": message, "errorType": name}`. Any other engine
//!   outcome is a disagreement.
//!
//! Most runs must take the native rules (not the guard's JavaScript path).

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use engine::{Definition, Engine, EngineConfig, EventType, Status};
use local_functions::LocalFunctions;
use node_contract::NodeEvent;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// Where a run ended: the branch taken, or the failure.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Branch(String),
    Failed { name: String, message: String },
}

fn functions() -> LocalFunctions {
    use local_functions::{fn_code, fn_http};
    LocalFunctions::new(
        fn_http::HttpFunction::new(fn_http::Settings::default()).expect("client"),
        fn_code::CodeFunction::new(fn_code::Limits { timeout: Duration::from_secs(2), ..Default::default() }),
    )
}

/// The code function's truthiness of `expr` on `input`, or its error.
async fn javascript(functions: &LocalFunctions, expr: &str, input: &Value) -> Result<bool, Verdict> {
    let event = NodeEvent::from_value(json!({
        "node": {"id": "cond", "type": "code"},
        "config": {"expression": expr, "boolean": true},
        "scope": {"input": input, "nodes": {}, "start": "start"},
    }))
    .unwrap();
    match functions.call("code", event).await {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => panic!("{expr}: the code function answered {other} to a boolean evaluation"),
        Err(e) => Err(Verdict::Failed { name: e.name, message: e.message }),
    }
}

/// JavaScript's verdict on a switch: the first truthy case, else `default`; a throw ends it.
async fn javascript_switch(functions: &LocalFunctions, cases: &[String], input: &Value) -> Verdict {
    for (k, expr) in cases.iter().enumerate() {
        match javascript(functions, expr, input).await {
            Ok(true) => return Verdict::Branch(case_name(k)),
            Ok(false) => {}
            Err(failed) => return failed,
        }
    }
    Verdict::Branch("default".into())
}

fn case_name(k: usize) -> String {
    format!("c{k}")
}

/// `start → cond → yes | no`, or with several cases `start → cond (switch) → c0 | c1 | ... | default`.
fn graph(cases: &[String]) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "start", "data": {}})];
    let mut edges = vec![json!({"id": "e0", "source": "start", "target": "cond"})];
    let mut edge = |target: &str, handle: &str| {
        let id = format!("e{}", edges.len());
        edges.push(json!({"id": id, "source": "cond", "sourceHandle": handle, "target": target}));
    };
    if let [expr] = cases {
        nodes.push(json!({"id": "cond", "type": "condition", "data": {"expression": expr}}));
        for (target, handle) in [("yes", "true"), ("no", "false")] {
            nodes.push(json!({"id": target, "type": "end", "data": {"output": target}}));
            edge(target, handle);
        }
    } else {
        let named: Vec<Value> =
            cases.iter().enumerate().map(|(k, e)| json!({"name": case_name(k), "expression": e})).collect();
        nodes.push(json!({"id": "cond", "type": "switch", "data": {"cases": named}}));
        for name in (0..cases.len()).map(case_name).chain(["default".to_owned()]) {
            nodes.push(json!({"id": format!("to_{name}"), "type": "end", "data": {"output": name}}));
            edge(&format!("to_{name}"), &name);
        }
    }
    json!({"format": "weft/v1", "id": "diff", "name": "diff", "nodes": nodes, "edges": edges})
}

/// Runs the comparison for one graph over `inputs`; counts native and guarded runs.
struct Checker {
    functions: LocalFunctions,
    engine: Engine,
    native_runs: usize,
    guarded_runs: usize,
}

impl Checker {
    fn new() -> Self {
        let functions = functions();
        let engine = Engine::new(EngineConfig::new(Arc::new(functions.clone())));
        Self { functions, engine, native_runs: 0, guarded_runs: 0 }
    }

    /// `cases` with whether each is meant to lower natively; `Err` describes a disagreement.
    async fn check(&mut self, cases: &[(String, bool)], inputs: &[Value]) -> Result<(), String> {
        let exprs: Vec<String> = cases.iter().map(|(e, _)| e.clone()).collect();
        let graph = compiler::parse(&graph(&exprs).to_string()).expect("the graph parses");
        let compiled = compiler::compile(&graph, &compiler::CompileOptions::default())
            .map_err(|d| format!("{exprs:?} does not compile: {d:?}"))?;
        // Case k is evaluated by state `cond` (k = 0) or `cond.case<k>`: a Choice when native, the
        // code function's Task when not.
        for (k, (expr, native)) in cases.iter().enumerate() {
            let state = if k == 0 { "cond".to_owned() } else { format!("cond.case{k}") };
            let ty = compiled.asl["States"][&state]["Type"].as_str().unwrap_or("missing");
            let want = if *native { "Choice" } else { "Task" };
            if ty != want {
                return Err(format!(
                    "{expr}: meant to be {}, compiled to a {ty}",
                    if *native { "native" } else { "JavaScript" }
                ));
            }
        }
        let definition =
            Arc::new(Definition::parse(&compiled.asl).map_err(|e| format!("{exprs:?}: invalid ASL: {e}"))?);
        for input in inputs {
            let execution = self.engine.start(Arc::clone(&definition), input.clone(), Default::default());
            let outcome = execution.wait().await;
            let used_code = execution.history_snapshot().iter().any(|e| e.event_type == EventType::TaskScheduled);
            let all_native = cases.iter().all(|(_, native)| *native);
            match (used_code, all_native) {
                (false, _) => self.native_runs += 1,
                (true, true) => self.guarded_runs += 1,
                (true, false) => {}
            }
            let engine_says = match (outcome.status, &outcome.output, &outcome.error, &outcome.cause) {
                (Status::Succeeded, Some(Value::String(s)), _, _) => Verdict::Branch(s.clone()),
                (Status::Failed, _, Some(error), Some(cause)) => {
                    let doc: Value = serde_json::from_str(cause).unwrap_or(Value::Null);
                    match (doc["errorType"].as_str(), doc["errorMessage"].as_str()) {
                        (Some(ty), Some(message)) if ty == error => {
                            Verdict::Failed { name: error.clone(), message: message.to_owned() }
                        }
                        _ => return Err(format!("{exprs:?} on {input}: the engine failed with {error}: {cause}")),
                    }
                }
                _ => return Err(format!("{exprs:?} on {input}: unexpected outcome {outcome:?}")),
            };
            let js_says = if let [expr] = exprs.as_slice() {
                match javascript(&self.functions, expr, input).await {
                    Ok(b) => Verdict::Branch(if b { "yes" } else { "no" }.into()),
                    Err(failed) => failed,
                }
            } else {
                javascript_switch(&self.functions, &exprs, input).await
            };
            if engine_says != js_says {
                return Err(format!(
                    "{exprs:?} on {input}: engine {engine_says:?}, JavaScript {js_says:?} (code used: {used_code})"
                ));
            }
        }
        Ok(())
    }
}

/// The fixed corpus: expressions meant to be native, each on every input below.
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
    // `nodes.<start>` is the input; the code function binds it from `scope.start`.
    "nodes.start.n > 2",
    "nodes.start.a === null || nodes.start.s < 'b'",
    // One JSON value reached through two roots: copies to JavaScript, so objects are not `===`.
    "input.a === nodes.start.a",
    "nodes['start'] !== input",
    // Integers beyond 2^53 compare as JavaScript's doubles.
    "input.a === input.b",
    "input.n >= 9007199254740992",
];

fn fixed_inputs() -> Vec<Value> {
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
        json!({"a": 9_007_199_254_740_993_i64, "b": 9_007_199_254_740_992_i64, "n": 9_007_199_254_740_993_i64}),
        json!({"a": u64::MAX, "b": 18_446_744_073_709_551_615.0, "n": i64::MIN}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_choice_lowering_agrees_with_javascript() {
    let mut checker = Checker::new();
    let inputs = fixed_inputs();
    let mut problems = Vec::new();
    for expr in EXPRESSIONS {
        if let Err(p) = checker.check(&[((*expr).to_owned(), true)], &inputs).await {
            problems.push(p);
        }
    }
    assert!(problems.is_empty(), "{} disagreement(s):\n{}", problems.len(), problems.join("\n"));
    let (native, guarded) = (checker.native_runs, checker.guarded_runs);
    eprintln!("{native} native runs, {guarded} guarded runs through the code function");
    assert!(native > guarded, "most runs must exercise the native lowering ({native} native, {guarded} guarded)");
}

// ---- generated expressions and inputs ----

/// Paths the expressions read (the inputs below fill some of them).
const PATHS: &[&str] = &[
    "input.a",
    "input.b",
    "input.n",
    "input.m",
    "input.s",
    "input.t",
    "input.flag",
    "input.a.b",
    "input.a.b.c",
    "input['s']",
    "input",
    "nodes.start",
    "nodes.start.n",
    "nodes[\"start\"].a",
];

/// Literals that lower: numbers (finite), strings, booleans, `null`, `undefined`. Integers beyond
/// 2^53 are rounded by JavaScript (`9007199254740993` is `9007199254740992`).
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "5",
    "5.5",
    "0.1",
    "1e3",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "18446744073709551615",
    "1e300",
];
const STRINGS: &[&str] = &["''", "'abc'", "'abd'", "'1'", "'5'", "'NaN'", "'b'"];
/// Non-ASCII strings: equality lowers, ordering does not (UTF-16 and byte order differ).
const UNICODE_STRINGS: &[&str] = &["'é'", "'😀'", "'\u{FFFF}'", "'a\u{0301}'"];

#[derive(Debug, Clone)]
struct Expr {
    src: String,
    native: bool,
}

fn lit_num() -> impl Strategy<Value = String> {
    prop::sample::select(NUMBERS).prop_map(str::to_owned)
}

fn lit_str() -> impl Strategy<Value = String> {
    prop::sample::select(STRINGS).prop_map(str::to_owned)
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(PATHS).prop_map(str::to_owned)
}

fn any_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        lit_num(),
        lit_str(),
        prop::sample::select(UNICODE_STRINGS).prop_map(str::to_owned),
        prop::sample::select(&["true", "false", "null", "undefined"][..]).prop_map(str::to_owned),
    ]
}

fn operand() -> impl Strategy<Value = String> {
    prop_oneof![3 => path(), 2 => any_lit()]
}

/// A comparison that lowers, by the rules of `compiler::js`.
fn native_comparison() -> impl Strategy<Value = String> {
    let ordering = prop::sample::select(&["<", "<=", ">", ">="][..]);
    prop_oneof![
        // Strict equality: any operands.
        (operand(), prop::sample::select(&["===", "!=="][..]), operand())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        // Loose equality against null or undefined.
        (path(), prop::sample::select(&["==", "!="][..]), prop::sample::select(&["null", "undefined"][..]))
            .prop_map(|(p, op, l)| format!("{p} {op} {l}")),
        // Ordering: a path against a finite number or an ASCII string, either side.
        (path(), ordering.clone(), prop_oneof![lit_num(), lit_str()], any::<bool>())
            .prop_map(|(p, op, l, flip)| if flip { format!("{l} {op} {p}") } else { format!("{p} {op} {l}") }),
        // Ordering of two paths (numbers natively, the rest guarded).
        (path(), ordering.clone(), path()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        // Literals fold when both are numbers or both strings.
        (lit_num(), ordering.clone(), lit_num()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (lit_str(), ordering, lit_str()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
    ]
}

/// A construct `compiler::js` does not lower.
fn javascript_only() -> impl Strategy<Value = String> {
    prop_oneof![
        path().prop_map(|p| format!("{p} === NaN")),
        path().prop_map(|p| format!("{p} !== {p} + 0")),
        path().prop_map(|p| format!("{p}.length > 0")),
        path().prop_map(|p| format!("{p}[0] === 1")),
        path().prop_map(|p| format!("String({p}) === '1'")),
        (path(), prop_oneof![lit_num(), lit_str()]).prop_map(|(p, l)| format!("{p} == {l}")),
        (path(), path()).prop_map(|(a, b)| format!("{a} != {b}")),
        (path(), prop::sample::select(UNICODE_STRINGS)).prop_map(|(p, s)| format!("{p} < {s}")),
        path().prop_map(|p| format!("1e400 > {p}")),
        path().prop_map(|p| format!("({p} ? 1 : 0) === 1")),
    ]
}

/// Expressions built from native atoms with `!`, `&&`, `||` and parentheses; `native` is false
/// when some atom is JavaScript-only (lowering is all or nothing).
fn expression() -> impl Strategy<Value = Expr> {
    let atom = prop_oneof![
        6 => native_comparison().prop_map(|src| Expr { src, native: true }),
        2 => path().prop_map(|src| Expr { src, native: true }),
        1 => javascript_only().prop_map(|src| Expr { src, native: false }),
    ];
    atom.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr { src: format!("!({})", e.src), native: e.native }),
            (inner.clone(), prop::sample::select(&["&&", "||"][..]), inner).prop_map(|(a, op, b)| Expr {
                src: format!("({}) {op} {}", a.src, b.src),
                native: a.native && b.native,
            }),
        ]
    })
}

/// Numbers where languages differ: beyond 2^53, the ends of i64 and u64, `-0`, extremes.
fn edge_number() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!(0),
        json!(1),
        json!(-1),
        json!(5),
        json!(9_007_199_254_740_991_i64),
        json!(9_007_199_254_740_992_i64),
        json!(9_007_199_254_740_993_i64),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(0.0),
        json!(-0.0),
        json!(5.5),
        json!(0.1),
        json!(1e300),
        json!(5e-324),
        json!(9_007_199_254_740_992.0),
    ])
}

/// JSON values of every kind, with the edge cases that differ between languages.
fn value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        edge_number(),
        (-1000i64..1000).prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "",
            "abc",
            "abd",
            "b",
            "1",
            "5",
            " 5",
            "NaN",
            "é",
            "😀",
            "\u{FFFF}",
            "a\u{0301}",
            "ABC"
        ])
        .prop_map(|s| json!(s)),
        "\\PC{0,4}".prop_map(Value::String),
    ];
    scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            (prop::option::of(inner.clone()), prop::option::of(inner)).prop_map(|(b, c)| {
                let mut m = serde_json::Map::new();
                if let Some(b) = b {
                    m.insert("b".into(), b);
                }
                if let Some(c) = c {
                    m.insert("c".into(), c);
                }
                Value::Object(m)
            }),
        ]
    })
}

/// Inputs: objects with some of the fields the paths read (missing fields included), and now and
/// then an input that is not an object.
fn input() -> impl Strategy<Value = Value> {
    let keys = ["a", "b", "n", "m", "s", "t", "flag"];
    // Edge numbers in several fields at once, so that paths compare them with each other.
    let field = prop_oneof![3 => value(), 1 => edge_number()];
    let object = prop::collection::vec(prop::option::of(field), keys.len()).prop_map(move |values| {
        let mut m = serde_json::Map::new();
        for (k, v) in keys.iter().zip(values) {
            if let Some(v) = v {
                m.insert((*k).to_owned(), v);
            }
        }
        Value::Object(m)
    });
    prop_oneof![9 => object, 1 => value()]
}

/// Runs generated graphs; `guarded_per_native` bounds how many all-native runs may take the
/// code function's guard per run that stays native (a switch evaluates up to four expressions,
/// each of which can take the guard, so its runs take it more often than a condition's).
fn run_generated(cases: u32, switch_cases: std::ops::RangeInclusive<usize>, guarded_per_native: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    // One fixed sequence of cases (PROPTEST_RNG_SEED explores others): the coverage assertion
    // below is about the generator, and must not depend on the draw of a run.
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5745_4654);
    }
    let mut runner = TestRunner::new(config);
    let checker = std::cell::RefCell::new(Checker::new());
    let strategy = (prop::collection::vec(expression(), switch_cases), prop::collection::vec(input(), 6));
    let result = runner.run(&strategy, |(exprs, inputs)| {
        let cases: Vec<(String, bool)> = exprs.into_iter().map(|e| (e.src, e.native)).collect();
        rt.block_on(checker.borrow_mut().check(&cases, &inputs)).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let checker = checker.borrow();
    let (native, guarded) = (checker.native_runs, checker.guarded_runs);
    eprintln!("{native} native runs, {guarded} guarded runs through the code function");
    assert!(
        native * guarded_per_native > guarded,
        "runs must exercise the native lowering: {native} native, {guarded} guarded (at most {guarded_per_native} per native)"
    );
}

#[test]
fn generated_conditions_agree_with_javascript() {
    run_generated(192, 1..=1, 1);
}

#[test]
fn generated_switches_agree_with_javascript() {
    run_generated(96, 2..=4, 2);
}
