//! The real `fn-http` bootstrap under a Lambda Runtime API server on 127.0.0.1, with the secret
//! store in a real Postgres: the Lambda path resolves `{{ secrets.NAME }}` for the tenant owning
//! the execution ARN in the payload, and never from its environment.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::extract::Request;
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use secrets::SecretsKey;
use serde_json::{Value, json};

const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ENV_VALUE: &str = "from-the-environment-9f2c";
const TENANT_VALUE: &str = "acme-token-5b1d77";

fn key() -> SecretsKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretsKey::new(&k)
}

/// Answers every request with the Authorization header it received.
async fn header_echo() -> String {
    let app = axum::Router::new().fallback(|r: Request| async move {
        r.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn event(url: &str, arn: &str) -> Value {
    json!({"node": {"id": "fetch", "type": "http"}, "execution": {"id": arn},
           "secrets": {"/headers/Authorization": ["TOKEN"]},
           "config": {"url": url, "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"}, "response_format": "text"}})
}

#[tokio::test]
async fn the_lambda_resolves_secrets_for_the_executions_tenant_only() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, db) = store::testing::fresh_store(&admin).await.unwrap();
    let wf_a = store::testing::published_workflow(&store, "acme").await.unwrap().id;
    let wf_b = store::testing::published_workflow(&store, "evil").await.unwrap().id;
    tenant_secrets::testing::store_secrets(store.pool(), &key(), "acme", &[("TOKEN", TENANT_VALUE)]).await.unwrap();
    let (_, arn_a) = store::testing::execution(&store, "acme", wf_a, false).await.unwrap();
    let (_, arn_b) = store::testing::execution(&store, "evil", wf_b, true).await.unwrap();
    let url = header_echo().await;

    let api = RuntimeApi::start().await.unwrap();
    let env = [
        ("WEFT_DATABASE_URL", db.as_str()),
        ("WEFT_SECRETS_KEY", KEY_B64),
        ("WEFT_HTTP_ALLOW", "127.0.0.1"),
        ("WEFT_SECRET_TOKEN", ENV_VALUE),
    ];
    let bootstrap = api.spawn(env!("CARGO_BIN_EXE_fn-http"), "http", &env).unwrap();
    let wait = Duration::from_secs(60);

    // Tenant A: the header reaches the server; the function's output has the value masked.
    let a = api.invoke(event(&url, &arn_a), wait).await;
    let Some(Outcome::Response(out)) = &a else { panic!("expected a response, got {a:?}") };
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], "Bearer ***", "{out}");

    // Tenant B, same config: B has no TOKEN. The environment variable is no fallback.
    let b = api.invoke(event(&url, &arn_b), wait).await;
    match &b {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Secret.NotFound");
            assert!(error_message.contains("TOKEN"), "{error_message}");
        }
        other => panic!("expected Secret.NotFound, got {other:?}"),
    }
    // An ARN Weft never started has no tenant at all.
    let forged = format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_a}:{}", uuid::Uuid::new_v4());
    let c = api.invoke(event(&url, &forged), wait).await;
    assert!(matches!(&c, Some(Outcome::Error { error_type, .. }) if error_type == "Secret.NotFound"), "{c:?}");

    let exited = bootstrap.stop().await.unwrap();
    let logs = format!("{}{}", exited.stdout, exited.stderr);
    for shown in [format!("{a:?}"), format!("{b:?}"), format!("{c:?}"), logs] {
        assert!(!shown.contains(ENV_VALUE) && !shown.contains(TENANT_VALUE), "{shown}");
    }
}
