//! The real `fn-code` bootstrap binary under a Lambda Runtime API server on 127.0.0.1: events go
//! in through `invocation/next`, results and named errors come back through `response`/`error`,
//! exactly as on AWS Lambda.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::json;

#[tokio::test]
async fn bootstrap_round_trips_results_and_named_errors() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fn-code"))
        .envs(api.lambda_env("code"))
        .env("WEFT_CODE_TIMEOUT_MS", "300")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the bootstrap");
    let wait = Duration::from_secs(20);

    let ok = api
        .invoke(
            json!({"node": {"id": "c", "type": "code"}, "config": {"source": "return input.items.map(x => x + 1)"},
                        "scope": {"input": {"items": [1, 2]}}}),
            wait,
        )
        .await;
    assert_eq!(ok, Some(Outcome::Response(json!([2, 3]))));

    let thrown = api
        .invoke(
            json!({"node": {"id": "c", "type": "code"}, "config": {"source": "\nthrow new RangeError('nope')"}}),
            wait,
        )
        .await;
    match thrown {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Code.Error");
            assert!(error_message.contains("RangeError: nope (line 2)"), "{error_message}");
        }
        other => panic!("expected a Code.Error, got {other:?}"),
    }

    let looped =
        api.invoke(json!({"node": {"id": "c", "type": "code"}, "config": {"source": "for (;;) {}"}}), wait).await;
    assert!(matches!(&looped, Some(Outcome::Error { error_type, .. }) if error_type == "Code.Timeout"), "{looped:?}");

    // A payload that is not a node event is a named configuration error, not a crash.
    let bad = api.invoke(json!({"hello": "world"}), wait).await;
    assert!(matches!(&bad, Some(Outcome::Error { error_type, .. }) if error_type == "Config.Invalid"), "{bad:?}");

    // The process survived all of that and still serves.
    let again = api.invoke(json!({"node": {"id": "c", "type": "code"}, "config": {"expression": "1 + 1"}}), wait).await;
    assert_eq!(again, Some(Outcome::Response(json!(2))));
    assert_eq!(api.init_error(), None);
    child.kill().await.expect("kill the bootstrap");

    // Logs are JSON lines (CloudWatch-friendly).
    let out = child.wait_with_output().await.expect("output");
    let logs = String::from_utf8_lossy(&out.stdout);
    let warn = logs.lines().find(|l| l.contains("node failed")).expect("a log line for the failure");
    let parsed: serde_json::Value = serde_json::from_str(warn).expect("JSON log line");
    assert_eq!(parsed["level"], "WARN");
}
