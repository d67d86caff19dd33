//! The http function against real HTTP servers on 127.0.0.1.

// Tests fail loudly on unexpected errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use fn_http::{HttpFunction, Settings};
use node_contract::{NodeError, NodeEvent};
use serde_json::{Value, json};

async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let headers: serde_json::Map<String, Value> =
        parts.headers.iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default()))).collect();
    axum::Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

/// 403 with the echo of the request as its body.
async fn reject(request: Request) -> Response {
    let mut response = echo(request).await;
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
    (code, axum::Json(json!({"code": code.as_u16()}))).into_response()
}

async fn big(Path(n): Path<usize>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "x".repeat(n)).into_response()
}

/// Streamed in chunks without Content-Length, so the cap must hold while reading.
async fn big_chunked(Path(n): Path<usize>) -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..n.div_ceil(8192)).map(|i| Ok(Bytes::from(vec![b'y'; 8192.min(n - i * 8192)]))).collect();
    Body::from_stream(futures::stream::iter(chunks)).into_response()
}

async fn slow(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "late"
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

/// Redirects `n` more times, then lands on /echo.
async fn hops(Path(n): Path<u32>) -> Response {
    if n == 0 {
        Redirect::temporary("/echo").into_response()
    } else {
        Redirect::temporary(&format!("/hops/{}", n - 1)).into_response()
    }
}

async fn cookies() -> Response {
    let mut headers = axum::http::HeaderMap::new();
    headers.append(header::SET_COOKIE, "a=1".parse().expect("valid"));
    headers.append(header::SET_COOKIE, "b=2".parse().expect("valid"));
    (headers, "ok").into_response()
}

async fn start_server() -> SocketAddr {
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/reject/{*rest}", any(reject))
        .route("/status/{code}", any(status))
        .route("/big/{n}", get(big))
        .route("/chunked/{n}", get(big_chunked))
        .route("/slow/{ms}", get(slow))
        .route("/hops/{n}", any(hops))
        .route("/redirect", any(|Query(to): Query<To>| async move { Redirect::temporary(&to.to) }))
        .route("/see-other", any(|| async { Redirect::to("/echo") }))
        .route("/bad-json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{not json") }))
        .route("/json", get(|| async { axum::Json(json!({"ok": true, "n": [1, 2]})) }))
        .route("/cookies", get(cookies));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn allowing_loopback() -> HttpFunction {
    HttpFunction::new(Settings::allowing(&["127.0.0.1"]).expect("valid allow-list")).expect("client")
}

fn event(config: Value) -> NodeEvent {
    NodeEvent::from_value(json!({"node": {"id": "fetch", "type": "http"}, "config": config})).expect("valid event")
}

async fn call(f: &HttpFunction, config: Value) -> Result<Value, NodeError> {
    f.run(event(config)).await
}

#[tokio::test]
async fn get_with_query_and_headers_returns_status_headers_and_json_body() {
    let addr = start_server().await;
    let out = call(
        &allowing_loopback(),
        json!({"url": format!("http://{addr}/echo"), "query": {"q": "a b", "n": 3, "tag": ["x", "y"], "skip": null},
               "headers": {"X-Trace": "t1", "X-Num": 7}}),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["headers"]["content-type"], "application/json");
    assert_eq!(out["body"]["method"], "GET");
    assert_eq!(out["body"]["query"], "q=a+b&n=3&tag=x&tag=y");
    assert_eq!(out["body"]["headers"]["x-trace"], "t1");
    assert_eq!(out["body"]["headers"]["x-num"], "7");
}

