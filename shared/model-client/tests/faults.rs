//! Every scripted fault maps to the right `ModelError` and name; the API key appears in no error.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{KEY, ask, client_for, server_and_client};
use futures::StreamExt;
use model_client::testing::{Fault, Reply, ScriptedServer};
use model_client::{Client, ModelError};
use serde_json::json;

/// The error of a non-streamed call and of a streamed one (either when opening or while reading).
async fn both_errors(server: &ScriptedServer, client: &Client, reply: Reply) -> (ModelError, ModelError) {
    server.push(reply.clone());
    let whole = client.chat(&ask("x")).await.unwrap_err();
    server.push(reply);
    let streamed = match client.chat_stream(&ask("x")).await {
        Err(e) => e,
        Ok(stream) => stream.response().await.unwrap_err(),
    };
    (whole, streamed)
}

fn assert_no_key(e: &ModelError) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(KEY), "{shown}");
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let (server, client) = server_and_client().await;
    server.push(Reply::rate_limited(Some("3")));
    let e = client.chat(&ask("x")).await.unwrap_err();
    assert_eq!(e.name(), "Llm.RateLimited");
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    // The script advances: the caller's retry gets the next reply.
    let r = client.chat(&ask("again")).await.unwrap();
    assert_eq!(r.text, "You said: again");
    assert_eq!(server.served(), 2);
    assert_eq!(server.pending(), 0);
}

#[tokio::test]
async fn rate_limited_with_http_date_and_without_header() {
    let (server, client) = server_and_client().await;
    let in_a_minute = chrono::Utc::now() + chrono::Duration::seconds(60);
    server.push(Reply::rate_limited(Some(&in_a_minute.format("%a, %d %b %Y %H:%M:%S GMT").to_string())));
    server.push(Reply::rate_limited(None));
    let after = client.chat(&ask("x")).await.unwrap_err().retry_after().unwrap();
    // Generous bounds: the date has one-second resolution and the machine may be slow.
    assert!(after > Duration::from_secs(30) && after <= Duration::from_secs(61), "{after:?}");
    let e = client.chat(&ask("x")).await.unwrap_err();
    assert_eq!(e.name(), "Llm.RateLimited");
    assert_eq!(e.retry_after(), None);
}

#[tokio::test]
async fn fault_names_streamed_and_not() {
    let (server, client) = server_and_client().await;
    let cases = [
        (Reply::fault(Fault::ServerError), "Llm.Provider", true),
        (Reply::fault(Fault::Unauthorized), "Llm.Auth", false),
        (Reply::fault(Fault::ContextTooLong), "Llm.ContextTooLong", false),
        (Reply::fault(Fault::MalformedJson), "Llm.BadResponse", false),
        (Reply::rate_limited(Some("1")), "Llm.RateLimited", true),
        (
            Reply::fault(Fault::Status { status: 404, body: json!({"error": {"message": "no such model"}}) }),
            "Llm.BadRequest",
            false,
        ),
        (Reply::fault(Fault::Status { status: 403, body: json!({"error": "forbidden"}) }), "Llm.Auth", false),
        (Reply::fault(Fault::Status { status: 503, body: json!("overloaded") }), "Llm.Provider", true),
        (
            Reply::fault(Fault::Status {
                status: 400,
                body: json!({"error": {"message": "the request exceeds the available context size", "type": "exceed_context_size_error"}}),
            }),
            "Llm.ContextTooLong",
            false,
        ),
    ];
    for (reply, name, retryable) in cases {
        let (whole, streamed) = both_errors(&server, &client, reply.clone()).await;
        for e in [&whole, &streamed] {
            assert_eq!(e.name(), name, "{reply:?}: {e}");
            assert_eq!(e.is_retryable(), retryable, "{e}");
            assert_no_key(e);
        }
    }
}

