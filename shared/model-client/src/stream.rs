//! Streaming chat: SSE chunks into [`Delta`] events and one final [`ChatResponse`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::error::{ModelError, Scrub, from_error_object, transport};
use crate::sse::{SseEvent, SseParser};
use crate::types::{ChatResponse, FinishReason, ToolCall, Usage};
use crate::wire::{WireResponse, fallback_call_id, first_choice};

/// The most tool calls one streamed reply may make (each is buffered until the end).
const MAX_TOOL_CALLS: usize = 256;

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// More assistant text, in order.
    Text(String),
    /// A piece of a tool call: `index` is the call's position in the final
    /// [`ChatResponse::tool_calls`]; `id` and `name` are set on the first piece of each call.
    ToolCall { index: usize, id: Option<String>, name: Option<String>, arguments: String },
    /// The end: everything above, aggregated (the same as [`crate::Client::chat`] would return).
    /// Always the last item of a stream that did not fail.
    Done(ChatResponse),
}

#[derive(Default)]
struct PartialCall {
    /// The server's `index`, if it sent one.
    wire_index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
}

/// Aggregates chunks. Tool-call pieces are grouped by `index`; the first non-empty `id` and
/// `name` win (some servers repeat them in every chunk, OpenAI sends them once), `arguments`
/// are concatenated. A piece without `index` continues the call with its `id`, else the last call.
#[derive(Default)]
pub(crate) struct Aggregator {
    text: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    model: String,
}

impl Aggregator {
    /// Applies one `data:` payload (not `[DONE]`), queueing the deltas it carries.
    pub(crate) fn apply(
        &mut self,
        chunk: WireResponse,
        out: &mut VecDeque<Delta>,
        scrub: &Scrub,
    ) -> Result<(), ModelError> {
        if let Some(err) = &chunk.error
            && chunk.choices.is_empty()
        {
            return Err(from_error_object(200, err, scrub));
        }
        if self.model.is_empty()
            && let Some(m) = chunk.model
        {
            self.model = m;
        }
        // Any chunk may carry usage (OpenAI: a last chunk with empty `choices`; others: the
        // finish chunk). `usage: null` on the other chunks changes nothing.
        if let Some(u) = chunk.usage.as_ref().and_then(|u| u.usage()) {
            self.usage = Some(u);
        }
        let Some(choice) = first_choice(chunk.choices) else { return Ok(()) };
        if let Some(reason) = choice.finish_reason.filter(|r| !r.trim().is_empty()) {
            self.finish_reason = Some(reason);
        }
        let Some(delta) = choice.delta.or(choice.message) else { return Ok(()) };
        let text = delta.text();
        if !text.is_empty() {
            self.text.push_str(&text);
            out.push_back(Delta::Text(text));
        }
        for piece in delta.tool_calls {
            let position = self.position(piece.index, piece.id.as_deref())?;
            let call = &mut self.calls[position];
            let mut new_id = None;
            let mut new_name = None;
            if call.id.is_empty()
                && let Some(id) = piece.id.filter(|s| !s.is_empty())
            {
                call.id = id.clone();
                new_id = Some(id);
            }
            let (name, arguments) = match piece.function {
                Some(f) => {
                    let arguments = f.arguments();
                    (f.name, arguments)
                }
                None => (None, String::new()),
            };
            if call.name.is_empty()
                && let Some(name) = name.filter(|s| !s.is_empty())
            {
                call.name = name.clone();
                new_name = Some(name);
            }
            call.arguments.push_str(&arguments);
            if new_id.is_some() || new_name.is_some() || !arguments.is_empty() {
                out.push_back(Delta::ToolCall { index: position, id: new_id, name: new_name, arguments });
            }
        }
        Ok(())
    }

