//! The connection secret resolved per tenant by a real `PgSecretResolver` against Postgres
//! (`WEFT_TEST_DATABASE_URL`; skipped without it unless `WEFT_TEST_STRICT=1`): each execution
//! posts with its own tenant's token, and an execution Weft never started has none.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use fn_slack::{Settings, SlackFunction};
use node_contract::NodeEvent;
use secrets::SecretsKey;
use serde_json::{Value, json};
use tenant_secrets::PgSecretResolver;

const ACME_TOKEN: &str = "xoxb-1-2-acmeTokenSecret4e1a";
const EVIL_TOKEN: &str = "xoxb-1-2-evilTokenSecret90cc";

fn key() -> SecretsKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretsKey::new(&k)
}

/// `chat.postMessage` that records the bearer it got and answers `ok`.
async fn fake_slack() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/api/chat.postMessage",
        axum::routing::post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                record.lock().unwrap().push(auth);
                axum::Json(json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/api"), seen)
}

fn event(arn: &str) -> NodeEvent {
    NodeEvent::from_value(json!({"node": {"id": "notify", "type": "slack"}, "execution": {"id": arn},
        "config": {"connection": "SLACK", "channel": "#ops", "text": "hi"}}))
    .unwrap()
}

#[tokio::test]
async fn each_execution_posts_with_its_own_tenants_token() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, _db) = store::testing::fresh_store(&admin).await.unwrap();
    let wf_a = store::testing::published_workflow(&store, "acme").await.unwrap().id;
    let wf_b = store::testing::published_workflow(&store, "evil").await.unwrap().id;
    let wf_c = store::testing::published_workflow(&store, "empty").await.unwrap().id;
    tenant_secrets::testing::store_secrets(store.pool(), &key(), "acme", &[("SLACK", ACME_TOKEN)]).await.unwrap();
    tenant_secrets::testing::store_secrets(store.pool(), &key(), "evil", &[("SLACK", EVIL_TOKEN)]).await.unwrap();
    let (_, arn_a) = store::testing::execution(&store, "acme", wf_a, false).await.unwrap();
    let (_, arn_b) = store::testing::execution(&store, "evil", wf_b, true).await.unwrap();
    let (_, arn_c) = store::testing::execution(&store, "empty", wf_c, true).await.unwrap();

    let (api, seen) = fake_slack().await;
    let resolver = Arc::new(PgSecretResolver::new(store.pool().clone(), key()));
    let f = SlackFunction::new(Settings::allowing(&["127.0.0.1"], &api).unwrap()).unwrap().with_secrets(resolver);

    let a = f.run(event(&arn_a)).await.unwrap();
    assert_eq!(a, json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}));
    f.run(event(&arn_b)).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [format!("Bearer {ACME_TOKEN}"), format!("Bearer {EVIL_TOKEN}")]);

    // A tenant without the secret, and an ARN Weft never started: Secret.NotFound, nothing sent.
    let forged = format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_a}:{}", uuid::Uuid::new_v4());
    for arn in [arn_c, forged] {
        let outcome: Result<Value, _> = f.run(event(&arn)).await;
        let e = outcome.unwrap_err();
        assert_eq!(e.name, "Secret.NotFound", "{e:?}");
        assert!(e.message.contains("SLACK") && !e.message.contains("xoxb-"), "{e:?}");
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
}
