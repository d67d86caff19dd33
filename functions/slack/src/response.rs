//! What Slack answered, read into the function's output or a named error: the Web API's
//! `{"ok": …}` JSON, a webhook's plain-text answer, 429 with `Retry-After`, 5xx and transport
//! failures. Nothing here names the webhook URL's path or the token (see the crate docs).

use std::time::Duration;

use node_contract::{NodeError, error_names};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Slack's answers are a few hundred bytes; a server sending more is not Slack.
pub(crate) const MAX_BODY_BYTES: usize = 64 << 10;
/// How much of an unexpected body an error message quotes.
const SNIPPET_CHARS: usize = 200;

/// The body, up to [`MAX_BODY_BYTES`] (a longer one is cut there: it is only quoted).
pub(crate) async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() == MAX_BODY_BYTES {
            break;
        }
    }
    Ok(bytes)
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out: String = text.chars().take(SNIPPET_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// `chat.postMessage`'s answer (any status but 429 and 5xx, which are handled before).
/// Slack answers errors with HTTP 200 and `{"ok": false, "error": "channel_not_found"}`.
pub(crate) fn api_outcome(status: StatusCode, bytes: &[u8]) -> Result<Value, NodeError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(NodeError::new(
            error_names::SLACK_API,
            format!("chat.postMessage answered {status} with a body that is not Slack's JSON: {}", snippet(bytes)),
        ));
    };
    if body.get("ok") == Some(&Value::Bool(true)) && status.is_success() {
        let mut out = json!({"ok": true});
        for key in ["channel", "ts"] {
            if let Some(v @ Value::String(_)) = body.get(key) {
                out[key] = v.clone();
            }
        }
        return Ok(out);
    }
    let error = body.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
    let mut message = format!("chat.postMessage failed: {}", cut(error));
    // `invalid_blocks` and friends say what is wrong here.
    let details: Vec<&str> = body
        .get("response_metadata")
        .and_then(|m| m.get("messages"))
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).take(5).collect())
        .unwrap_or_default();
    if !details.is_empty() {
        message.push_str(&format!(" ({})", cut(&details.join("; "))));
    }
    if !status.is_success() {
        message.push_str(&format!(" [HTTP {status}]"));
    }
    Err(NodeError::new(error_names::SLACK_API, message))
}

/// A webhook's answer (any status but 429 and 5xx): `ok` with 200; plain-text errors such as
/// `invalid_payload` (400), `no_service` (404), `action_prohibited` (403) otherwise.
pub(crate) fn webhook_outcome(status: StatusCode, host: &str, bytes: &[u8]) -> Result<Value, NodeError> {
    if status.is_success() {
        return Ok(json!({"ok": true}));
    }
    let why = if status.is_redirection() { "redirects are not followed".to_owned() } else { snippet(bytes) };
    Err(NodeError::new(error_names::SLACK_API, format!("the webhook at {host} refused the message ({status}): {why}")))
}

/// 5xx: Slack is having trouble; the default retry applies.
pub(crate) fn server_error(what: &str, status: StatusCode, bytes: &[u8]) -> NodeError {
    NodeError::new(error_names::SLACK_CONNECT, format!("{what} answered {status}: {}", snippet(bytes)))
}

fn cut(s: &str) -> String {
    snippet(s.as_bytes())
}

/// How long a 429 asks to wait: `Retry-After` in seconds (Slack's form); absent or unreadable,
/// one second.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(Duration::from_secs(1))
}

/// Names a transport failure: the guard's refusal (from the resolver), or `Slack.Connect`.
/// The error is taken without its URL, which for a webhook is the credential.
pub(crate) fn transport_error(e: reqwest::Error, what: &str) -> NodeError {
    let e = e.without_url();
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut forbidden = false;
    while let Some(err) = source {
        forbidden |= net_guard::is_forbidden_host(err);
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&err.to_string());
        source = err.source();
    }
    let name = if forbidden { error_names::SLACK_FORBIDDEN_ADDRESS } else { error_names::SLACK_CONNECT };
    NodeError::new(name, format!("POST to {what} failed: {chain}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn api_answers() {
        let ok = br#"{"ok":true,"channel":"C1","ts":"1.2","message":{"text":"hi"}}"#;
        assert_eq!(api_outcome(StatusCode::OK, ok).unwrap(), json!({"ok": true, "channel": "C1", "ts": "1.2"}));
        let e = api_outcome(StatusCode::OK, br#"{"ok":false,"error":"channel_not_found"}"#).unwrap_err();
        assert_eq!((e.name.as_str(), e.message.as_str()), ("Slack.Api", "chat.postMessage failed: channel_not_found"));
        let blocks = br#"{"ok":false,"error":"invalid_blocks","response_metadata":{"messages":["[ERROR] bad"]}}"#;
        assert!(api_outcome(StatusCode::OK, blocks).unwrap_err().message.ends_with("invalid_blocks ([ERROR] bad)"));
        let e = api_outcome(StatusCode::BAD_REQUEST, b"<html>nope</html>").unwrap_err();
        assert_eq!(e.name, "Slack.Api");
        assert!(e.message.contains("400") && e.message.contains("nope"), "{e:?}");
        let long = format!(r#"{{"ok":false,"error":"{}"}}"#, "x".repeat(10_000));
        assert!(api_outcome(StatusCode::OK, long.as_bytes()).unwrap_err().message.len() < 400);
    }

    #[test]
    fn retry_after_values() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(1));
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(7));
        h.insert(reqwest::header::RETRY_AFTER, "-3".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(1));
    }
}
