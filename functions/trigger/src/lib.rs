//! The `trigger` function: consumes SQS messages and starts the executions of the workflows whose
//! `queue` trigger matches each message's event, and, on EventBridge's scheduled event (every
//! minute), fires the due `cron` triggers ([`executions::schedules::tick`], as `weft serve`'s
//! scheduler does).
//!
//! A message body is `{"event": "<name>", "input"?: <any JSON>, "tenant"?: "<id>"}`: the
//! consumer code is [`triggers::queue`], shared with `weft serve`'s in-process `POST /v1/events`.
//! Each start carries the idempotency key `sqs:<message id>:<trigger id>`, so a redelivered
//! message never starts a workflow twice.
//!
//! Batches report partial failures (`ReportBatchItemFailures`): only the failed messages' ids are
//! returned, and SQS redelivers just those. Dead-letter path: a *poison* message (not JSON, no
//! `event`, or an input the workflow rejects) cannot succeed on retry; it is logged at error level
//! with its receive count and reported as failed like a transient failure, so the queue's redrive
//! policy (`maxReceiveCount`) moves it to the dead-letter queue. A message that matches no trigger
//! succeeds (it is logged and dropped: nothing wants it).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
pub use triggers::queue::{MessageError, QueueMessage};
use triggers::{Registry, Starter};

/// How long a tick may spend draining the domain event outbox.
const EVENTS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one invocation of the function was given.
#[derive(Debug)]
pub enum Invocation {
    /// A batch from the SQS event source mapping.
    Queue(SqsEvent),
    /// EventBridge's scheduled rule (`"detail-type": "Scheduled Event"`).
    Schedule,
}

impl Invocation {
    /// Tells the two apart: an SQS batch has `Records`; a scheduled event has `detail-type`.
    pub fn from_event(event: Value) -> Result<Self, String> {
        if event.get("Records").is_some() {
            return serde_json::from_value(event).map(Self::Queue).map_err(|e| format!("not an SQS batch: {e}"));
        }
        match event.get("detail-type").and_then(Value::as_str) {
            Some("Scheduled Event") => Ok(Self::Schedule),
            _ => Err("expected an SQS batch (`Records`) or a scheduled event (`detail-type`)".to_owned()),
        }
    }
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The event is neither an SQS batch nor a scheduled event: retrying cannot help.
    #[error("unexpected event: {0}")]
    Event(String),
    /// The schedule scan failed (the database); the next minute's tick fires what is due.
    #[error("scheduler tick failed: {0}")]
    Tick(#[from] triggers::Error),
}

#[derive(Clone)]
pub struct TriggerFunction {
    registry: Registry,
    starter: Arc<dyn Starter>,
    /// Where the minute tick drains the domain event outbox (`WEFT_EVENT_BUS_NAME`): rows the
    /// api's or the recorder's best-effort drains left behind.
    events: Option<Arc<dyn domain_events::Sink>>,
}

/// The function as the Lambda runs it: the trigger registry and the execution domain on one
/// pool, starting executions on Step Functions. It needs no secrets key (it never touches
/// webhook secrets) and no Redis (it only starts executions; the recorder records them).
pub async fn connect(config: &config::ExecutionsConfig) -> Result<TriggerFunction, executions::ConnectError> {
    let executions = executions::connect(config, false).await?;
    let registry = Registry::without_secrets(executions.store().pool().clone());
    let function = TriggerFunction::new(registry, Arc::new(executions));
    Ok(match &config.event_bus_name {
        Some(bus) => function.with_event_sink(Arc::new(domain_events::EventBridgeSink::connect(bus.clone()).await)),
        None => function,
    })
}

impl TriggerFunction {
    pub fn new(registry: Registry, starter: Arc<dyn Starter>) -> Self {
        Self { registry, starter, events: None }
    }

    /// Drains the domain event outbox into `sink` on every minute tick.
    pub fn with_event_sink(mut self, sink: Arc<dyn domain_events::Sink>) -> Self {
        self.events = Some(sink);
        self
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
        let parsed = QueueMessage::parse(message.body.as_deref().unwrap_or_default())?;
        let started = triggers::queue::deliver(&self.registry, &*self.starter, "sqs", id, &parsed).await?;
        Ok(started.len())
    }

    /// One invocation, whichever event it is: an SQS batch answers with its failed messages, a
    /// scheduled event with how many due times fired (an error makes EventBridge retry it).
    pub async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
        match Invocation::from_event(event).map_err(InvokeError::Event)? {
            Invocation::Queue(batch) => {
                let response = self.handle(batch).await;
                serde_json::to_value(response).map_err(|e| InvokeError::Event(e.to_string()))
            }
            Invocation::Schedule => {
                let fired = self.tick(chrono::Utc::now()).await;
                if let Some(sink) = &self.events {
                    domain_events::drain_best_effort(self.registry.pool(), &**sink, EVENTS_WAIT).await;
                }
                Ok(serde_json::json!({ "fired": fired? }))
            }
        }
    }

    /// Fires the cron triggers due at `now`; returns how many.
    pub async fn tick(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, triggers::Error> {
        executions::schedules::tick(&self.registry, &*self.starter, now).await
    }
}
