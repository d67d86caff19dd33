//! The in-process functions driven by the real engine through ASL Task states, as the compiler
//! emits them (`lambda:invoke` with `FunctionName` `${CodeFunctionArn}` / `${HttpFunctionArn}`).

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use engine::{Definition, Engine, EngineConfig, Status};
use fn_code::{CodeFunction, Limits};
use fn_http::{HttpFunction, Settings};
use local_functions::LocalFunctions;
use serde_json::{Value, json};

fn engine() -> Engine {
    let http = HttpFunction::new(Settings::allowing(&["127.0.0.1"]).expect("allow-list")).expect("client");
    let code = CodeFunction::new(Limits { timeout: Duration::from_millis(300), ..Limits::default() });
    // Virtual time: Retry intervals pass instantly.
    Engine::new(
        EngineConfig::new(Arc::new(LocalFunctions::new(http, code))).with_clock(Arc::new(engine::VirtualClock::new())),
    )
}

fn task(function: &str, id: &str, node_type: &str, config: Value) -> Value {
    json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": function,
            "Payload": {
                "node": {"id": id, "type": node_type},
                "secrets": node_contract::secret_refs(&config),
                "config": config,
                "execution": {"id.$": "$$.Execution.Id"},
                "attempt.$": "$$.State.RetryCount",
                "scope": {"input.$": "$.input", "nodes.$": "$.nodes"}
            }
        },
        "ResultSelector": {"v.$": "$.Payload"},
        "ResultPath": format!("$.nodes.{id}"),
    })
}

async fn run(definition: Value, input: Value) -> engine::Outcome {
    let def = Arc::new(Definition::parse(&definition).expect("valid definition"));
    engine().run(def, input).await
}

