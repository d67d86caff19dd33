//! Per-call overhead of the slack function: one token-mode `chat.postMessage` through
//! `SlackFunction::run` (secret lookup, config parsing, guard, scrubbing) against a bare reqwest
//! post of the same JSON with the same bearer, both to one local server in one run:
//! `cargo bench -p fn-slack --bench post`.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use fn_slack::{Settings, SlackFunction};
use node_contract::NodeEvent;
use serde_json::{Value, json};
use tenant_secrets::StaticSecrets;

const TOKEN: &str = "xoxb-1111-2222-benchTokenSecretAAAA";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let api = rt.block_on(async {
        let app = axum::Router::new().route(
            "/api/chat.postMessage",
            axum::routing::post(|| async {
                axum::Json(json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/api")
    });
    let secrets = StaticSecrets::new([("SLACK".to_owned(), TOKEN.to_owned())].into());
    let function = SlackFunction::new(Settings::allowing(&["127.0.0.1"], &api).expect("settings"))
        .expect("client")
        .with_secrets(Arc::new(secrets));
    let event = NodeEvent::from_value(json!({"node": {"id": "notify", "type": "slack"},
        "execution": {"id": "arn:aws:states:us-east-1:123456789012:execution:weft-wf:run-1"},
        "config": {"connection": "SLACK", "channel": "#ops", "text": "deploy done"}}))
    .expect("event");
    let bare = reqwest::Client::builder().no_proxy().build().expect("client");
    let url = format!("{api}/chat.postMessage");
    let body = json!({"channel": "#ops", "text": "deploy done"});

    let mut group = c.benchmark_group("post_message");
    group.bench_function("slack_function", |b| {
        b.iter(|| rt.block_on(function.run(event.clone())).expect("posted"));
    });
    group.bench_function("bare_reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = bare.post(&url).bearer_auth(TOKEN).json(&body).send().await.expect("sent");
                response.json::<Value>().await.expect("json")
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
