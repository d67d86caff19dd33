//! The real `fn-llm` bootstrap under a Lambda Runtime API server on 127.0.0.1, calling the
//! scripted OpenAI-compatible server on 127.0.0.1 as its operator provider (`OPENAI_BASE_URL`):
//! a response, errors by their stable names, and settings that fail the initialisation.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use model_client::testing::{Fault, Reply, ScriptedServer};
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-llm");
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Never connected: the secret store is opened lazily and these events name no secret.
const UNUSED_DATABASE: &str = "postgres://weft@127.0.0.1:9/weft";
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn ask(prompt: &str) -> Value {
    json!({"node": {"id": "ask", "type": "llm"}, "execution": {"id": "arn:aws:states:us-east-1:1:execution:wf:e1"},
           "config": {"model": "gpt-4o-mini", "prompt": prompt}})
}

fn error_type(outcome: &Option<Outcome>) -> &str {
    match outcome {
        Some(Outcome::Error { error_type, .. }) => error_type,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn bootstrap_answers_and_fails_by_name() {
    let server = ScriptedServer::start().await;
    let api = RuntimeApi::start().await.unwrap();
    let base = server.base_url();
    let env = [
        ("WEFT_DATABASE_URL", UNUSED_DATABASE),
        ("WEFT_SECRETS_KEY", KEY_B64),
        ("OPENAI_BASE_URL", base.as_str()),
        ("OPENAI_API_KEY", "sk-operator-key-0001"),
    ];
    let bootstrap = api.spawn(BOOTSTRAP, "llm", &env).unwrap();

    let ok = api.invoke(ask("hello"), WAIT).await;
    let Some(Outcome::Response(out)) = &ok else { panic!("expected a response, got {ok:?}") };
    assert_eq!(
        (&out["text"], &out["model"], &out["usage"]["estimated"]),
        (&json!("You said: hello"), &json!("gpt-4o-mini"), &json!(false))
    );
    assert_eq!(server.requests()[0].authorization.as_deref(), Some("Bearer sk-operator-key-0001"));

    server.push(Reply::fault(Fault::ServerError));
    assert_eq!(error_type(&api.invoke(ask("again"), WAIT).await), "Llm.Provider");
    server.push(Reply::fault(Fault::Unauthorized));
    let denied = api.invoke(ask("again"), WAIT).await;
    assert_eq!(error_type(&denied), "Llm.Auth");
    let Some(Outcome::Error { error_message, .. }) = &denied else { unreachable!() };
    assert!(!error_message.contains("sk-operator-key-0001"), "{error_message}");
    let invalid = api.invoke(json!({"node": {"id": "ask", "type": "llm"}, "config": {"prompt": "x"}}), WAIT).await;
    assert_eq!(error_type(&invalid), "Config.Invalid");

    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();
}

#[tokio::test]
async fn bad_settings_fail_the_initialisation() {
    let api = RuntimeApi::start().await.unwrap();
    let base = [("WEFT_DATABASE_URL", UNUSED_DATABASE), ("WEFT_SECRETS_KEY", KEY_B64)];
    let with = |extra: (&'static str, &'static str)| {
        let mut env = base.to_vec();
        env.push(extra);
        env
    };
    let cases: [(Vec<(&str, &str)>, &str); 5] = [
        (vec![("WEFT_SECRETS_KEY", KEY_B64)], "WEFT_DATABASE_URL must be set"),
        (with(("WEFT_MODEL_PRICES", "[1]")), "WEFT_MODEL_PRICES: model prices"),
        (
            with(("WEFT_LLM_MAX_RETRY_AFTER_SECONDS", "soon")),
            "WEFT_LLM_MAX_RETRY_AFTER_SECONDS: `soon` is not a number",
        ),
        (with(("OPENAI_BASE_URL", "ftp://models.internal/v1")), "OPENAI_BASE_URL: must be an http"),
        (with(("WEFT_REDIS_URL", "not a redis url")), "WEFT_REDIS_URL: "),
    ];
    for (env, says) in cases {
        let stderr = api.init_failure(BOOTSTRAP, "llm", &env, WAIT).await.unwrap();
        assert!(stderr.contains(says), "{env:?}: expected {says:?} in {stderr:?}");
    }
}
