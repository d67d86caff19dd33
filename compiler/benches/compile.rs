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

/// On-CPU nanoseconds of this thread (Linux `schedstat`), so the figure is meaningful on a
/// machine shared with other work, where wall time includes waiting for a core.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Prints the mean on-CPU time of one compile before criterion's wall-clock figures.
fn cpu_time(c: &mut Criterion) {
    let json = graphgen::graph(1000, 42).to_string();
    let graph = compiler::parse(&json).expect("parses");
    let options = compiler::CompileOptions::default();
    let runs = 30;
    let (Some(before), wall) = (thread_cpu_ns(), std::time::Instant::now()) else {
        return;
    };
    for _ in 0..runs {
        std::hint::black_box(compiler::compile(&graph, &options).is_ok());
    }
    let wall = wall.elapsed();
    if let Some(after) = thread_cpu_ns() {
        println!(
            "compile 1000 nodes: {:.2} ms on-CPU per compile ({:.2} ms wall), mean of {runs}",
            (after - before) as f64 / runs as f64 / 1e6,
            wall.as_secs_f64() * 1e3 / runs as f64
        );
    }
    let _ = c;
}

criterion_group!(benches, cpu_time, bench);
criterion_main!(benches);
