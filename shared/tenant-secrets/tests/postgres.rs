//! `PgSecretResolver` against a real, migrated Postgres: secrets come only from the tenant whose
//! `executions` row the ARN names, and only when the row really is that execution.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use secrets::SecretsKey;
use store::Store;
use tenant_secrets::{PgSecretResolver, ResolveError, SecretResolver};
use uuid::Uuid;

const KEY: [u8; 32] = [9u8; 32];

async fn store() -> Option<Store> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let (store, _) = store::testing::fresh_store(&admin).await.expect("database");
    Some(store)
}

/// A published workflow of `name` and the tenant's secrets; returns the workflow id.
async fn tenant(store: &Store, name: &str, secrets: &[(&str, &str)]) -> Uuid {
    let workflow = store::testing::published_workflow(store, name).await.unwrap();
    tenant_secrets::testing::store_secrets(store.pool(), &SecretsKey::new(&KEY), name, secrets).await.unwrap();
    workflow.id
}

async fn execution(store: &Store, tenant: &str, workflow: Uuid, recorded: bool) -> (Uuid, String) {
    store::testing::execution(store, tenant, workflow, recorded).await.unwrap()
}

fn names(n: &[&str]) -> BTreeSet<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn secrets_resolve_only_for_the_tenant_owning_the_execution() {
    let Some(store) = store().await else { return };
    let pool = store.pool().clone();
    let wf_a = tenant(&store, "acme", &[("TOKEN", "acme-token"), ("OTHER", "acme-other")]).await;
    let wf_b = tenant(&store, "evil", &[]).await;
    let resolver = PgSecretResolver::new(pool.clone(), SecretsKey::new(&KEY));

    // Before StartExecution returns (ARN not recorded yet) and after: both resolve.
    for recorded in [false, true] {
        let (_, arn) = execution(&store, "acme", wf_a, recorded).await;
        let got = resolver.resolve(&arn, &names(&["TOKEN", "OTHER"])).await.unwrap();
        assert_eq!(got["TOKEN"], "acme-token");
        assert_eq!(got["OTHER"], "acme-other");
        let err = resolver.resolve(&arn, &names(&["TOKEN", "NOPE"])).await.unwrap_err();
        assert_eq!(err, ResolveError::NotFound { name: "NOPE".into() });
    }

    // Tenant B's execution asks for the same name: B has none, and A's never show.
    let (_, arn_b) = execution(&store, "evil", wf_b, true).await;
    let err = resolver.resolve(&arn_b, &names(&["TOKEN"])).await.unwrap_err();
    assert_eq!(err, ResolveError::NotFound { name: "TOKEN".into() });
    assert_eq!(err.node_error().name, "Secret.NotFound");
    assert!(!err.node_error().message.contains("acme-token"));

    // Forged ARNs: A's row id under B's state machine, A's row with another recorded ARN, an
    // unknown row, a non-UUID name, garbage. All have no tenant.
    let (id_a, arn_a) = execution(&store, "acme", wf_a, true).await;
    let forged = [
        format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_b}:{id_a}"),
        arn_a.replace("123456789012:execution", "999999999999:execution"),
        format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_a}:{}", Uuid::new_v4()),
        format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_a}:not-a-uuid"),
        "{{ secrets.TOKEN }}".to_owned(),
        String::new(),
    ];
    for arn in &forged {
        let err = resolver.resolve(arn, &names(&["TOKEN"])).await.unwrap_err();
        assert!(matches!(err, ResolveError::UnknownExecution { .. }), "{arn}: {err:?}");
        assert_eq!(err.node_error().name, "Secret.NotFound");
    }
    assert_eq!(resolver.tenant_of(&arn_a).await.unwrap().as_deref(), Some("acme"));

    // A ciphertext copied into B's row does not open for B (AES-GCM binds tenant and name).
    sqlx::query("INSERT INTO secrets (tenant_id, name, nonce, ciphertext) SELECT 'evil', name, nonce, ciphertext FROM secrets WHERE tenant_id = 'acme' AND name = 'TOKEN'")
        .execute(&pool)
        .await
        .unwrap();
    let err = resolver.resolve(&arn_b, &names(&["TOKEN"])).await.unwrap_err();
    assert!(matches!(err, ResolveError::Unavailable { .. }), "{err:?}");
    assert_eq!(err.node_error().name, "Secret.Unavailable");
    assert!(!err.to_string().contains("acme-token"));

    // The wrong deployment key cannot open A's values either.
    let wrong = PgSecretResolver::new(pool.clone(), SecretsKey::new(&[1u8; 32]));
    let err = wrong.resolve(&arn_a, &names(&["TOKEN"])).await.unwrap_err();
    assert!(matches!(err, ResolveError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_store_is_retryable_not_missing() {
    // Port 9 on loopback: nothing listens, so every connection is refused.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy("postgres://weft@127.0.0.1:9/weft")
        .unwrap();
    let resolver = PgSecretResolver::new(pool, SecretsKey::new(&KEY));
    let arn = format!("arn:aws:states:us-east-1:1:execution:weft-x:{}", Uuid::new_v4());
    let err = resolver.resolve(&arn, &names(&["TOKEN"])).await.unwrap_err();
    assert!(matches!(err, ResolveError::Unavailable { .. }), "{err:?}");
    assert_eq!(err.node_error().name, "Secret.Unavailable");
    assert!(err.to_string().contains("TOKEN"));
}
