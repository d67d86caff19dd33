//! Queue events: the consumer code behind `queue` triggers, shared by `fn-trigger` (messages from
//! Weft's SQS queue) and `weft serve` (`POST /v1/events` delivered in-process, with no queue).
//!
//! A message body is `{"event": "<name>", "input"?: <any JSON>, "tenant"?: "<tenant id>"}`. Every
//! enabled `queue` trigger with that event starts its workflow with `input` (default `{}`), with
//! the idempotency key `<source>:<message id>:<trigger id>`, so a redelivered message never starts
//! a workflow twice. With `tenant` (which `POST /v1/events` always sets, from the caller's token)
//! only that tenant's workflows start; a message without one (sent to the queue directly by the
//! deployment's own producers, which IAM alone lets in) starts every tenant's matching workflow.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Registry, StartError, StartRequest, Starter};

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMessage {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The longest event name.
pub const MAX_EVENT_NAME: usize = 256;

impl QueueMessage {
    /// Parses and checks a message body; every failure is poison (retrying cannot help).
    pub fn parse(body: &str) -> Result<Self, MessageError> {
        let m: Self = serde_json::from_str(body).map_err(|e| {
            MessageError::Poison(format!(
                "the body must be {{\"event\": \"<name>\", \"input\"?: ..., \"tenant\"?: \"...\"}}: {e}"
            ))
        })?;
        m.check()?;
        Ok(m)
    }

    /// The event name is 1 to 256 characters without control characters.
    pub fn check(&self) -> Result<(), MessageError> {
        let name = self.event.trim();
        if name.is_empty() {
            return Err(MessageError::Poison("`event` is empty".to_owned()));
        }
        if name.chars().count() > MAX_EVENT_NAME || name.chars().any(char::is_control) {
            return Err(MessageError::Poison(format!(
                "`event` must be at most {MAX_EVENT_NAME} characters without control characters"
            )));
        }
        if self.tenant.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(MessageError::Poison("`tenant` is empty".to_owned()));
        }
        Ok(())
    }
}

/// Why one message failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Retrying cannot help: the dead-letter queue is where it belongs.
    #[error("poison message: {0}")]
    Poison(String),
    /// Retrying later may succeed.
    #[error("transient failure: {0}")]
    Transient(String),
}

/// One execution a message started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivered {
    pub workflow_id: uuid::Uuid,
    pub execution_id: uuid::Uuid,
}

/// Starts every workflow whose queue trigger matches `message`. `source` and `message_id` make
/// the starts' idempotency keys (`sqs:<id>` for SQS). Stops at the first failure: the starts
/// before it are kept, and a redelivery skips them (same keys).
pub async fn deliver(
    registry: &Registry,
    starter: &dyn Starter,
    source: &str,
    message_id: &str,
    message: &QueueMessage,
) -> Result<Vec<Delivered>, MessageError> {
    if message_id.is_empty() {
        return Err(MessageError::Poison("the message has no id".to_owned()));
    }
    message.check()?;
    let event = message.event.trim();
    let targets = registry
        .queue_targets(event, message.tenant.as_deref())
        .await
        .map_err(|e| MessageError::Transient(e.to_string()))?;
    if targets.is_empty() {
        tracing::info!(message = %message_id, event, "no workflow has a queue trigger for this event");
    }
    let input = message.input.clone().unwrap_or_else(|| json!({}));
    let mut started = Vec::with_capacity(targets.len());
    for t in &targets {
        let request = StartRequest {
            tenant: t.tenant_id.clone(),
            workflow_id: t.workflow_id,
            input: input.clone(),
            idempotency_key: Some(format!("{source}:{message_id}:{}", t.id)),
            started_by: format!("queue:{}", t.id),
        };
        match starter.start(request).await {
            Ok(s) => {
                tracing::info!(message = %message_id, workflow = %t.workflow_id, execution = %s.id, "execution started");
                if let Err(e) = registry.mark_fired(t.id, chrono::Utc::now()).await {
                    tracing::warn!(trigger = %t.id, error = %e, "cannot record the trigger's last fire time");
                }
                started.push(Delivered { workflow_id: t.workflow_id, execution_id: s.id });
            }
            Err(StartError::Rejected(why)) => {
                return Err(MessageError::Poison(format!("workflow {} refused the message: {why}", t.workflow_id)));
            }
            Err(StartError::Unavailable(why)) => return Err(MessageError::Transient(why)),
        }
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked() {
        let ok = QueueMessage::parse(r#"{"event": "order.created", "input": {"id": 1}, "tenant": "acme"}"#);
        assert_eq!(ok.map(|m| m.tenant), Ok(Some("acme".to_owned())));
        for bad in [
            "not json",
            "{}",
            r#"{"event": ""}"#,
            r#"{"event": "a\u0000b"}"#,
            r#"{"event": "x", "tenant": " "}"#,
            r#"{"event": "x", "extra": 1}"#,
        ] {
            assert!(matches!(QueueMessage::parse(bad), Err(MessageError::Poison(_))), "{bad}");
        }
        let long = format!(r#"{{"event": "{}"}}"#, "e".repeat(MAX_EVENT_NAME + 1));
        assert!(matches!(QueueMessage::parse(&long), Err(MessageError::Poison(_))));
    }
}
