//! A real third-party client: `tests/boto3_client.py` drives the endpoint with boto3, signing with
//! the endpoint's credentials (and, to see them refused, with others). Skips with
//! a note when `python3 -c "import boto3"` fails (install with `pip install boto3`), unless
//! `WEFT_TEST_STRICT=1`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_the_endpoint() {
    let has_boto3 = Command::new("python3").args(["-c", "import boto3"]).output().is_ok_and(|o| o.status.success());
    if !has_boto3 {
        test_skip::skip("boto3 is not importable (pip install boto3)");
        return;
    }
    let s = common::memory_server().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/boto3_client.py");
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([&url, common::ACCESS_KEY_ID, common::SECRET_ACCESS_KEY])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("ALL OK"), "boto3 client failed:\n{stdout}\n{stderr}");
}
