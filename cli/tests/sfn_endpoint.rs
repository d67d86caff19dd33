//! `weft serve`'s Step Functions endpoint as a real process: the API listener does not speak the
//! Step Functions protocol; the endpoint, on a listener of its own, refuses requests without a
//! valid SigV4 signature and serves clients signing with the configured credentials, while the
//! API (which signs too) publishes and runs workflows through it.

mod executions_common;

use std::time::Duration;

use aws_sdk_sfn::error::{ProvideErrorMetadata as _, SdkError};
use executions_common::{Api, Serve, services};
use serde_json::{Value, json};

const ACCESS_KEY_ID: &str = "AKIDWEFTCLITEST0";
const SECRET_ACCESS_KEY: &str = "cli-test-secret-0123456789/abcdefghijkl+";

fn graph() -> Value {
    json!({"format": "weft/v1", "id": "twice", "name": "Twice",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "twice", "type": "code", "data": {"expression": "2 * 21"}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "twice"},
                  {"id": "e2", "source": "twice", "target": "done"}]})
}

fn status<E>(err: &SdkError<E, aws_sdk_sfn::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_functions_endpoint_has_its_own_listener_and_verifies_sigv4() {
    let Some((db, redis)) = services().await else { return };
    let serve = Serve::start(
        &db,
        &redis,
        0,
        &[("WEFT_SFN_ACCESS_KEY_ID", ACCESS_KEY_ID), ("WEFT_SFN_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)],
    );
    assert!(serve.sfn.starts_with("http://127.0.0.1:") && serve.sfn != serve.base, "{}", serve.banner);
    assert!(serve.banner.contains(ACCESS_KEY_ID) && !serve.banner.contains(SECRET_ACCESS_KEY), "{}", serve.banner);

    // The API publishes and runs a workflow through the endpoint (its client signs).
    let api = Api::new(&serve.base, "acme");
    let workflow = api.publish(graph()).await;
    let execution = api.start(&workflow, json!({})).await;
    let done = api.wait_status(&execution, Duration::from_secs(60), |s| s != "RUNNING" && s != "PENDING").await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!(42), "{done}");

    // A client with the configured credentials (as boto3 or the AWS CLI would be) sees it.
    let client =
        sfn_server::sdk::local_client(&serve.sfn, &sfn_server::Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
    let machines = client.list_state_machines().send().await.expect("list state machines").state_machines;
    let machine = machines.iter().find(|m| m.name.contains(&workflow)).expect("the workflow's state machine");
    let executions =
        client.list_executions().state_machine_arn(&machine.state_machine_arn).send().await.expect("list").executions;
    assert_eq!(executions.len(), 1, "{executions:?}");

    // The API's own listener does not answer the Step Functions protocol, even signed.
    let on_api_port =
        sfn_server::sdk::local_client(&serve.base, &sfn_server::Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
    let err = on_api_port.list_state_machines().send().await.expect_err("the API port spoke Step Functions");
    assert!(matches!(status(&err), Some(404 | 405)), "{err:?}");
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/", serve.base))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AWSStepFunctions.ListStateMachines")
        .header("x-amz-date", "20261201T000000Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=weft/20261201/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00",
        )
        .body("{}")
        .send()
        .await
        .expect("request");
    let code = res.status().as_u16();
    let body = res.text().await.expect("body");
    assert!(code == 404 || code == 405, "the API port answered the Step Functions protocol: {code} {body}");
    assert!(!body.contains("stateMachines"), "{body}");

    // On the endpoint: unsigned, unknown key, wrong secret are refused as AWS refuses them.
    let list_executions = json!({"stateMachineArn": machine.state_machine_arn}).to_string();
    let res = http
        .post(format!("{}/", serve.sfn))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AWSStepFunctions.ListExecutions")
        .body(list_executions)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 403);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body,
        json!({"__type": "com.amazon.coral.service#MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
    );

    for (id, secret, code) in [
        ("AKIDSOMEONEELSE0", SECRET_ACCESS_KEY, "UnrecognizedClientException"),
        (ACCESS_KEY_ID, "cli-test-secret-guessed-0123456789abcdef", "InvalidSignatureException"),
    ] {
        let other = sfn_server::sdk::local_client(&serve.sfn, &sfn_server::Credentials::new(id, secret));
        let err = other.list_executions().state_machine_arn(&machine.state_machine_arn).send().await.expect_err(code);
        assert_eq!((err.code(), status(&err)), (Some(code), Some(400)), "{err:?}");
    }
}
