//! Overhead of one agent turn through `AgentFunction::run` over a bare reqwest POST + parse of
//! the same streamed reply, both against the same scripted server on 127.0.0.1 in one run:
//! - `raw_stream`: POST the body the turn sends (`stream: true`, tools, the transcript with a
//!   tool call and its result), read the SSE body, parse every `data:` line as a `Value`;
//! - `agent_turn`: the node function: config and state parsing, the tool result into the
//!   transcript, the request, the streamed reply (a tool call), the arguments checked against
//!   the tool's schema, the new working state (size-checked) as JSON; no token sink.
//!
//! The server answers both with the same tool call (`lookup`, 40 bytes of arguments). An
//! interleaved pass first reports medians and the median of paired differences (immune to load
//! drifting between criterion's groups): that difference is the agent turn's overhead per call.
//!
//! `cargo bench -p fn-agent --bench turn`
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use fn_agent::{AgentFunction, Settings};
use model_client::testing::{Reply, ScriptedServer};
use node_contract::{ExecutionRef, NodeEvent, NodeRef};
use serde_json::{Value, json};

const ARGS: &str = r#"{"q":"opening hours of the Louvre museum"}"#;

fn config() -> Value {
    json!({"model": "gpt-4o-mini", "instructions": "You are a helpful assistant. Use the tools.",
           "input": "When is the Louvre open, and how much is a ticket?", "temperature": 0.2,
           "tools": [{"name": "lookup", "description": "Searches the web",
                      "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
                     {"name": "fetch", "description": "Fetches a page",
                      "parameters": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}}]})
}

/// The state after turn 1 (one `lookup` call) with its result: what turn 2 receives.
fn state() -> Value {
    json!({"turn": 1, "status": "tools",
           "messages": [{"role": "user", "content": "When is the Louvre open, and how much is a ticket?"},
                        {"role": "assistant", "content": "", "tool_calls": [
                            {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": ARGS}}]}],
           "calls": [{"id": "call_0", "key": "lookup", "name": "lookup", "args": {"q": "opening hours of the Louvre museum"}}],
           "steps": [], "usage": {"input_tokens": 60, "output_tokens": 12, "estimated": false}, "cost_usd": 0.00002,
           "results": [{"id": "call_0", "name": "lookup", "args": {"q": "opening hours of the Louvre museum"},
                        "result": {"hours": "9:00-18:00, closed on Tuesdays", "source": "louvre.fr"}}]})
}

fn event() -> NodeEvent {
    NodeEvent {
        node: NodeRef { id: "a".into(), node_type: "agent".into() },
        config: config(),
        execution: ExecutionRef { id: "arn:aws:states:us-east-1:1:execution:wf:bench".into() },
        attempt: 0,
        scope: None,
        task_token: None,
        secrets: Default::default(),
        state: Some(state()),
    }
}

fn reply() -> Reply {
    Reply::tool_calls(vec![("fetch", r#"{"url":"https://www.louvre.fr/en/visit/hours-admission"}"#)])
}

async fn raw_stream(http: &reqwest::Client, url: &str, body: &Value) -> usize {
    let bytes = http.post(url).json(body).send().await.unwrap().bytes().await.unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .fold(0, |n, _| n + 1)
}

struct Setup {
    rt: tokio::runtime::Runtime,
    server: ScriptedServer,
    http: reqwest::Client,
    url: String,
    body: Value,
    agent: AgentFunction,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(ScriptedServer::start());
    let agent = AgentFunction::new(Settings::allowing(&[], &server.base_url()).unwrap()).unwrap();
    // The raw call sends exactly what the turn sends.
    server.push(reply());
    let out = rt.block_on(agent.run(event())).unwrap();
    assert_eq!(out["status"], "tools", "{out}");
    assert_eq!(out["calls"][0]["key"], "fetch");
    let body = server.last_body();
    server.set_recording(false);
    let url = format!("{}/chat/completions", server.base_url());
    Setup { rt, server, http: reqwest::Client::new(), url, body, agent }
}

impl Setup {
    fn raw(&self) {
        self.server.push(reply());
        self.rt.block_on(raw_stream(&self.http, &self.url, &self.body));
    }
    fn turn(&self) {
        self.server.push(reply());
        let out = self.rt.block_on(self.agent.run(event())).unwrap();
        debug_assert_eq!(out["turn"], 2);
    }
}

fn turn(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("agent_turn");
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("raw_stream", |b| b.iter(|| s.raw()));
    group.bench_function("agent_turn", |b| b.iter(|| s.turn()));
    group.finish();
}

fn interleaved() {
    let s = setup();
    let mut samples: [Vec<f64>; 2] = Default::default();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e6
    };
    for i in 0..2500 {
        let a = time(&mut || s.raw());
        let b = time(&mut || s.turn());
        if i >= 300 {
            samples[0].push(a);
            samples[1].push(b);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [raw, agent] = &samples;
    let diffs: Vec<f64> = agent.iter().zip(raw).map(|(a, b)| a - b).collect();
    println!(
        "interleaved {} rounds (median us): raw_stream {:.1}, agent_turn {:.1}; paired difference agent_turn - raw_stream {:.1}",
        raw.len(),
        median(raw),
        median(agent),
        median(&diffs)
    );
}

criterion_group!(benches, turn);

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
