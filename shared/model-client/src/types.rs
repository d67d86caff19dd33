//! The chat request and response types, and how the request is written on the wire.

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of the conversation.
///
/// On the wire `content` is always a string, `""` when empty: some servers reject an assistant
/// message with `content: null` (llama.cpp among them).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The calls an assistant message made (role `assistant` only).
    pub tool_calls: Vec<ToolCall>,
    /// The call a `tool` message answers (role `tool` only).
    pub tool_call_id: Option<String>,
}

impl Message {
    fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    /// The assistant turn that asked for `calls` (send it back before the tool results).
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, ..Self::new(Role::Assistant, content) }
    }
    /// The result of the tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(tool_call_id.into()), ..Self::new(Role::Tool, content) }
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("role", &self.role)?;
        m.serialize_entry("content", &self.content)?;
        if !self.tool_calls.is_empty() {
            let calls: Vec<WireCall<'_>> = self.tool_calls.iter().map(WireCall).collect();
            m.serialize_entry("tool_calls", &calls)?;
        }
        if let Some(id) = &self.tool_call_id {
            m.serialize_entry("tool_call_id", id)?;
        }
        m.end()
    }
}

/// Messages also read from JSON (a node's config), leniently: `content` may be `null` or
/// missing (`""`), `tool_calls` in the wire shape (`{id, type, function: {name, arguments}}`) or
/// flat (`{id, name, arguments}`), arguments as a string or any JSON value.
impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct In {
            role: Role,
            #[serde(default)]
            content: Option<Value>,
            #[serde(default)]
            tool_calls: Option<Vec<Value>>,
            #[serde(default)]
            tool_call_id: Option<String>,
        }
        let m = In::deserialize(d)?;
        let content = match m.content {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
        };
        let text = |v: Option<&Value>| match v {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let tool_calls = m
            .tool_calls
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let f = c.get("function").unwrap_or(c);
                ToolCall { id: text(c.get("id")), name: text(f.get("name")), arguments: text(f.get("arguments")) }
            })
            .collect();
        Ok(Self { role: m.role, content, tool_calls, tool_call_id: m.tool_call_id })
    }
}

/// A function call the model asked for. `arguments` is the JSON text exactly as the model wrote
/// it: it may not parse (models make mistakes), so parsing is the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

struct WireCall<'a>(&'a ToolCall);

impl Serialize for WireCall<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("id", &c.id)?;
        m.serialize_entry("type", "function")?;
        m.serialize_entry("function", &json!({"name": c.name, "arguments": c.arguments}))?;
        m.end()
    }
}

/// A function the model may call; `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
    /// OpenAI structured outputs for the arguments (`strict: true`); `None` sends nothing.
    pub strict: Option<bool>,
}

impl Tool {
    pub fn function(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Self { name: name.into(), description: Some(description.into()), parameters, strict: None }
    }
}

impl Serialize for Tool {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut function = Map::new();
        function.insert("name".into(), Value::String(self.name.clone()));
        if let Some(d) = &self.description {
            function.insert("description".into(), Value::String(d.clone()));
        }
        function.insert("parameters".into(), self.parameters.clone());
        if let Some(strict) = self.strict {
            function.insert("strict".into(), Value::Bool(strict));
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", "function")?;
        m.serialize_entry("function", &function)?;
        m.end()
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// Exactly this function.
    Function(String),
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::None => s.serialize_str("none"),
            Self::Required => s.serialize_str("required"),
            Self::Function(name) => json!({"type": "function", "function": {"name": name}}).serialize(s),
        }
    }
}

/// The shape of the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object ("JSON mode"; the prompt must mention JSON for OpenAI).
    JsonObject,
    /// JSON matching `schema` (structured outputs).
    JsonSchema {
        name: String,
        schema: Value,
        strict: bool,
    },
}

impl Serialize for ResponseFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text => json!({"type": "text"}).serialize(s),
            Self::JsonObject => json!({"type": "json_object"}).serialize(s),
            Self::JsonSchema { name, schema, strict } => {
                json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}})
                    .serialize(s)
            }
        }
    }
}

/// A chat completion request. `stream` and `stream_options` are set by [`crate::Client::chat`]
/// and [`crate::Client::chat_stream`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub response_format: Option<ResponseFormat>,
    /// Other body fields passed through as they are (`seed`, `top_p`, `reasoning_effort`...). A key
    /// that a typed field above also writes is ignored, so a body never has a key twice.
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self { model: model.into(), messages, ..Self::default() }
    }
}

/// The keys [`WireRequest`] writes itself.
const TYPED_KEYS: [&str; 10] = [
    "model",
    "messages",
    "tools",
    "tool_choice",
    "temperature",
    "max_tokens",
    "response_format",
    "stream",
    "stream_options",
    "n",
];

