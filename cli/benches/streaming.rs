//! Streaming latency: from the scripted model server writing a token to an SSE client receiving
//! it through a real `weft serve` (`GET /v1/executions/{id}/events`), on 127.0.0.1.
//!
//! `cargo bench -p cli --bench streaming` with `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL`
//! (Postgres and Redis, as the tests use them). The model server runs in this process, so its
//! emission instants ([`ScriptedServer::emissions`]) and the client's arrival instants share one
//! clock. Each of `BENCH_RUNS` (default 5) executions streams a reply of `BENCH_CHUNKS` (default
//! 200) chunks, 10 ms apart; a token event may carry several chunks (the llm function coalesces
//! when its sink is busy), so a chunk's latency is the arrival of the first event whose text
//! reaches the chunk's end. Prints p50, p90, p99 and max over all chunks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/executions_common/mod.rs"]
mod executions_common;

use std::time::{Duration, Instant};

use executions_common::{Api, Serve, services};
use futures::StreamExt as _;
use model_client::testing::{Reply, ScriptedServer};
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Reads the events stream until the `end` event: `(arrival, cumulative text length)` per token
/// event.
async fn follow(api: &Api, execution: &str) -> Vec<(Instant, usize)> {
    let res = api
        .http
        .get(format!("{}/v1/executions/{execution}/events?timeout_ms=60000", api.base))
        .bearer_auth(&api.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events request");
    assert_eq!(res.status().as_u16(), 200);
    let mut stream = res.bytes_stream();
    let (mut buf, mut text_len, mut out) = (String::new(), 0usize, Vec::new());
    while let Some(chunk) = stream.next().await {
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk.expect("body chunk")));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if frame.lines().any(|l| l == "event: end") {
                return out;
            }
            for data in frame.lines().filter_map(|l| l.strip_prefix("data: ")) {
                let Ok(event) = serde_json::from_str::<Value>(data) else { continue };
                if event["type"] == "node_token" {
                    text_len += event["payload"]["text"].as_str().unwrap_or_default().len();
                    out.push((now, text_len));
                }
            }
        }
    }
    out
}

fn main() {
    let runs = env("BENCH_RUNS", 5);
    let chunks = env("BENCH_CHUNKS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    rt.block_on(async {
        let Some((db, redis)) = services().await else {
            eprintln!("streaming bench: set WEFT_TEST_DATABASE_URL and WEFT_TEST_REDIS_URL");
            return;
        };
        let model = ScriptedServer::start().await;
        let base = model.base_url();
        let serve = Serve::start(&db, &redis, 0, &[("OPENAI_BASE_URL", base.as_str()), ("OPENAI_API_KEY", "sk-bench")]);
        let api = Api::new(&serve.base, "streaming-bench");
        let graph = json!({"format": "weft/v1", "id": "ask", "name": "ask",
            "nodes": [{"id": "start", "type": "start", "data": {}},
                      {"id": "ask", "type": "llm", "data": {"model": "gpt-4o-mini", "prompt": "Write"}},
                      {"id": "done", "type": "end", "data": {"output": "{{ nodes.ask.text }}"}}],
            "edges": [{"id": "e1", "source": "start", "target": "ask"}, {"id": "e2", "source": "ask", "target": "done"}]});
        let workflow = api.publish(graph).await;
        // Words of 4-7 characters: the server splits them into 1-3 character chunks.
        let answer: String = (0..chunks / 2).map(|i| format!("tok{:03} ", i % 1000)).collect();
        let mut latencies = Vec::new();
        let mut events = 0;
        for _ in 0..runs {
            model.clear_emissions();
            model.push(Reply::text(answer.clone()).with_chunk_delay(Duration::from_millis(10)));
            let execution = api.start(&workflow, json!({})).await;
            let received = follow(&api, &execution).await;
            events += received.len();
            let mut offset = 0;
            for e in model.emissions() {
                let Some(text) = e.text else { continue };
                offset += text.len();
                let Some((at, _)) = received.iter().find(|(_, len)| *len >= offset) else {
                    panic!("the text up to {offset} never arrived ({} events)", received.len());
                };
                latencies.push(at.saturating_duration_since(e.at));
            }
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("token → SSE client through weft serve: {} chunks in {runs} executions, {events} token events", latencies.len());
        println!(
            "  p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.9)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().expect("latencies"))
        );
    });
}
