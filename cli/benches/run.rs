//! `weft run` throughput: engine overhead per node with the real in-process functions.
//!
//! `cargo bench -p cli --bench run` (release). Two workloads, as in issue 4:
//! - a sequential workflow of 40 `code` nodes;
//! - a `loop` over 1,000 items whose body is one `code` node.
//!
//! Each execution runs on the engine with `LocalFunctions`; a thin timing wrapper around it sums
//! the time spent inside the function handlers, so
//! `engine overhead per node = (wall time - time inside functions) / nodes executed`.
//! The bench also times the `weft run` binary end to end (process start to exit).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::{Definition, Engine, EngineConfig, Status, TaskCall, TaskFailure, TaskInvoker};
use serde_json::{Value, json};

struct Timed {
    inner: local_functions::LocalFunctions,
    nanos: AtomicU64,
    calls: AtomicU64,
}

#[async_trait::async_trait]
impl TaskInvoker for Timed {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let started = Instant::now();
        let out = self.inner.invoke(call).await;
        self.nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        out
    }
}

fn sequential(n: usize) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "start", "data": {}})];
    for i in 0..n {
        let prev = if i == 0 { "input.n".to_owned() } else { format!("nodes.c{}", i - 1) };
        nodes.push(json!({"id": format!("c{i}"), "type": "code", "data": {"expression": format!("{prev} + 1")}}));
    }
    nodes.push(json!({"id": "done", "type": "end", "data": {"output": format!("{{{{ nodes.c{} }}}}", n - 1)}}));
    let edges: Vec<Value> = nodes
        .windows(2)
        .enumerate()
        .map(|(i, w)| json!({"id": format!("e{i}"), "source": w[0]["id"], "target": w[1]["id"]}))
        .collect();
    json!({"format": "weft/v1", "id": "seq", "name": "seq", "nodes": nodes, "edges": edges})
}

/// A loop over `input.items`; `concurrency: 1` runs the iterations one by one, so the time
/// inside functions adds up and the overhead can be separated from it.
fn looped(concurrency: Option<u32>) -> Value {
    let mut data = json!({"items": "{{ input.items }}"});
    if let Some(c) = concurrency {
        data["concurrency"] = json!(c);
    }
    json!({"format": "weft/v1", "id": "loop", "name": "loop",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "each", "type": "loop", "data": data},
                  {"id": "dbl", "type": "code", "parentId": "each", "data": {"expression": "item * 2"}},
                  {"id": "done", "type": "end", "data": {"output": "{{ nodes.each }}"}}],
        "edges": [{"id": "e1", "source": "start", "target": "each"}, {"id": "e2", "source": "each", "target": "done"}]})
}

fn definition(graph: &Value) -> Arc<Definition> {
    let g = compiler::parse(&graph.to_string()).expect("graph parses");
    let compiled = compiler::compile(&g, &compiler::CompileOptions::default()).expect("graph compiles");
    Arc::new(Definition::parse(&compiled.asl).expect("engine accepts the ASL"))
}

struct Stats {
    wall: Vec<Duration>,
    in_functions: Vec<Duration>,
    calls: u64,
    states: usize,
}

fn bench(
    name: &str,
    graph: &Value,
    input: &Value,
    expected: &Value,
    runs: usize,
    rt: &tokio::runtime::Runtime,
) -> Stats {
    let def = definition(graph);
    let timed = Arc::new(Timed {
        inner: local_functions::LocalFunctions::from_env().expect("functions"),
        nanos: 0.into(),
        calls: 0.into(),
    });
    let engine = Engine::new(EngineConfig::new(timed.clone()));
    let mut stats = Stats { wall: vec![], in_functions: vec![], calls: 0, states: 0 };
    for i in 0..runs + 2 {
        timed.nanos.store(0, Ordering::Relaxed);
        timed.calls.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let (outcome, states) = rt.block_on(async {
            let exec = engine.start(def.clone(), input.clone(), Default::default());
            let outcome = exec.wait().await;
            let states =
                exec.history_snapshot().iter().filter(|e| e.event_type.as_str().ends_with("StateEntered")).count();
            (outcome, states)
        });
        let wall = started.elapsed();
        assert_eq!(outcome.status, Status::Succeeded, "{name}: {outcome:?}");
        assert_eq!(outcome.output.as_ref(), Some(expected), "{name}");
        // The first two runs warm up caches and the blocking thread pool.
        if i >= 2 {
            stats.wall.push(wall);
            stats.in_functions.push(Duration::from_nanos(timed.nanos.load(Ordering::Relaxed)));
            stats.calls = timed.calls.load(Ordering::Relaxed);
            stats.states = states;
        }
    }
    stats
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(name: &str, mut s: Stats, nodes: usize) {
    let wall = median(&mut s.wall);
    let inside = median(&mut s.in_functions);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{name}");
    println!("  wall time            {:>9.3} ms (median of {})", ms(wall), s.wall.len());
    println!(
        "  inside functions     {:>9.3} ms ({} invocations, {:.1} us each; concurrent in loops)",
        ms(inside),
        s.calls,
        inside.as_secs_f64() * 1e6 / s.calls.max(1) as f64
    );
    println!("  states entered       {:>9}", s.states);
    let overhead = wall.saturating_sub(inside.min(wall));
    println!(
        "  engine overhead      {:>9.3} ms total, {:.1} us per node ({} nodes), {:.1} us per state",
        ms(overhead),
        overhead.as_secs_f64() * 1e6 / nodes as f64,
        nodes,
        overhead.as_secs_f64() * 1e6 / s.states.max(1) as f64
    );
    println!("  wall per node        {:>9.1} us", wall.as_secs_f64() * 1e6 / nodes as f64);
}

fn binary(name: &str, graph: &Value, input: &Value, runs: usize) {
    let dir = std::env::temp_dir().join(format!("weft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, graph.to_string()).expect("write graph");
    let input = input.to_string();
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["run", path.to_str().expect("utf-8 path"), "--quiet", "--input", &input])
            .output()
            .expect("run weft");
        times.push(started.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    println!(
        "  `weft run` process   {:>9.3} ms (median of {runs}, process start to exit, compile included)",
        median(&mut times).as_secs_f64() * 1e3
    );
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");

    let seq = sequential(40);
    let s = bench("seq40", &seq, &json!({"n": 0}), &json!(40), runs, &rt);
    report("sequential workflow, 40 code nodes", s, 40);
    binary("seq40", &seq, &json!({"n": 0}), runs.min(10));

    let items: Vec<u64> = (0..1000).collect();
    let doubled: Vec<u64> = items.iter().map(|i| i * 2).collect();
    let lp = looped(Some(1));
    let s = bench("loop1000-seq", &lp, &json!({"items": items}), &json!(doubled), runs.min(10), &rt);
    report("loop over 1,000 items, concurrency 1 (body: 1 code node)", s, 1000);

    let lp = looped(None);
    let s = bench("loop1000", &lp, &json!({"items": items}), &json!(doubled), runs.min(10), &rt);
    report("loop over 1,000 items, unlimited concurrency (function time overlaps: see wall time)", s, 1000);
    binary("loop1000", &lp, &json!({"items": items}), runs.min(10));
}
