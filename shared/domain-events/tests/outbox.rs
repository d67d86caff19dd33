//! The outbox and the relay against a real Postgres (a fresh database per test) and a real Redis
//! (a stream of each test's own): events exist exactly when their write commits, the relay puts
//! them on the stream in id order in the documented schema, a failing sink leaves them for the
//! next drain, and concurrent relays publish each row once.
//!
//! Needs `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL`; without them each test skips (a
//! `SKIPPED:` line), unless `WEFT_TEST_STRICT=1`, when it fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain_events::{
    Batch, DomainEvent, Error, Event, ExecutionData, Kind, NodeData, RedisStreamSink, Sink, WorkflowData,
};
use serde_json::{Value, json};
use sqlx::Row as _;
use uuid::Uuid;

async fn database() -> Option<sqlx::PgPool> {
    let admin = migrations::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let url = migrations::testing::create_database(&admin).await.expect("fresh database");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    migrations::MIGRATOR.run(&pool).await.expect("migrate");
    Some(pool)
}

/// A stream sink on a stream of this test's own, and a plain connection to read it.
async fn redis_sink() -> Option<(RedisStreamSink, redis::aio::MultiplexedConnection)> {
    let url = migrations::testing::service_url("WEFT_TEST_REDIS_URL")?;
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let manager = client.get_connection_manager().await.expect("redis");
    let reader = client.get_multiplexed_async_connection().await.expect("redis");
    let key = format!("test:domain-events:{}", Uuid::new_v4().simple());
    Some((RedisStreamSink::with_key(manager, key), reader))
}

/// The `event` field of every entry of the stream, parsed.
async fn stream(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<Value> {
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg(key).arg("-").arg("+").query_async(conn).await.expect("XRANGE");
    entries
        .into_iter()
        .map(|(_, fields)| {
            assert_eq!(fields.len(), 1, "one field per entry: {fields:?}");
            assert_eq!(fields[0].0, "event");
            serde_json::from_str(&fields[0].1).expect("event JSON")
        })
        .collect()
}

fn workflow(kind: fn(WorkflowData) -> Event, id: Uuid, version: Option<i32>) -> Event {
    kind(WorkflowData { workflow_id: id, name: Some("orders".into()), version })
}

async fn unpublished(pool: &sqlx::PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM domain_events WHERE published_at IS NULL ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("outbox")
}

/// Fails every publish, counting the calls.
#[derive(Default)]
struct Failing(AtomicUsize);

#[async_trait::async_trait]
impl Sink for Failing {
    async fn publish(&self, _events: &[DomainEvent]) -> Result<Vec<i64>, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Error::Unavailable("the test's sink is down".into()))
    }
}

