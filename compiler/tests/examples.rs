//! Every example in `examples/` compiles, its ASL matches the snapshot
//! (`INSTA_UPDATE=always cargo test -p compiler --test examples` or `cargo insta review` to
//! update), and `asl-validator` accepts it.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn examples() -> Vec<(String, compiler::Graph)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let text = std::fs::read_to_string(&p).expect("readable example");
            let graph = compiler::parse(&text).unwrap_or_else(|d| panic!("{name}: {d:#?}"));
            (name, graph)
        })
        .collect()
}

#[test]
fn every_example_compiles_to_its_snapshot() {
    let all = examples();
    let count = all.len();
    for (name, graph) in all {
        let diags = compiler::validate(&graph);
        assert!(diags.is_empty(), "{name}: {diags:#?}");
        let compiled = compiler::compile(&graph, &compiler::CompileOptions::default())
            .unwrap_or_else(|d| panic!("{name}: {d:#?}"));
        assert_eq!(compiled.definition_bytes, serde_json::to_vec(&compiled.asl).unwrap().len(), "{name}");
        insta::with_settings!({snapshot_suffix => name.clone(), prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!("asl", compiled.asl);
        });
    }
    assert!(count >= 8, "at least 8 examples, found {count}");
}

#[test]
fn examples_use_every_node_type_and_some_run_without_services() {
    // The functions `weft run` has: `local_functions::AVAILABLE`, which the compiler's tests
    // cannot depend on (cli/tests/run_examples.rs checks that this list is that one).
    const LOCAL_FUNCTIONS: &[&str] = &[
        "http",
        "code",
        "database",
        "email",
        "slack",
        "llm",
        "agent",
        "multi_agent",
        "vector_search",
        "vector_upsert",
    ];
    // Of those, the ones that need no service (a database, SMTP, Slack, a model provider, Milvus).
    const WITHOUT_SERVICES: &[&str] = &["code", "http"];
    let no_service = |t: &str| !compiler::is_task_type(t) || WITHOUT_SERVICES.contains(&t);
    let all = examples();
    let mut used = std::collections::BTreeSet::new();
    let (mut local, mut not_local) = (Vec::new(), Vec::new());
    for (name, graph) in &all {
        used.extend(graph.nodes.iter().map(|n| n.node_type.clone()));
        if graph.nodes.iter().all(|n| no_service(&n.node_type)) {
            local.push(name.clone());
        }
        if graph
            .nodes
            .iter()
            .any(|n| compiler::is_task_type(&n.node_type) && !LOCAL_FUNCTIONS.contains(&n.node_type.as_str()))
        {
            not_local.push(name.clone());
        }
    }
    for t in compiler::NODE_TYPES {
        assert!(used.contains(*t), "no example uses `{t}`");
    }
    // Only an approval needs more than `weft run` (a decision through the API).
    assert_eq!(not_local, ["refund-approval"], "examples `weft run` cannot run");
    assert!(local.len() >= 2, "examples runnable without external services: {local:?}");
}
