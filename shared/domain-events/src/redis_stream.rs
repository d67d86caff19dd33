//! The Redis stream sink (`weft serve`): one `XADD` per event, pipelined in one round trip.

use crate::{DomainEvent, Error, Sink};

/// The stream `weft serve` publishes to. One stream for every tenant (each entry names its
/// tenant), like the EventBridge bus in AWS: it is for Weft's operators' consumers, not tenants.
pub const STREAM_KEY: &str = "weft:domain-events";

/// Entries the stream keeps (approximately: `MAXLEN ~`).
const MAXLEN: u64 = 10_000;

/// Appends each event to a Redis stream as an entry with one field, `event`: the event's JSON
/// ([`DomainEvent::to_json`]), with Redis' own entry id (`*`).
#[derive(Clone)]
pub struct RedisStreamSink {
    redis: redis::aio::ConnectionManager,
    key: String,
}

impl RedisStreamSink {
    /// Publishes to [`STREAM_KEY`] through `redis` (a connection shared with other users: the
    /// sink sends no blocking command).
    pub fn new(redis: redis::aio::ConnectionManager) -> Self {
        Self::with_key(redis, STREAM_KEY)
    }

    /// Publishes to the stream `key` instead (tests use one of their own).
    pub fn with_key(redis: redis::aio::ConnectionManager, key: impl Into<String>) -> Self {
        Self { redis, key: key.into() }
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

#[async_trait::async_trait]
impl Sink for RedisStreamSink {
    /// All or nothing as far as the relay knows: a failed round trip may have added some entries,
    /// which are then added again (consumers deduplicate by `id`).
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<i64>, Error> {
        let mut pipe = redis::pipe();
        for event in events {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(MAXLEN)
                .arg("*")
                .arg("event")
                .arg(event.to_json());
        }
        let mut redis = self.redis.clone();
        let ids: Vec<String> =
            pipe.query_async(&mut redis).await.map_err(|e| Error::Unavailable(format!("Redis: {e}")))?;
        if ids.len() != events.len() {
            return Err(Error::Unavailable(format!("Redis answered {} of {} XADDs", ids.len(), events.len())));
        }
        Ok(events.iter().map(|e| e.id).collect())
    }
}