#[tokio::test]
async fn unauthorized_message_quoting_the_key_is_scrubbed() {
    let (server, client) = server_and_client().await;
    server.push(Reply::fault(Fault::Unauthorized));
    match client.chat(&ask("x")).await.unwrap_err() {
        ModelError::Auth { status, message } => {
            assert_eq!(status, 401);
            assert_eq!(message, "Incorrect API key provided: ***.");
        }
        other => panic!("{other:?}"),
    }
    // The server really received (and quoted) the key.
    assert_eq!(server.requests()[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test]
async fn context_too_long_keeps_the_message() {
    let (server, client) = server_and_client().await;
    server.push(Reply::fault(Fault::ContextTooLong));
    match client.chat(&ask("x")).await.unwrap_err() {
        ModelError::ContextTooLong(m) => assert!(m.contains("maximum context length"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slow_headers_time_out() {
    let server = ScriptedServer::start().await;
    let client = client_for(&server, Some(Duration::from_millis(200)));
    let slow = Reply::text("late").with_delay(Duration::from_secs(5));
    let (whole, streamed) = both_errors(&server, &client, slow).await;
    assert!(matches!(whole, ModelError::Timeout), "{whole:?}");
    assert!(matches!(streamed, ModelError::Timeout), "{streamed:?}");
    assert_eq!(whole.name(), "Llm.Timeout");
    assert!(whole.is_retryable());
}

#[tokio::test]
async fn silence_between_chunks_times_out_but_steady_chunks_do_not() {
    let server = ScriptedServer::start().await;
    let client = client_for(&server, Some(Duration::from_millis(300)));
    server.push(Reply::text("ab").with_chunk_delay(Duration::from_secs(5)));
    let e = client.chat_stream(&ask("x")).await.unwrap().response().await.unwrap_err();
    assert!(matches!(e, ModelError::Timeout), "{e:?}");
    // Many short gaps: the whole stream takes longer than the timeout, no gap does.
    let client = client_for(&server, Some(Duration::from_secs(10)));
    server.push(Reply::text("abcdefghijkl").with_chunk_delay(Duration::from_millis(20)));
    let r = client.chat_stream(&ask("x")).await.unwrap().response().await.unwrap();
    assert_eq!(r.text, "abcdefghijkl");
}

#[tokio::test]
async fn stream_cut_before_done_is_an_error_after_the_deltas() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("abcdefghij").cut_after(4));
    let mut stream = client.chat_stream(&ask("x")).await.unwrap();
    let mut text = String::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(model_client::Delta::Text(t)) => text.push_str(&t),
            Ok(model_client::Delta::Done(r)) => panic!("a cut stream completed: {r:?}"),
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    // Frames: keep-alive, role, "a", "bc", then the cut.
    assert_eq!(text, "abc");
    let e = error.unwrap();
    assert_eq!(e.name(), "Llm.Connect", "{e:?}");
    assert!(e.is_retryable());
    assert!(std::error::Error::source(&e).is_some());
}

#[tokio::test]
async fn connection_refused_is_connect() {
    // A port that was just free: bind, read the port, drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let provider = model_client::Provider::new(format!("http://127.0.0.1:{port}/v1")).with_api_key(KEY);
    let client = Client::new(provider, reqwest::Client::new()).unwrap();
    let e = client.chat(&ask("x")).await.unwrap_err();
    assert_eq!(e.name(), "Llm.Connect", "{e:?}");
    assert_no_key(&e);
    assert!(!format!("{e}").contains("127.0.0.1"), "the URL is left out: {e}");
}

#[tokio::test]
async fn oversized_response_refused() {
    let server = ScriptedServer::start().await;
    let provider = model_client::Provider::new(server.base_url()).with_max_response_bytes(2048);
    let client = Client::new(provider, reqwest::Client::new()).unwrap();
    let big = "x".repeat(4096);
    server.push(Reply::text(big.clone()));
    assert_eq!(client.chat(&ask("x")).await.unwrap_err().name(), "Llm.BadResponse");
    server.push(Reply::text(big));
    let e = client.chat_stream(&ask("x")).await.unwrap().response().await.unwrap_err();
    assert_eq!(e.name(), "Llm.BadResponse");
}
