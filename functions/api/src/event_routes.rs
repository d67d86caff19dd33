//! Queue events: `POST /v1/events` starts every published workflow of the caller's tenant whose
//! `queue` trigger names the event, and the dead-letter queue's admin routes.
//!
//! Where the event goes is the [`EventQueue`] the state holds:
//! - [`SqsQueue`] (the Lambda with `WEFT_EVENTS_QUEUE_URL`): the event is sent to Weft's SQS
//!   queue as `{"event", "input", "tenant"}` and the trigger function starts the workflows
//!   (`202`, `delivery: "queued"`). Failed messages move to the dead-letter queue
//!   (`WEFT_DEAD_LETTER_QUEUE_URL`), which `GET /v1/admin/dead-letters` lists and
//!   `POST /v1/admin/dead-letters/redrive` sends back, both for the caller's tenant only: a
//!   message is the tenant's whose body names it.
//! - [`InProcess`] (`weft serve`, or no queue configured): the same consumer code
//!   ([`triggers::queue::deliver`]) runs in the request (`202`, `delivery: "in_process"`, with
//!   the executions started). There is no dead-letter queue: a refused input answers `422`, an
//!   unavailable database `503`, and the admin routes answer `409`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use triggers::queue::{Delivered, MessageError, QueueMessage};
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json, Query};
use crate::routes::{AuthErrors, BodyErrors};
use auth::Role;

/// The largest message body SQS takes (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Why the queue could not take or give a message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The message can never be delivered (the in-process consumer refused it).
    #[error("{0}")]
    Refused(String),
    /// The queue (or the database behind the in-process consumer) is unavailable; retrying helps.
    #[error("{0}")]
    Unavailable(String),
    /// This deployment has no dead-letter queue.
    #[error("this deployment has no dead-letter queue: {0}")]
    NoDeadLetterQueue(&'static str),
}

/// What happened to a sent event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Sent {
    pub message_id: String,
    /// `queued` (on SQS: the trigger function starts the workflows) or `in_process`.
    pub delivery: &'static str,
    /// The executions started (in-process delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub executions: Option<Vec<Delivered>>,
}

/// A message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub message_id: String,
    /// The body's `event`, if it parses.
    pub event: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// How many times the main queue delivered it before it moved here.
    pub receive_count: Option<u64>,
    /// When it was first sent (RFC 3339).
    pub sent_at: Option<String>,
}

/// Where events go. Implementations: [`SqsQueue`], [`InProcess`].
#[async_trait::async_trait]
pub trait EventQueue: Send + Sync {
    async fn send(&self, message: &QueueMessage) -> Result<Sent, QueueError>;
    /// Up to `max` dead-lettered messages of `tenant`, without consuming them.
    async fn dead_letters(&self, tenant: &str, max: usize) -> Result<Vec<DeadLetter>, QueueError>;
    /// Sends `tenant`'s dead-lettered messages (those in `ids`, or all) back to the queue.
    async fn redrive(&self, tenant: &str, ids: Option<&[String]>) -> Result<Vec<String>, QueueError>;
}

/// The same consumer code as the trigger function, run in the request.
pub struct InProcess {
    registry: triggers::Registry,
    starter: Arc<dyn triggers::Starter>,
}

impl InProcess {
    pub fn new(registry: triggers::Registry, starter: Arc<dyn triggers::Starter>) -> Self {
        Self { registry, starter }
    }
}

#[async_trait::async_trait]
impl EventQueue for InProcess {
    async fn send(&self, message: &QueueMessage) -> Result<Sent, QueueError> {
        let id = Uuid::new_v4().to_string();
        match triggers::queue::deliver(&self.registry, &*self.starter, "event", &id, message).await {
            Ok(started) => Ok(Sent { message_id: id, delivery: "in_process", executions: Some(started) }),
            Err(MessageError::Poison(why)) => Err(QueueError::Refused(why)),
            Err(MessageError::Transient(why)) => Err(QueueError::Unavailable(why)),
        }
    }

    async fn dead_letters(&self, _: &str, _: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Err(QueueError::NoDeadLetterQueue("events are delivered in-process (no WEFT_EVENTS_QUEUE_URL)"))
    }

    async fn redrive(&self, _: &str, _: Option<&[String]>) -> Result<Vec<String>, QueueError> {
        Err(QueueError::NoDeadLetterQueue("events are delivered in-process (no WEFT_EVENTS_QUEUE_URL)"))
    }
}

/// Weft's SQS queue and its dead-letter queue.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    dead_letter_url: Option<String>,
}