/// The body actually sent.
pub(crate) struct WireRequest<'a> {
    pub req: &'a ChatRequest,
    pub stream: bool,
}

impl Serialize for WireRequest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.req;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", &r.model)?;
        m.serialize_entry("messages", &r.messages)?;
        if !r.tools.is_empty() {
            m.serialize_entry("tools", &r.tools)?;
        }
        if let Some(c) = &r.tool_choice {
            m.serialize_entry("tool_choice", c)?;
        }
        if let Some(t) = r.temperature {
            m.serialize_entry("temperature", &t)?;
        }
        if let Some(t) = r.max_tokens {
            m.serialize_entry("max_tokens", &t)?;
        }
        if let Some(f) = &r.response_format {
            m.serialize_entry("response_format", f)?;
        }
        m.serialize_entry("stream", &self.stream)?;
        if self.stream {
            m.serialize_entry("stream_options", &json!({"include_usage": true}))?;
        }
        for (k, v) in &r.extra {
            if !TYPED_KEYS.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// `max_tokens` (or the context) ran out: the text is cut.
    Length,
    ToolCalls,
    ContentFilter,
    /// A reason this crate does not know, as the server wrote it.
    Other(String),
    /// The server sent none, or an empty string.
    Unknown,
}

impl FinishReason {
    pub fn parse(s: Option<&str>) -> Self {
        match s.map(str::trim) {
            None | Some("") => Self::Unknown,
            Some("stop") => Self::Stop,
            Some("length") => Self::Length,
            // `function_call`: the legacy functions API.
            Some("tool_calls" | "function_call") => Self::ToolCalls,
            Some("content_filter") => Self::ContentFilter,
            Some(other) => Self::Other(other.to_owned()),
        }
    }

    /// The OpenAI spelling; `Unknown` is `""`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::Other(s) => s,
            Self::Unknown => "",
        }
    }
}

impl Serialize for FinishReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A finished chat completion (the same shape whether it was streamed or not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    /// The assistant's text (`""` when it only called tools).
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    /// `None` when the provider did not report usage (see [`crate::estimate_tokens`]).
    pub usage: Option<Usage>,
    /// The model that answered, as the provider named it (`""` if it did not say).
    pub model: String,
}

impl ChatResponse {
    /// The assistant message to send back in the next request (e.g. before tool results).
    pub fn to_message(&self) -> Message {
        Message::assistant_tool_calls(self.text.clone(), self.tool_calls.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wire_body_shape() {
        let mut req = ChatRequest::new(
            "m",
            vec![
                Message::system("s"),
                Message::assistant_tool_calls(
                    "",
                    vec![ToolCall { id: "c1".into(), name: "f".into(), arguments: "{}".into() }],
                ),
                Message::tool("c1", "42"),
            ],
        );
        req.tools = vec![Tool::function("f", "does f", json!({"type": "object"}))];
        req.tool_choice = Some(ToolChoice::Function("f".into()));
        req.response_format =
            Some(ResponseFormat::JsonSchema { name: "r".into(), schema: json!({"type": "object"}), strict: true });
        req.extra.insert("seed".into(), json!(7));
        req.extra.insert("stream".into(), json!("ignored"));
        let body = serde_json::to_value(WireRequest { req: &req, stream: true }).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "content": "42", "tool_call_id": "c1"}
                ],
                "tools": [{"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}},
                "stream": true,
                "stream_options": {"include_usage": true},
                "seed": 7
            })
        );
    }

    #[test]
    fn messages_read_leniently() {
        let m: Vec<Message> = serde_json::from_value(json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "name": "g", "arguments": {"x": 1}}]},
            {"role": "tool", "tool_call_id": "a", "content": "ok"}
        ]))
        .unwrap();
        assert_eq!(m[0], Message::user("hi"));
        assert_eq!(
            m[1].tool_calls,
            [
                ToolCall { id: "a".into(), name: "f".into(), arguments: "{}".into() },
                ToolCall { id: "b".into(), name: "g".into(), arguments: r#"{"x":1}"#.into() }
            ]
        );
        assert_eq!(m[2], Message::tool("a", "ok"));
        assert!(serde_json::from_value::<Message>(json!({"role": "wizard", "content": "x"})).is_err());
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(FinishReason::parse(Some("stop")), FinishReason::Stop);
        assert_eq!(FinishReason::parse(Some("")), FinishReason::Unknown);
        assert_eq!(FinishReason::parse(None), FinishReason::Unknown);
        assert_eq!(FinishReason::parse(Some("eos")), FinishReason::Other("eos".into()));
        assert_eq!(FinishReason::parse(Some("function_call")), FinishReason::ToolCalls);
    }
}
