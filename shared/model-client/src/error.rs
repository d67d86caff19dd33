//! [`ModelError`]: every way a model call fails, one variant per node error name.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

/// The longest provider message kept in an error (they can quote the whole request).
const MAX_MESSAGE_CHARS: usize = 500;

/// A failed model call. Each variant has a stable name ([`ModelError::name`]) for Step Functions
/// Retry/Catch. Messages come from the provider (truncated, with the API key scrubbed out): treat
/// them as untrusted text.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// HTTP 429. `retry_after` from `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date.
    #[error("the model provider is rate limiting (HTTP 429{}): {message}", retry_hint(*.retry_after))]
    RateLimited { retry_after: Option<Duration>, message: String },
    /// The prompt does not fit the model's context window (HTTP 400 `context_length_exceeded`, or a
    /// 4xx whose message says so). Retrying the same request cannot help; shorten the input.
    #[error("the prompt is longer than the model's context window: {0}")]
    ContextTooLong(String),
    /// A 2xx answer we cannot use: not JSON, missing fields, a stream cut short, too large.
    #[error("the model provider sent an unusable response: {0}")]
    BadResponse(String),
    /// No answer within [`crate::Provider::timeout`] (or the caller's client timeout, or HTTP 408).
    #[error("the model provider did not answer in time")]
    Timeout,
    /// HTTP 401 or 403: the API key is missing, wrong or not allowed this model.
    #[error("the model provider refused the credentials (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// HTTP 5xx, or an error object inside a 200 stream: the provider failed; a retry may succeed.
    #[error("the model provider failed (HTTP {status}): {message}")]
    Provider { status: u16, message: String },
    /// Any other 4xx: the request is wrong (unknown model, bad parameter); a retry will not help.
    #[error("the model provider rejected the request (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },
    /// The connection could not be made or broke mid-response. `source` is the transport error
    /// (without its URL), so a caller can find e.g. an address-guard refusal in the chain.
    #[error("could not talk to the model provider: {message}")]
    Connect {
        message: String,
        #[source]
        source: Option<reqwest::Error>,
    },
}

fn retry_hint(after: Option<Duration>) -> String {
    after.map(|d| format!(", retry after {:.1} s", d.as_secs_f64())).unwrap_or_default()
}

impl ModelError {
    /// The stable error name (`Llm.*`) the node function reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "Llm.RateLimited",
            Self::ContextTooLong(_) => "Llm.ContextTooLong",
            Self::BadResponse(_) => "Llm.BadResponse",
            Self::Timeout => "Llm.Timeout",
            Self::Auth { .. } => "Llm.Auth",
            Self::Provider { .. } => "Llm.Provider",
            Self::BadRequest { .. } => "Llm.BadRequest",
            Self::Connect { .. } => "Llm.Connect",
        }
    }

    /// Whether the same request may succeed later (rate limits, time-outs, provider and network
    /// faults). A malformed answer is not retried by default: a server that sends one usually
    /// sends it again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Timeout | Self::Provider { .. } | Self::Connect { .. })
    }

    /// How long the provider asked us to wait, for a 429 that said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Removes the API key from provider-supplied text (some servers quote the key they refused).
#[derive(Clone, Default)]
pub(crate) struct Scrub(Option<String>);

impl Scrub {
    pub(crate) fn new(key: Option<&str>) -> Self {
        // A key shorter than 4 characters would scrub ordinary words; such keys are not real.
        Self(key.filter(|k| k.len() >= 4).map(str::to_owned))
    }

