//! The connection secret resolved per tenant by a real `PgSecretResolver` (in process, and
//! through the real `fn-database` bootstrap under a Lambda Runtime API server on 127.0.0.1).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use fn_database::{DatabaseFunction, Settings};
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use node_contract::NodeEvent;
use secrets::SecretsKey;
use serde_json::{Value, json};

const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PASSWORD: &str = "tenant-pw-4c1e9a";

fn key() -> SecretsKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretsKey::new(&k)
}

fn payload(arn: &str, query: &str) -> Value {
    json!({"node": {"id": "q", "type": "database"}, "execution": {"id": arn},
           "config": {"connection": "REPORTS_DB", "query": query}})
}

/// The secret store (with tenant `acme` holding `REPORTS_DB`, tenant `evil` holding nothing),
/// its URL, and the executions of each tenant.
struct Fixture {
    store_url: String,
    store: store::Store,
    arn_acme: String,
    arn_evil: String,
    tenant_db: String,
}

async fn fixture() -> Option<Fixture> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let (store, store_url) = store::testing::fresh_store(&admin).await.unwrap();
    let tenant_db = store::testing::create_database(&admin).await.unwrap();
    // The dev server trusts 127.0.0.1, so the password is accepted; it must still never show.
    let with_password = tenant_db.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert_ne!(with_password, tenant_db, "the test URL is expected to name the postgres user");
    let wf_a = store::testing::published_workflow(&store, "acme").await.unwrap().id;
    let wf_b = store::testing::published_workflow(&store, "evil").await.unwrap().id;
    tenant_secrets::testing::store_secrets(store.pool(), &key(), "acme", &[("REPORTS_DB", with_password.as_str())])
        .await
        .unwrap();
    let (_, arn_acme) = store::testing::execution(&store, "acme", wf_a, false).await.unwrap();
    let (_, arn_evil) = store::testing::execution(&store, "evil", wf_b, true).await.unwrap();
    Some(Fixture { store_url, store, arn_acme, arn_evil, tenant_db })
}

#[tokio::test]
async fn the_connection_secret_is_the_executions_tenants() {
    let Some(fx) = fixture().await else { return };
    let resolver = tenant_secrets::PgSecretResolver::new(fx.store.pool().clone(), key());
    let f = DatabaseFunction::new(Settings::allowing(&["127.0.0.1"]).unwrap()).with_secrets(Arc::new(resolver));
    let run = |arn: &str, q: &str| f.run(NodeEvent::from_value(payload(arn, q)).unwrap());

    let out = run(&fx.arn_acme, "SELECT current_database() AS d").await.unwrap();
    assert_eq!(out["rows"][0]["d"], fx.tenant_db.rsplit('/').next().unwrap());
    let e = run(&fx.arn_evil, "SELECT 1").await.unwrap_err();
    assert_eq!(e.name, "Secret.NotFound");
    assert!(e.message.contains("REPORTS_DB"), "{e}");
    let forged = "arn:aws:states:us-east-1:123456789012:execution:weft-x:00000000-0000-0000-0000-000000000000";
    assert_eq!(run(forged, "SELECT 1").await.unwrap_err().name, "Secret.NotFound");
    // The URL's password, echoed by the query, is masked.
    let echoed = f
        .run(
            NodeEvent::from_value(json!({"node": {"id": "q", "type": "database"}, "execution": {"id": fx.arn_acme},
                "config": {"connection": "REPORTS_DB", "query": "SELECT $1::text AS p", "params": [PASSWORD]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(echoed["rows"], json!([{"p": "***"}]));
}

#[tokio::test]
async fn the_bootstrap_runs_queries_and_fails_by_name() {
    let Some(fx) = fixture().await else { return };
    let api = RuntimeApi::start().await.unwrap();
    let env =
        [("WEFT_DATABASE_URL", fx.store_url.as_str()), ("WEFT_SECRETS_KEY", KEY_B64), ("WEFT_HTTP_ALLOW", "127.0.0.1")];
    let bootstrap = api.spawn(env!("CARGO_BIN_EXE_fn-database"), "database", &env).unwrap();
    let wait = Duration::from_secs(60);

    let ok = api.invoke(payload(&fx.arn_acme, "SELECT 41 + 1 AS answer"), wait).await;
    let Some(Outcome::Response(out)) = &ok else { panic!("expected a response, got {ok:?}") };
    assert_eq!(
        out,
        &json!({"rows": [{"answer": 42}], "row_count": 1, "columns": [{"name": "answer", "type": "int4"}]})
    );

    let failed = api.invoke(payload(&fx.arn_acme, "SELECT * FROM nope"), wait).await;
    match &failed {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Database.Query");
            assert!(error_message.starts_with("SQLSTATE 42P01"), "{error_message}");
        }
        other => panic!("expected Database.Query, got {other:?}"),
    }
    let missing = api.invoke(payload(&fx.arn_evil, "SELECT 1"), wait).await;
    assert!(
        matches!(&missing, Some(Outcome::Error { error_type, .. }) if error_type == "Secret.NotFound"),
        "{missing:?}"
    );
    assert_eq!(api.init_error(), None);

    let exited = bootstrap.stop().await.unwrap();
    let logs = format!("{}{}", exited.stdout, exited.stderr);
    for shown in [format!("{ok:?}"), format!("{failed:?}"), format!("{missing:?}"), logs] {
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
}