#[tokio::test]
async fn json_and_text_bodies_are_sent_with_their_content_type() {
    let addr = start_server().await;
    let f = allowing_loopback();
    let out =
        call(&f, json!({"method": "post", "url": format!("http://{addr}/echo"), "body": {"a": [1, 2]}})).await.unwrap();
    assert_eq!(out["body"]["method"], "POST");
    assert_eq!(out["body"]["headers"]["content-type"], "application/json");
    assert_eq!(serde_json::from_str::<Value>(out["body"]["body"].as_str().unwrap()).unwrap(), json!({"a": [1, 2]}));
    let out =
        call(&f, json!({"method": "PUT", "url": format!("http://{addr}/echo"), "body": "plain words"})).await.unwrap();
    assert_eq!(out["body"]["headers"]["content-type"], "text/plain; charset=utf-8");
    assert_eq!(out["body"]["body"], "plain words");
    let out = call(
        &f,
        json!({"method": "POST", "url": format!("http://{addr}/echo"), "body": "a=1", "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    )
    .await
    .unwrap();
    assert_eq!(out["body"]["headers"]["content-type"], "application/x-www-form-urlencoded");
}

#[tokio::test]
async fn status_codes_fail_by_class_unless_fail_on_status_is_false() {
    let addr = start_server().await;
    let f = allowing_loopback();
    let err = call(&f, json!({"url": format!("http://{addr}/status/404")})).await.unwrap_err();
    assert_eq!(err.name, "Http.Status4xx");
    assert!(err.message.contains("404"), "{}", err.message);
    let err = call(&f, json!({"url": format!("http://{addr}/status/503")})).await.unwrap_err();
    assert_eq!(err.name, "Http.Status5xx");
    let out = call(&f, json!({"url": format!("http://{addr}/status/500"), "fail_on_status": false})).await.unwrap();
    assert_eq!(out["status"], 500);
    assert_eq!(out["body"], json!({"code": 500}));
    let out = call(&f, json!({"url": format!("http://{addr}/status/204")})).await.unwrap();
    assert_eq!(out["status"], 204);
}

#[tokio::test]
async fn slow_server_times_out() {
    let addr = start_server().await;
    let started = Instant::now();
    let err = call(&allowing_loopback(), json!({"url": format!("http://{addr}/slow/3000"), "timeout_seconds": 0.3}))
        .await
        .unwrap_err();
    assert_eq!(err.name, "Http.Timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refused_connection_is_http_connect() {
    // Bind then drop a listener so the port is very likely closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = call(&allowing_loopback(), json!({"url": format!("http://127.0.0.1:{port}/")})).await.unwrap_err();
    assert_eq!(err.name, "Http.Connect", "{err}");
}

#[tokio::test]
async fn large_bodies_are_read_up_to_the_cap() {
    let addr = start_server().await;
    let f = allowing_loopback();
    let out = call(&f, json!({"url": format!("http://{addr}/big/2000000")})).await.unwrap();
    assert_eq!(out["body"].as_str().unwrap().len(), 2_000_000);
    let err = call(&f, json!({"url": format!("http://{addr}/big/2000000"), "max_response_bytes": 1000000}))
        .await
        .unwrap_err();
    assert_eq!(err.name, "Http.BodyTooLarge");
    let out =
        call(&f, json!({"url": format!("http://{addr}/chunked/100000"), "max_response_bytes": 100000})).await.unwrap();
    assert_eq!(out["body"].as_str().unwrap().len(), 100_000);
    let err = call(&f, json!({"url": format!("http://{addr}/chunked/100001"), "max_response_bytes": 100000}))
        .await
        .unwrap_err();
    assert_eq!(err.name, "Http.BodyTooLarge");
    // The cap can only be lowered by a node, never raised past the function's ceiling.
    let err =
        call(&f, json!({"url": format!("http://{addr}/big/10"), "max_response_bytes": 1u64 << 40})).await.unwrap_err();
    assert_eq!(err.name, "Config.Invalid");
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let addr = start_server().await;
    let f = allowing_loopback();
    let out = call(&f, json!({"url": format!("http://{addr}/hops/3")})).await.unwrap();
    assert_eq!((out["status"].clone(), out["body"]["path"].clone()), (json!(200), json!("/echo")));
    let err = call(&f, json!({"url": format!("http://{addr}/hops/3"), "max_redirects": 2})).await.unwrap_err();
    assert_eq!(err.name, "Http.TooManyRedirects");
    let out = call(&f, json!({"url": format!("http://{addr}/hops/0"), "follow_redirects": false})).await.unwrap();
    assert_eq!(out["status"], 307);
    assert_eq!(out["headers"]["location"], "/echo");
    // 307 keeps the method and body; 303 turns a POST into a GET without body.
    let out =
        call(&f, json!({"method": "POST", "url": format!("http://{addr}/hops/0"), "body": "keep"})).await.unwrap();
    assert_eq!((out["body"]["method"].clone(), out["body"]["body"].clone()), (json!("POST"), json!("keep")));
    let out =
        call(&f, json!({"method": "POST", "url": format!("http://{addr}/see-other"), "body": "drop"})).await.unwrap();
    assert_eq!((out["body"]["method"].clone(), out["body"]["body"].clone()), (json!("GET"), json!("")));
}

#[tokio::test]
async fn bad_json_is_text_in_auto_mode_and_an_error_in_json_mode() {
    let addr = start_server().await;
    let f = allowing_loopback();
    let out = call(&f, json!({"url": format!("http://{addr}/bad-json")})).await.unwrap();
    assert_eq!(out["body"], "{not json");
    let err = call(&f, json!({"url": format!("http://{addr}/bad-json"), "response_format": "json"})).await.unwrap_err();
    assert_eq!(err.name, "Http.InvalidResponse");
    let out = call(&f, json!({"url": format!("http://{addr}/json"), "response_format": "text"})).await.unwrap();
    assert_eq!(out["body"], r#"{"ok":true,"n":[1,2]}"#);
    let out = call(&f, json!({"url": format!("http://{addr}/json")})).await.unwrap();
    assert_eq!(out["body"], json!({"ok": true, "n": [1, 2]}));
}

#[tokio::test]
async fn repeated_set_cookie_headers_become_an_array() {
    let addr = start_server().await;
    let out = call(&allowing_loopback(), json!({"url": format!("http://{addr}/cookies")})).await.unwrap();
    assert_eq!(out["headers"]["set-cookie"], json!(["a=1", "b=2"]));
}

#[tokio::test]
async fn ssrf_guard_refuses_internal_addresses_by_default() {
    let addr = start_server().await;
    let f = HttpFunction::new(Settings::default()).expect("client");
    for url in [
        format!("http://127.0.0.1:{}/echo", addr.port()),
        format!("http://localhost:{}/echo", addr.port()),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://0.0.0.0/".to_owned(),
    ] {
        let err = call(&f, json!({"url": url})).await.unwrap_err();
        assert_eq!(err.name, "Http.ForbiddenAddress", "{url}: {err}");
    }
}

#[tokio::test]
async fn allow_list_is_exact_and_name_resolution_is_checked() {
    let addr = start_server().await;
    let f = allowing_loopback();
    // `localhost` resolves to 127.0.0.1 (allowed); ::1, if it resolves too, is dropped.
    let out = call(&f, json!({"url": format!("http://localhost:{}/echo", addr.port())})).await.unwrap();
    assert_eq!(out["status"], 200);
    let err = call(&f, json!({"url": format!("http://127.0.0.2:{}/echo", addr.port())})).await.unwrap_err();
    assert_eq!(err.name, "Http.ForbiddenAddress");
}

#[tokio::test]
async fn redirects_to_forbidden_addresses_are_refused() {
    let addr = start_server().await;
    let f = allowing_loopback();
    for target in ["http://169.254.169.254/latest/meta-data/iam/", "http://10.0.0.1/admin", "http://[fd00:ec2::254]/"] {
        let url = format!("http://{addr}/redirect?to={}", urlencode(target));
        let err = call(&f, json!({"url": url})).await.unwrap_err();
        assert_eq!(err.name, "Http.ForbiddenAddress", "{target}: {err}");
    }
    // Redirects to other schemes are refused too.
    let err =
        call(&f, json!({"url": format!("http://{addr}/redirect?to=file%3A%2F%2F%2Fetc%2Fpasswd")})).await.unwrap_err();
    assert_eq!(err.name, "Http.Connect", "{err}");
}

#[tokio::test]
async fn credentials_do_not_follow_cross_origin_redirects() {
    let a = start_server().await;
    let b = start_server().await;
    let f = allowing_loopback();
    let url = format!("http://{a}/redirect?to={}", urlencode(&format!("http://{b}/echo")));
    let out =
        call(&f, json!({"url": url, "headers": {"Authorization": "Bearer s3cret", "X-Keep": "1"}})).await.unwrap();
    assert_eq!(out["body"]["headers"].get("authorization"), None);
    assert_eq!(out["body"]["headers"]["x-keep"], "1");
}

fn with_secrets(text: &str) -> HttpFunction {
    allowing_loopback().with_secrets(std::sync::Arc::new(tenant_secrets::StaticSecrets::parse(text).unwrap()))
}

fn secret_event(config: Value) -> NodeEvent {
    NodeEvent::from_value(json!({"node": {"id": "fetch", "type": "http"},
                                 "secrets": node_contract::secret_refs(&config), "config": config,
                                 "execution": {"id": "arn:aws:states:us-east-1:1:execution:m:e"}}))
    .expect("valid event")
}

#[tokio::test]
async fn secrets_are_resolved_at_run_time_and_scrubbed_from_the_output() {
    let addr = start_server().await;
    let f = with_secrets("TOKEN=t0k-0123456789\n");
    let out = f
        .run(secret_event(
            json!({"url": format!("http://{addr}/echo"), "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"}}),
        ))
        .await
        .unwrap();
    // The server received the value; the function's output (what execution state keeps) has `***`.
    assert_eq!(out["body"]["headers"]["authorization"], "Bearer ***");
    assert!(!out.to_string().contains("t0k-0123456789"), "{out}");
    let err = f
        .run(secret_event(json!({"url": format!("http://{addr}/echo"), "headers": {"X": "{{ secrets.MISSING }}"}})))
        .await
        .unwrap_err();
    assert_eq!(err.name, "Secret.NotFound");
    assert!(err.message.contains("MISSING"), "{err}");
}

#[tokio::test]
async fn secret_values_never_appear_in_errors() {
    let addr = start_server().await;
    let secret = "v4lue-with/odd chars=~\"";
    let f = with_secrets(&format!("S='{secret}'\nM=NOT A METHOD\n"));
    // Every field that takes a secret, on requests that fail in each way the function fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cases = [
        json!({"url": format!("http://{closed}/x/{{{{ secrets.S }}}}?q={{{{ secrets.S }}}}")}),
        json!({"url": format!("http://{closed}/"), "query": {"k": "{{ secrets.S }}"}}),
        json!({"url": format!("http://{addr}/status/401"), "query": {"k": "{{ secrets.S }}"}, "body": "{{ secrets.S }}"}),
        // A 4xx whose body quotes the request (path, query, headers, body) back.
        json!({"url": format!("http://{addr}/reject/{{{{ secrets.S }}}}"), "query": {"k": "{{ secrets.S }}"},
               "headers": {"Authorization": "Bearer {{ secrets.S }}"}, "body": {"token": "{{ secrets.S }}"}}),
        json!({"url": format!("http://{addr}/status/500"), "body": {"nested": ["{{ secrets.S }}"]}}),
        json!({"url": "not a url {{ secrets.S }}"}),
        json!({"url": format!("http://{addr}/echo"), "method": "{{ secrets.M }}"}),
        json!({"url": format!("http://{addr}/echo"), "headers": {"X": "{{ secrets.S }}\n"}}),
        json!({"url": format!("http://{addr}/bad-json"), "response_format": "json", "headers": {"X": "{{ secrets.S }}"}}),
        json!({"url": format!("http://{addr}/redirect?to=ftp://h/{{{{ secrets.S }}}}")}),
        json!({"url": format!("http://10.0.0.1/{{{{ secrets.S }}}}")}),
    ];
    let mut masked = 0;
    for config in cases {
        let err = f.run(secret_event(config.clone())).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        for form in [secret, "v4lue-with", "odd%20chars", "odd+chars"] {
            assert!(!shown.contains(form), "{config}: `{form}` in {shown}");
        }
        masked += usize::from(err.message.contains("***"));
    }
    // Most of these messages quote the URL or the body: there the value reads `***`.
    assert!(masked >= 7, "only {masked} messages were masked");
}

#[tokio::test]
async fn the_environment_is_not_a_secret_store() {
    // `WEFT_SECRET_<NAME>` used to be read from the environment; now nothing is. (The variable is
    // set for a real process in the Lambda and `weft serve` tests; here no resolver is given.)
    let addr = start_server().await;
    let err = allowing_loopback()
        .run(secret_event(json!({"url": format!("http://{addr}/echo"), "headers": {"A": "{{ secrets.TOKEN }}"}})))
        .await
        .unwrap_err();
    assert_eq!(err.name, "Secret.NotFound");
}

#[tokio::test]
async fn bad_config_is_config_invalid() {
    let f = allowing_loopback();
    for config in [
        json!({}),
        json!({"url": "not a url"}),
        json!({"url": "ftp://example.com/"}),
        json!({"url": "http://x/", "method": "NOT A METHOD"}),
        json!({"url": "http://x/", "headers": {"bad header": "v"}}),
        json!({"url": "http://x/", "timeout_seconds": 0}),
        json!({"url": "http://x/", "response_format": "xml"}),
        json!({"url": "http://x/", "query": [1]}),
    ] {
        let err = call(&f, config.clone()).await.unwrap_err();
        assert_eq!(err.name, "Config.Invalid", "{config}: {err}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