/// How many ReceiveMessage calls one listing or redrive makes at most (10 messages each).
const MAX_RECEIVES: usize = 10;

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, dead_letter_url: Option<String>) -> Self {
        Self { client, queue_url, dead_letter_url }
    }

    /// `WEFT_EVENTS_QUEUE_URL` and `WEFT_DEAD_LETTER_QUEUE_URL` with the AWS configuration of the
    /// environment (`AWS_ENDPOINT_URL` for LocalStack); `None` without a queue URL.
    pub async fn from_env() -> Option<Self> {
        let var = |n: &str| std::env::var(n).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let queue_url = var("WEFT_EVENTS_QUEUE_URL")?;
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Some(Self::new(aws_sdk_sqs::Client::new(&config), queue_url, var("WEFT_DEAD_LETTER_QUEUE_URL")))
    }

    /// Sends `body` to the events queue; returns its message id.
    async fn send_body(&self, body: String) -> Result<String, QueueError> {
        let sent = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(sqs_error("SendMessage", &e)))?;
        Ok(sent.message_id.unwrap_or_default())
    }

    fn dead_letter_url(&self) -> Result<&str, QueueError> {
        self.dead_letter_url.as_deref().ok_or(QueueError::NoDeadLetterQueue("WEFT_DEAD_LETTER_QUEUE_URL is not set"))
    }

    /// Receives up to `max` of `tenant`'s dead letters, hidden for `hide` seconds (0: listing).
    /// Other tenants' messages met on the way are made visible again at once.
    async fn receive_mine(
        &self,
        tenant: &str,
        max: usize,
        hide: i32,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, QueueError> {
        let url = self.dead_letter_url()?;
        let mut mine: Vec<aws_sdk_sqs::types::Message> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_RECEIVES {
            let got = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(hide)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| QueueError::Unavailable(sqs_error("ReceiveMessage", &e)))?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            let mut fresh = false;
            for m in messages {
                let Some(id) = m.message_id.clone() else { continue };
                let first_time = seen.insert(id);
                fresh |= first_time;
                let owner =
                    m.body.as_deref().and_then(|b| serde_json::from_str::<QueueMessage>(b).ok()).and_then(|q| q.tenant);
                let keep = first_time && owner.as_deref() == Some(tenant) && mine.len() < max;
                // Back in view at once unless kept hidden for a redrive: another tenant's message,
                // one beyond `max`, one received again by this loop (the receive hid it anew).
                if !keep
                    && hide > 0
                    && let Some(handle) = &m.receipt_handle
                {
                    let _ = self
                        .client
                        .change_message_visibility()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await;
                }
                if keep {
                    mine.push(m);
                }
            }
            if !fresh || mine.len() >= max {
                break;
            }
        }
        Ok(mine)
    }
}

fn sqs_error<E: std::fmt::Debug + aws_sdk_sqs::error::ProvideErrorMetadata>(call: &str, e: &E) -> String {
    format!("SQS {call}: {}: {}", e.code().unwrap_or("unavailable"), e.message().unwrap_or("no message"))
}

#[async_trait::async_trait]
impl EventQueue for SqsQueue {
    async fn send(&self, message: &QueueMessage) -> Result<Sent, QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError::Refused(e.to_string()))?;
        let message_id = self.send_body(body).await?;
        Ok(Sent { message_id, delivery: "queued", executions: None })
    }

    async fn dead_letters(&self, tenant: &str, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as A;
        let messages = self.receive_mine(tenant, max, 0).await?;
        Ok(messages
            .into_iter()
            .map(|m| {
                let parsed = m.body.as_deref().and_then(|b| serde_json::from_str::<QueueMessage>(b).ok());
                let attr = |a: A| m.attributes.as_ref().and_then(|at| at.get(&a)).cloned();
                DeadLetter {
                    message_id: m.message_id.clone().unwrap_or_default(),
                    event: parsed.as_ref().map(|p| p.event.clone()),
                    input: parsed.and_then(|p| p.input),
                    receive_count: attr(A::ApproximateReceiveCount).and_then(|c| c.parse().ok()),
                    sent_at: attr(A::SentTimestamp)
                        .and_then(|ms| ms.parse::<i64>().ok())
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.to_rfc3339()),
                }
            })
            .collect())
    }

    async fn redrive(&self, tenant: &str, ids: Option<&[String]>) -> Result<Vec<String>, QueueError> {
        let url = self.dead_letter_url()?.to_owned();
        let mut moved = Vec::new();
        for m in self.receive_mine(tenant, 100, 30).await? {
            let (Some(id), Some(body), Some(handle)) = (&m.message_id, &m.body, &m.receipt_handle) else { continue };
            if ids.is_some_and(|wanted| !wanted.contains(id)) {
                let _ = self
                    .client
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await;
                continue;
            }
            // Sent before it is deleted, so a failure in between never loses it: it is then in
            // both queues, the route answers 503, and a second redrive would deliver it twice
            // (the copy has a new message id, hence new idempotency keys).
            self.send_body(body.clone()).await?;
            self.client
                .delete_message()
                .queue_url(&url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| QueueError::Unavailable(sqs_error("DeleteMessage", &e)))?;
            moved.push(id.clone());
        }
        Ok(moved)
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Refused(why) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "event_refused", why),
            QueueError::Unavailable(why) => ApiError::unavailable(why),
            e @ QueueError::NoDeadLetterQueue(_) => {
                ApiError::new(StatusCode::CONFLICT, "no_dead_letter_queue", e.to_string())
            }
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// The event name the workflows' `queue` triggers match (1 to 256 characters).
    pub event: String,
    /// The started executions' input (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventResponse {
    pub event: String,
    #[serde(flatten)]
    pub sent: Sent,
}

