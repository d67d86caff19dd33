//! What goes into the transcript: tool results and errors as tool messages (and steps), cut
//! to size; and the shortening of old tool results when the whole state grows too large.

use model_client::{Message, Role};
use serde_json::Value;

/// The longest tool result kept (in the transcript and in steps), in bytes.
pub const MAX_TOOL_RESULT_BYTES: usize = 16 * 1024;
/// What the oldest tool results are shortened to when the state is too large.
pub const SHORTENED_TOOL_RESULT_BYTES: usize = 1024;
/// The returned working state's target size (Step Functions' state limit is 256 KiB).
pub const MAX_STATE_BYTES: usize = 200 * 1024;
/// The longest error cause quoted to the model.
pub const MAX_CAUSE_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes (on a character boundary), marked
/// `…[truncated N bytes]` with N the bytes left out; `None` when it fits.
pub fn cut(text: &str, max: usize) -> Option<String> {
    if text.len() <= max {
        return None;
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    Some(format!("{}…[truncated {} bytes]", &text[..at], text.len() - at))
}

/// `text` clipped to `max` bytes with a plain `…` (event texts, causes, untrusted names).
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut at = max;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…", &text[..at])
}

/// A value as a tool message's content: a string as it is, anything else as its JSON text.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A tool result for the transcript (cut to [`MAX_TOOL_RESULT_BYTES`]) and for the step (the
/// value itself, or the cut text when it was too long).
pub fn result(value: Value) -> (String, Value) {
    let text = text_of(&value);
    match cut(&text, MAX_TOOL_RESULT_BYTES) {
        Some(short) => (short.clone(), Value::String(short)),
        None => (text, value),
    }
}

/// A failed call's `(name, message)`: the result's `error` and `cause`, looking inside the
/// cause when it is JSON: a Lambda error (`{"errorType", "errorMessage"}`) gives its message; a
/// child execution's description (what `States.TaskFailed` of a `startExecution.sync` carries)
/// gives the child's `Error` and `Cause`.
pub fn failure(error: &str, cause: Option<&Value>) -> (String, String) {
    let mut name = error.to_owned();
    let mut message = match cause {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    // Two levels: a child execution's Cause is often itself a Lambda error's JSON.
    for _ in 0..2 {
        let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(message.trim()) else { break };
        if let Some(Value::String(child)) = inner.get("Error") {
            if name == "States.TaskFailed" || name.is_empty() {
                name = child.clone();
            }
            message = inner.get("Cause").map(text_of).unwrap_or_default();
        } else if let Some(m) = inner.get("errorMessage") {
            if let Some(Value::String(t)) = inner.get("errorType")
                && (name == "States.TaskFailed" || name.is_empty())
            {
                name = t.clone();
            }
            message = text_of(m);
        } else {
            break;
        }
    }
    (name, clip(message.trim(), MAX_CAUSE_BYTES))
}

/// `error: <name>: <message>` (or `error: <name>` with no message): how a failure reads to the
/// model. The step's `error` is the same without the `error: ` prefix.
pub fn error_text(name: &str, message: &str) -> String {
    if message.is_empty() { format!("error: {name}") } else { format!("error: {name}: {message}") }
}

/// Shortens the oldest tool results (transcript and steps, oldest first) to
/// [`SHORTENED_TOOL_RESULT_BYTES`] until `size()` is at most [`MAX_STATE_BYTES`]. `false` when
/// even that is not enough.
pub fn fit(messages: &mut [Message], steps: &mut [Value], size: &dyn Fn(&[Message], &[Value]) -> usize) -> bool {
    let mut over = size(messages, steps).saturating_sub(MAX_STATE_BYTES);
    if over == 0 {
        return true;
    }
    let tool_messages: Vec<usize> =
        messages.iter().enumerate().filter(|(_, m)| m.role == Role::Tool).map(|(i, _)| i).collect();
    let longest = tool_messages.len().max(steps.len());
    for i in 0..longest {
        // The saving is estimated from the strings' lengths (JSON escaping aside), then checked.
        if let Some(&m) = tool_messages.get(i)
            && let Some(short) = cut(&messages[m].content, SHORTENED_TOOL_RESULT_BYTES)
        {
            over = over.saturating_sub(messages[m].content.len() - short.len());
            messages[m].content = short;
        }
        if let Some(step) = steps.get_mut(i) {
            for field in ["result", "error"] {
                let Some(v) = step.get_mut(field) else { continue };
                let text = text_of(v);
                if let Some(short) = cut(&text, SHORTENED_TOOL_RESULT_BYTES) {
                    over = over.saturating_sub(text.len() - short.len());
                    *v = Value::String(short);
                }
            }
        }
        if over == 0 {
            over = size(messages, steps).saturating_sub(MAX_STATE_BYTES);
            if over == 0 {
                return true;
            }
        }
    }
    size(messages, steps) <= MAX_STATE_BYTES
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cuts_on_char_boundaries_and_says_how_much() {
        assert_eq!(cut("abc", 3), None);
        assert_eq!(cut("abcdef", 4).unwrap(), "abcd…[truncated 2 bytes]");
        // "é" is two bytes: the cut backs off to the boundary.
        assert_eq!(cut("aéé", 2).unwrap(), "a…[truncated 4 bytes]");
    }

    #[test]
    fn failures_look_inside_json_causes() {
        let lambda = json!(r#"{"errorType":"Http.Status4xx","errorMessage":"HTTP 404 from api.example.com"}"#);
        assert_eq!(
            failure("Http.Status4xx", Some(&lambda)),
            ("Http.Status4xx".into(), "HTTP 404 from api.example.com".into())
        );
        let child = json!({"Error": "Code.Error", "Cause": "{\"errorType\":\"Code.Error\",\"errorMessage\":\"x is not defined\"}",
                           "Status": "FAILED"})
        .to_string();
        assert_eq!(
            failure("States.TaskFailed", Some(&Value::String(child))),
            ("Code.Error".into(), "x is not defined".into())
        );
        assert_eq!(failure("Agent.UnknownTool", None), ("Agent.UnknownTool".into(), String::new()));
        let long = Value::String("x".repeat(5000));
        assert!(failure("E", Some(&long)).1.len() <= MAX_CAUSE_BYTES + 3);
        assert_eq!(error_text("E", ""), "error: E");
        assert_eq!(error_text("E", "m"), "error: E: m");
    }
}
