//! Random and malformed input never panics any entry point: parse, validate, compile, explain,
//! render, and the JavaScript condition lowering.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod graphgen;

use proptest::prelude::*;
use serde_json::{Value, json};

/// Runs every entry point on a graph value.
fn exercise(v: Value) {
    let text = v.to_string();
    let Ok(graph) = compiler::parse(&text) else {
        return;
    };
    let _ = compiler::validate(&graph);
    let _ = compiler::render_mermaid(&graph);
    if let Ok(compiled) = compiler::compile(&graph, &compiler::CompileOptions::default()) {
        let _ = compiler::explain(&graph, &compiled).to_string();
        assert_eq!(graphgen::check_references(&compiled.asl), Ok(()));
    }
}

/// Every real node type, plus an unknown and an empty one.
fn types() -> Vec<&'static str> {
    compiler::NODE_TYPES.iter().copied().chain(["bogus", ""]).collect()
}

const IDS: &[&str] = &["start", "a", "b", "c", "d", "e", "f", "g", "x-1", "", "1n"];

const HANDLES: &[Option<&str>] =
    &[None, Some("true"), Some("false"), Some("error"), Some("default"), Some("big"), Some("")];

fn data_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!(null)),
        Just(json!("{{ input.x }}")),
        Just(json!({"expression": "input.a > 1 && nodes.a.b === 'x'"})),
        Just(json!({"expression": "input.a.length"})),
        Just(json!({"source": "return 1"})),
        Just(json!({"items": "{{ input.items }}"})),
        Just(json!({"items": "{{ item.children }}", "concurrency": 2})),
        Just(json!({"cases": [{"name": "big", "expression": "input.n > 10"}]})),
        Just(json!({"cases": "nope"})),
        Just(json!({"seconds": 5})),
        Just(json!({"seconds": "{{ nodes.a.wait }}"})),
        Just(json!({"until": "2026-01-01T00:00:00Z"})),
        Just(json!({"method": "GET", "url": "https://x/{{ nodes.a.id }}/{{ item.id }}"})),
        Just(json!({"output": {"r": "{{ nodes.b }}", "list": ["{{ input.a }}", 1]}})),
        Just(json!({"text": "{{ nodes.c.x[0].y }} {{ secrets.TOKEN }} {{"})),
        Just(json!({"workflow_id": "child", "input": "{{ input }}"})),
        Just(json!({"message": "ok?", "timeout_seconds": 999999})),
        Just(json!({"a.$": "$.x"})),
        Just(json!([1, 2, 3])),
    ]
}

fn node() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(IDS),
        prop::sample::select(types()),
        data_value(),
        prop::option::of(prop::sample::select(IDS)),
        prop::option::of(prop_oneof![Just("continue"), Just("fail")]),
        prop::option::of(0u64..1000),
    )
        .prop_map(|(id, ty, data, parent, on_error, timeout)| {
            let mut n = json!({"id": id, "type": ty, "data": data});
            if let Some(p) = parent {
                n["parentId"] = json!(p);
            }
            if let Some(o) = on_error {
                n["on_error"] = json!(o);
            }
            if let Some(t) = timeout {
                n["timeout_seconds"] = json!(t);
                n["retry"] = json!({"max_attempts": t % 5, "backoff_rate": 1.5});
            }
            n
        })
}

fn edge() -> impl Strategy<Value = Value> {
    (prop::sample::select(IDS), prop::sample::select(IDS), prop::sample::select(HANDLES)).prop_map(|(s, t, h)| {
        let mut e = json!({"source": s, "target": t});
        if let Some(h) = h {
            e["sourceHandle"] = json!(h);
        }
        e
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_never_panic(
        nodes in prop::collection::vec(node(), 0..12),
        edges in prop::collection::vec(edge(), 0..20),
        express in any::<bool>(),
    ) {
        let settings = if express { json!({"type": "express"}) } else { json!({"type": "auto", "timeout_seconds": 400}) };
        exercise(json!({"format": "weft/v1", "id": "p", "name": "p", "settings": settings, "nodes": nodes, "edges": edges}));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        if let Ok(g) = compiler::parse(&text) {
            let _ = compiler::compile(&g, &compiler::CompileOptions::default());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        exercise(v.clone());
        exercise(json!({"format": "weft/v1", "nodes": [v.clone()], "edges": [v]}));
    }

    #[test]
    fn conditions_never_panic(src in r#"[a-z.!&|=<>()'"0-9 \[\]_-]{0,60}"#) {
        let _ = compiler::js::lower(&src, &|_| Some("$.input".to_owned()));
    }

    /// Mutating a valid generated graph (dropping a node or an edge, retargeting an edge, or
    /// nothing) never panics; whatever still validates compiles, to a definition whose
    /// transitions all name existing states.
    #[test]
    fn mutated_valid_graphs_never_panic(seed in 0u64..1000, cut in 0usize..200, which in 0u8..4) {
        let mut g = graphgen::graph(40, seed);
        let nodes = g["nodes"].as_array().map_or(0, Vec::len);
        let edges = g["edges"].as_array().map_or(0, Vec::len);
        match which {
            0 if nodes > 0 => {
                if let Some(list) = g["nodes"].as_array_mut() {
                    list.remove(cut % nodes);
                }
            }
            1 if edges > 0 => {
                if let Some(list) = g["edges"].as_array_mut() {
                    list.remove(cut % edges);
                }
            }
            2 if edges > 0 && nodes > 0 => {
                let target = g["nodes"][cut % nodes]["id"].clone();
                g["edges"][cut % edges]["target"] = target;
            }
            _ => {}
        }
        let graph = compiler::parse_value(g).expect("still a graph");
        let diags = compiler::validate(&graph);
        let compiled = compiler::compile(&graph, &compiler::CompileOptions::default());
        prop_assert_eq!(diags.iter().any(|d| d.is_error()), compiled.is_err());
        if let Ok(c) = compiled {
            prop_assert_eq!(graphgen::check_references(&c.asl), Ok(()));
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z{}. ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id", "type", "data", "nodes", "edges", "source", "target", "parentId", "format", "settings"
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
