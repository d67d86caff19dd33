//! `executions::sfn_client` with a custom endpoint (LocalStack's `AWS_ENDPOINT_URL`, or
//! `WEFT_SFN_ENDPOINT`): StartSyncExecution must go to that endpoint, not to `sync-<host>`.

#![allow(clippy::unwrap_used)]

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn start_sync_execution_reaches_a_custom_endpoint() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = socket.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let body = r#"{"__type":"com.amazonaws.swf.service.v2.model#StateMachineDoesNotExist","message":"no"}"#;
        let reply = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).await.unwrap();
        head
    });
    let client = executions::sfn_client(Some(&endpoint), Some("us-east-1")).await;
    let sent = client
        .start_sync_execution()
        .state_machine_arn("arn:aws:states:us-east-1:111111111111:stateMachine:weft-x")
        .send()
        .await;
    let err = sent.expect_err("the fake endpoint refuses");
    let head =
        tokio::time::timeout(std::time::Duration::from_secs(10), server).await.expect("a request arrived").unwrap();
    assert!(head.contains("StartSyncExecution"), "{head}");
    assert!(format!("{err:?}").contains("StateMachineDoesNotExist"), "{err:?}");
}
