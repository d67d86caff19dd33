//! `run(function)` under the Lambda Runtime API, through a real bootstrap (`tests/bin/probe.rs`,
//! whose `main` is every node function's): events in through `invocation/next`, results and
//! `NodeError`s out as `{"errorType", "errorMessage"}`, one function per process, JSON logs.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const PROBE: &str = env!("CARGO_BIN_EXE_lambda-glue-probe");
/// Generous: the assertion is what comes back, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn response(outcome: Option<Outcome>) -> Value {
    match outcome {
        Some(Outcome::Response(v)) => v,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn run_serves_every_invocation_with_one_function_and_named_errors() {
    let api = RuntimeApi::start().await.unwrap();
    let probe = api.spawn(PROBE, "probe", &[]).unwrap();

    let event = json!({"node": {"id": "n1", "type": "probe"}, "config": {"x": [1, 2]},
        "execution": {"id": "arn:aws:states:us-east-1:123456789012:execution:weft-w:e"}, "attempt": 2,
        "scope": {"input": {"k": "v"}}});
    let first = response(api.invoke(event.clone(), WAIT).await);
    // The payload reached the function as the NodeEvent it describes, fields it omits defaulted.
    assert_eq!(first["event"]["node"], json!({"id": "n1", "type": "probe"}));
    assert_eq!(first["event"]["config"], json!({"x": [1, 2]}));
    assert_eq!(first["event"]["execution"]["id"], "arn:aws:states:us-east-1:123456789012:execution:weft-w:e");
    assert_eq!(first["event"]["attempt"], 2);
    assert_eq!(first["event"]["scope"], json!({"input": {"k": "v"}}));
    assert_eq!((first["invocation"].clone(), first["built"].clone()), (json!(1), json!(1)));
    let minimal = response(api.invoke(json!({"node": {"id": "n2", "type": "probe"}}), WAIT).await);
    assert_eq!((minimal["event"]["config"].clone(), minimal["event"]["attempt"].clone()), (Value::Null, json!(0)));
    assert_eq!((minimal["invocation"].clone(), minimal["built"].clone()), (json!(2), json!(1)), "built once");

    // A NodeError is the Lambda error document: its name is the errorType Step Functions matches.
    let message = "GET https://example.test/a?b=\"c\" returned 503: ünïcödé\nsecond line";
    let failed = api
        .invoke(json!({"node": {"id": "n3", "type": "probe"}, "config": {"fail": {"name": "Http.Status5xx", "message": message}}}), WAIT)
        .await;
    assert_eq!(failed, Some(Outcome::Error { error_type: "Http.Status5xx".into(), error_message: message.into() }));

    // A payload that is not a node event never reaches the function: Config.Invalid.
    let bad = api.invoke(json!({"hello": "world"}), WAIT).await;
    match bad {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Config.Invalid");
            assert!(
                error_message.starts_with("the event is not a node event: missing field `node`"),
                "{error_message}"
            );
        }
        other => panic!("expected Config.Invalid, got {other:?}"),
    }

    // Still the same process and function: the bad payload was not an invocation of it.
    let last = response(api.invoke(json!({"node": {"id": "n4", "type": "probe"}}), WAIT).await);
    assert_eq!((last["invocation"].clone(), last["built"].clone()), (json!(4), json!(1)));
    assert_eq!(api.init_error(), None);
    assert!(api.polls() >= 5, "{} polls", api.polls());

    // Logs: JSON lines only, level INFO by default, no timestamps, targets or colours; a failure
    // is logged at WARN with the node, the error name and its message.
    let exited = probe.stop().await.unwrap();
    let lines: Vec<Value> = exited
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(!exited.stdout.contains('\u{1b}'), "ANSI escapes in {}", exited.stdout);
    for line in &lines {
        assert!(line.get("timestamp").is_none() && line.get("target").is_none(), "{line}");
    }
    let invoked: Vec<&Value> = lines.iter().filter(|l| l["fields"]["message"] == "probe invoked").collect();
    assert_eq!(invoked.len(), 4, "{}", exited.stdout);
    assert_eq!(invoked[0]["level"], "INFO");
    assert_eq!(invoked[0]["fields"]["node"], "n1");
    let warned: Vec<&str> = exited.stdout.lines().filter(|l| l.contains("\"WARN\"")).collect();
    assert_eq!(warned.len(), 1, "{}", exited.stdout);
    // Each key once: a field named `message` would sit next to the event's own message, and a
    // JSON reader keeps only one of the two.
    assert_eq!(warned[0].matches("\"message\":").count(), 1, "{}", warned[0]);
    let warned: Value = serde_json::from_str(warned[0]).unwrap();
    assert_eq!(
        warned["fields"],
        json!({"message": "node failed", "node": "n3", "error": "Http.Status5xx", "error_message": message})
    );
}

#[tokio::test]
async fn rust_log_sets_the_log_level() {
    let api = RuntimeApi::start().await.unwrap();
    let probe = api.spawn(PROBE, "probe", &[("RUST_LOG", "warn")]).unwrap();
    response(api.invoke(json!({"node": {"id": "quiet", "type": "probe"}}), WAIT).await);
    let failed = api
        .invoke(json!({"node": {"id": "loud", "type": "probe"}, "config": {"fail": {"name": "Code.Error", "message": "x"}}}), WAIT)
        .await;
    assert!(matches!(&failed, Some(Outcome::Error { error_type, .. }) if error_type == "Code.Error"), "{failed:?}");
    let exited = probe.stop().await.unwrap();
    assert!(!exited.stdout.contains("probe invoked"), "INFO lines under RUST_LOG=warn: {}", exited.stdout);
    let warn: Value = serde_json::from_str(exited.stdout.lines().find(|l| l.contains("node failed")).unwrap()).unwrap();
    assert_eq!((&warn["level"], &warn["fields"]["node"]), (&json!("WARN"), &json!("loud")));
}
