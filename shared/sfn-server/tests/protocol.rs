//! The wire format itself, through the router with `oneshot`: status codes, content type and the
//! exact error document the SDKs parse, and the SigV4 refusals.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeDelta, Utc};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sfn_server::{Credentials, Verifier, sigv4};
use tower::ServiceExt as _;

/// What the endpoint answers to `req`.
async fn send(req: Request<Vec<u8>>) -> (StatusCode, String, Value) {
    let state = sfn_server::SfnState::open(Arc::new(sfn_server::MemoryStore::new()), common::config()).await.unwrap();
    let resp =
        sfn_server::router(state, Verifier::new([common::credentials()])).oneshot(req.map(Body::from)).await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, serde_json::from_slice(&bytes).unwrap())
}

/// An unsigned request for `target` with `body`, as a client sends it to 127.0.0.1:8081.
fn request(target: &str, body: &str) -> Request<Vec<u8>> {
    Request::post("http://127.0.0.1:8081/")
        .header("host", "127.0.0.1:8081")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn signed_with(mut req: Request<Vec<u8>>, credentials: &Credentials, at: chrono::DateTime<Utc>) -> Request<Vec<u8>> {
    sigv4::sign(&mut req, credentials, "us-east-1", at);
    req
}

/// A request signed now with the endpoint's credentials.
async fn call(target: &str, body: &str) -> (StatusCode, String, Value) {
    send(signed_with(request(target, body), &common::credentials(), Utc::now())).await
}

#[tokio::test]
async fn errors_have_aws_shapes() {
    let (status, ct, body) = call(
        "AWSStepFunctions.DescribeExecution",
        r#"{"executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ct, "application/x-amz-json-1.0");
    assert_eq!(
        body,
        json!({"__type": "com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist", "message": "Execution Does Not Exist: 'arn:aws:states:us-east-1:123456789012:execution:m:e'"})
    );
    let (status, _, body) = call("AWSStepFunctions.StartExecution", "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "com.amazonaws.swf.service.v2.model#ValidationException");
    assert!(body["message"].as_str().unwrap().contains("stateMachineArn"), "{body}");
    let (_, _, body) = call("AWSStepFunctions.DeleteEverything", "{}").await;
    assert_eq!(body["__type"], "com.amazonaws.swf.service.v2.model#UnknownOperationException");
    let (_, _, body) = call("AmazonSQS.SendMessage", "{}").await;
    assert_eq!(body["__type"], "com.amazonaws.swf.service.v2.model#UnknownOperationException");
    let (_, _, body) = call("AWSStepFunctions.ListStateMachines", "{oops").await;
    assert_eq!(body["__type"], "com.amazonaws.swf.service.v2.model#SerializationException");
}

#[tokio::test]
async fn successes_are_json_with_epoch_timestamps() {
    let (status, ct, body) = call("AWSStepFunctions.ListStateMachines", "").await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/x-amz-json-1.0"));
    assert_eq!(body, json!({"stateMachines": []}));
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string();
    let req = json!({"name": "m", "definition": def, "roleArn": "arn:aws:iam::1:role/r"}).to_string();
    let (status, _, body) = call("AWSStepFunctions.CreateStateMachine", &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["stateMachineArn"], "arn:aws:states:us-east-1:123456789012:stateMachine:m");
    assert!(body["creationDate"].as_f64().unwrap() > 1.7e9, "{body}");
}

/// The document AWS's front end answers an unauthenticated request with.
fn auth_error(code: &str, message: &str) -> Value {
    json!({"__type": format!("com.amazon.coral.service#{code}"), "message": message})
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

#[tokio::test]
async fn requests_without_a_valid_signature_are_refused_as_aws_does() {
    let list = || request("AWSStepFunctions.ListStateMachines", "{}");
    let now = Utc::now();

    let (status, ct, body) = send(list()).await;
    assert_eq!((status, ct.as_str()), (StatusCode::FORBIDDEN, "application/x-amz-json-1.0"));
    assert_eq!(body, auth_error("MissingAuthenticationTokenException", "Missing Authentication Token"));

    let stranger = Credentials::new("AKIDSTRANGER0000", common::SECRET_ACCESS_KEY);
    let (status, _, body) = send(signed_with(list(), &stranger, now)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        auth_error("UnrecognizedClientException", "The security token included in the request is invalid.")
    );

    let wrong_secret = Credentials::new(common::ACCESS_KEY_ID, "weft-test-secret-0123456789abcdefghijklX");
    let (status, _, body) = send(signed_with(list(), &wrong_secret, now)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, auth_error("InvalidSignatureException", MISMATCH));

    let old = now - TimeDelta::minutes(20);
    let (status, _, body) = send(signed_with(list(), &common::credentials(), old)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "com.amazon.coral.service#InvalidSignatureException");
    let expected = format!("Signature expired: {} is now earlier than", old.format("%Y%m%dT%H%M%SZ"));
    assert!(body["message"].as_str().unwrap().starts_with(&expected), "{body}");

    let (_, _, body) = send(signed_with(list(), &common::credentials(), now + TimeDelta::minutes(20))).await;
    assert!(body["message"].as_str().unwrap().starts_with("Signature not yet current:"), "{body}");

    // A signature replayed with another body, or another action, does not verify.
    let signed = signed_with(
        request("AWSStepFunctions.DescribeExecution", r#"{"executionArn": "a"}"#),
        &common::credentials(),
        now,
    );
    let mut replayed = signed.clone();
    *replayed.body_mut() = br#"{"executionArn": "b"}"#.to_vec();
    let (status, _, body) = send(replayed).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, auth_error("InvalidSignatureException", MISMATCH)));
    let mut retargeted = signed.clone();
    retargeted.headers_mut().insert("x-amz-target", "AWSStepFunctions.StopExecution".parse().unwrap());
    let (status, _, body) = send(retargeted).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, auth_error("InvalidSignatureException", MISMATCH)));
    // ... while the request as signed goes through (and the execution does not exist).
    let (status, _, body) = send(signed).await;
    assert_eq!(
        (status, &body["__type"]),
        (StatusCode::BAD_REQUEST, &json!("com.amazonaws.swf.service.v2.model#InvalidArn")),
        "{body}"
    );

    let mut garbled = list();
    garbled.headers_mut().insert("authorization", "AWS4-HMAC-SHA256 Credential=x".parse().unwrap());
    let (status, _, body) = send(garbled).await;
    assert_eq!(
        (status, &body["__type"]),
        (StatusCode::BAD_REQUEST, &json!("com.amazon.coral.service#IncompleteSignatureException")),
        "{body}"
    );
}

#[tokio::test]
async fn nothing_runs_for_a_refused_request() {
    let state = sfn_server::SfnState::open(Arc::new(sfn_server::MemoryStore::new()), common::config()).await.unwrap();
    let app = sfn_server::router(state.clone(), Verifier::new([common::credentials()]));
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string();
    let create = json!({"name": "m", "definition": def, "roleArn": "arn:aws:iam::1:role/r"}).to_string();
    let stranger = Credentials::new(common::ACCESS_KEY_ID, "not-the-secret");
    let req = signed_with(request("AWSStepFunctions.CreateStateMachine", &create), &stranger, Utc::now());
    let resp = app.clone().oneshot(req.map(Body::from)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(state.call("ListStateMachines", json!({})).await.unwrap(), json!({"stateMachines": []}));
    let req = signed_with(request("AWSStepFunctions.CreateStateMachine", &create), &common::credentials(), Utc::now());
    assert_eq!(app.oneshot(req.map(Body::from)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(state.call("ListStateMachines", json!({})).await.unwrap()["stateMachines"].as_array().unwrap().len(), 1);
}
