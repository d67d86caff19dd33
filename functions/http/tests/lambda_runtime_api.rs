//! The real `fn-http` bootstrap under a Lambda Runtime API server on 127.0.0.1, calling a real
//! HTTP server on 127.0.0.1: a response, errors by their stable names, and settings that fail the
//! initialisation. (Secrets through the bootstrap: `lambda_secrets.rs`.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::http::StatusCode;
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-http");
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Never connected: the secret store is opened lazily and these events name no secret.
const UNUSED_DATABASE: &str = "postgres://weft@127.0.0.1:9/weft";
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

async fn server() -> String {
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { axum::Json(json!({"hello": "world"})) }))
        .route("/missing", axum::routing::get(|| async { (StatusCode::NOT_FOUND, "no such thing") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn get(url: &str) -> Value {
    json!({"node": {"id": "fetch", "type": "http"}, "config": {"url": url}})
}

fn error_type(outcome: &Option<Outcome>) -> &str {
    match outcome {
        Some(Outcome::Error { error_type, .. }) => error_type,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn bootstrap_answers_requests_and_fails_by_name() {
    let base = server().await;
    let api = RuntimeApi::start().await.unwrap();
    let env = [("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64), ("WEFT_HTTP_ALLOW", "127.0.0.1")];
    let bootstrap = api.spawn(BOOTSTRAP, "http", &env).unwrap();

    let ok = api.invoke(get(&format!("{base}/hello")), WAIT).await;
    let Some(Outcome::Response(out)) = &ok else { panic!("expected a response, got {ok:?}") };
    assert_eq!((&out["status"], &out["body"]), (&json!(200), &json!({"hello": "world"})), "{out}");

    let missing = api.invoke(get(&format!("{base}/missing")), WAIT).await;
    assert_eq!(error_type(&missing), "Http.Status4xx");
    let Some(Outcome::Error { error_message, .. }) = &missing else { unreachable!() };
    assert!(error_message.contains("404") && error_message.contains("no such thing"), "{error_message}");

    // The allow-list names 127.0.0.1 only: the metadata address stays refused.
    let forbidden = api.invoke(get("http://169.254.169.254/latest/meta-data/"), WAIT).await;
    assert_eq!(error_type(&forbidden), "Http.ForbiddenAddress");
    let invalid =
        api.invoke(json!({"node": {"id": "fetch", "type": "http"}, "config": {"url": "not a url"}}), WAIT).await;
    assert_eq!(error_type(&invalid), "Config.Invalid");

    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();
}

#[tokio::test]
async fn missing_or_bad_settings_fail_the_initialisation() {
    let api = RuntimeApi::start().await.unwrap();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("WEFT_SECRETS_KEY", KEY_B64)],
            "WEFT_DATABASE_URL must be set: node functions read the tenant's secrets from Postgres",
        ),
        (
            &[("WEFT_DATABASE_URL", UNUSED_DATABASE)],
            "WEFT_SECRETS_KEY must be set: node functions read the tenant's secrets from Postgres",
        ),
        (
            &[("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", "c2hvcnQ=")],
            "WEFT_SECRETS_KEY must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)",
        ),
        (
            &[("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64), ("WEFT_HTTP_ALLOW", "not-an-ip")],
            "WEFT_HTTP_ALLOW: ",
        ),
        (
            &[
                ("WEFT_DATABASE_URL", UNUSED_DATABASE),
                ("WEFT_SECRETS_KEY", KEY_B64),
                ("WEFT_HTTP_MAX_RESPONSE_BYTES", "lots"),
            ],
            "WEFT_HTTP_MAX_RESPONSE_BYTES: `lots` is not a byte count",
        ),
    ];
    for (env, says) in cases {
        let stderr = api.init_failure(BOOTSTRAP, "http", env, WAIT).await.unwrap();
        assert!(stderr.contains(says), "{env:?}: expected {says:?} in {stderr:?}");
    }
}
