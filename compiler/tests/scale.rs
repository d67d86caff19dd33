//! Input-sized structures never overflow the stack: long chains, wide fans and deep nestings up
//! to the API's body limit (1 MiB) are compiled, or refused with a diagnostic, on a thread with
//! tokio's worker stack (2 MiB), in whichever profile the tests are built (CI: debug).

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod graphgen;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use graphgen::shapes::{self, Shape};

/// tokio's default worker-thread stack.
const STACK: usize = 2 << 20;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(STACK).spawn(f).unwrap().join().unwrap()
}

/// Parses and compiles `text` the way the API does; returns the error codes (empty if it
/// compiled).
fn compile_codes(text: &str) -> Vec<String> {
    let graph = match compiler::parse(text) {
        Ok(g) => g,
        Err(d) => return d.into_iter().map(|d| d.code).collect(),
    };
    let _ = compiler::render_mermaid(&graph);
    match compiler::compile(&graph, &compiler::CompileOptions::default()) {
        Ok(c) => {
            assert_eq!(graphgen::check_references(&c.asl), Ok(()));
            let _ = compiler::explain(&graph, &c).to_string();
            assert_eq!(c.definition_bytes, serde_json::to_vec(&c.asl).unwrap().len());
            Vec::new()
        }
        Err(d) => d.into_iter().filter(compiler::Diagnostic::is_error).map(|d| d.code).collect(),
    }
}

fn compiles(shape: Shape) -> Vec<String> {
    on_small_stack(move || {
        let text = shapes::text(&shape);
        assert!(text.len() <= shapes::BODY_LIMIT, "{shape:?}: {} bytes", text.len());
        compile_codes(&text)
    })
}

#[test]
fn long_chains_compile_on_a_small_stack() {
    for n in [5_000, 10_000] {
        assert_eq!(compiles(Shape::Chain { n, kind: "delay" }), Vec::<String>::new(), "{n}");
    }
    // 10,000 Tasks are a definition over Step Functions' 1 MiB: refused with the quota's code.
    let codes = compiles(Shape::Chain { n: 10_000, kind: "code" });
    assert_eq!(codes, ["too-large"]);
}

#[test]
fn wide_fans_compile_on_a_small_stack() {
    assert_eq!(compiles(Shape::Fan { n: 2_000 }), Vec::<String>::new());
    assert_eq!(compiles(Shape::Switch { n: 400 }), Vec::<String>::new());
    // Each case is a guarded native rule of about 1.8 KB: 2,000 exceed the 1 MiB quota.
    assert_eq!(compiles(Shape::Switch { n: 2_000 }), ["too-large"]);
}

/// The deepest nesting of `kind` that compiles: loops and parallels nest at most
/// `MAX_NESTING` deep, and the definition at most `MAX_JSON_DEPTH` levels of JSON (a parallel
/// takes four, a loop three).
pub fn nesting_limit(kind: &'static str) -> usize {
    match kind {
        "parallel" => 30,
        _ => compiler::MAX_NESTING,
    }
}

#[test]
fn nesting_to_the_limit_compiles_and_one_more_is_refused() {
    for kind in ["loop", "parallel", "mixed"] {
        let max = nesting_limit(kind);
        assert_eq!(compiles(Shape::Nest { depth: max, kind }), Vec::<String>::new(), "{kind} x {max}");
        let codes = compiles(Shape::Nest { depth: max + 1, kind });
        assert_eq!(codes, ["too-large"], "{kind} x {}", max + 1);
        // Far beyond the limit: still only the limit's diagnostic, no crash.
        let codes = compiles(Shape::Nest { depth: 2_000, kind });
        assert!(codes.iter().all(|c| c == "too-large") && !codes.is_empty(), "{kind}: {codes:?}");
    }
}

#[test]
fn nested_parallels_in_any_node_order_are_counted() {
    // Inner parallels listed before outer ones used to be resolved first, each at depth 0.
    let codes = on_small_stack(|| {
        let mut v: Value = serde_json::from_str(&shapes::text(&Shape::Nest { depth: 200, kind: "parallel" })).unwrap();
        v["nodes"].as_array_mut().unwrap().reverse();
        compile_codes(&v.to_string())
    });
    assert!(codes.contains(&"too-large".to_owned()), "{codes:?}");
}

