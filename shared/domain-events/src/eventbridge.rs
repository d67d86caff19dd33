//! The EventBridge sink (AWS): `PutEvents` in batches of at most ten entries.

use aws_sdk_eventbridge::error::ProvideErrorMetadata as _;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};

use crate::{DomainEvent, Error, SOURCE, Sink};

/// Entries per `PutEvents` request: EventBridge's limit.
const MAX_ENTRIES: usize = 10;

/// Puts each event on an EventBridge bus: `Source` [`SOURCE`], `DetailType` the event's kind,
/// `Detail` the event's JSON, `Time` when it occurred. Only entries EventBridge accepted count as
/// put (`FailedEntryCount` and each entry's error are checked). Built once per process.
#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeSink {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    /// A client from the environment's AWS configuration (region, credentials, and
    /// `AWS_ENDPOINT_URL` for an emulator such as LocalStack) for the bus named `bus`
    /// (`WEFT_EVENT_BUS_NAME`: a name or an ARN).
    pub async fn connect(bus: impl Into<String>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::new(aws_sdk_eventbridge::Client::new(&config), bus)
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Puts one batch (at most [`MAX_ENTRIES`]); returns the ids EventBridge accepted.
    async fn put(&self, events: &[DomainEvent]) -> Result<Vec<i64>, Error> {
        let entries = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(e.kind.as_str())
                    .detail(e.to_json())
                    .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(e.occurred_at.timestamp_millis()))
                    .build()
            })
            .collect();
        let out = self.client.put_events().set_entries(Some(entries)).send().await.map_err(|err| {
            let code = err.code().unwrap_or_default().to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            match code.as_str() {
                "ResourceNotFoundException" | "AccessDeniedException" | "ValidationException" => {
                    Error::Rejected(format!("EventBridge PutEvents to {}: {code}: {message}", self.bus))
                }
                _ => Error::Unavailable(format!("EventBridge PutEvents to {}: {code}: {message} ({err:?})", self.bus)),
            }
        })?;
        Ok(accepted(events, out.failed_entry_count(), out.entries()))
    }
}

/// The ids of the `events` EventBridge accepted, from its answer: all of them when it reports no
/// failed entry and a result for each; otherwise those whose result (in the request's order) has
/// an event id and no error code. The others are logged and stay in the outbox.
fn accepted(events: &[DomainEvent], failed_entry_count: i32, results: &[PutEventsResultEntry]) -> Vec<i64> {
    if failed_entry_count == 0 && results.len() == events.len() {
        return events.iter().map(|e| e.id).collect();
    }
    let mut put = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        match results.get(i) {
            Some(r) if r.error_code().is_none() && r.event_id().is_some() => put.push(event.id),
            Some(r) => tracing::warn!(
                id = event.id,
                code = r.error_code().unwrap_or_default(),
                message = r.error_message().unwrap_or_default(),
                "EventBridge refused a domain event; it stays in the outbox"
            ),
            None => tracing::warn!(
                id = event.id,
                "EventBridge returned no result for a domain event; it stays in the outbox"
            ),
        }
    }
    put
}

#[async_trait::async_trait]
impl Sink for EventBridgeSink {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<i64>, Error> {
        let mut put = Vec::with_capacity(events.len());
        for batch in events.chunks(MAX_ENTRIES) {
            match self.put(batch).await {
                Ok(ids) => put.extend(ids),
                // Earlier batches went out: report them, the rest stay in the outbox.
                Err(err) if !put.is_empty() => {
                    tracing::warn!(%err, "EventBridge failed part way; the rest of the domain events stay in the outbox");
                    break;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(put)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: i64) -> Vec<DomainEvent> {
        (1..=n)
            .map(|id| DomainEvent {
                version: crate::SCHEMA_VERSION,
                id,
                kind: crate::Kind::WorkflowCreated,
                tenant_id: "acme".into(),
                occurred_at: chrono::Utc::now(),
                data: serde_json::json!({}),
            })
            .collect()
    }

    fn ok(id: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder().event_id(id).build()
    }

    fn refused(code: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder().error_code(code).error_message("no").build()
    }

    #[test]
    fn only_entries_eventbridge_accepted_count_as_put() {
        assert_eq!(accepted(&events(3), 0, &[ok("a"), ok("b"), ok("c")]), [1, 2, 3]);
        assert_eq!(
            accepted(&events(3), 2, &[refused("ThrottlingException"), ok("b"), refused("InternalFailure")]),
            [2]
        );
        // A result missing, or one with neither an id nor an error, is not put either.
        assert_eq!(accepted(&events(3), 1, &[ok("a"), PutEventsResultEntry::builder().build()]), [1]);
    }
}