    /// The position of the call a piece belongs to, creating it if it is new.
    fn position(&mut self, index: Option<u64>, id: Option<&str>) -> Result<usize, ModelError> {
        let found = match index {
            Some(i) => self.calls.iter().position(|c| c.wire_index == Some(i)),
            None => match id.filter(|s| !s.is_empty()) {
                Some(id) => self.calls.iter().position(|c| c.id == id),
                None => self.calls.len().checked_sub(1),
            },
        };
        if let Some(p) = found {
            return Ok(p);
        }
        if self.calls.len() >= MAX_TOOL_CALLS {
            return Err(ModelError::BadResponse(format!("the stream has more than {MAX_TOOL_CALLS} tool calls")));
        }
        self.calls.push(PartialCall { wire_index: index, ..PartialCall::default() });
        Ok(self.calls.len() - 1)
    }

    pub(crate) fn has_finish_reason(&self) -> bool {
        self.finish_reason.is_some()
    }

    pub(crate) fn response(&mut self) -> ChatResponse {
        let calls = std::mem::take(&mut self.calls);
        ChatResponse {
            text: std::mem::take(&mut self.text),
            tool_calls: calls
                .into_iter()
                .enumerate()
                .map(|(i, c)| ToolCall {
                    id: if c.id.is_empty() { fallback_call_id(i) } else { c.id },
                    name: c.name,
                    arguments: c.arguments,
                })
                .collect(),
            finish_reason: FinishReason::parse(self.finish_reason.as_deref()),
            usage: self.usage,
            model: std::mem::take(&mut self.model),
        }
    }
}

struct State<S> {
    body: Pin<Box<S>>,
    parser: SseParser,
    aggregator: Aggregator,
    pending: VecDeque<Delta>,
    events: Vec<SseEvent>,
    finished: bool,
    idle_timeout: Option<Duration>,
    read: usize,
    max_bytes: usize,
    scrub: Scrub,
}

impl<S, C> State<S>
where
    S: Stream<Item = Result<C, reqwest::Error>>,
    C: AsRef<[u8]>,
{
    async fn next_delta(&mut self) -> Option<Result<Delta, ModelError>> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(Ok(d));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.read_more().await {
                self.finished = true;
                self.pending.clear();
                return Some(Err(e));
            }
        }
    }

    async fn read_more(&mut self) -> Result<(), ModelError> {
        let next = match self.idle_timeout {
            Some(t) => tokio::time::timeout(t, self.body.next()).await.map_err(|_| ModelError::Timeout)?,
            None => self.body.next().await,
        };
        match next {
            Some(Ok(bytes)) => {
                let bytes = bytes.as_ref();
                self.read += bytes.len();
                if self.read > self.max_bytes {
                    return Err(ModelError::BadResponse(format!("the stream is longer than {} bytes", self.max_bytes)));
                }
                self.parser.feed(bytes, &mut self.events).map_err(|e| ModelError::BadResponse(e.to_string()))?;
            }
            Some(Err(e)) => return Err(transport(e, &self.scrub)),
            None => {
                self.parser.finish(&mut self.events).map_err(|e| ModelError::BadResponse(e.to_string()))?;
                self.handle_events()?;
                if self.finished {
                    return Ok(());
                }
                // Some servers end the body without `[DONE]`; a reply that said why it stopped is
                // complete, one that did not was cut off.
                if !self.aggregator.has_finish_reason() {
                    return Err(ModelError::BadResponse(
                        "the stream ended before `[DONE]` and without a finish_reason (cut off)".into(),
                    ));
                }
                self.done();
                return Ok(());
            }
        }
        self.handle_events()
    }

    fn handle_events(&mut self) -> Result<(), ModelError> {
        let events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for event in &events {
            let data = event.data.trim();
            if data == "[DONE]" {
                self.done();
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk = match serde_json::from_str::<WireResponse>(data) {
                Ok(c) => c,
                Err(e) => {
                    result = Err(ModelError::BadResponse(format!("a stream chunk is not the expected JSON: {e}")));
                    break;
                }
            };
            if let Err(e) = self.aggregator.apply(chunk, &mut self.pending, &self.scrub) {
                result = Err(e);
                break;
            }
        }
        self.events = events;
        self.events.clear();
        result
    }

    fn done(&mut self) {
        self.pending.push_back(Delta::Done(self.aggregator.response()));
        self.finished = true;
    }
}