    pub(crate) fn text(&self, s: &str) -> String {
        // Scrub before truncating, so a cut cannot leave half a key behind.
        match &self.0 {
            Some(key) if s.contains(key.as_str()) => truncate(&s.replace(key.as_str(), "***")),
            _ => truncate(s),
        }
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// The message, code and type of an OpenAI-style error body (`{"error": {"message", "type",
/// "code"}}`), or of the common variants (`{"error": "..."}`, `{"message"}`, `{"detail"}`), or
/// the body text itself.
pub(crate) struct ErrorBody {
    pub message: String,
    pub code: String,
    pub kind: String,
}

impl ErrorBody {
    pub(crate) fn parse(body: &[u8]) -> Self {
        let text = || String::from_utf8_lossy(body).trim().to_owned();
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Self { message: text(), code: String::new(), kind: String::new() };
        };
        Self::from_value(&value).unwrap_or_else(|| Self { message: text(), code: String::new(), kind: String::new() })
    }

    pub(crate) fn from_value(value: &Value) -> Option<Self> {
        let as_text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let error = value.get("error").unwrap_or(value);
        match error {
            Value::String(s) => Some(Self { message: s.clone(), code: String::new(), kind: String::new() }),
            Value::Object(o) => {
                let message = ["message", "detail", "msg"].iter().map(|k| as_text(o.get(*k))).find(|m| !m.is_empty());
                Some(Self {
                    message: message.unwrap_or_else(|| error.to_string()),
                    code: as_text(o.get("code")),
                    kind: as_text(o.get("type")),
                })
            }
            _ => None,
        }
    }

    /// Whether this error says the prompt is too long for the model. Servers word it differently:
    /// OpenAI `code: context_length_exceeded`, vLLM "maximum context length", llama.cpp
    /// `type: exceed_context_size_error`, others "context window".
    pub(crate) fn is_context_too_long(&self) -> bool {
        if self.code == "context_length_exceeded" || self.kind.contains("exceed_context") {
            return true;
        }
        let m = self.message.to_ascii_lowercase();
        ["context length", "context_length", "context window", "context size", "maximum context"]
            .iter()
            .any(|p| m.contains(p))
    }
}

/// The error for a non-2xx response.
pub(crate) fn from_status(status: u16, headers: &HeaderMap, body: &[u8], scrub: &Scrub) -> ModelError {
    let parsed = ErrorBody::parse(body);
    let message = scrub.text(&parsed.message);
    match status {
        401 | 403 => ModelError::Auth { status, message },
        429 => ModelError::RateLimited { retry_after: retry_after(headers, std::time::SystemTime::now()), message },
        408 => ModelError::Timeout,
        400..=499 if parsed.is_context_too_long() => ModelError::ContextTooLong(message),
        400..=499 => ModelError::BadRequest { status, message },
        500..=599 => ModelError::Provider { status, message },
        _ => ModelError::BadResponse(format!("unexpected HTTP status {status}: {message}")),
    }
}

/// An error object sent inside a 200 response or stream.
pub(crate) fn from_error_object(status: u16, value: &Value, scrub: &Scrub) -> ModelError {
    let parsed = ErrorBody::from_value(value).unwrap_or(ErrorBody {
        message: value.to_string(),
        code: String::new(),
        kind: String::new(),
    });
    let message = scrub.text(&parsed.message);
    if parsed.is_context_too_long() {
        ModelError::ContextTooLong(message)
    } else {
        ModelError::Provider { status, message }
    }
}

/// `retry-after-ms` (OpenAI, milliseconds), else `Retry-After` as seconds (integer or decimal)
/// or as an HTTP date (RFC 9110, relative to `now`; a date in the past means "now").
pub(crate) fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    Some((date.to_utc() - now).to_std().unwrap_or(Duration::ZERO))
}

/// A transport error: time-outs apart, the message keeps the cause chain but not the URL.
pub(crate) fn transport(err: reqwest::Error, scrub: &Scrub) -> ModelError {
    if err.is_timeout() {
        return ModelError::Timeout;
    }
    let err = err.without_url();
    let mut message = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    ModelError::Connect { message: scrub.text(&message), source: Some(err) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_ms_and_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after(&headers(&[("retry-after", "7")]), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers(&[("retry-after", "1.5")]), now), Some(Duration::from_millis(1500)));
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3"), ("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "1e300")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[]), now), None);
    }

    #[test]
    fn status_mapping() {
        let s = Scrub::default();
        let h = HeaderMap::new();
        let ctx =
            br#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(from_status(400, &h, ctx, &s).name(), "Llm.ContextTooLong");
        let vllm = br#"{"object":"error","message":"This model's maximum context length is 4096 tokens.","code":400}"#;
        assert_eq!(from_status(400, &h, vllm, &s).name(), "Llm.ContextTooLong");
        assert_eq!(from_status(400, &h, br#"{"error":"unknown model"}"#, &s).name(), "Llm.BadRequest");
        assert_eq!(from_status(404, &h, b"not found", &s).name(), "Llm.BadRequest");
        assert_eq!(from_status(401, &h, b"", &s).name(), "Llm.Auth");
        assert_eq!(from_status(403, &h, b"", &s).name(), "Llm.Auth");
        assert_eq!(from_status(429, &h, b"", &s).name(), "Llm.RateLimited");
        assert_eq!(from_status(503, &h, b"<html>", &s).name(), "Llm.Provider");
        assert_eq!(from_status(408, &h, b"", &s).name(), "Llm.Timeout");
        assert_eq!(from_status(302, &h, b"", &s).name(), "Llm.BadResponse");
        match from_status(400, &h, br#"{"error":"unknown model"}"#, &s) {
            ModelError::BadRequest { message, .. } => assert_eq!(message, "unknown model"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scrub_removes_key_and_truncates() {
        let s = Scrub::new(Some("sk-secret-123"));
        assert_eq!(s.text("Incorrect API key provided: sk-secret-123."), "Incorrect API key provided: ***.");
        let long = "é".repeat(2000);
        assert_eq!(s.text(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
