//! The real `fn-code` bootstrap binary under a Lambda Runtime API server on 127.0.0.1: events go
//! in through `invocation/next`, results and named errors come back through `response`/`error`,
//! exactly as on AWS Lambda; an invalid setting fails the initialisation.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::json;

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-code");
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn bootstrap_round_trips_results_and_named_errors() {
    let api = RuntimeApi::start().await.expect("runtime api");
    // The script timeout is the function's own limit (the thing under test), far below WAIT.
    let bootstrap = api.spawn(BOOTSTRAP, "code", &[("WEFT_CODE_TIMEOUT_MS", "300")]).expect("spawn the bootstrap");

    let ok = api
        .invoke(
            json!({"node": {"id": "c", "type": "code"}, "config": {"source": "return input.items.map(x => x + 1)"},
                        "scope": {"input": {"items": [1, 2]}}}),
            WAIT,
        )
        .await;
    assert_eq!(ok, Some(Outcome::Response(json!([2, 3]))));

    let thrown = api
        .invoke(
            json!({"node": {"id": "c", "type": "code"}, "config": {"source": "\nthrow new RangeError('nope')"}}),
            WAIT,
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
        api.invoke(json!({"node": {"id": "c", "type": "code"}, "config": {"source": "for (;;) {}"}}), WAIT).await;
    assert!(matches!(&looped, Some(Outcome::Error { error_type, .. }) if error_type == "Code.Timeout"), "{looped:?}");

    // A payload that is not a node event is a named configuration error, not a crash.
    let bad = api.invoke(json!({"hello": "world"}), WAIT).await;
    assert!(matches!(&bad, Some(Outcome::Error { error_type, .. }) if error_type == "Config.Invalid"), "{bad:?}");

    // The process survived all of that and still serves.
    let again = api.invoke(json!({"node": {"id": "c", "type": "code"}, "config": {"expression": "1 + 1"}}), WAIT).await;
    assert_eq!(again, Some(Outcome::Response(json!(2))));
    assert_eq!(api.init_error(), None);

    // Logs are JSON lines (CloudWatch-friendly).
    let logs = bootstrap.stop().await.expect("stop the bootstrap").stdout;
    let warn = logs.lines().find(|l| l.contains("node failed")).expect("a log line for the failure");
    let parsed: serde_json::Value = serde_json::from_str(warn).expect("JSON log line");
    assert_eq!(parsed["level"], "WARN");
    assert_eq!(parsed["fields"]["error"], "Code.Error");
}

#[tokio::test]
async fn an_invalid_limit_fails_the_initialisation() {
    let api = RuntimeApi::start().await.expect("runtime api");
    for (name, value) in
        [("WEFT_CODE_TIMEOUT_MS", "soon"), ("WEFT_CODE_MEMORY_MB", "0"), ("WEFT_CODE_MAX_CONCURRENCY", "-1")]
    {
        let stderr = api.init_failure(BOOTSTRAP, "code", &[(name, value)], WAIT).await.unwrap();
        assert!(stderr.contains(name) && stderr.contains(value), "{name}={value}: {stderr}");
    }
}
