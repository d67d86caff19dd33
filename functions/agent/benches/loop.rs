//! Engine overhead per agent step (one turn and one tool call) under Weft's local engine, as
//! `weft run` executes it: a compiled `agent` node whose scripted model calls a `code` tool
//! `BENCH_STEPS` times (default 20) and then answers.
//!
//! `cargo bench -p fn-agent --bench loop`. Each run times the whole execution (wall) and the time
//! spent inside the agent and code functions (the model call over 127.0.0.1 included), so
//! `engine overhead per step = (wall - inside functions) / steps`; medians of `BENCH_RUNS`
//! (default 15) runs after two warm-ups.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/engine.rs"]
mod engine_harness;

use std::time::Duration;

use engine_harness::{Harness, agent_graph};
use model_client::testing::{Reply, ScriptedServer};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let steps = env("BENCH_STEPS", 20);
    let runs = env("BENCH_RUNS", 15);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    let server = rt.block_on(ScriptedServer::start());
    let harness = Harness::new(&server);
    let tools = json!([{"name": "inc", "description": "Adds one", "type": "code", "expression": "args.n + 1",
                        "parameters": {"type": "object", "properties": {"n": {"type": "number"}}}}]);
    let graph = agent_graph(json!({"model": "gpt-4o-mini", "instructions": "Count.", "input": "count",
                                   "tools": tools, "max_steps": steps + 1}));
    let (mut wall, mut inside, mut states) = (Vec::new(), Vec::new(), 0);
    for i in 0..runs + 2 {
        for n in 0..steps {
            server.push(Reply::tool_calls(vec![("inc", format!(r#"{{"n": {n}}}"#))]));
        }
        server.push(Reply::text("done"));
        let run = rt.block_on(harness.run(&graph, json!({})));
        assert_eq!(run.outcome.status, engine::Status::Succeeded, "{:?}", run.outcome);
        assert_eq!(run.entered("a.call.inc"), steps);
        if i >= 2 {
            wall.push(run.wall);
            inside.push(run.inside);
            states = run.states.len();
        }
    }
    let (wall, inside) = (median(&mut wall), median(&mut inside));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let overhead = wall.saturating_sub(inside);
    println!("agent loop on the local engine: {steps} steps (turn + one code tool call each) + the final turn");
    println!("  wall time              {:>9.1} us (median of {runs})", us(wall));
    println!(
        "  inside functions       {:>9.1} us ({} turns + {steps} code calls, model over 127.0.0.1 included)",
        us(inside),
        steps + 1
    );
    println!("  states entered         {states:>9}");
    println!(
        "  engine overhead        {:>9.1} us per step ({:.1} us per state)",
        us(overhead) / steps as f64,
        us(overhead) / states as f64
    );
    println!("  wall per step          {:>9.1} us", us(wall) / (steps + 1) as f64);
}
