//! Compiling a generated 1,000-node graph (every node kind, nested loops and parallels).
//! Goal: under 20 ms. Run: `cargo bench -p compiler --bench compile`.

#[path = "../tests/graphgen/mod.rs"]
mod graphgen;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let json = graphgen::graph(1000, 42).to_string();
    let graph = compiler::parse(&json).expect("generated graph parses");
    assert!(graph.nodes.len() >= 1000);
    let options = compiler::CompileOptions::default();
    assert!(compiler::compile(&graph, &options).is_ok(), "generated graph compiles");
    c.bench_function("compile 1000 nodes", |b| b.iter(|| compiler::compile(std::hint::black_box(&graph), &options)));
    c.bench_function("parse + compile 1000 nodes", |b| {
        b.iter(|| compiler::compile(&compiler::parse(std::hint::black_box(&json)).expect("parses"), &options))
    });
    c.bench_function("validate 1000 nodes", |b| b.iter(|| compiler::validate(std::hint::black_box(&graph))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
