//! The node's config, read into a [`Call`]: every field checked, each problem a
//! `Config.Invalid` naming the field. Public for the agent function, whose model fields
//! (`model`, `temperature`, `response_format`, `timeout_seconds`, `provider`) are the same.

use std::time::Duration;

use model_client::{ChatRequest, Message, ResponseFormat};
use node_contract::{NodeError, SecretRefs, kind_of};
use serde_json::{Map, Value};

use crate::structured::Schema;

/// `timeout_seconds` when the config has none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest `timeout_seconds` accepted: a Lambda runs at most 15 minutes.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// The most messages a `messages` history may hold.
pub const MAX_MESSAGES: usize = 1000;

/// What the reply must be.
#[derive(Debug)]
pub enum Format {
    Text,
    /// Any JSON value (JSON mode).
    Json,
    /// JSON valid under the schema (structured output).
    Schema(Box<Schema>),
}

/// A tenant-chosen OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct CustomProvider {
    pub base_url: String,
    pub api_key: Option<String>,
}

/// One checked call.
#[derive(Debug)]
pub struct Call {
    pub request: ChatRequest,
    pub format: Format,
    pub provider: Option<CustomProvider>,
    pub timeout: Duration,
}

/// Reads an `llm` node's config (see the crate docs) into a checked [`Call`].
pub fn parse(config: &Value, declared: &SecretRefs) -> Result<Call, NodeError> {
    let Value::Object(config) = config else {
        return Err(NodeError::new(
            node_contract::error_names::CONFIG_INVALID,
            format!("config: expected an object, got {}", kind_of(config)),
        ));
    };
    let model = match config.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_owned(),
        Some(Value::String(_)) | None => return Err(NodeError::config("model", "is required (e.g. \"gpt-4o-mini\")")),
        Some(other) => return Err(NodeError::config("model", format!("must be a string, got {}", kind_of(other)))),
    };
    let system = optional_string(config, "system")?;
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(Message::system(system));
    }
    match (config.get("prompt").filter(|v| !v.is_null()), config.get("messages").filter(|v| !v.is_null())) {
        (Some(_), Some(_)) => {
            return Err(NodeError::config("prompt", "and `messages` are exclusive: give one of them"));
        }
        (None, None) => {
            return Err(NodeError::config("prompt", "is required (or `messages`, a chat history)"));
        }
        (Some(Value::String(p)), None) => messages.push(Message::user(p.clone())),
        (Some(other), None) => {
            return Err(NodeError::config("prompt", format!("must be a string, got {}", kind_of(other))));
        }
        (None, Some(Value::Array(items))) => {
            if items.is_empty() {
                return Err(NodeError::config("messages", "must hold at least one message"));
            }
            if items.len() > MAX_MESSAGES {
                return Err(NodeError::config("messages", format!("holds more than {MAX_MESSAGES} messages")));
            }
            for (i, item) in items.iter().enumerate() {
                let m: Message = serde_json::from_value(item.clone()).map_err(|e| {
                    NodeError::config(
                        &format!("messages[{i}]"),
                        format!("must be {{\"role\": system|user|assistant|tool, \"content\": text}}: {e}"),
                    )
                })?;
                messages.push(m);
            }
        }
        (None, Some(other)) => {
            return Err(NodeError::config("messages", format!("must be an array, got {}", kind_of(other))));
        }
    }
    let mut request = ChatRequest::new(model, messages);
    request.temperature = match config.get("temperature").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => Some(t as f32),
            _ => return Err(NodeError::config("temperature", "must be a number from 0 to 2")),
        },
    };
    request.max_tokens = match config.get("max_tokens").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Some(n),
            _ => return Err(NodeError::config("max_tokens", "must be a positive whole number")),
        },
    };
    let format = match config.get("response_format").filter(|v| !v.is_null()) {
        None => Format::Text,
        Some(Value::String(s)) => match s.as_str() {
            "text" => Format::Text,
            "json" => Format::Json,
            other => {
                return Err(NodeError::config(
                    "response_format",
                    format!("`{other}` is not \"text\", \"json\" or a JSON Schema object"),
                ));
            }
        },
        Some(schema @ Value::Object(_)) => {
            Format::Schema(Box::new(Schema::compile(schema).map_err(|e| NodeError::config("response_format", e))?))
        }
        Some(other) => {
            return Err(NodeError::config(
                "response_format",
                format!("must be \"text\", \"json\" or a JSON Schema object, got {}", kind_of(other)),
            ));
        }
    };
    request.response_format = match &format {
        Format::Text => None,
        Format::Json => Some(ResponseFormat::JsonObject),
        // Not `strict`: OpenAI's strict mode refuses most schemas written for validators
        // (it wants every property required and `additionalProperties: false`); the reply is
        // validated here either way.
        Format::Schema(s) => {
            Some(ResponseFormat::JsonSchema { name: "response".into(), schema: s.source().clone(), strict: false })
        }
    };
    let timeout = match config.get("timeout_seconds").filter(|v| !v.is_null()) {
        None => DEFAULT_TIMEOUT,
        Some(v) => match v.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()) {
            Some(t) if !t.is_zero() && t <= MAX_TIMEOUT => t,
            _ => {
                return Err(NodeError::config(
                    "timeout_seconds",
                    format!("must be a number of seconds above 0 and at most {}", MAX_TIMEOUT.as_secs()),
                ));
            }
        },
    };
    let provider = match config.get("provider").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::Object(p)) => Some(custom_provider(p, declared)?),
        Some(other) => {
            return Err(NodeError::config(
                "provider",
                format!(
                    "must be an object {{\"base_url\": ..., \"api_key\": \"{{{{ secrets.NAME }}}}\"}}, got {}",
                    kind_of(other)
                ),
            ));
        }
    };
    Ok(Call { request, format, provider, timeout })
}

fn optional_string(config: &Map<String, Value>, field: &str) -> Result<Option<String>, NodeError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(NodeError::config(field, format!("must be a string, got {}", kind_of(other)))),
    }
}

fn custom_provider(p: &Map<String, Value>, declared: &SecretRefs) -> Result<CustomProvider, NodeError> {
    let base_url = match p.get("base_url") {
        Some(Value::String(u)) if !u.trim().is_empty() => u.trim().to_owned(),
        _ => return Err(NodeError::config("provider.base_url", "is required: the API root, e.g. https://host/v1")),
    };
    let api_key = match p.get("api_key") {
        None | Some(Value::Null) => None,
        // A key written into the graph would sit in workflow versions and execution state; only
        // a secret template (resolved here, at run time, for the execution's tenant) is taken.
        Some(Value::String(_)) if !declared.contains_key("/provider/api_key") => {
            return Err(NodeError::config(
                "provider.api_key",
                "must be a secret template, {{ secrets.NAME }}, never a literal key",
            ));
        }
        Some(Value::String(k)) => Some(k.trim().to_owned()),
        Some(other) => {
            return Err(NodeError::config("provider.api_key", format!("must be a string, got {}", kind_of(other))));
        }
    };
    Ok(CustomProvider { base_url, api_key })
}
