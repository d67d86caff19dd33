//! Per-call overhead of `LlmFunction::run` (always streamed) over a bare reqwest POST + parse,
//! both against the same scripted server on 127.0.0.1 in one run, non-streaming and streaming:
//! - `raw_json`: POST `stream: false`, parse the body as a `serde_json::Value`;
//! - `raw_stream`: POST `stream: true`, read the SSE body, parse every `data:` line as a `Value`;
//! - `llm_run_no_sink`: the node function, config parsing to output JSON, no token sink;
//! - `llm_run_sink`: the same with a sink enabled (the per-call task and channel).
//!
//! The goal (issue 11): under 1 ms overhead per call. An interleaved pass first reports medians
//! and the median of paired differences (immune to load drifting between criterion's groups).
//!
//! `cargo bench -p fn-llm --bench overhead`
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use fn_llm::{LlmFunction, Settings, Token, TokenSink};
use model_client::testing::ScriptedServer;
use node_contract::{ExecutionRef, NodeEvent, NodeRef};
use serde_json::{Value, json};

const SYSTEM: &str = "You are a helpful assistant. Answer briefly.";
const PROMPT: &str = "Summarise the plot of Hamlet in two sentences, please.";

struct Discard;

#[async_trait::async_trait]
impl TokenSink for Discard {
    async fn token(&self, _t: Token<'_>) {}
}

fn event() -> NodeEvent {
    NodeEvent {
        node: NodeRef { id: "ask".into(), node_type: "llm".into() },
        config: json!({"model": "gpt-4o-mini", "system": SYSTEM, "prompt": PROMPT, "temperature": 0.2}),
        execution: ExecutionRef { id: "arn:aws:states:us-east-1:1:execution:wf:bench".into() },
        attempt: 0,
        scope: None,
        task_token: None,
        secrets: Default::default(),
        state: None,
    }
}

fn raw_body(stream: bool) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "temperature": 0.2,
        "stream": stream
    });
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

async fn raw_json(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let bytes = http.post(url).json(body).send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()
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
    _server: ScriptedServer,
    http: reqwest::Client,
    url: String,
    plain: LlmFunction,
    sinking: LlmFunction,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(ScriptedServer::start());
    server.set_recording(false);
    let url = format!("{}/chat/completions", server.base_url());
    let plain = LlmFunction::new(Settings::allowing(&[], &server.base_url()).unwrap()).unwrap();
    let sinking = plain.clone().with_sink(Arc::new(Discard));
    Setup { rt, _server: server, http: reqwest::Client::new(), url, plain, sinking }
}

fn overhead(c: &mut Criterion) {
    let s = setup();
    let (json_body, stream_body) = (raw_body(false), raw_body(true));
    let mut group = c.benchmark_group("llm_call");
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("raw_json", |b| b.iter(|| s.rt.block_on(raw_json(&s.http, &s.url, &json_body))));
    group.bench_function("raw_stream", |b| b.iter(|| s.rt.block_on(raw_stream(&s.http, &s.url, &stream_body))));
    group.bench_function("llm_run_no_sink", |b| b.iter(|| s.rt.block_on(s.plain.run(event())).unwrap()));
    group.bench_function("llm_run_sink", |b| b.iter(|| s.rt.block_on(s.sinking.run(event())).unwrap()));
    group.finish();
}

fn interleaved() {
    let s = setup();
    let (json_body, stream_body) = (raw_body(false), raw_body(true));
    let mut samples: [Vec<f64>; 4] = Default::default();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e6
    };
    for i in 0..2500 {
        let a = time(&mut || drop(s.rt.block_on(raw_json(&s.http, &s.url, &json_body))));
        let b = time(&mut || {
            s.rt.block_on(raw_stream(&s.http, &s.url, &stream_body));
        });
        let c = time(&mut || drop(s.rt.block_on(s.plain.run(event())).unwrap()));
        let d = time(&mut || drop(s.rt.block_on(s.sinking.run(event())).unwrap()));
        if i >= 300 {
            for (v, x) in samples.iter_mut().zip([a, b, c, d]) {
                v.push(x);
            }
        }
    }
    let diffs = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a - b).collect::<Vec<_>>();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [raw_j, raw_s, run, run_sink] = &samples;
    println!(
        "interleaved {} rounds (median us): raw_json {:.1}, raw_stream {:.1}, llm_run_no_sink {:.1}, llm_run_sink {:.1}",
        raw_j.len(),
        median(raw_j),
        median(raw_s),
        median(run),
        median(run_sink)
    );
    println!(
        "paired differences (median us): run - raw_stream {:.1}, run - raw_json {:.1}, run_sink - raw_stream {:.1}",
        median(&diffs(run, raw_s)),
        median(&diffs(run, raw_j)),
        median(&diffs(run_sink, raw_s))
    );
}

criterion_group!(benches, overhead);

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
