//! Lenient response types: every field optional, `null` accepted wherever a value may be, strings
//! or numbers accepted for ids and counts, content as a string or as an array of text parts,
//! arguments as a string or as a JSON object. Real servers differ in all of these.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{ModelError, Scrub, from_error_object};
use crate::types::{ChatResponse, FinishReason, ToolCall, Usage};

/// `null` (or absent, with `#[serde(default)]`) becomes `T::default()`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string, or a number written as one; anything else is `None`.
fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A non-negative integer, or a float or a numeric string; anything else is `None`.
fn loose_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct WireResponse {
    #[serde(default, deserialize_with = "loose_string")]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub choices: Vec<WireChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// An error object inside a 200 (some servers do this, also mid-stream).
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireChoice {
    #[serde(default, deserialize_with = "loose_u64")]
    pub index: Option<u64>,
    #[serde(default)]
    pub message: Option<WireMessage>,
    #[serde(default)]
    pub delta: Option<WireMessage>,
    #[serde(default, deserialize_with = "loose_string")]
    pub finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub tool_calls: Vec<WireToolCall>,
}

impl WireMessage {
    /// The text of `content`: a string, or the `text` of each part of an array (some servers send
    /// `[{"type": "text", "text": "..."}]`), or `""`.
    pub fn text(&self) -> String {
        match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str).or(p.as_str())).collect()
            }
            _ => String::new(),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct WireToolCall {
    #[serde(default, deserialize_with = "loose_u64")]
    pub index: Option<u64>,
    #[serde(default, deserialize_with = "loose_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<WireFunction>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireFunction {
    #[serde(default, deserialize_with = "loose_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<Value>,
}

impl WireFunction {
    /// The arguments text: a string as is, a JSON value (some servers send an object) re-encoded.
    pub fn arguments(&self) -> String {
        match &self.arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct WireUsage {
    #[serde(default, deserialize_with = "loose_u64")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "loose_u64")]
    pub completion_tokens: Option<u64>,
}

impl WireUsage {
    /// `None` when the server sent a usage object without any count.
    pub fn usage(&self) -> Option<Usage> {
        if self.prompt_tokens.is_none() && self.completion_tokens.is_none() {
            return None;
        }
        Some(Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
        })
    }
}

/// The first choice: the one with `index` 0, else the first listed. We never ask for `n > 1`.
pub(crate) fn first_choice(choices: Vec<WireChoice>) -> Option<WireChoice> {
    let at = choices.iter().position(|c| c.index.unwrap_or(0) == 0)?;
    choices.into_iter().nth(at)
}

/// A tool call's id when the server sent none (some local servers omit it); stable per position
/// so the tool result can name it.
pub(crate) fn fallback_call_id(position: usize) -> String {
    format!("call_{position}")
}

/// A non-streaming body into a [`ChatResponse`].
pub(crate) fn parse_chat(body: &[u8], scrub: &Scrub) -> Result<ChatResponse, ModelError> {
    let wire: WireResponse = serde_json::from_slice(body)
        .map_err(|e| ModelError::BadResponse(format!("the chat completion is not the expected JSON: {e}")))?;
    if wire.choices.is_empty()
        && let Some(err) = &wire.error
    {
        return Err(from_error_object(200, err, scrub));
    }
    let usage = wire.usage.as_ref().and_then(WireUsage::usage);
    let choice = first_choice(wire.choices)
        .ok_or_else(|| ModelError::BadResponse("the chat completion has no `choices`".into()))?;
    let message = choice
        .message
        .ok_or_else(|| ModelError::BadResponse("the chat completion's choice has no `message`".into()))?;
    let tool_calls = message
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let function = c.function.as_ref();
            ToolCall {
                id: c.id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| fallback_call_id(i)),
                name: function.and_then(|f| f.name.clone()).unwrap_or_default(),
                arguments: function.map(WireFunction::arguments).unwrap_or_default(),
            }
        })
        .collect();
    Ok(ChatResponse {
        text: message.text(),
        tool_calls,
        finish_reason: FinishReason::parse(choice.finish_reason.as_deref()),
        usage,
        model: wire.model.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
pub(crate) struct WireEmbeddings {
    #[serde(default, deserialize_with = "nullable")]
    pub data: Vec<WireEmbedding>,
    #[serde(default, deserialize_with = "loose_string")]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Deserialize)]
pub(crate) struct WireEmbedding {
    #[serde(default, deserialize_with = "loose_u64")]
    pub index: Option<u64>,
    pub embedding: Vec<f32>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lenient_shapes() {
        let body = br#"{"model": null, "choices": [{"index": "0", "message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}, "finish_reason": ""}],
            "usage": {"prompt_tokens": 3.0, "completion_tokens": null}}"#;
        let r = parse_chat(body, &Scrub::default()).unwrap();
        assert_eq!(r.text, "ab");
        assert_eq!(
            r.tool_calls,
            vec![ToolCall { id: "call_0".into(), name: "f".into(), arguments: r#"{"x":1}"#.into() }]
        );
        assert_eq!(r.finish_reason, FinishReason::Unknown);
        assert_eq!(r.usage, Some(Usage { input_tokens: 3, output_tokens: 0 }));
        assert_eq!(r.model, "");
    }

    #[test]
    fn missing_pieces_are_bad_responses() {
        let s = Scrub::default();
        assert_eq!(parse_chat(b"{", &s).unwrap_err().name(), "Llm.BadResponse");
        assert_eq!(parse_chat(b"[]", &s).unwrap_err().name(), "Llm.BadResponse");
        assert_eq!(parse_chat(br#"{"choices": []}"#, &s).unwrap_err().name(), "Llm.BadResponse");
        assert_eq!(parse_chat(br#"{"choices": [{"index": 0}]}"#, &s).unwrap_err().name(), "Llm.BadResponse");
        assert_eq!(parse_chat(br#"{"error": {"message": "overloaded"}}"#, &s).unwrap_err().name(), "Llm.Provider");
    }
}