#[tokio::test]
async fn an_event_exists_exactly_when_its_transaction_commits() {
    let Some(pool) = database().await else { return };
    let id = Uuid::new_v4();
    let mut tx = pool.begin().await.expect("begin");
    domain_events::record(&mut tx, "acme", &workflow(Event::WorkflowCreated, id, None)).await.expect("record");
    tx.rollback().await.expect("rollback");
    assert!(unpublished(&pool).await.is_empty(), "a rolled-back write leaves no event");

    let mut tx = pool.begin().await.expect("begin");
    let first =
        domain_events::record(&mut tx, "acme", &workflow(Event::WorkflowCreated, id, None)).await.expect("record");
    tx.commit().await.expect("commit");
    let row =
        sqlx::query("SELECT tenant_id, kind, detail, published_at IS NULL AS pending FROM domain_events WHERE id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!(row.get::<String, _>("tenant_id"), "acme");
    assert_eq!(row.get::<String, _>("kind"), "WorkflowCreated");
    assert_eq!(row.get::<Value, _>("detail"), json!({"workflow_id": id, "name": "orders"}));
    assert!(row.get::<bool, _>("pending"));
}

#[tokio::test]
async fn the_relay_puts_events_on_the_stream_in_order_in_the_documented_schema() {
    let Some(pool) = database().await else { return };
    let Some((sink, mut reader)) = redis_sink().await else { return };
    let (w, e) = (Uuid::new_v4(), Uuid::new_v4());
    let events = [
        ("acme", workflow(Event::WorkflowCreated, w, None)),
        ("acme", workflow(Event::WorkflowPublished, w, Some(1))),
        ("globex", workflow(Event::WorkflowCreated, Uuid::new_v4(), None)),
        ("acme", Event::execution(e, w, "RUNNING", None).expect("started")),
        (
            "acme",
            Event::NodeFailed(NodeData {
                execution_id: e,
                node_id: "fetch".into(),
                error: Some("Http.Timeout".into()),
            }),
        ),
        ("acme", Event::execution(e, w, "FAILED", Some("Http.Timeout")).expect("failed")),
    ];
    let mut ids = Vec::new();
    for (tenant, event) in &events {
        let mut conn = pool.acquire().await.expect("conn");
        ids.push(domain_events::record(&mut conn, tenant, event).await.expect("record"));
    }

    let drained = domain_events::drain_all(&pool, &sink).await.expect("drain");
    assert_eq!((drained.picked, drained.published), (6, 6));
    assert!(unpublished(&pool).await.is_empty());
    let published = stream(&mut reader, sink.key()).await;
    assert_eq!(published.len(), 6);
    for (i, (wire, (tenant, event))) in published.iter().zip(&events).enumerate() {
        let keys: Vec<&str> = wire.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["version", "id", "type", "tenant_id", "occurred_at", "data"], "{wire}");
        assert_eq!(wire["version"], 1);
        assert_eq!(wire["id"], ids[i], "in id order");
        assert_eq!(wire["type"], event.kind().as_str());
        assert_eq!(wire["tenant_id"], *tenant);
        let occurred = wire["occurred_at"].as_str().expect("occurred_at");
        assert!(chrono::DateTime::parse_from_rfc3339(occurred).is_ok(), "RFC 3339: {occurred}");
        let parsed: DomainEvent = serde_json::from_value(wire.clone()).expect("the schema parses");
        assert_eq!(&parsed.event().expect("typed"), event);
    }
    assert_eq!(
        published[5]["data"],
        json!({"execution_id": e, "workflow_id": w, "status": "FAILED", "error": "Http.Timeout"})
    );

    // Published rows are not published again.
    assert_eq!(domain_events::drain_all(&pool, &sink).await.expect("drain").picked, 0);
    assert_eq!(stream(&mut reader, sink.key()).await.len(), 6);
}

#[tokio::test]
async fn a_failing_sink_leaves_the_events_for_the_next_drain() {
    let Some(pool) = database().await else { return };
    let Some((sink, mut reader)) = redis_sink().await else { return };
    let mut conn = pool.acquire().await.expect("conn");
    for _ in 0..3 {
        domain_events::record(&mut conn, "acme", &workflow(Event::WorkflowUpdated, Uuid::new_v4(), None))
            .await
            .expect("record");
    }
    drop(conn);
    let failing = Failing::default();
    let err = domain_events::drain(&pool, &failing, 10).await.expect_err("the sink fails");
    assert!(err.is_retryable() && err.to_string().contains("retrying is safe"), "{err}");
    assert_eq!(
        domain_events::drain_best_effort(&pool, &failing, Duration::from_secs(5)).await,
        None,
        "logged, not returned"
    );
    assert_eq!(failing.0.load(Ordering::SeqCst), 2);
    assert_eq!(unpublished(&pool).await.len(), 3, "nothing is marked published");

    let drained = domain_events::drain(&pool, &sink, 10).await.expect("drain");
    assert_eq!((drained.picked, drained.published), (3, 3));
    assert_eq!(stream(&mut reader, sink.key()).await.len(), 3);
    assert!(unpublished(&pool).await.is_empty());
}

/// Puts only the events of even ids.
struct EvenOnly;

#[async_trait::async_trait]
impl Sink for EvenOnly {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<i64>, Error> {
        Ok(events.iter().map(|e| e.id).filter(|id| id % 2 == 0).collect())
    }
}

#[tokio::test]
async fn only_what_the_sink_put_is_marked_published() {
    let Some(pool) = database().await else { return };
    let mut conn = pool.acquire().await.expect("conn");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            domain_events::record(&mut conn, "acme", &workflow(Event::WorkflowDeleted, Uuid::new_v4(), None))
                .await
                .expect("record"),
        );
    }
    drop(conn);
    let drained = domain_events::drain_all(&pool, &EvenOnly).await.expect("drain");
    assert_eq!((drained.picked, drained.published, drained.failed()), (4, 2, 2));
    let odd: Vec<i64> = ids.into_iter().filter(|id| id % 2 == 1).collect();
    assert_eq!(unpublished(&pool).await, odd);
}

