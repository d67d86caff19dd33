//! What SigV4 verification costs per request: `Verifier::verify` of a typical StartExecution
//! request as aws-sdk-sfn sends it (seven headers, a 300-byte body), and of one with a 64 KiB
//! input (the body is hashed).
//!
//!   cargo bench -p sfn-server --bench sigv4

use axum::http::Request;
use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sfn_server::{Credentials, Verifier, sigv4};

fn request(body: String, credentials: &Credentials, at: DateTime<Utc>) -> Request<Vec<u8>> {
    let mut req = Request::post("http://127.0.0.1:8081/")
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "AWSStepFunctions.StartExecution")
        .header("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0")
        .header("x-amz-user-agent", "aws-sdk-rust/1.3.9 api/sfn/1.125.0 os/linux lang/rust/1.95.0")
        .header("amz-sdk-invocation-id", "6e1f2c4a-52b4-4d2e-9a7f-0c0f5a0c3b11")
        .header("amz-sdk-request", "attempt=1; max=3")
        .body(body.into_bytes())
        .unwrap_or_default();
    sigv4::sign(&mut req, credentials, "us-east-1", at);
    req
}

fn bench(c: &mut Criterion) {
    let credentials = Credentials::generate();
    let verifier = Verifier::new([credentials.clone()]);
    let at = Utc::now();
    let typical = format!(
        r#"{{"stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:weft-{id}:live","name":"{id}","input":"{{\"input\":{{\"order\":42,\"lines\":[{{\"qty\":1,\"unit_price\":40}}]}},\"nodes\":{{}}}}"}}"#,
        id = "c630ae49-479d-4815-9063-6a3834976c72"
    );
    let large = format!(
        r#"{{"stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:m","input":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    for (name, body) in
        [("verify StartExecution (300 B body)", typical), ("verify StartExecution (64 KiB body)", large)]
    {
        let req = request(body, &credentials, at);
        assert!(verifier.verify(req.method(), req.uri(), req.headers(), req.body(), at).is_ok(), "{name}");
        c.bench_function(name, |b| {
            b.iter(|| verifier.verify(req.method(), req.uri(), req.headers(), req.body(), at).is_ok())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
