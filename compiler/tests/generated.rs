//! Generated graphs (every node kind, nested loops and parallels) are valid, compile, and
//! (with `WEFT_ASL_VALIDATOR`) pass asl-validator.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

mod graphgen;

#[test]
fn generated_graphs_compile() {
    // 900 nodes: near Step Functions' 1 MB with agents compiled to loops of states.
    for (size, seed) in [(30, 1), (120, 2), (400, 3), (900, 42)] {
        let g = graphgen::graph(size, seed);
        let graph = compiler::parse_value(g).expect("parses");
        let diags = compiler::validate(&graph);
        assert!(diags.iter().all(|d| !d.is_error()), "seed {seed}: {diags:#?}");
        let compiled = compiler::compile(&graph, &compiler::CompileOptions::default()).expect("compiles");
        let bytes = serde_json::to_vec(&compiled.asl).unwrap().len();
        assert_eq!(compiled.definition_bytes, bytes, "size accounting");
        graphgen::check_references(&compiled.asl).unwrap();
        assert_eq!(compiled.state_count, compiler::lower::count_states(&compiled.asl), "state count");
        eprintln!("size {size}: {} nodes, {} states, {bytes} bytes", graph.nodes.len(), compiled.state_count);
        let types: std::collections::BTreeSet<&str> = graph.nodes.iter().map(|n| n.node_type.as_str()).collect();
        if size >= 400 {
            assert_eq!(types.len(), compiler::NODE_TYPES.len(), "every node kind: {types:?}");
        }
    }
}