/// Holds each publish for a while, recording what it was given.
#[derive(Default)]
struct Slow(std::sync::Mutex<Vec<i64>>);

#[async_trait::async_trait]
impl Sink for Slow {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Vec<i64>, Error> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        self.0.lock().expect("lock").extend(&ids);
        Ok(ids)
    }
}

#[tokio::test]
async fn concurrent_relays_publish_each_event_once() {
    let Some(pool) = database().await else { return };
    let mut conn = pool.acquire().await.expect("conn");
    for _ in 0..30 {
        domain_events::record(&mut conn, "acme", &workflow(Event::WorkflowCreated, Uuid::new_v4(), None))
            .await
            .expect("record");
    }
    drop(conn);
    let sink = Arc::new(Slow::default());
    // Three relays at once, each taking at most 10 rows: the locked rows are skipped, not waited
    // for, so together they take every row once.
    let drains = (0..3).map(|_| {
        let (pool, sink) = (pool.clone(), Arc::clone(&sink));
        tokio::spawn(async move { domain_events::drain(&pool, sink.as_ref(), 10).await })
    });
    let mut picked = 0;
    for drain in drains {
        picked += drain.await.expect("task").expect("drain").picked;
    }
    let mut seen = sink.0.lock().expect("lock").clone();
    let all = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!((picked, all, seen.len()), (30, 30, 30), "each row taken and published once");
    assert!(unpublished(&pool).await.is_empty());
}

#[tokio::test]
async fn a_batch_in_a_cte_is_recorded_only_when_the_write_writes() {
    let Some(pool) = database().await else { return };
    sqlx::query("CREATE TABLE things (id int PRIMARY KEY, tenant_id text NOT NULL, done bool NOT NULL DEFAULT false)")
        .execute(&pool)
        .await
        .expect("table");
    sqlx::query("INSERT INTO things (id, tenant_id) VALUES (1, 'acme')").execute(&pool).await.expect("row");
    let (e, w) = (Uuid::new_v4(), Uuid::new_v4());
    let mut batch = Batch::new();
    batch.push(Event::NodeSucceeded(NodeData { execution_id: e, node_id: "a".into(), error: None }));
    batch.push(Event::ExecutionSucceeded(ExecutionData {
        execution_id: e,
        workflow_id: w,
        status: "SUCCEEDED".into(),
        error: None,
    }));
    let finish = format!(
        "WITH upd AS (UPDATE things SET done = true WHERE id = 1 AND NOT done RETURNING tenant_id), ev AS ({}) \
         SELECT count(*) FROM upd",
        domain_events::insert_sql("upd", "upd.tenant_id", "$1")
    );
    for expected in [1i64, 0] {
        let written: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(finish.clone()))
            .bind(batch.to_param())
            .fetch_one(&pool)
            .await
            .expect("write");
        assert_eq!(written, expected);
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, kind FROM domain_events ORDER BY id").fetch_all(&pool).await.expect("outbox");
    assert_eq!(
        rows,
        [("acme".to_owned(), "NodeSucceeded".to_owned()), ("acme".to_owned(), "ExecutionSucceeded".to_owned())],
        "once, in the batch's order, with the row's tenant"
    );
    // A filter on the kind keeps the others out.
    let only_nodes = format!(
        "WITH upd AS (SELECT tenant_id FROM things WHERE id = 1), ev AS ({}) SELECT count(*) FROM upd",
        domain_events::insert_sql_where(
            "upd",
            "upd.tenant_id",
            "$1",
            &format!("{} = 'NodeSucceeded'", domain_events::KIND_SQL)
        )
    );
    sqlx::query(sqlx::AssertSqlSafe(only_nodes)).bind(batch.to_param()).execute(&pool).await.expect("write");
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM domain_events ORDER BY id").fetch_all(&pool).await.expect("kinds");
    assert_eq!(kinds, ["NodeSucceeded", "ExecutionSucceeded", "NodeSucceeded"]);
    assert_eq!(Kind::parse(&kinds[1]), Some(Kind::ExecutionSucceeded));
}