/// `POST /v1/events`
#[utoipa::path(post, path = "/v1/events", tag = "triggers", security(("bearer" = [])), request_body = EventRequest,
    responses(
        (status = 202, description = "queued, or delivered in-process (with the executions started)", body = EventResponse),
        (status = 413, description = "the message is over SQS' 256 KiB", body = ErrorBody),
        (status = 422, description = "a workflow refused the payload (in-process delivery)", body = ErrorBody),
        (status = 503, description = "the queue or the database is unavailable; retrying helps", body = ErrorBody),
        BodyErrors, AuthErrors))]
pub async fn send_event(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(body): Json<EventRequest>,
) -> Result<(StatusCode, axum::Json<EventResponse>), ApiError> {
    caller.require(Role::Editor)?;
    let message =
        QueueMessage { event: body.event.trim().to_owned(), input: body.payload, tenant: Some(caller.tenant.clone()) };
    message.check().map_err(|e| match e {
        MessageError::Poison(why) | MessageError::Transient(why) => ApiError::bad_request(format!("event: {why}")),
    })?;
    let size = serde_json::to_vec(&message).map_err(ApiError::internal)?.len();
    if size > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the event is {size} bytes as a queue message; the limit is {MAX_MESSAGE_BYTES}"),
        ));
    }
    let sent = state.event_queue().send(&message).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(EventResponse { event: message.event, sent })))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// At most this many (1 to 100, default 10).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetter>,
}

/// `GET /v1/admin/dead-letters` (admins): the caller's tenant's messages only.
#[utoipa::path(get, path = "/v1/admin/dead-letters", tag = "triggers", params(DeadLetterQuery), security(("bearer" = [])),
    responses((status = 200, body = DeadLetterList),
        (status = 400, description = "invalid query", body = ErrorBody),
        (status = 409, description = "this deployment has no dead-letter queue", body = ErrorBody),
        (status = 503, description = "the queue is unavailable; retrying helps", body = ErrorBody), AuthErrors))]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<DeadLetterQuery>,
) -> Result<axum::Json<DeadLetterList>, ApiError> {
    caller.require(Role::Admin)?;
    let limit = match q.limit {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(ApiError::bad_request("limit: must be from 1 to 100")),
    };
    let items = state.event_queue().dead_letters(&caller.tenant, limit).await?;
    Ok(axum::Json(DeadLetterList { items }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// Only these messages (default: all of the tenant's).
    pub message_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedriveResponse {
    /// The messages sent back to the queue.
    pub redriven: Vec<String>,
}

/// `POST /v1/admin/dead-letters/redrive` (admins): the caller's tenant's messages only.
#[utoipa::path(post, path = "/v1/admin/dead-letters/redrive", tag = "triggers", security(("bearer" = [])),
    request_body = RedriveRequest,
    responses((status = 200, body = RedriveResponse),
        (status = 409, description = "this deployment has no dead-letter queue", body = ErrorBody),
        (status = 503, description = "the queue is unavailable; retrying helps", body = ErrorBody), BodyErrors, AuthErrors))]
pub async fn redrive_dead_letters(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(body): Json<RedriveRequest>,
) -> Result<axum::Json<RedriveResponse>, ApiError> {
    caller.require(Role::Admin)?;
    if body.message_ids.as_ref().is_some_and(|ids| ids.len() > 100) {
        return Err(ApiError::bad_request("message_ids: at most 100"));
    }
    let redriven = state.event_queue().redrive(&caller.tenant, body.message_ids.as_deref()).await?;
    Ok(axum::Json(RedriveResponse { redriven }))
}
