//! The EventBridge sink against a real EventBridge: LocalStack at `WEFT_TEST_AWS_ENDPOINT_URL`
//! or, unset, `AWS_ENDPOINT_URL` (e.g. `http://127.0.0.1:4566`, what `localstack/up` prints). The test creates a bus of its own with a rule that sends Weft's
//! events to an SQS queue, drains the outbox to the bus and reads the events back from the queue
//! as EventBridge delivers them (`source`, `detail-type`, `detail`). (Refused entries are
//! covered by the sink's unit tests: LocalStack accepts events for any bus.)
//!
//! Needs one of those and `WEFT_TEST_DATABASE_URL`; without them it skips (a `SKIPPED:` line),
//! unless `WEFT_TEST_STRICT=1`, when it fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain_events::{Event, EventBridgeSink, NodeData, WorkflowData};
use serde_json::{Value, json};
use uuid::Uuid;

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint);
    if std::env::var_os("AWS_REGION").is_none() {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    // LocalStack accepts any credentials; the environment may have none.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new("test", "test", None, None, "test"));
    }
    loader.load().await
}

#[tokio::test]
async fn events_reach_an_sqs_target_through_a_real_bus() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty());
    let Some(endpoint) = std::env::var("WEFT_TEST_AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()).or(endpoint) else {
        test_skip::skip(
            "neither WEFT_TEST_AWS_ENDPOINT_URL nor AWS_ENDPOINT_URL is set (`localstack/up` starts LocalStack and prints it)",
        );
        return;
    };
    let Some(admin) = migrations::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let url = migrations::testing::create_database(&admin).await.expect("fresh database");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    migrations::MIGRATOR.run(&pool).await.expect("migrate");

    let config = sdk_config(&endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let suffix = Uuid::new_v4().simple().to_string();
    let bus = format!("weft-test-{suffix}");
    events.create_event_bus().name(&bus).send().await.expect("CreateEventBus");
    let queue_url = sqs.create_queue().queue_name(format!("weft-test-{suffix}")).send().await.expect("CreateQueue");
    let queue_url = queue_url.queue_url().expect("queue url").to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    let queue_arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("arn")
        .clone();
    events
        .put_rule()
        .name("weft-domain-events")
        .event_bus_name(&bus)
        .event_pattern(json!({"source": [domain_events::SOURCE]}).to_string())
        .send()
        .await
        .expect("PutRule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(&queue_arn).build().expect("target");
    let put = events
        .put_targets()
        .rule("weft-domain-events")
        .event_bus_name(&bus)
        .targets(target)
        .send()
        .await
        .expect("PutTargets");
    assert_eq!(put.failed_entry_count(), 0);

    // Twelve events: more than one PutEvents batch (at most ten entries each).
    let (w, e) = (Uuid::new_v4(), Uuid::new_v4());
    let mut conn = pool.acquire().await.expect("conn");
    let mut recorded = BTreeMap::new();
    let created = Event::WorkflowCreated(WorkflowData { workflow_id: w, name: Some("orders".into()), version: None });
    recorded.insert(domain_events::record(&mut conn, "acme", &created).await.expect("record"), created);
    for i in 0..11 {
        let node = Event::NodeSucceeded(NodeData { execution_id: e, node_id: format!("n{i}"), error: None });
        recorded.insert(domain_events::record(&mut conn, "acme", &node).await.expect("record"), node);
    }
    drop(conn);

    let sink = EventBridgeSink::new(events.clone(), &bus);
    let drained = domain_events::drain_all(&pool, &sink).await.expect("drain");
    assert_eq!((drained.picked, drained.published), (12, 12));

    let mut delivered: BTreeMap<i64, Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.len() < 12 && Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for message in got.messages() {
            let envelope: Value = serde_json::from_str(message.body().expect("body")).expect("EventBridge envelope");
            assert_eq!(envelope["source"], domain_events::SOURCE);
            let detail = envelope["detail"].clone();
            assert_eq!(envelope["detail-type"], detail["type"], "DetailType is the kind");
            delivered.insert(detail["id"].as_i64().expect("id"), detail);
        }
    }
    assert_eq!(delivered.keys().collect::<Vec<_>>(), recorded.keys().collect::<Vec<_>>(), "every event, once");
    for (id, detail) in &delivered {
        assert_eq!(detail["version"], 1);
        assert_eq!(detail["tenant_id"], "acme");
        let parsed: domain_events::DomainEvent = serde_json::from_value(detail.clone()).expect("schema");
        assert_eq!(&parsed.event().expect("typed"), &recorded[id]);
    }
}
