//! The real `fn-vector` bootstrap under a Lambda Runtime API server on 127.0.0.1: each
//! execution's tenant read from a real Postgres (the executions a Weft api would have started),
//! Milvus a real milvus-lite, embeddings from the scripted server. One tenant's chunks are never
//! another's results; an execution Weft did not start has no tenant; bad settings fail the init.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-vector");
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const UNUSED_DATABASE: &str = "postgres://weft@127.0.0.1:9/weft";
const WAIT: Duration = Duration::from_secs(120);

fn call(node_type: &str, arn: &str, config: Value) -> Value {
    json!({"node": {"id": "n", "type": node_type}, "execution": {"id": arn}, "config": config})
}

fn response(outcome: Option<Outcome>) -> Value {
    match outcome {
        Some(Outcome::Response(v)) => v,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn error_type(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(Outcome::Error { error_type, .. }) => error_type,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_scopes_chunks_to_the_executions_tenant() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let Some(milvus) = common::MilvusLite::start() else { return };
    let (store, db) = store::testing::fresh_store(&admin).await.unwrap();
    let acme_wf = store::testing::published_workflow(&store, "acme").await.unwrap().id;
    let beta_wf = store::testing::published_workflow(&store, "beta").await.unwrap().id;
    let (_, acme) = store::testing::execution(&store, "acme", acme_wf, true).await.unwrap();
    let (_, beta) = store::testing::execution(&store, "beta", beta_wf, true).await.unwrap();
    let models = common::embeddings(32).await;

    let api = RuntimeApi::start().await.unwrap();
    let (milvus_url, models_url) = (milvus.url(), models.base_url());
    let env = [
        ("WEFT_DATABASE_URL", db.as_str()),
        ("WEFT_SECRETS_KEY", KEY_B64),
        ("WEFT_MILVUS_URL", milvus_url.as_str()),
        ("OPENAI_BASE_URL", models_url.as_str()),
    ];
    let bootstrap = api.spawn(BOOTSTRAP, "vector", &env).unwrap();

    let docs = json!([{"id": "plan", "text": "acme launch plan for march", "metadata": {"team": "x"}}]);
    let out =
        response(api.invoke(call("vector_upsert", &acme, json!({"collection": "kb", "documents": docs})), WAIT).await);
    assert_eq!(out["chunks"], 1, "{out}");
    assert_eq!(out["documents"], 1, "{out}");
    assert_eq!(out["usage"]["input_tokens"], model_client::estimate_tokens("acme launch plan for march"), "{out}");

    let mine = response(
        api.invoke(call("vector_search", &acme, json!({"collection": "kb", "query": "launch plan"})), WAIT).await,
    );
    assert_eq!(mine["matches"][0]["doc_id"], "plan");
    let theirs =
        call("vector_search", &beta, json!({"collection": "kb", "query": "launch plan", "filter": {"team": "x"}}));
    assert_eq!(response(api.invoke(theirs, WAIT).await)["matches"], json!([]));

    let stranger = "arn:aws:states:us-east-1:123456789012:execution:weft-x:00000000-0000-0000-0000-000000000000";
    let e = api.invoke(call("vector_search", stranger, json!({"collection": "kb", "query": "launch"})), WAIT).await;
    assert_eq!(error_type(e), "Vector.NoTenant");
    let e = api
        .invoke(call("vector_search", &acme, json!({"collection": "kb", "query": "x", "filter": "1 == 1"})), WAIT)
        .await;
    assert_eq!(error_type(e), "Vector.InvalidFilter");

    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();
}

#[tokio::test]
async fn bad_settings_fail_the_initialisation() {
    let api = RuntimeApi::start().await.unwrap();
    let base = [("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64)];
    for (name, value, says) in [
        ("WEFT_MILVUS_URL", "tcp://milvus:19530", "WEFT_MILVUS_URL: `tcp://milvus:19530` must be an http(s) URL"),
        ("WEFT_VECTOR_EMBED_BATCH", "0", "WEFT_VECTOR_EMBED_BATCH: `0` is not a number from 1 to 2048"),
    ] {
        let mut env = base.to_vec();
        env.push((name, value));
        let stderr = api.init_failure(BOOTSTRAP, "vector", &env, WAIT).await.unwrap();
        assert!(stderr.contains(says), "{name}={value}: expected {says:?} in {stderr:?}");
    }
}
