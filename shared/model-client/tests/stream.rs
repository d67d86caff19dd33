//! Streaming chat against the scripted server: aggregation, tool-call deltas, tolerated quirks.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ask, server_and_client};
use futures::StreamExt;
use model_client::testing::{Reply, ToolCallIds};
use model_client::{ChatResponse, ChatStream, Delta, FinishReason, ToolCall};
use serde_json::json;

/// All deltas, and the final response (which must be the last item).
async fn drain(mut stream: ChatStream) -> (Vec<Delta>, ChatResponse) {
    let mut deltas = Vec::new();
    while let Some(item) = stream.next().await {
        deltas.push(item.unwrap());
    }
    match deltas.pop() {
        Some(Delta::Done(r)) => (deltas, r),
        other => panic!("the stream did not end with Done: {other:?}"),
    }
}

fn texts(deltas: &[Delta]) -> Vec<&str> {
    deltas
        .iter()
        .filter_map(|d| match d {
            Delta::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn streamed_equals_non_streamed() {
    let (server, client) = server_and_client().await;
    let long = "The quick brown fox jumps over the lazy dog — ünïcödé 漢字 🙂 included.";
    for reply in [Reply::text(long), Reply::echo(), Reply::tool_calls(vec![("get_weather", r#"{"city":"Paris"}"#)])] {
        server.push(reply.clone());
        server.push(reply);
        let whole = client.chat(&ask("stream me")).await.unwrap();
        let (deltas, streamed) = drain(client.chat_stream(&ask("stream me")).await.unwrap()).await;
        assert_eq!(streamed, whole);
        assert_eq!(texts(&deltas).concat(), whole.text);
    }
}

#[tokio::test]
async fn text_arrives_in_many_small_deltas() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("abcdefghij"));
    let (deltas, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    assert_eq!(texts(&deltas), ["a", "bc", "def", "g", "hi", "j"]);
    assert_eq!(r.text, "abcdefghij");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.usage.is_some());
}

#[tokio::test]
async fn stream_flags_sent() {
    let (server, client) = server_and_client().await;
    drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    let body = server.last_body();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn tool_call_deltas_grouped_in_both_id_modes() {
    let calls = vec![("get_weather", r#"{"city":"Paris","unit":"celsius"}"#), ("get_time", r#"{"tz":"Europe/Paris"}"#)];
    let expected = vec![
        ToolCall { id: "call_0".into(), name: "get_weather".into(), arguments: calls[0].1.into() },
        ToolCall { id: "call_1".into(), name: "get_time".into(), arguments: calls[1].1.into() },
    ];
    let (server, client) = server_and_client().await;
    for reply in [
        Reply::tool_calls(calls.clone()),
        Reply::tool_calls(calls.clone()).with_ids(ToolCallIds::EveryChunk),
        Reply::tool_calls(calls.clone()).interleaved(),
        Reply::tool_calls(calls.clone()).with_ids(ToolCallIds::EveryChunk).interleaved(),
    ] {
        server.push(reply.clone());
        let (deltas, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
        assert_eq!(r.tool_calls, expected, "{reply:?}");
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.text, "");
        // Each call's id and name are announced exactly once, even when the server repeats them.
        let announced: Vec<(usize, String, String)> = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::ToolCall { index, id: Some(id), name: Some(name), .. } => {
                    Some((*index, id.clone(), name.clone()))
                }
                Delta::ToolCall { id: Some(_), name: None, .. } | Delta::ToolCall { id: None, name: Some(_), .. } => {
                    panic!("id and name split: {d:?}")
                }
                _ => None,
            })
            .collect();
        assert_eq!(announced, [(0, "call_0".into(), "get_weather".into()), (1, "call_1".into(), "get_time".into())]);
        // The argument pieces are many, and concatenate per index to the arguments.
        for (i, call) in expected.iter().enumerate() {
            let pieces: Vec<&str> = deltas
                .iter()
                .filter_map(|d| match d {
                    Delta::ToolCall { index, arguments, .. } if *index == i && !arguments.is_empty() => {
                        Some(arguments.as_str())
                    }
                    _ => None,
                })
                .collect();
            assert!(pieces.len() > 5);
            assert_eq!(pieces.concat(), call.arguments);
        }
    }
}

#[tokio::test]
async fn missing_usage_chunk_gives_none() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("hello").without_usage());
    let (_, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    assert_eq!(r.usage, None);
    assert_eq!(r.text, "hello");
}

#[tokio::test]
async fn empty_null_and_unknown_finish_reasons_tolerated() {
    let (server, client) = server_and_client().await;
    for (reason, expected) in [
        (Some(""), FinishReason::Unknown),
        (None, FinishReason::Unknown),
        (Some("end_turn"), FinishReason::Other("end_turn".into())),
        (Some("length"), FinishReason::Length),
    ] {
        server.push(Reply::text("ok").with_finish_reason(reason));
        let (_, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
        assert_eq!(r.finish_reason, expected);
        assert_eq!(r.text, "ok");
    }
}

#[tokio::test]
async fn crlf_line_endings_and_keep_alive_comments() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("over CRLF").with_crlf());
    let (_, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    assert_eq!(r.text, "over CRLF");
    assert!(r.usage.is_some());
}

#[tokio::test]
async fn stream_without_done_but_finished_is_accepted() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("no done").without_done());
    let (_, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    assert_eq!(r.text, "no done");
    assert_eq!(r.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn response_helper_drains_to_the_aggregate() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("drained"));
    let r = client.chat_stream(&ask("x")).await.unwrap().response().await.unwrap();
    assert_eq!(r.text, "drained");
}

#[tokio::test]
async fn emissions_logged_per_chunk() {
    let (server, client) = server_and_client().await;
    server.push(Reply::text("abcdef"));
    drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    let emitted = server.emissions();
    let texts: Vec<&str> = emitted.iter().filter_map(|e| e.text.as_deref()).collect();
    assert_eq!(texts, ["a", "bc", "def"]);
    // keep-alive, role, 3 text, finish, usage, [DONE].
    assert_eq!(emitted.len(), 8);
    assert!(emitted.windows(2).all(|w| w[0].at <= w[1].at && w[0].frame + 1 == w[1].frame));
}

#[tokio::test]
async fn server_ignoring_stream_true_still_streams_one_piece() {
    let (server, client) = server_and_client().await;
    server.push(Reply::tool_calls(vec![("f", "{}")]).ignoring_stream());
    let (deltas, r) = drain(client.chat_stream(&ask("x")).await.unwrap()).await;
    assert_eq!(r.tool_calls, [ToolCall { id: "call_0".into(), name: "f".into(), arguments: "{}".into() }]);
    assert_eq!(
        deltas,
        [Delta::ToolCall { index: 0, id: Some("call_0".into()), name: Some("f".into()), arguments: "{}".into() }]
    );
}
