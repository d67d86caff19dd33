//! The relay: unpublished outbox rows to a [`Sink`], marked published once the sink put them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row as _;

use crate::{DomainEvent, Error, Kind, SCHEMA_VERSION};

/// Where events are published (EventBridge, a Redis stream, or a test's own).
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Publishes `events` (in id order) and returns the ids of those it put, which may be fewer
    /// than given: the others stay in the outbox for the next drain (the sink logs why). `Err`
    /// when it cannot tell that any was put.
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<i64>, Error>;
}

/// What a drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Unpublished rows taken from the outbox.
    pub picked: usize,
    /// Of those, the ones the sink put (now marked published).
    pub published: usize,
}

impl Drained {
    /// Rows taken but not put: they stay in the outbox.
    pub fn failed(&self) -> usize {
        self.picked - self.published
    }
}

impl std::ops::AddAssign for Drained {
    fn add_assign(&mut self, other: Self) {
        self.picked += other.picked;
        self.published += other.published;
    }
}

/// Publishes up to `limit` unpublished events, oldest id first, in one transaction: the rows are
/// locked (`FOR UPDATE SKIP LOCKED`: concurrent relays take other rows), handed to `sink`, and
/// those it put are marked published before the commit. On a sink failure nothing is marked and
/// the error is returned; the rows are taken again by the next drain.
pub async fn drain(pool: &sqlx::PgPool, sink: &dyn Sink, limit: i64) -> Result<Drained, Error> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, tenant_id, kind, detail, created_at FROM domain_events \
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit.max(1))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Drained::default());
    }
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let kind: String = row.try_get("kind")?;
        // Only `record` and `insert_sql` write the outbox, always with a known kind; a row of a
        // newer writer's kind waits for a relay that knows it.
        let Some(kind) = Kind::parse(&kind) else {
            tracing::error!(id, kind, "a domain event of an unknown kind stays unpublished");
            continue;
        };
        events.push(DomainEvent {
            version: SCHEMA_VERSION,
            id,
            kind,
            tenant_id: row.try_get("tenant_id")?,
            occurred_at: row.try_get("created_at")?,
            data: row.try_get("detail")?,
        });
    }
    let put = match events.is_empty() {
        true => Vec::new(),
        false => match sink.publish(&events).await {
            Ok(put) => put,
            Err(err) => {
                // Rolled back now, not when the dropped transaction's connection is next used:
                // until then its locks would hide the rows from the next drain.
                tx.rollback().await?;
                return Err(err);
            }
        },
    };
    if !put.is_empty() {
        sqlx::query("UPDATE domain_events SET published_at = now() WHERE id = ANY($1)")
            .bind(&put)
            .execute(&mut *tx)
            .await?;
    }
    // A failure here leaves the rows unpublished although the sink has them: they are published
    // again (at least once; consumers deduplicate by id).
    tx.commit().await?;
    Ok(Drained { picked: rows.len(), published: put.len() })
}

/// Rows one drain of [`drain_all`] takes.
const BATCH: i64 = 100;
/// Drains [`drain_all`] runs at most, so that a steady stream of writes cannot keep it forever.
const MAX_ROUNDS: usize = 50;

/// Drains until the outbox is empty, a drain puts fewer rows than it took, or 5,000 rows went
/// out. What the Lambdas call after their writes (and the trigger function on its minute tick).
pub async fn drain_all(pool: &sqlx::PgPool, sink: &dyn Sink) -> Result<Drained, Error> {
    let mut total = Drained::default();
    for _ in 0..MAX_ROUNDS {
        let drained = drain(pool, sink, BATCH).await?;
        total += drained;
        if drained.picked < BATCH as usize || drained.failed() > 0 {
            break;
        }
    }
    Ok(total)
}

/// [`drain_all`] for a process that publishes after its own writes (the Lambdas): bounded by
/// `wait`, and best effort: a failure, or a sink slower than `wait`, is logged, never returned,
/// since the write it follows has committed and its events stay in the outbox for the next
/// drain. `None` when it did not finish.
pub async fn drain_best_effort(pool: &sqlx::PgPool, sink: &dyn Sink, wait: Duration) -> Option<Drained> {
    match tokio::time::timeout(wait, drain_all(pool, sink)).await {
        Ok(Ok(drained)) => {
            if drained.failed() > 0 {
                tracing::warn!(
                    failed = drained.failed(),
                    "domain events: some were not published; they stay in the outbox"
                );
            }
            Some(drained)
        }
        Ok(Err(err)) => {
            tracing::warn!(%err, retryable = err.is_retryable(), "domain events: not published; they stay in the outbox");
            None
        }
        Err(_) => {
            tracing::warn!("domain events: the sink took over {wait:?}; the rest stay in the outbox");
            None
        }
    }
}

/// How often a failing relay logs (the first failure, then at most once per this).
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The relay loop `weft serve` runs: [`drain_all`] forever, pausing `interval` after a round
/// that published nothing (or failed). Failures are logged (the first, then at most every 30 s)
/// and retried on the next round.
pub fn spawn(pool: sqlx::PgPool, sink: Arc<dyn Sink>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing_since: Option<Instant> = None;
        let mut last_log: Option<Instant> = None;
        loop {
            match drain_all(&pool, sink.as_ref()).await {
                Ok(drained) if drained.failed() == 0 => {
                    if failing_since.take().is_some() {
                        tracing::info!("domain events: the relay publishes again");
                    }
                    if drained.published > 0 {
                        continue;
                    }
                }
                outcome => {
                    failing_since.get_or_insert_with(Instant::now);
                    if last_log.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                        last_log = Some(Instant::now());
                        match outcome {
                            Ok(drained) => tracing::warn!(
                                failed = drained.failed(),
                                published = drained.published,
                                "domain events: some were not published; retrying"
                            ),
                            Err(err) => {
                                tracing::warn!(%err, retryable = err.is_retryable(), "domain events: relay failed; retrying")
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    })
}
