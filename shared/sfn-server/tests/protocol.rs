//! The wire format itself, through the router with `oneshot`: status codes, content type and the
//! exact error document the SDKs parse.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

async fn call(target: &str, body: &str) -> (StatusCode, String, Value) {
    let state = sfn_server::SfnState::open(Arc::new(sfn_server::MemoryStore::new()), common::config()).await.unwrap();
    let req = Request::post("/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = sfn_server::router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn errors_have_aws_shapes() {
    let (status, ct, body) = call("AWSStepFunctions.DescribeExecution", r#"{"executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e"}"#).await;
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
