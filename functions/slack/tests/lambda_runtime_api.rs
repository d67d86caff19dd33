//! The real `fn-slack` bootstrap under a Lambda Runtime API server on 127.0.0.1, its token read
//! from a real Postgres for the execution's tenant, posting to a fake Slack on 127.0.0.1: a
//! response, errors by their stable names, and settings that fail the initialisation.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::http::HeaderMap;
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use secrets::SecretsKey;
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-slack");
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const TOKEN: &str = "xoxb-1-2-lambdaTokenSecret31f0";
/// Never connected: the secret store is opened lazily and initialisation fails before any event.
const UNUSED_DATABASE: &str = "postgres://weft@127.0.0.1:9/weft";
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn key() -> SecretsKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretsKey::new(&k)
}

/// `chat.postMessage`: `#nope` is Slack's channel_not_found, anything else is posted.
async fn fake_slack() -> String {
    let app = axum::Router::new().route(
        "/api/chat.postMessage",
        axum::routing::post(|headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
            let authorized =
                headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
            match (authorized, body["channel"].as_str()) {
                (false, _) => axum::Json(json!({"ok": false, "error": "invalid_auth"})),
                (true, Some("#nope")) => axum::Json(json!({"ok": false, "error": "channel_not_found"})),
                (true, _) => axum::Json(json!({"ok": true, "channel": "C9", "ts": "1700000000.000900"})),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api")
}

fn post(arn: &str, channel: &str) -> Value {
    json!({"node": {"id": "notify", "type": "slack"}, "execution": {"id": arn},
           "config": {"connection": "SLACK", "channel": channel, "text": "hi"}})
}

fn error_type(outcome: &Option<Outcome>) -> &str {
    match outcome {
        Some(Outcome::Error { error_type, .. }) => error_type,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn bootstrap_posts_with_the_tenants_token_and_fails_by_name() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, db) = store::testing::fresh_store(&admin).await.unwrap();
    let wf = store::testing::published_workflow(&store, "acme").await.unwrap().id;
    tenant_secrets::testing::store_secrets(store.pool(), &key(), "acme", &[("SLACK", TOKEN)]).await.unwrap();
    let (_, arn) = store::testing::execution(&store, "acme", wf, false).await.unwrap();
    let api_url = fake_slack().await;

    let api = RuntimeApi::start().await.unwrap();
    let env = [
        ("WEFT_DATABASE_URL", db.as_str()),
        ("WEFT_SECRETS_KEY", KEY_B64),
        ("WEFT_HTTP_ALLOW", "127.0.0.1"),
        ("WEFT_SLACK_API_URL", api_url.as_str()),
    ];
    let bootstrap = api.spawn(BOOTSTRAP, "slack", &env).unwrap();

    let ok = api.invoke(post(&arn, "#ops"), WAIT).await;
    let Some(Outcome::Response(out)) = &ok else { panic!("expected a response, got {ok:?}") };
    assert_eq!(out, &json!({"ok": true, "channel": "C9", "ts": "1700000000.000900"}));

    let refused = api.invoke(post(&arn, "#nope"), WAIT).await;
    assert_eq!(error_type(&refused), "Slack.Api");
    let Some(Outcome::Error { error_message, .. }) = &refused else { unreachable!() };
    assert!(error_message.contains("channel_not_found"), "{error_message}");

    let invalid = api
        .invoke(
            json!({"node": {"id": "notify", "type": "slack"}, "execution": {"id": arn},
        "config": {"connection": "SLACK", "text": "hi"}}),
            WAIT,
        )
        .await;
    assert_eq!(error_type(&invalid), "Config.Invalid");

    assert_eq!(api.init_error(), None);
    let exited = bootstrap.stop().await.unwrap();
    let logs = format!("{}{}", exited.stdout, exited.stderr);
    for shown in [format!("{ok:?}"), format!("{refused:?}"), format!("{invalid:?}"), logs] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}

#[tokio::test]
async fn bad_settings_fail_the_initialisation() {
    let api = RuntimeApi::start().await.unwrap();
    let base = [("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64)];
    let cases: [(&str, &str, &str); 3] = [
        (
            "WEFT_SLACK_API_URL",
            "ftp://slack.com/api",
            "WEFT_SLACK_API_URL: `ftp://slack.com/api` must be an http(s) URL",
        ),
        ("WEFT_SLACK_MAX_RETRY_AFTER_SECONDS", "soon", "WEFT_SLACK_MAX_RETRY_AFTER_SECONDS: `soon` is not a number"),
        ("WEFT_HTTP_ALLOW", "not-an-ip", "WEFT_HTTP_ALLOW: "),
    ];
    for (name, value, says) in cases {
        let mut env = base.to_vec();
        env.push((name, value));
        let stderr = api.init_failure(BOOTSTRAP, "slack", &env, WAIT).await.unwrap();
        assert!(stderr.contains(says), "{name}={value}: expected {says:?} in {stderr:?}");
    }
}
