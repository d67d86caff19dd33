//! Per-call overhead of `Client::chat` over a bare reqwest POST + `serde_json::Value` parse, both
//! against the same scripted server on 127.0.0.1 in one run. The difference is what the client
//! adds (request encoding, typed lenient parsing, bounded body read, timeout); the goal is
//! under 1 ms per call.
//!
//! `cargo bench -p model-client --bench overhead`
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use model_client::testing::ScriptedServer;
use model_client::{ChatRequest, Client, Message, Provider, Tool};
use serde_json::{Value, json};

fn request() -> ChatRequest {
    let mut req = ChatRequest::new(
        "gpt-4o-mini",
        vec![
            Message::system("You are a helpful assistant. Answer briefly."),
            Message::user("Summarise the plot of Hamlet in two sentences, please."),
        ],
    );
    req.tools = vec![Tool::function(
        "lookup",
        "Look something up",
        json!({"type": "object", "properties": {"q": {"type": "string"}}}),
    )];
    req.temperature = Some(0.2);
    req
}

/// The same body the client sends, as a `Value`, for the raw path.
fn raw_body() -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "temperature": 0.2,
        "stream": false
    })
}

async fn raw_call(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let resp = http.post(url).bearer_auth("sk-bench").json(body).send().await.unwrap();
    let bytes = resp.bytes().await.unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(ScriptedServer::start());
    server.set_recording(false);
    let http = reqwest::Client::new();
    let provider =
        Provider::new(server.base_url()).with_api_key("sk-bench").with_timeout(Some(Duration::from_secs(30)));
    let client = Client::new(provider, http.clone()).unwrap();
    let req = request();
    let raw_body = raw_body();
    let url = format!("{}/chat/completions", server.base_url());

    let mut group = c.benchmark_group("chat_call");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("raw_reqwest_value", |b| b.iter(|| rt.block_on(raw_call(&http, &url, &raw_body))));
    group.bench_function("model_client_chat", |b| b.iter(|| rt.block_on(client.chat(&req)).unwrap()));
    group.bench_function("model_client_chat_stream", |b| {
        b.iter(|| rt.block_on(async { client.chat_stream(&req).await.unwrap().response().await.unwrap() }))
    });
    group.finish();
    drop(server);
}

/// Criterion runs the variants one after the other, so load from other processes can drift
/// between them; this alternates the two calls and reports the medians and the median of the
/// paired differences, which that drift cannot skew.
fn interleaved() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(ScriptedServer::start());
    server.set_recording(false);
    let http = reqwest::Client::new();
    let client = Client::new(Provider::new(server.base_url()).with_api_key("sk-bench"), http.clone()).unwrap();
    let req = request();
    let raw_body = raw_body();
    let url = format!("{}/chat/completions", server.base_url());
    let (mut raw, mut ours, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..4000 {
        let t = std::time::Instant::now();
        rt.block_on(raw_call(&http, &url, &raw_body));
        let a = t.elapsed().as_secs_f64() * 1e6;
        let t = std::time::Instant::now();
        rt.block_on(client.chat(&req)).unwrap();
        let b = t.elapsed().as_secs_f64() * 1e6;
        if i >= 500 {
            raw.push(a);
            ours.push(b);
            diff.push(b - a);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "interleaved 3500 pairs: raw_reqwest_value median {:.1} us, model_client_chat median {:.1} us, paired difference median {:.1} us",
        median(&mut raw),
        median(&mut ours),
        median(&mut diff)
    );
}

criterion_group!(benches, overhead);

fn main() {
    interleaved();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