#[tokio::test]
async fn code_tasks_chain_through_nodes() {
    let mut double = task("${CodeFunctionArn}", "double", "code", json!({"expression": "input.n * 2"}));
    double["Next"] = json!("add");
    let mut add = task(
        "arn:aws:lambda:us-east-1:1:function:weft-CodeFunction-X1",
        "add",
        "code",
        json!({"source": "return nodes.double.v + 1;"}),
    );
    add["End"] = json!(true);
    let def = json!({"StartAt": "double", "States": {"double": double, "add": add}});
    let out = run(def, json!({"input": {"n": 20}, "nodes": {}})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(out.output.expect("output")["nodes"], json!({"double": {"v": 40}, "add": {"v": 41}}));
}

#[tokio::test]
async fn named_errors_reach_retry_and_catch_with_lambda_causes() {
    let mut failing = task("${CodeFunctionArn}", "boom", "code", json!({"source": "throw new Error('bad input')"}));
    failing["Retry"] = json!([{"ErrorEquals": ["Code.Error"], "MaxAttempts": 2, "IntervalSeconds": 1}]);
    failing["Catch"] = json!([{"ErrorEquals": ["Code.Error"], "ResultPath": "$.error", "Next": "handled"}]);
    failing["Next"] = json!("handled");
    let def = json!({"StartAt": "boom", "States": {"boom": failing, "handled": {"Type": "Pass", "End": true}}});
    let out = run(def, json!({"input": {}, "nodes": {}})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let error = &out.output.expect("output")["error"];
    assert_eq!(error["Error"], "Code.Error");
    let cause: Value = serde_json::from_str(error["Cause"].as_str().expect("cause text")).expect("cause is JSON");
    assert_eq!(cause["errorType"], "Code.Error");
    assert!(cause["errorMessage"].as_str().unwrap_or_default().contains("bad input"), "{cause}");
}

#[tokio::test]
async fn uncaught_timeout_fails_the_execution_with_its_name() {
    let mut looping = task("${CodeFunctionArn}", "spin", "code", json!({"source": "while (true) {}"}));
    looping["End"] = json!(true);
    let out = run(json!({"StartAt": "spin", "States": {"spin": looping}}), json!({"input": {}, "nodes": {}})).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("Code.Timeout"));
}

#[tokio::test]
async fn http_task_calls_a_real_server() {
    let app = axum::Router::new().route(
        "/n/{n}",
        axum::routing::get(|axum::extract::Path(n): axum::extract::Path<u32>| async move {
            axum::Json(json!({"double": n * 2}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut fetch = task(
        "${HttpFunctionArn}",
        "fetch",
        "http",
        json!({"url.$": format!("States.Format('http://{addr}/n/{{}}', $.input.n)")}),
    );
    fetch["End"] = json!(true);
    let out =
        run(json!({"StartAt": "fetch", "States": {"fetch": fetch}}), json!({"input": {"n": 21}, "nodes": {}})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let fetched = &out.output.expect("output")["nodes"]["fetch"]["v"];
    assert_eq!((fetched["status"].clone(), fetched["body"].clone()), (json!(200), json!({"double": 42})));
}

#[tokio::test]
async fn unknown_functions_fail_like_lambda() {
    let mut t = task("${NoSuchFunctionArn}", "x", "x", json!({}));
    t["End"] = json!(true);
    let out = run(json!({"StartAt": "x", "States": {"x": t}}), json!({"input": {}, "nodes": {}})).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("Lambda.ResourceNotFoundException"));
}

/// The tenant's secrets are looked up by the engine's execution ARN, never by what the payload
/// claims: an execution named after tenant B's row gets B's secrets (none) even when its payload
/// names tenant A's execution, and the other way round.
#[tokio::test]
async fn secrets_follow_the_engines_execution_arn_not_the_payload() {
    use local_functions::tenant_secrets::{PgSecretResolver, testing};
    use store::testing::{execution, published_workflow};
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, _) = store::testing::fresh_store(&admin).await.unwrap();
    let pool = store.pool().clone();
    let key = secrets::SecretsKey::new(&[3u8; 32]);
    let wf_a = published_workflow(&store, "acme").await.unwrap().id;
    testing::store_secrets(&pool, &key, "acme", &[("TOKEN", "acme-value-1f3a")]).await.unwrap();
    let wf_b = published_workflow(&store, "evil").await.unwrap().id;
    let (id_a, arn_a) = execution(&store, "acme", wf_a, false).await.unwrap();
    let (id_b, arn_b) = execution(&store, "evil", wf_b, false).await.unwrap();

    let addr = echo_server().await;
    let http = HttpFunction::new(Settings::allowing(&["127.0.0.1"]).unwrap()).unwrap();
    let functions = LocalFunctions::new(http, CodeFunction::new(Limits::default()))
        .with_secrets(Arc::new(PgSecretResolver::new(pool.clone(), key)));
    let engine = Engine::new(EngineConfig::new(Arc::new(functions)));
    let definition = |claimed: &str| {
        let mut t = task(
            "${HttpFunctionArn}",
            "fetch",
            "http",
            json!({"url": format!("http://{addr}/echo"), "headers": {"Authorization": "{{ secrets.TOKEN }}"}}),
        );
        t["Parameters"]["Payload"]["execution"] = json!({"id": claimed});
        t["Parameters"]["Payload"].as_object_mut().unwrap().remove("scope");
        t["End"] = json!(true);
        Arc::new(Definition::parse(&json!({"StartAt": "fetch", "States": {"fetch": t}})).unwrap())
    };
    let run = |def: Arc<Definition>, name: uuid::Uuid, machine: uuid::Uuid| {
        let options =
            engine::StartOptions { name: Some(name.to_string()), state_machine_name: Some(format!("weft-{machine}")) };
        engine.start(def, json!({}), options)
    };

    // B's execution claiming to be A's: B has no TOKEN.
    let out = run(definition(&arn_a), id_b, wf_b).wait().await;
    assert_eq!(out.status, Status::Failed, "{out:?}");
    assert_eq!(out.error.as_deref(), Some("Secret.NotFound"));
    assert!(!format!("{out:?}").contains("acme-value-1f3a"));

    // A's execution claiming to be B's: A's value is sent (and masked in the output).
    let out = run(definition(&arn_b), id_a, wf_a).wait().await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(out.output.as_ref().unwrap()["nodes"]["fetch"]["v"]["body"], "***");
    assert!(!format!("{out:?}").contains("acme-value-1f3a"));
}

/// Answers with the Authorization header it received.
async fn echo_server() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::any(|h: axum::http::HeaderMap| async move {
            h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