#[test]
fn long_conditions_compile_on_a_small_stack() {
    // Long `||` chains are deep trees; past a size they go to the `code` function.
    for expr in [
        vec!["1"; 4_000].join("||"),
        vec!["input.a"; 1_200].join("||"),
        vec!["input.a === 1"; 700].join(" && "),
        format!("{}1{}", "(".repeat(5_000), ")".repeat(5_000)),
        format!("{}input.a", "!".repeat(9_000)),
    ] {
        let codes = compiles(Shape::Condition { expr: expr.clone() });
        assert_eq!(codes, Vec::<String>::new(), "{}", &expr[..40]);
        let e = expr.clone();
        on_small_stack(move || compiler::js::lower(&e, &|_| Some("$.input".to_owned())));
    }
}

#[test]
fn deep_data_values_are_bounded_by_the_parser() {
    // serde_json refuses more than 128 levels; up to there everything works.
    let deep = |d: usize| format!("{}1{}", "[".repeat(d), "]".repeat(d));
    let ok = compiles(Shape::EndOutput { json: deep(120) });
    assert_eq!(ok, Vec::<String>::new());
    let refused = compiles(Shape::EndOutput { json: deep(100_000) });
    assert_eq!(refused, ["invalid-json"]);
    // A value built in code (not parsed) deeper than the parser allows is refused too.
    let codes = on_small_stack(|| {
        // (Not `json!([v])`: the macro serializes its arguments, recursively.)
        let mut v = json!(1);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let mut g: Value = serde_json::from_str(&shapes::text(&Shape::Chain { n: 1, kind: "delay" })).unwrap();
        g["nodes"][2]["data"] = Value::Object([("output".to_owned(), v)].into_iter().collect());
        let codes: Vec<String> = match compiler::parse_value(g) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().map(|d| d.code).collect(),
        };
        codes
    });
    assert_eq!(codes, ["invalid-json"]);
}

fn shape() -> impl Strategy<Value = Shape> {
    let kinds = prop::sample::select(vec!["delay", "code", "http", "slack"]);
    prop_oneof![
        (0.0..1.0f64, kinds)
            .prop_map(|(f, kind)| Shape::Chain { n: 1 + (f * (shapes::max_chain(kind) - 1) as f64) as usize, kind }),
        (2usize..3_000).prop_map(|n| Shape::Fan { n }),
        (1usize..3_000).prop_map(|n| Shape::Switch { n }),
        (1usize..200, prop::sample::select(vec!["loop", "parallel", "mixed"]))
            .prop_map(|(depth, kind)| Shape::Nest { depth, kind }),
        (1usize..3_000, prop::sample::select(vec!["1", "input.a", "!input.b", "(input.c === 'x')"]))
            .prop_map(|(n, term)| Shape::Condition { expr: vec![term; n].join(" || ") }),
    ]
}

/// What the property generator feeds the API: the shape as text, sometimes cut short (a client
/// that sent a truncated body), which must fail parsing with a diagnostic.
fn case() -> impl Strategy<Value = (Shape, Option<u16>)> {
    (shape(), prop::option::weighted(0.05, any::<u16>()))
}

#[test]
fn generated_shapes_never_overflow_the_stack() {
    let cases: u32 = std::env::var("WEFT_SCALE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48);
    let parsed = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let (p, t) = (parsed.clone(), total.clone());
    on_small_stack(move || {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        runner
            .run(&case(), |(shape, cut)| {
                let mut text = shapes::text(&shape);
                prop_assert!(text.len() <= shapes::BODY_LIMIT, "{} bytes", text.len());
                if let Some(cut) = cut {
                    text.truncate(usize::from(cut) % text.len().max(1));
                }
                t.fetch_add(1, Ordering::Relaxed);
                if compiler::parse(&text).is_ok() {
                    p.fetch_add(1, Ordering::Relaxed);
                }
                let codes = compile_codes(&text);
                // Whatever is refused is refused with a known code.
                for c in &codes {
                    prop_assert!(compiler::codes::ALL.contains(&c.as_str()), "{c}");
                }
                if cut.is_none() {
                    prop_assert!(codes.iter().all(|c| c == "too-large"), "{shape:?}: {codes:?}");
                }
                Ok(())
            })
            .unwrap();
    });
    let (parsed, total) = (parsed.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
    eprintln!("{parsed} of {total} generated cases got past parsing");
    assert!(parsed * 10 >= total * 8, "{parsed} of {total} parsed");
}
