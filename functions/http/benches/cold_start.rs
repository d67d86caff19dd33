//! Cold start and size of the `http` function's `bootstrap` (release build), calling a tiny
//! HTTP server on 127.0.0.1: `cargo bench -p fn-http --bench cold_start`.

use std::io::{Read, Write};

fn main() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut socket) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf);
            let body = r#"{"ok":true}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes());
        }
    });
    let payload =
        serde_json::json!({"node": {"id": "fetch", "type": "http"}, "config": {"url": format!("http://{addr}/")}});
    let expected = serde_json::json!({
        "status": 200,
        "headers": {"content-type": "application/json", "content-length": "11", "connection": "close"},
        "body": {"ok": true},
    });
    lambda_glue::runtime_api::bench_main_with_env(
        env!("CARGO_BIN_EXE_fn-http"),
        payload,
        expected,
        // The secret store is connected lazily: this payload has no secret, so it is never used.
        &[
            ("WEFT_HTTP_ALLOW", "127.0.0.1"),
            ("WEFT_DATABASE_URL", "postgres://weft@127.0.0.1:9/weft"),
            ("WEFT_SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ],
    );
}