/// A streamed chat reply: a [`Stream`] of [`Delta`]s ending with [`Delta::Done`], or with an error.
///
/// Dropping it closes the connection (the provider stops generating, and billing).
pub struct ChatStream {
    inner: BoxStream<'static, Result<Delta, ModelError>>,
}

impl ChatStream {
    pub(crate) fn from_body<S, C>(body: S, idle_timeout: Option<Duration>, max_bytes: usize, scrub: Scrub) -> Self
    where
        S: Stream<Item = Result<C, reqwest::Error>> + Send + 'static,
        C: AsRef<[u8]> + Send + 'static,
    {
        let state = State {
            body: Box::pin(body),
            parser: SseParser::default(),
            aggregator: Aggregator::default(),
            pending: VecDeque::new(),
            events: Vec::new(),
            finished: false,
            idle_timeout,
            read: 0,
            max_bytes,
            scrub,
        };
        let inner = futures::stream::unfold(state, |mut s| async move {
            let item = s.next_delta().await?;
            Some((item, s))
        })
        .boxed();
        Self { inner }
    }

    /// A server that ignored `stream: true` and answered with one JSON body.
    pub(crate) fn from_response(response: ChatResponse) -> Self {
        let mut items = Vec::new();
        if !response.text.is_empty() {
            items.push(Ok(Delta::Text(response.text.clone())));
        }
        for (index, c) in response.tool_calls.iter().enumerate() {
            items.push(Ok(Delta::ToolCall {
                index,
                id: Some(c.id.clone()),
                name: Some(c.name.clone()),
                arguments: c.arguments.clone(),
            }));
        }
        items.push(Ok(Delta::Done(response)));
        Self { inner: futures::stream::iter(items).boxed() }
    }

    /// Drains the stream and returns the final response.
    pub async fn response(mut self) -> Result<ChatResponse, ModelError> {
        while let Some(item) = self.inner.next().await {
            if let Delta::Done(r) = item? {
                return Ok(r);
            }
        }
        Err(ModelError::BadResponse("the stream ended without a response".into()))
    }
}

impl Stream for ChatStream {
    type Item = Result<Delta, ModelError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(chunks: &[&str]) -> Result<(Vec<Delta>, ChatResponse), ModelError> {
        let mut agg = Aggregator::default();
        let mut out = VecDeque::new();
        for c in chunks {
            agg.apply(serde_json::from_str(c).unwrap(), &mut out, &Scrub::default())?;
        }
        Ok((out.into_iter().collect(), agg.response()))
    }

    #[test]
    fn tool_calls_grouped_by_index_interleaved() {
        let (_, r) = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"["}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":":1}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"]"}}]},"finish_reason":"tool_calls"}]}"#,
        ])
        .unwrap();
        assert_eq!(
            r.tool_calls,
            [
                ToolCall { id: "a".into(), name: "f".into(), arguments: r#"{"x":1}"#.into() },
                ToolCall { id: "b".into(), name: "g".into(), arguments: "[]".into() }
            ]
        );
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    }

    #[test]
    fn tool_calls_without_index_follow_id_or_last() {
        let (deltas, r) = run(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"g"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"arguments":"[]"}}]}}]}"#,
        ])
        .unwrap();
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, "{}");
        assert_eq!(r.tool_calls[1].arguments, "[]");
        assert_eq!(
            deltas[0],
            Delta::ToolCall { index: 0, id: Some("a".into()), name: Some("f".into()), arguments: "{".into() }
        );
    }

    #[test]
    fn error_object_mid_stream() {
        let err = run(&[
            r#"{"choices":[{"delta":{"content":"a"}}]}"#,
            r#"{"error":{"message":"upstream overloaded","code":"server_error"}}"#,
        ])
        .unwrap_err();
        assert_eq!(err.name(), "Llm.Provider");
    }

    #[test]
    fn too_many_tool_calls_refused() {
        let chunks: Vec<String> = (0..=MAX_TOOL_CALLS)
            .map(|i| format!(r#"{{"choices":[{{"delta":{{"tool_calls":[{{"index":{i},"id":"c{i}"}}]}}}}]}}"#))
            .collect();
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        assert_eq!(run(&refs).unwrap_err().name(), "Llm.BadResponse");
    }
}
