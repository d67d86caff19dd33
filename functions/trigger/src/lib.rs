//! The `trigger` function: consumes SQS messages and starts the executions of the workflows whose
//! `queue` trigger matches each message's event.
//!
//! A message body is `{"event": "<name>", "input"?: <any JSON>}`; every enabled `queue` trigger
//! with that event starts its workflow with `input` (default `{}`), through the same start path as
//! `POST /v1/workflows/{id}/executions` ([`triggers::Starter`]). Each start carries the idempotency
//! key `sqs:<message id>:<trigger id>`, so a redelivered message never starts a workflow twice.
//!
//! Batches report partial failures (`ReportBatchItemFailures`): only the failed messages' ids are
//! returned, and SQS redelivers just those. Dead-letter path: a *poison* message (not JSON, no
//! `event`, or an input the workflow rejects) cannot succeed on retry; it is logged at error level
//! with its receive count and reported as failed like a transient failure, so the queue's redrive
//! policy (`maxReceiveCount`) moves it to the dead-letter queue. A message that matches no trigger
//! succeeds (it is logged and dropped: nothing wants it).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use serde_json::{Value, json};
use triggers::{Registry, StartError, StartRequest, Starter};

/// What a message asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMessage {
    pub event: String,
    #[serde(default)]
    pub input: Option<Value>,
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

#[derive(Clone)]
pub struct TriggerFunction {
    registry: Registry,
    starter: Arc<dyn Starter>,
}

/// The function as the Lambda runs it: the trigger registry and the execution domain on one
/// pool, starting executions on Step Functions. It needs no secrets key (it never touches
/// webhook secrets) and no Redis (it only starts executions; the recorder records them).
pub async fn connect(config: &config::ExecutionsConfig) -> Result<TriggerFunction, executions::ConnectError> {
    let executions = executions::connect(config, false).await?;
    let registry = Registry::without_secrets(executions.store().pool().clone());
    Ok(TriggerFunction::new(registry, Arc::new(executions)))
}

impl TriggerFunction {
    pub fn new(registry: Registry, starter: Arc<dyn Starter>) -> Self {
        Self { registry, starter }
    }

    /// Handles a batch; the response lists exactly the messages that failed.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let receive_count = message.attributes.get("ApproximateReceiveCount").cloned().unwrap_or_default();
            match self.handle_message(message, &id).await {
                Ok(started) => tracing::info!(message = %id, started, "queue message handled"),
                Err(e @ MessageError::Poison(_)) => {
                    tracing::error!(message = %id, receive_count = %receive_count, error = %e,
                        "poison message; reported as failed so the redrive policy moves it to the dead-letter queue");
                    response.add_failure(id);
                }
                Err(e @ MessageError::Transient(_)) => {
                    tracing::warn!(message = %id, receive_count = %receive_count, error = %e, "queue message failed; SQS will redeliver it");
                    response.add_failure(id);
                }
            }
        }
        response
    }

    /// Starts every matching workflow; returns how many.
    pub async fn handle_message(&self, message: &SqsMessage, id: &str) -> Result<usize, MessageError> {
        if id.is_empty() {
            return Err(MessageError::Poison("the message has no messageId".to_owned()));
        }
        let body = message.body.as_deref().unwrap_or_default();
        let parsed: QueueMessage = serde_json::from_str(body).map_err(|e| {
            MessageError::Poison(format!("the body must be {{\"event\": \"<name>\", \"input\"?: ...}}: {e}"))
        })?;
        if parsed.event.trim().is_empty() {
            return Err(MessageError::Poison("`event` is empty".to_owned()));
        }
        let targets = self
            .registry
            .queue_targets(parsed.event.trim())
            .await
            .map_err(|e| MessageError::Transient(e.to_string()))?;
        if targets.is_empty() {
            tracing::info!(message = %id, event = %parsed.event, "no workflow has a queue trigger for this event");
        }
        let input = parsed.input.unwrap_or_else(|| json!({}));
        for t in &targets {
            let request = StartRequest {
                tenant: t.tenant_id.clone(),
                workflow_id: t.workflow_id,
                input: input.clone(),
                idempotency_key: Some(format!("sqs:{id}:{}", t.id)),
                started_by: format!("queue:{}", t.id),
            };
            match self.starter.start(request).await {
                Ok(started) => {
                    tracing::info!(message = %id, workflow = %t.workflow_id, execution = %started.id, "execution started");
                    if let Err(e) = self.registry.mark_fired(t.id, chrono::Utc::now()).await {
                        tracing::warn!(trigger = %t.id, error = %e, "cannot record the trigger's last fire time");
                    }
                }
                Err(StartError::Rejected(why)) => {
                    return Err(MessageError::Poison(format!("workflow {} refused the message: {why}", t.workflow_id)));
                }
                Err(StartError::Unavailable(why)) => return Err(MessageError::Transient(why)),
            }
        }
        Ok(targets.len())
    }
}
