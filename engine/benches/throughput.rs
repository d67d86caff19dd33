//! Throughput of the engine on one core (a current-thread tokio runtime), printed as JSON for
//! `engine/bench/run.sh`, which runs the same workloads on `aws-local-stepfunctions` and prints
//! the two side by side.
//!
//! Times are CPU time of the benchmark thread (the machine may be shared). Workloads: every case of the conformance corpus (each repeated for ~50 ms to get a stable
//! mean), a chain of 1,000 Pass states, and an inline Map over 10,000 items.
//!
//! `cargo bench -p engine --bench throughput -- [CORPUS_DIR] [OUT.json]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Definition, Engine, EngineConfig, StartOptions, Status, VirtualClock};
use serde_json::{Map, Value, json};

fn engine() -> Engine {
    let mut cfg = EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_clock(Arc::new(VirtualClock::new()));
    // The 10,000-item Map writes ~40,000 events; AWS would need a Distributed Map for that.
    cfg.history_limit = 10_000_000;
    Engine::new(cfg)
}

/// CPU time of this (main) thread in seconds, from /proc/self/schedstat: the machine is shared,
/// so wall time would also count other processes' work. Falls back to wall time elsewhere.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

struct Timer {
    wall: Instant,
    cpu: Option<f64>,
}

impl Timer {
    fn start() -> Self {
        Timer { wall: Instant::now(), cpu: cpu_seconds() }
    }

    /// CPU seconds since start (wall seconds when CPU time is unavailable).
    fn elapsed(&self) -> f64 {
        match (self.cpu, cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// Runs `def` repeatedly for at least `budget`; returns (runs, seconds, transitions per run, status).
async fn measure(
    engine: &Engine,
    def: &Arc<Definition>,
    input: &Value,
    budget: Duration,
    min_runs: u32,
) -> (u32, f64, usize, Status) {
    // One warm-up run, which also counts the transitions (state entries).
    let exec = engine.start(Arc::clone(def), input.clone(), StartOptions::default());
    let o = exec.wait().await;
    let transitions =
        exec.history_snapshot().iter().filter(|e| e.event_type.as_str().ends_with("StateEntered")).count();
    let wall = Instant::now();
    let timer = Timer::start();
    let mut runs = 0u32;
    while runs < min_runs || wall.elapsed() < budget {
        let _ = engine.start(Arc::clone(def), input.clone(), StartOptions::default()).wait().await;
        runs += 1;
    }
    (runs, timer.elapsed(), transitions, o.status)
}

fn pass_chain(n: usize) -> Value {
    let mut states = Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass"});
        if i + 1 == n {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S0", "States": states})
}

fn map_def() -> Value {
    json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": true}}},
        "End": true}}})
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let corpus = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance")));
    let out = args.get(1).map(PathBuf::from);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let report = rt.block_on(async {
        let engine = engine();
        let mut cases = Map::new();
        let (mut c_secs, mut c_trans, mut c_runs) = (0.0, 0usize, 0u32);
        for file in engine::conformance::case_files(&corpus).expect("corpus") {
            let case: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
            let name = case["name"].as_str().unwrap_or_default().to_owned();
            let Ok(def) = Definition::parse(&case["definition"]) else { continue };
            let def = Arc::new(def);
            let (runs, secs, transitions, _) =
                measure(&engine, &def, &case["input"], Duration::from_millis(50), 5).await;
            let per = secs / f64::from(runs);
            c_secs += per;
            c_trans += transitions;
            c_runs += 1;
            cases.insert(name, json!({"seconds_per_execution": per, "transitions": transitions}));
        }
        let chain = Arc::new(Definition::parse(&pass_chain(1000)).expect("chain"));
        let (runs, secs, t, st) = measure(&engine, &chain, &json!({"hello": "world"}), Duration::from_secs(1), 3).await;
        let chain_r = json!({"seconds_per_execution": secs / f64::from(runs), "transitions": t, "status": st.as_str(),
            "transitions_per_second": (t as f64) * f64::from(runs) / secs});
        let map = Arc::new(Definition::parse(&map_def()).expect("map"));
        let items: Vec<Value> = (0..10_000).map(|i| json!({"i": i})).collect();
        let (runs, secs, t, st) = measure(&engine, &map, &json!({"items": items}), Duration::from_secs(1), 2).await;
        let map_r = json!({"seconds_per_execution": secs / f64::from(runs), "transitions": t, "status": st.as_str(),
            "transitions_per_second": (t as f64) * f64::from(runs) / secs});
        json!({
            "engine": "weft",
            "corpus": {"cases": c_runs, "seconds_all_cases_once": c_secs, "transitions": c_trans,
                       "transitions_per_second": c_trans as f64 / c_secs, "per_case": cases},
            "pass_chain_1000": chain_r,
            "map_10000": map_r,
        })
    });
    let text = serde_json::to_string_pretty(&report).expect("json");
    if let Some(p) = out {
        std::fs::write(&p, &text).expect("write");
    }
    let c = &report["corpus"];
    println!(
        "weft corpus: {} cases, {:.3} ms for all once, {:.0} transitions/s",
        c["cases"],
        c["seconds_all_cases_once"].as_f64().unwrap_or(0.0) * 1e3,
        c["transitions_per_second"].as_f64().unwrap_or(0.0)
    );
    for k in ["pass_chain_1000", "map_10000"] {
        let r = &report[k];
        println!(
            "weft {k}: {:.3} ms per execution, {:.0} transitions/s ({})",
            r["seconds_per_execution"].as_f64().unwrap_or(0.0) * 1e3,
            r["transitions_per_second"].as_f64().unwrap_or(0.0),
            r["status"]
        );
    }
}
