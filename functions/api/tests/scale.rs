//! Large graphs through the real API on tokio workers with their default 2 MiB stack: a
//! 10,000-node chain and nesting to the limit are created, compiled, published (to sfn-server
//! over HTTP, as to AWS) and run; one level deeper is a 422 naming the limit; a chain of Tasks
//! whose definition exceeds Step Functions' 1 MiB is refused with the quota's diagnostic.

mod common;
#[path = "../../../compiler/tests/graphgen/shapes.rs"]
mod shapes;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use shapes::Shape;

const ROLE: &str = "arn:aws:iam::123456789012:role/weft";

fn on_tokio_workers<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(2 << 20)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move { tokio::spawn(f).await.expect("the test task") });
}

async fn run(client: &aws_sdk_sfn::Client, arn: &str, input: Value) -> Value {
    let started = client.start_execution().state_machine_arn(arn).input(input.to_string()).send().await.expect("start");
    for _ in 0..1200 {
        let d = client.describe_execution().execution_arn(started.execution_arn()).send().await.expect("describe");
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            assert_eq!(d.status(), &aws_sdk_sfn::types::ExecutionStatus::Succeeded, "{d:?}");
            return serde_json::from_str(d.output().unwrap_or("null")).expect("output");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the execution of {arn} did not finish");
}

#[test]
fn large_graphs_are_created_compiled_published_and_run_on_2_mib_stacks() {
    on_tokio_workers(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let store: Arc<dyn sfn_server::SfnStore> = Arc::new(sfn_server::MemoryStore::new());
        // The node functions in-process, as `weft serve` runs them.
        let functions = local_functions::LocalFunctions::from_env().expect("functions");
        let sfn =
            sfn_server::SfnState::open(store, engine::EngineConfig::new(Arc::new(functions))).await.expect("sfn state");
        let credentials = sfn_server::Credentials::generate();
        let verifier = sfn_server::Verifier::new([credentials.clone()]);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, sfn_server::router(sfn, verifier)).await;
        });
        let client = sfn_server::sdk::local_client(&url, &credentials);
        let publisher = fn_api::publish::SfnPublisher::new(client.clone(), ROLE.to_owned());
        let options =
            Options { publisher: Arc::new(publisher), max_body_bytes: shapes::BODY_LIMIT, ..Options::default() };
        let Some(app) = setup_with(options).await else {
            server.abort();
            return;
        };
        let t = token("acme", "editor");

        let nest = compiler::MAX_NESTING;
        let cases: Vec<(String, Shape, Value, Value)> = vec![
            ("chain".into(), Shape::Chain { n: 10_000, kind: "delay" }, json!({"x": 1}), json!({"x": 1})),
            (
                "loops".into(),
                Shape::Nest { depth: nest, kind: "loop" },
                serde_json::from_str(&shapes::nest_input(nest)).expect("input"),
                Value::Null,
            ),
            // Parallels take four levels of JSON each: 30 fit in the definition's 127.
            ("parallels".into(), Shape::Nest { depth: 30, kind: "parallel" }, json!({}), Value::Null),
            (
                "mixed".into(),
                Shape::Nest { depth: nest, kind: "mixed" },
                serde_json::from_str(&shapes::nest_input(nest.div_ceil(2))).expect("input"),
                Value::Null,
            ),
            ("fan".into(), Shape::Fan { n: 1_000 }, json!({"x": 1}), Value::Null),
        ];
        for (name, shape, input, want) in cases {
            let text = shapes::text(&shape);
            let graph: Value = serde_json::from_str(&text).expect("graph");
            let body = json!({"graph": graph});
            assert!(body.to_string().len() <= shapes::BODY_LIMIT, "{name}: {} bytes", body.to_string().len());
            let compiled = app.call("POST", "/v1/compile", Some(&t), Some(body.clone())).await;
            assert_eq!(compiled.status, StatusCode::OK, "{name}: {}", compiled.body);
            let r = app.call("POST", "/v1/workflows", Some(&t), Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.body);
            let id = r.body["id"].as_str().expect("id").to_owned();
            let v = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
            assert_eq!(v.status, StatusCode::CREATED, "{name}: {}", v.body);
            let arn = v.body["state_machine_version_arn"].as_str().expect("version arn").to_owned();
            let out = run(&client, &arn, input).await;
            if !want.is_null() {
                assert_eq!(out, want, "{name}");
            }
            eprintln!("{name}: {} bytes of graph, {} states, ran", text.len(), compiled.body["state_count"]);
        }

        // One level deeper, and far deeper: compiling is a 422 with the limit's diagnostic; the
        // draft may be saved (drafts may be invalid; its diagnostics are validation's, and the
        // definition's depth is only known once lowered) but never published.
        let codes = |body: &Value| -> Vec<String> {
            body["diagnostics"]
                .as_array()
                .map_or(Vec::new(), |d| d.iter().filter_map(|d| d["code"].as_str().map(str::to_owned)).collect())
        };
        for (kind, limit) in [("loop", nest), ("parallel", 30), ("mixed", nest)] {
            for depth in [limit + 1, 500] {
                let graph: Value = serde_json::from_str(&shapes::text(&Shape::Nest { depth, kind })).expect("graph");
                let body = json!({"graph": graph});
                let r = app.call("POST", "/v1/compile", Some(&t), Some(body.clone())).await;
                assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{kind} x {depth}: {}", r.body);
                assert!(codes(&r.body).iter().all(|c| c == "too-large"), "{kind} x {depth}: {:?}", codes(&r.body));
                let r = app.call("POST", "/v1/workflows", Some(&t), Some(body)).await;
                assert_eq!(r.status, StatusCode::CREATED, "{kind} x {depth}: {}", r.body);
                let id = r.body["id"].as_str().expect("id").to_owned();
                let v = app.call("POST", &format!("/v1/workflows/{id}/versions"), Some(&t), None).await;
                assert_eq!(v.status, StatusCode::UNPROCESSABLE_ENTITY, "{kind} x {depth}: {}", v.body);
                assert!(codes(&v.body).contains(&"too-large".to_owned()), "{kind} x {depth}: {}", v.body);
            }
        }

        // 10,000 Tasks: the graph fits the body limit, the definition would not fit AWS's quota.
        let graph: Value =
            serde_json::from_str(&shapes::text(&Shape::Chain { n: 10_000, kind: "code" })).expect("graph");
        let r = app.call("POST", "/v1/compile", Some(&t), Some(json!({"graph": graph}))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.body["diagnostics"][0]["code"], "too-large", "{}", r.body);
        // A body over the limit is a 413, not a crash.
        let big = json!({"graph": serde_json::from_str::<Value>(&shapes::text(&Shape::Chain { n: 15_000, kind: "delay" })).expect("graph")});
        let r = app.call("POST", "/v1/compile", Some(&t), Some(big)).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
        server.abort();
    });
}
